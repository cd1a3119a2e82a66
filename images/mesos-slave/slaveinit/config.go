// Package mesosslave is the init of the mesos-slave image: it turns the
// container's environment into the agent's configuration the way the seed's
// init.sh did (ENVIRONMENT presets, ENVIRONMENT_INIT, MESOS_* flags, the
// seed's defaults) and decides which supervised programs run: the Mesos
// agent, the log shipper, the metrics collector and the watchdog ("redpill")
// that stops the container when a supervised program turns FATAL.
//
// The seed's known bugs are fixed here: MESOS_LOG_DIR defaulted to
// "=/var/log/mesos" (a "==" typo in 1.1.0); the log shipper's address and CA
// were read from SERVICE_LOGSTASH_FORWARDER_ADDRESS/_CERT but written from the
// unprefixed variables, so they came out empty; an unrecognised ENVIRONMENT
// silently meant "local" (it still does, with a warning); and a misspelt
// Mesos variable such as the README's MESOS_WORKDIR was silently ignored by
// the agent (it is now reported, with the flag that was probably meant).
package slaveinit

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Program is one supervised program.
type Program struct {
	Name    string
	Command []string // argv; never passed through a shell
	Enabled bool
}

// Config is the resolved configuration.
type Config struct {
	Env      map[string]string // environment of the supervised programs
	Programs []Program         // in start order: mesos, log shipper, metrics, watchdog
	Watchdog Watchdog
	Shipper  *Shipper // the rsyslog log shipper's settings, when it is enabled and not replaced
	Warnings []string
	// StartRetries is supervisord's startretries for the agent (seed: 10).
	StartRetries int
}

// Watchdog is the redpill configuration.
type Watchdog struct {
	Services []string      // programs whose FATAL state stops the container
	Interval time.Duration // how often they are checked (seed default 30 s)
	Cleanup  string        // script run before stopping (and on container stop)
}

// MetricsConf is the collector's InfluxDB settings (the seed's JSON keys:
// host, port, username, password, database, ssl), mounted from the node;
// INFLUXDB_* variables override it.
const MetricsConf = "/etc/lhcbdirac/collector.json"

// Hooks reach outside the process; tests replace them.
type Hooks struct {
	// SourceInit runs ENVIRONMENT_INIT and returns the environment after it.
	SourceInit func(ctx context.Context, path string, env map[string]string) (map[string]string, error)
	// FirstIPv4 returns the first IPv4 address of an interface.
	FirstIPv4 func(iface string) (string, error)
	// Exists reports whether a file exists.
	Exists func(path string) bool
}

// Resolve applies the seed's rules, in its order, to env.
func Resolve(ctx context.Context, env map[string]string, h Hooks) (Config, error) {
	c := Config{Env: copyMap(env)}
	e := c.Env
	// 1. ENVIRONMENT_INIT first: it may set anything else.
	if p := e["ENVIRONMENT_INIT"]; p != "" {
		if h.Exists != nil && !h.Exists(p) {
			c.warn("ENVIRONMENT_INIT=%s does not exist; ignored", p)
		} else {
			out, err := h.SourceInit(ctx, p, e)
			if err != nil {
				return c, fmt.Errorf("ENVIRONMENT_INIT=%s: %w", p, err)
			}
			c.Env, e = out, out
		}
	}
	// 2. PARENT_HOST from HOST.
	if e["PARENT_HOST"] == "" && e["HOST"] != "" {
		e["PARENT_HOST"] = e["HOST"]
	}
	// 3. Defaults, each only when unset.
	for k, v := range map[string]string{
		"APP_NAME": "mesos-slave", "ENVIRONMENT": "local", "PARENT_HOST": "unknown",
		"MESOS_LOG_DIR":                   "/var/log/mesos", // the seed wrote "=/var/log/mesos"
		"MESOS_CONTAINERIZERS":            "docker,mesos",
		"SERVICE_LOGSTASH_FORWARDER_CONF": ShipperConf,
		"SERVICE_REDPILL_MONITOR":         "mesos",
		"SERVICE_MESOS_CMD":               "mesos-slave",
		"SERVICE_METRICS_CONF":            MetricsConf,
	} {
		setDefault(e, k, v)
	}
	// 4. ENVIRONMENT presets.
	switch env := strings.ToLower(e["ENVIRONMENT"]); env {
	case "prod", "production", "dev", "development":
		setDefault(e, "SERVICE_LOGSTASH_FORWARDER", "enabled")
		setDefault(e, "SERVICE_REDPILL", "enabled")
		setDefault(e, "SERVICE_METRICS", "enabled")
	case "debug":
		setDefault(e, "SERVICE_LOGSTASH_FORWARDER", "disabled")
		setDefault(e, "SERVICE_REDPILL", "disabled")
		setDefault(e, "SERVICE_METRICS", "disabled")
	default:
		if env != "local" {
			c.warn("ENVIRONMENT=%q is not one of local, prod, production, dev, development, debug; using the local preset", e["ENVIRONMENT"])
		}
		if e["MESOS_HOSTNAME"] == "" && h.FirstIPv4 != nil {
			ip, err := h.FirstIPv4("eth0")
			if err != nil {
				c.warn("local preset: no IPv4 address on eth0 for MESOS_HOSTNAME (%v); set MESOS_HOSTNAME", err)
			} else {
				e["MESOS_HOSTNAME"] = ip
			}
		}
		setDefault(e, "SERVICE_LOGSTASH_FORWARDER", "disabled")
		setDefault(e, "SERVICE_REDPILL", "enabled")
		setDefault(e, "SERVICE_METRICS", "disabled")
		setDefault(e, "MESOS_WORK_DIR", "/var/lib/mesos")
	}
	// MESOS_* reach the agent unchanged (Mesos reads MESOS_<FLAG> itself).
	// A near miss of a known flag, which the agent would silently ignore
	// (the seed's README used MESOS_WORKDIR), is reported.
	for _, k := range slices.Sorted(maps.Keys(e)) {
		if flag, ok := strings.CutPrefix(k, "MESOS_"); ok {
			if guess := nearMiss(strings.ToLower(flag)); guess != "" {
				c.warn("%s is not a Mesos agent flag and will be ignored; did you mean MESOS_%s?", k, strings.ToUpper(guess))
			}
		}
	}

	c.StartRetries = 10
	if v := e["SERVICE_MESOS_STARTRETRIES"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, fmt.Errorf("SERVICE_MESOS_STARTRETRIES=%q: want a number of retries, 0 or more", v)
		}
		c.StartRetries = n
	}
	// 5. The programs.
	mesosCmd := strings.Fields(e["SERVICE_MESOS_CMD"])
	if len(mesosCmd) == 0 {
		return c, fmt.Errorf("SERVICE_MESOS_CMD is empty: nothing to run as the agent")
	}
	c.Programs = append(c.Programs, Program{Name: "mesos", Command: mesosCmd, Enabled: true})
	ship, err := c.toggle("SERVICE_LOGSTASH_FORWARDER")
	if err != nil {
		return c, err
	}
	shipCmd := strings.Fields(e["SERVICE_LOGSTASH_FORWARDER_CMD"])
	if len(shipCmd) == 0 {
		// logstash-forwarder is long dead; Debian's rsyslog ships the same
		// files, with the same fields, to SERVICE_LOGSTASH_FORWARDER_ADDRESS.
		shipCmd = []string{"rsyslogd", "-n", "-iNONE", "-f", e["SERVICE_LOGSTASH_FORWARDER_CONF"]}
		if ship {
			if c.Shipper, err = shipperFrom(e); err != nil {
				return c, err
			}
		}
	}
	c.Programs = append(c.Programs, Program{Name: "logstash-forwarder", Command: shipCmd, Enabled: ship})
	// The collector: every DIRAC container's metrics into InfluxDB
	// (images/mesos-slave/metrics), from cAdvisor when
	// SERVICE_METRICS_CADVISOR names one, else from the Docker Engine API.
	metrics, err := c.toggle("SERVICE_METRICS")
	if err != nil {
		return c, err
	}
	metricsCmd := strings.Fields(e["SERVICE_METRICS_CMD"])
	if len(metricsCmd) == 0 {
		metricsCmd = []string{"lhcbdirac-collector", "-i", "-q", "-c", e["SERVICE_METRICS_CONF"]}
		if t := e["SERVICE_METRICS_CADVISOR"]; t != "" {
			metricsCmd = append(metricsCmd, "-t", t)
		}
		if iv := e["SERVICE_METRICS_INTERVAL"]; iv != "" {
			if d, err := time.ParseDuration(iv); err != nil || d <= 0 {
				return c, fmt.Errorf("SERVICE_METRICS_INTERVAL=%q: want a duration such as 30s", iv)
			}
			metricsCmd = append(metricsCmd, "-interval", iv)
		}
	}
	c.Programs = append(c.Programs, Program{Name: "metrics", Command: metricsCmd, Enabled: metrics})
	red, err := c.toggle("SERVICE_REDPILL")
	if err != nil {
		return c, err
	}
	c.Watchdog = Watchdog{Interval: 30 * time.Second, Cleanup: e["SERVICE_REDPILL_CLEANUP"]}
	for _, s := range strings.Split(e["SERVICE_REDPILL_MONITOR"], ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.Watchdog.Services = append(c.Watchdog.Services, s)
		}
	}
	if iv := e["SERVICE_REDPILL_INTERVAL"]; iv != "" {
		n, err := strconv.Atoi(iv)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("SERVICE_REDPILL_INTERVAL=%q: want a positive number of seconds", iv)
		}
		c.Watchdog.Interval = time.Duration(n) * time.Second
	}
	for _, s := range c.Watchdog.Services {
		if !c.hasProgram(s) {
			return c, fmt.Errorf("SERVICE_REDPILL_MONITOR names %q, which is not a supervised program (have %s)", s, strings.Join(c.programNames(), ", "))
		}
	}
	c.Programs = append(c.Programs, Program{Name: "redpill", Enabled: red && len(c.Watchdog.Services) > 0})
	if red && len(c.Watchdog.Services) == 0 {
		c.warn("SERVICE_REDPILL is enabled but SERVICE_REDPILL_MONITOR names no program: no watchdog")
	}
	return c, nil
}

// toggle reads an enabled/disabled switch; anything else is an error (the
// seed disabled the service with an "Unrecognized Option" message, which is
// easy to miss on a node).
func (c *Config) toggle(name string) (bool, error) {
	switch strings.ToLower(c.Env[name]) {
	case "enabled":
		return true, nil
	case "disabled":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q: want enabled or disabled", name, c.Env[name])
}

func (c *Config) hasProgram(name string) bool {
	for _, p := range c.Programs {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (c *Config) programNames() []string {
	var out []string
	for _, p := range c.Programs {
		out = append(out, p.Name)
	}
	return out
}

func (c *Config) warn(format string, a ...any) {
	c.Warnings = append(c.Warnings, fmt.Sprintf(format, a...))
}

// EnvList is the programs' environment as sorted KEY=VALUE.
func (c Config) EnvList() []string {
	out := make([]string, 0, len(c.Env))
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		out = append(out, k+"="+c.Env[k])
	}
	return out
}

func setDefault(e map[string]string, k, v string) {
	if e[k] == "" {
		e[k] = v
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
