package slaveinit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Supervisor layout inside the image (Debian's supervisor package).
const (
	SupervisorConf = "/etc/supervisor/supervisord.conf"
	SupervisorDir  = "/etc/supervisor/conf.d"
)

// priorities keep the seed's start order: agent 300, shipper 900, watchdog
// 999; the metrics collector after the shipper.
var priorities = map[string]int{"mesos": 300, "logstash-forwarder": 900, "metrics": 950, "redpill": 999}

// WatchdogCommand is how supervisord starts the watchdog: this same binary.
var WatchdogCommand = []string{"/usr/local/bin/mesos-slave-init", "redpill"}

// WriteSupervisor writes supervisord.conf and one file per enabled program
// under root (the image's / in production, a temp dir in tests). Disabled
// programs get no file, so supervisord never starts them. Programs inherit
// the init's environment, which is Config.Env.
func WriteSupervisor(c Config, root string) error {
	main := `[supervisord]
nodaemon=true
pidfile=/var/run/supervisord.pid
logfile=/var/log/supervisor/supervisord.log
childlogdir=/var/log/supervisor
loglevel=info

[unix_http_server]
file=/var/run/supervisor.sock
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///var/run/supervisor.sock

[include]
files = /etc/supervisor/conf.d/*.conf
`
	if err := write(root, SupervisorConf, main); err != nil {
		return err
	}
	dir := filepath.Join(root, SupervisorDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	for _, f := range old {
		os.Remove(f)
	}
	if c.Shipper != nil {
		if err := write(root, c.Env["SERVICE_LOGSTASH_FORWARDER_CONF"], c.Shipper.RsyslogConf()); err != nil {
			return err
		}
	}
	for _, p := range c.Programs {
		if !p.Enabled {
			continue
		}
		cmd := p.Command
		if p.Name == "redpill" {
			cmd = WatchdogCommand
		}
		var b strings.Builder
		fmt.Fprintf(&b, "[program:%s]\ncommand=%s\n", p.Name, supervisorCommand(cmd))
		switch p.Name {
		case "mesos":
			fmt.Fprintf(&b, "user=root\nautostart=true\nautorestart=unexpected\nstartsecs=5\nstartretries=%d\nstopsignal=TERM\n", c.StartRetries)
		case "redpill":
			b.WriteString("autostart=true\nautorestart=false\nstopwaitsecs=10\n")
		default:
			b.WriteString("autostart=true\nautorestart=unexpected\nstartsecs=5\n")
		}
		fmt.Fprintf(&b, "priority=%d\nstdout_logfile=/dev/fd/1\nstdout_logfile_maxbytes=0\nstderr_logfile=/dev/fd/2\nstderr_logfile_maxbytes=0\n", priorities[p.Name])
		name := fmt.Sprintf("%03d-%s.conf", priorities[p.Name], p.Name)
		if err := write(root, filepath.Join(SupervisorDir, name), b.String()); err != nil {
			return err
		}
	}
	return nil
}

// supervisorCommand quotes argv for supervisord, which splits with shlex
// rules and expands %(…)s, so every argument is double-quoted and every %
// doubled. No shell is involved.
func supervisorCommand(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		a = strings.ReplaceAll(a, "%", "%%")
		a = strings.ReplaceAll(a, `\`, `\\`)
		a = strings.ReplaceAll(a, `"`, `\"`)
		q[i] = `"` + a + `"`
	}
	return strings.Join(q, " ")
}

func write(root, path, content string) error {
	full := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, []byte(content), 0o644)
}
