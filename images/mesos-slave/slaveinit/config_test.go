package slaveinit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/shellenv"
)

func hooks() Hooks {
	return Hooks{
		SourceInit: shellenv.Source,
		FirstIPv4:  func(string) (string, error) { return "10.0.0.7", nil },
		Exists:     func(p string) bool { _, err := os.Stat(p); return err == nil },
	}
}

func resolve(t *testing.T, env map[string]string) Config {
	t.Helper()
	if _, ok := env["SERVICE_LOGSTASH_FORWARDER_ADDRESS"]; !ok {
		env["SERVICE_LOGSTASH_FORWARDER_ADDRESS"] = "logs.example:5000"
	}
	c, err := Resolve(context.Background(), env, hooks())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func enabled(c Config, name string) bool {
	for _, p := range c.Programs {
		if p.Name == name {
			return p.Enabled
		}
	}
	return false
}

func TestPresets(t *testing.T) {
	for envName, want := range map[string][3]bool{ // logstash-forwarder, redpill, metrics
		"prod": {true, true, true}, "PRODUCTION": {true, true, true}, "dev": {true, true, true}, "Development": {true, true, true},
		"debug": {false, false, false}, "local": {false, true, false},
	} {
		c := resolve(t, map[string]string{"ENVIRONMENT": envName, "MESOS_MASTER": "zk://zk:2181/mesos"})
		if enabled(c, "logstash-forwarder") != want[0] || enabled(c, "redpill") != want[1] || enabled(c, "metrics") != want[2] || !enabled(c, "mesos") {
			t.Errorf("%s: programs %+v", envName, c.Programs)
		}
		if c.Env["MESOS_MASTER"] != "zk://zk:2181/mesos" {
			t.Errorf("%s: MESOS_MASTER not passed through", envName)
		}
	}
	local := resolve(t, map[string]string{})
	for k, v := range map[string]string{"ENVIRONMENT": "local", "MESOS_HOSTNAME": "10.0.0.7", "MESOS_WORK_DIR": "/var/lib/mesos",
		"MESOS_LOG_DIR": "/var/log/mesos", "APP_NAME": "mesos-slave", "PARENT_HOST": "unknown", "MESOS_CONTAINERIZERS": "docker,mesos"} {
		if local.Env[k] != v {
			t.Errorf("local default %s = %q, want %q (the seed's 1.1.0 wrote MESOS_LOG_DIR as =/var/log/mesos)", k, local.Env[k], v)
		}
	}
	prod := resolve(t, map[string]string{"ENVIRONMENT": "production"})
	if prod.Env["MESOS_WORK_DIR"] != "" || prod.Env["MESOS_HOSTNAME"] != "" {
		t.Errorf("production must not get the local preset: %v", prod.EnvList())
	}
	odd := resolve(t, map[string]string{"ENVIRONMENT": "staging"})
	if !enabled(odd, "redpill") || odd.Env["MESOS_WORK_DIR"] != "/var/lib/mesos" || len(odd.Warnings) == 0 || !strings.Contains(odd.Warnings[0], "staging") {
		t.Errorf("an unknown ENVIRONMENT uses the local preset and says so: %+v", odd.Warnings)
	}
}

func TestSetValuesWinOverPresetsAndDefaults(t *testing.T) {
	c := resolve(t, map[string]string{"ENVIRONMENT": "prod", "SERVICE_LOGSTASH_FORWARDER": "disabled", "HOST": "node12", "MESOS_LOG_DIR": "/data/log"})
	if enabled(c, "logstash-forwarder") || c.Env["PARENT_HOST"] != "node12" || c.Env["MESOS_LOG_DIR"] != "/data/log" {
		t.Fatalf("%v %+v", c.EnvList(), c.Programs)
	}
}

func TestEnvironmentInitIsSourcedFirst(t *testing.T) {
	dir := t.TempDir()
	// A path with a space and a quote: it is an argument, never shell text.
	script := filepath.Join(dir, "my 'init'.sh")
	os.WriteFile(script, []byte("ENVIRONMENT=debug\nMESOS_MASTER=\"zk://$ZK_HOST/mesos\"\necho sourced >&2\n"), 0o644)
	c := resolve(t, map[string]string{"ENVIRONMENT_INIT": script, "ZK_HOST": "zk1:2181"})
	if c.Env["ENVIRONMENT"] != "debug" || c.Env["MESOS_MASTER"] != "zk://zk1:2181/mesos" || enabled(c, "redpill") {
		t.Fatalf("after ENVIRONMENT_INIT: %v", c.EnvList())
	}
	bad := filepath.Join(dir, "bad.sh")
	os.WriteFile(bad, []byte("exit 3\n"), 0o644)
	if _, err := Resolve(context.Background(), map[string]string{"ENVIRONMENT_INIT": bad}, hooks()); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("a failing ENVIRONMENT_INIT must stop the init naming it: %v", err)
	}
	missing := resolve(t, map[string]string{"ENVIRONMENT_INIT": "/nonexistent/init.sh"})
	if len(missing.Warnings) == 0 || !strings.Contains(missing.Warnings[0], "/nonexistent/init.sh") {
		t.Fatalf("a missing ENVIRONMENT_INIT is reported: %v", missing.Warnings)
	}
}

func TestWatchdogOptionsAndBadValues(t *testing.T) {
	c := resolve(t, map[string]string{"ENVIRONMENT": "prod", "SERVICE_REDPILL_MONITOR": "mesos,logstash-forwarder", "SERVICE_REDPILL_INTERVAL": "5", "SERVICE_REDPILL_CLEANUP": "/opt/cleanup.sh"})
	if !slices.Equal(c.Watchdog.Services, []string{"mesos", "logstash-forwarder"}) || c.Watchdog.Interval != 5*time.Second || c.Watchdog.Cleanup != "/opt/cleanup.sh" {
		t.Fatalf("watchdog %+v", c.Watchdog)
	}
	for env, want := range map[string]string{
		"SERVICE_REDPILL=maybe":         "SERVICE_REDPILL",
		"SERVICE_REDPILL_INTERVAL=0":    "SERVICE_REDPILL_INTERVAL",
		"SERVICE_REDPILL_MONITOR=nginx": `"nginx"`,
		"SERVICE_MESOS_CMD= ":           "SERVICE_MESOS_CMD",
	} {
		k, v, _ := strings.Cut(env, "=")
		_, err := Resolve(context.Background(), map[string]string{k: v}, hooks())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v should name %s", env, err, want)
		}
	}
}

func TestMisspeltMesosFlagsAreReported(t *testing.T) {
	c := resolve(t, map[string]string{"ENVIRONMENT": "prod", "MESOS_WORKDIR": "/data/mesos/workdir", "MESOS_MASTRE": "zk://x", "MESOS_CUSTOM_THING": "1", "MESOS_WORK_DIR": "/w"})
	joined := strings.Join(c.Warnings, "\n")
	if !strings.Contains(joined, "MESOS_WORKDIR is not a Mesos agent flag and will be ignored; did you mean MESOS_WORK_DIR?") || !strings.Contains(joined, "did you mean MESOS_MASTER?") {
		t.Fatalf("warnings: %s", joined)
	}
	if strings.Contains(joined, "CUSTOM_THING") || strings.Contains(joined, "MESOS_WORK_DIR is") {
		t.Fatalf("only near misses are reported: %s", joined)
	}
	if c.Env["MESOS_WORKDIR"] != "/data/mesos/workdir" {
		t.Fatal("MESOS_* values are passed through unchanged, even unknown ones")
	}
}

func TestNoIPv4OnEth0IsAWarningNotAFailure(t *testing.T) {
	h := hooks()
	h.FirstIPv4 = func(string) (string, error) { return "", errors.New("no such interface") }
	c, err := Resolve(context.Background(), map[string]string{}, h)
	if err != nil || c.Env["MESOS_HOSTNAME"] != "" || len(c.Warnings) == 0 {
		t.Fatalf("%v %v %v", err, c.Env["MESOS_HOSTNAME"], c.Warnings)
	}
}

// SERVICE_METRICS like the other switches; the collector reads cAdvisor
// when SERVICE_METRICS_CADVISOR names one.
func TestMetricsToggle(t *testing.T) {
	c := resolve(t, map[string]string{"ENVIRONMENT": "local", "SERVICE_METRICS": "enabled", "SERVICE_METRICS_CADVISOR": "localhost", "SERVICE_METRICS_INTERVAL": "10s"})
	for _, p := range c.Programs {
		if p.Name == "metrics" && (!p.Enabled || strings.Join(p.Command, " ") != "lhcbdirac-collector -i -q -c /etc/lhcbdirac/collector.json -t localhost -interval 10s") {
			t.Errorf("metrics program %+v", p)
		}
	}
	for env, want := range map[string]string{
		"SERVICE_METRICS":          `SERVICE_METRICS="on": want enabled or disabled`,
		"SERVICE_METRICS_INTERVAL": `SERVICE_METRICS_INTERVAL="on": want a duration`,
	} {
		e := map[string]string{"ENVIRONMENT": "prod", "SERVICE_LOGSTASH_FORWARDER": "disabled", env: "on"}
		if _, err := Resolve(context.Background(), e, Hooks{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=on: %v", env, err)
		}
	}
}
