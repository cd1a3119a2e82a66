package slaveinit

import (
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
)

// ShipperConf is where the init writes the log shipper's configuration.
const ShipperConf = "/etc/lhcbdirac/log-shipper.conf"

// Shipper is what the log shipper sends where: the seed's logstash-forwarder
// files and fields, over TCP, one JSON object per line.
type Shipper struct {
	Host, Port string
	Files      map[string][]string // type -> globs, as the seed's two file groups
	Fields     map[string]string   // app_name, environment, parent_host
}

// shipperFrom reads SERVICE_LOGSTASH_FORWARDER_ADDRESS — the variable the
// seed tested but never wrote (it wrote the unprefixed one, so the address
// came out empty); an enabled shipper without an address is an error now.
func shipperFrom(e map[string]string) (*Shipper, error) {
	addr := e["SERVICE_LOGSTASH_FORWARDER_ADDRESS"]
	if addr == "" {
		return nil, fmt.Errorf("SERVICE_LOGSTASH_FORWARDER is enabled (ENVIRONMENT=%s) but SERVICE_LOGSTASH_FORWARDER_ADDRESS is not set: give host:port of the log collector, or set SERVICE_LOGSTASH_FORWARDER=disabled", e["ENVIRONMENT"])
	}
	host, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || host == "" {
		return nil, fmt.Errorf("SERVICE_LOGSTASH_FORWARDER_ADDRESS=%q: want host:port", addr)
	}
	logDir := e["MESOS_LOG_DIR"]
	return &Shipper{
		Host: host, Port: port,
		Files: map[string][]string{
			"syslog":      {"/var/log/syslog", "/var/log/auth.log"},
			"mesos-slave": {path.Join(logDir, "*.ERROR"), path.Join(logDir, "*.INFO"), path.Join(logDir, "*.WARNING")},
		},
		Fields: map[string]string{"app_name": e["APP_NAME"], "environment": e["ENVIRONMENT"], "parent_host": e["PARENT_HOST"]},
	}, nil
}

// rsyslogString quotes a value for a RainerScript string.
func rsyslogString(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	s = strings.ReplaceAll(s, "\n", " ")
	return `"` + s + `"`
}

// RsyslogConf is the rsyslogd configuration: imfile inputs for each file
// group and one TCP forward whose template carries the seed's fields.
func (s *Shipper) RsyslogConf() string {
	var b strings.Builder
	b.WriteString("# Written by mesos-slave-init at container start.\n")
	b.WriteString("global(workDirectory=\"/var/lib/rsyslog\")\nmodule(load=\"imfile\")\n")
	for _, typ := range []string{"mesos-slave", "syslog"} {
		fmt.Fprintf(&b, "template(name=%s type=\"list\" option.jsonf=\"on\") {\n", rsyslogString("ship-"+typ))
		fmt.Fprintf(&b, "  property(outname=\"message\" name=\"msg\" format=\"jsonf\")\n  property(outname=\"file\" name=\"$!metadata!filename\" format=\"jsonf\")\n")
		fmt.Fprintf(&b, "  constant(outname=\"type\" value=%s format=\"jsonf\")\n", rsyslogString(typ))
		for _, k := range slices.Sorted(maps.Keys(s.Fields)) {
			fmt.Fprintf(&b, "  constant(outname=%s value=%s format=\"jsonf\")\n", rsyslogString(k), rsyslogString(s.Fields[k]))
		}
		b.WriteString("  constant(value=\"\\n\")\n}\n")
		fmt.Fprintf(&b, "ruleset(name=%s) {\n  action(type=\"omfwd\" target=%s port=%s protocol=\"tcp\" template=%s\n         action.resumeRetryCount=\"-1\" queue.type=\"LinkedList\")\n}\n",
			rsyslogString("ship-"+typ), rsyslogString(s.Host), rsyslogString(s.Port), rsyslogString("ship-"+typ))
		for _, glob := range s.Files[typ] {
			fmt.Fprintf(&b, "input(type=\"imfile\" File=%s Tag=%s ruleset=%s addMetadata=\"on\")\n", rsyslogString(glob), rsyslogString(typ), rsyslogString("ship-"+typ))
		}
	}
	return b.String()
}
