package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cadvisortest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/influxtest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testproc"
)

// These tests run the collector against real parts: the machine's Docker
// with containers the test starts (labelled as the rendered apps label
// them, one burning a CPU), Debian's InfluxDB, and cAdvisor built from its
// module. Nothing is pulled: the containers run an image already in the
// local Docker (the project's registry image, a Debian base with a shell).

const (
	busy = "DataManagement/FileCatalog"
	idle = "RequestManagement/ReqProxy"
)

// localImage is an image the machine's Docker already holds.
func localImage(t testing.TB) string {
	t.Helper()
	out, err := dockercli.Run(context.Background(), "images", "--format", "{{.Repository}}:{{.Tag}}", "lhcbdirac-pipeline/registry")
	if err != nil || out == "" {
		t.Fatalf("no local image to run containers from (the project's registry image, made by `mage test`): %v", err)
	}
	return strings.Fields(out)[0]
}

// containers starts a busy and an idle DIRAC container named as Mesos
// names them, and an unlabelled busy one that must not be collected; it
// returns the unlabelled one's id.
func containers(t testing.TB) (unlabelled string) {
	t.Helper()
	ctx := context.Background()
	img := localImage(t)
	run := func(name, component, cmd string) string {
		args := []string{"run", "-d", "--name", name, "--entrypoint", "/bin/sh"}
		if component != "" {
			args = append(args, "--label", LabelComponent+"="+component,
				"-e", "MARATHON_APP_ID=/"+strings.ToLower(component), "-e", "MESOS_TASK_ID="+strings.ReplaceAll(strings.ToLower(component), "/", "_")+".instance-"+name+"._app.1")
		}
		args = append(args, img, "-c", cmd)
		dockercli.RemoveContainer(ctx, name)
		id, err := dockercli.Run(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dockercli.RemoveContainer(context.Background(), name) })
		return id
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	run("mesos-busy-"+suffix, busy, "while :; do :; done")
	run("mesos-idle-"+suffix, idle, "sleep 3600")
	return run("other-busy-"+suffix, "", "while :; do :; done")
}

func collector(t testing.TB, in *influxtest.Server, target, host string, interval time.Duration) (*Collector, *testproc.Buffer, context.CancelFunc) {
	logs := &testproc.Buffer{}
	c := New(Config{Target: target, Write: true, Quiet: true, Interval: interval, Host: host,
		Influx: Influx{Host: "127.0.0.1", Port: in.Port, Username: in.User, Password: in.Password, Database: "dirac"},
		Log:    log.New(logs, "", 0)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, logs, cancel
}

func num(v any) float64 {
	f, _ := v.(json.Number).Float64()
	return f
}

// mean is the mean of field over the component's points.
func mean(t testing.TB, in *influxtest.Server, field, measurement, component, host string) (float64, int) {
	t.Helper()
	q := fmt.Sprintf(`SELECT mean(%q), count(%q) FROM %q WHERE dirac_component = '%s' AND host = '%s'`, field, field, measurement, component, host)
	s := in.Query("dirac", q)
	if len(s) == 0 || len(s[0].Values) == 0 {
		return 0, 0
	}
	return num(s[0].Values[0][1]), int(num(s[0].Values[0][2]))
}

func checkComponents(t *testing.T, in *influxtest.Server, host, unlabelled string) {
	t.Helper()
	busyCPU, n := mean(t, in, "usage_cores", "cpu", busy, host)
	idleCPU, m := mean(t, in, "usage_cores", "cpu", idle, host)
	t.Logf("%s: cpu %.2f cores over %d points; %s: %.3f over %d", busy, busyCPU, n, idle, idleCPU, m)
	if n < 2 || m < 2 {
		t.Fatalf("too few cpu points: %d and %d", n, m)
	}
	// One shell loop on a 2-core machine shared with the test itself.
	if busyCPU < 0.4 || busyCPU > 1.2 {
		t.Errorf("busy container: %.2f cores, want about 1", busyCPU)
	}
	if idleCPU > 0.05 {
		t.Errorf("idle container: %.3f cores, want about 0", idleCPU)
	}
	for _, c := range []string{busy, idle} {
		mem, k := mean(t, in, "usage", "memory", c, host)
		if k == 0 || mem < 1<<16 || mem > 1<<30 {
			t.Errorf("%s: memory usage %.0f bytes over %d points", c, mem, k)
		}
	}
	// Tagged with the Marathon task's identity; nothing unlabelled.
	tags := in.Query("dirac", `SHOW TAG VALUES FROM "cpu" WITH KEY = "app_id"`)
	if len(tags) == 0 || !strings.Contains(fmt.Sprint(tags[0].Values), "/datamanagement/filecatalog") {
		t.Errorf("app_id tags %v", tags)
	}
	if s := in.Query("dirac", fmt.Sprintf(`SELECT count("usage") FROM "memory" WHERE docker_id = '%s'`, unlabelled)); len(s) != 0 {
		t.Errorf("the unlabelled container was collected: %v", s)
	}
}

func TestCollectorFromDockerAndFromCAdvisor(t *testing.T) {
	in := influxtest.Start(t)
	in.CreateDatabase("dirac")
	unlabelled := containers(t)
	cadv := cadvisortest.Start(t)

	// From the Docker Engine API.
	c, logs, stop := collector(t, in, "", "agent-test", time.Second)
	time.Sleep(5 * time.Second)
	stop()
	checkComponents(t, in, "agent-test", unlabelled)
	st := c.Stats()
	if st.Written == 0 || st.Written != st.Points || st.Dropped != 0 {
		t.Errorf("docker source stats %+v", st)
	}
	if strings.Contains(logs.String(), in.Password) {
		t.Errorf("the password is in the log:\n%s", logs.String())
	}

	// From cAdvisor: the host tag is the target, as in the seed.
	c2, _, stop2 := collector(t, in, cadv.Addr, cadv.Addr, time.Second)
	time.Sleep(5 * time.Second)
	stop2()
	checkComponents(t, in, cadv.Addr, unlabelled)
	if m := in.Query("dirac", fmt.Sprintf(`SELECT count("usage") FROM "memory" WHERE host = '%s' AND dirac_component = ''`, cadv.Addr)); len(m) == 0 {
		t.Error("no machine-level points from cAdvisor")
	}
	if st := c2.Stats(); st.Written == 0 {
		t.Errorf("cadvisor source stats %+v\n%s", st, cadv.Log())
	}
}

// InfluxDB away for a while: the points wait and arrive afterwards, with no
// gap in the series.
func TestNoGapWhileInfluxDBIsDown(t *testing.T) {
	in := influxtest.Start(t)
	in.CreateDatabase("dirac")
	containers(t)
	c, logs, stop := collector(t, in, "", "agent-test", time.Second)
	time.Sleep(3 * time.Second)
	in.Stop()
	down := time.Now()
	time.Sleep(4 * time.Second)
	in.Restart()
	up := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for c.Buffer.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stop()
	if !strings.Contains(logs.String(), "points waiting") {
		t.Errorf("the outage was not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), in.Password) {
		t.Errorf("the password is in the log")
	}
	// One point a round for the busy container: none missing around the outage.
	s := in.Query("dirac", fmt.Sprintf(`SELECT "usage" FROM "memory" WHERE dirac_component = '%s'`, busy))
	if len(s) == 0 {
		t.Fatal("no points")
	}
	var times []time.Time
	for _, v := range s[0].Values {
		ns, _ := v[0].(json.Number).Int64()
		times = append(times, time.Unix(0, ns))
	}
	var inOutage int
	for i, tm := range times {
		if tm.After(down) && tm.Before(up) {
			inOutage++
		}
		if i > 0 {
			// A round takes about a second (Docker's stats tick) and
			// starts at the next 1 s tick.
			if gap := tm.Sub(times[i-1]); gap > 2500*time.Millisecond {
				t.Errorf("a %s gap at %s (outage %s–%s)", gap, tm.Format("15:04:05.000"), down.Format("15:04:05.000"), up.Format("15:04:05.000"))
			}
		}
	}
	t.Logf("%d points, %d of them taken while InfluxDB was down; dropped %d", len(times), inOutage, c.Stats().Dropped)
	if inOutage < 2 {
		t.Errorf("only %d points from the outage", inOutage)
	}
}
