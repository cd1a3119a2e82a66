package mesosslave

import (
	"context"
	"fmt"
	"strings"

	"dagger.io/dagger"
)

// SmokeEnvironments are the ENVIRONMENT presets the mesos-slave smoke test
// starts the image with, and the programs each must leave RUNNING.
var SmokeEnvironments = []struct {
	Name    string
	Running []string
	Absent  []string
}{
	{"local", []string{"mesos", "redpill"}, []string{"logstash-forwarder", "metrics"}},
	{"production", []string{"mesos", "logstash-forwarder", "metrics", "redpill"}, nil},
	{"development", []string{"mesos", "logstash-forwarder", "metrics", "redpill"}, nil},
	{"debug", []string{"mesos"}, []string{"logstash-forwarder", "metrics", "redpill"}},
}

// statusScript starts the image's entrypoint, waits (at most 40 s) until
// every supervised program is RUNNING, and prints supervisorctl status.
const statusScript = `"$@" >/tmp/init.log 2>&1 &
i=0
while [ "$i" -lt 40 ]; do
  s=$(supervisorctl -c /etc/supervisor/supervisord.conf status 2>&1)
  if [ -n "$s" ] && ! echo "$s" | grep -qv RUNNING; then break; fi
  i=$((i+1)); sleep 1
done
echo "$s"
echo "--- init output"; cat /tmp/init.log
`

// SmokeResult is the smoke test of the mesos-slave image.
type SmokeResult struct {
	Status   map[string]string // ENVIRONMENT -> supervisorctl status
	Watchdog string            // the output of the crashing run
}

// Smoke starts the image under each preset (with a log collector for
// the presets that ship logs) and checks supervisorctl's view; then starts
// it with the STAND-IN agent told to crash and requires the watchdog to
// stop the container.
func Smoke(ctx context.Context, c *dagger.Client, img, collectorBase *dagger.Container) (SmokeResult, error) {
	res := SmokeResult{Status: map[string]string{}}
	entry, err := img.Entrypoint(ctx)
	if err != nil {
		return res, err
	}
	collector := collectorBase.WithExposedPort(5000).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"busybox", "nc", "-ll", "-p", "5000", "-e", "cat"}})
	// The collector gets the node's settings file; with no Docker socket
	// and no InfluxDB here it must keep running, logging and buffering.
	base := img.WithEnvVariable("MESOS_MASTER", "zk://zk.invalid:2181/mesos").
		WithNewFile("/etc/lhcbdirac/collector.json", `{"host": "influx.invalid", "database": "smoke"}`).
		WithEnvVariable("SERVICE_LOGSTASH_FORWARDER_ADDRESS", "logs:5000").
		WithServiceBinding("logs", collector)
	type one struct {
		env, out string
		err      error
	}
	results := make(chan one, len(SmokeEnvironments))
	for _, e := range SmokeEnvironments {
		go func() {
			out, err := base.WithEnvVariable("ENVIRONMENT", e.Name).
				WithExec(append([]string{"/bin/sh", "-c", statusScript, "smoke"}, entry...)).Stdout(ctx)
			results <- one{e.Name, out, err}
		}()
	}
	var errs []string
	for range SmokeEnvironments {
		r := <-results
		res.Status[r.env] = r.out
		if r.err != nil {
			errs = append(errs, fmt.Sprintf("ENVIRONMENT=%s: %v", r.env, r.err))
			continue
		}
		status, _, _ := strings.Cut(r.out, "--- init output")
		for _, e := range SmokeEnvironments {
			if e.Name != r.env {
				continue
			}
			for _, p := range e.Running {
				if !hasState(status, p, "RUNNING") {
					errs = append(errs, fmt.Sprintf("ENVIRONMENT=%s: %s is not RUNNING:\n%s", r.env, p, indent(r.out)))
				}
			}
			for _, p := range e.Absent {
				if strings.Contains(status, p) {
					errs = append(errs, fmt.Sprintf("ENVIRONMENT=%s: %s should not be supervised:\n%s", r.env, p, indent(r.out)))
				}
			}
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("mesos-slave smoke test:\n%s", strings.Join(errs, "\n"))
	}

	// The watchdog: the agent crashes, turns FATAL, the container stops.
	// timeout(1) turns a watchdog that never fires into exit 124.
	crash := base.WithEnvVariable("ENVIRONMENT", "production").
		WithEnvVariable("STANDIN_AGENT", "crash").
		WithEnvVariable("SERVICE_MESOS_STARTRETRIES", "0").
		WithEnvVariable("SERVICE_REDPILL_INTERVAL", "1").
		WithExec(append([]string{"timeout", "90"}, entry...), dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny, RedirectStderr: "/tmp/stderr"})
	code, err := crash.ExitCode(ctx)
	if err != nil {
		return res, err
	}
	out, _ := crash.Stdout(ctx)
	errOut, _ := crash.File("/tmp/stderr").Contents(ctx)
	res.Watchdog = out + errOut
	if code == 124 || !strings.Contains(res.Watchdog, "FATAL") {
		return res, fmt.Errorf("mesos-slave smoke test: the watchdog did not stop the container when the agent turned FATAL (exit %d):\n%s", code, indent(res.Watchdog))
	}
	return res, nil
}

func hasState(status, program, state string) bool {
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == program && f[1] == state {
			return true
		}
	}
	return false
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
