package slaveinit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShipperAddressIsRequiredAndWritten(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"", "SERVICE_LOGSTASH_FORWARDER_ADDRESS is not set"},
		{"logs", `SERVICE_LOGSTASH_FORWARDER_ADDRESS="logs": want host:port`},
		{"logs:99999", "want host:port"},
	} {
		_, err := Resolve(context.Background(), map[string]string{"ENVIRONMENT": "production", "SERVICE_LOGSTASH_FORWARDER_ADDRESS": tc.addr}, hooks())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("address %q: %v", tc.addr, err)
		}
	}
	root := t.TempDir()
	c := resolve(t, map[string]string{"ENVIRONMENT": "dev", "SERVICE_LOGSTASH_FORWARDER_ADDRESS": "collector:5044", "PARENT_HOST": `node"1`, "MESOS_LOG_DIR": "/data/log"})
	if err := WriteSupervisor(c, root); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(root, ShipperConf))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`target="collector" port="5044" protocol="tcp"`, `File="/data/log/*.INFO"`, `File="/var/log/auth.log"`,
		`constant(outname="parent_host" value="node\"1"`, `constant(outname="environment" value="dev"`, `constant(outname="type" value="mesos-slave"`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("shipper configuration lacks %s:\n%s", want, conf)
		}
	}
	ship, _ := os.ReadFile(filepath.Join(root, SupervisorDir, "900-logstash-forwarder.conf"))
	if !strings.Contains(string(ship), `command="rsyslogd" "-n" "-iNONE" "-f" "`+ShipperConf+`"`) {
		t.Errorf("shipper program:\n%s", ship)
	}
	// Start retries are the seed's 10 unless set.
	c = resolve(t, map[string]string{"SERVICE_MESOS_STARTRETRIES": "0"})
	if c.StartRetries != 0 {
		t.Fatal(c.StartRetries)
	}
	if _, err := Resolve(context.Background(), map[string]string{"SERVICE_MESOS_STARTRETRIES": "x"}, hooks()); err == nil || !strings.Contains(err.Error(), `SERVICE_MESOS_STARTRETRIES="x"`) {
		t.Fatal(err)
	}
}
