//go:build integration

package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/cadvisortest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/cgrouptest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/influxtest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
)

// These tests run the collector against real parts: the machine's Docker
// with containers the test starts (labelled as the rendered apps label
// them, one burning a CPU), Debian's InfluxDB, and cAdvisor built from its
// module. Nothing is pulled: the containers run an image already in the
// local Docker (the project's registry image, a Debian base with a shell).
// None of them assumes an idle machine: CPU figures are compared with the
// containers' own cgroup counters over the same window, and waits are for
// a number of samples, with generous deadlines, never a fixed sleep.

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

// runContainer starts a container named as Mesos names them (when
// component is not "", labelled and with the Marathon task's variables)
// running cmd, removed when the test ends. It returns its id.
func runContainer(t testing.TB, name, component, cmd string) string {
	t.Helper()
	ctx := context.Background()
	args := []string{"run", "-d", "--name", name, "--entrypoint", "/bin/sh"}
	if component != "" {
		args = append(args, "--label", LabelComponent+"="+component,
			"-e", "MARATHON_APP_ID=/"+strings.ToLower(component), "-e", "MESOS_TASK_ID="+strings.ReplaceAll(strings.ToLower(component), "/", "_")+".instance-"+name+"._app.1")
	}
	args = append(args, localImage(t), "-c", cmd)
	dockercli.RemoveContainer(ctx, name)
	id, err := dockercli.Run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dockercli.RemoveContainer(context.Background(), name) })
	return id
}

// started are a test's containers.
type started struct{ busy, idle, unlabelled string }

// containers starts a busy and an idle DIRAC container, and an unlabelled
// busy one that must not be collected.
func containers(t testing.TB) started {
	t.Helper()
	suffix := fmt.Sprint(time.Now().UnixNano())
	return started{
		busy:       runContainer(t, "mesos-busy-"+suffix, busy, "while :; do :; done"),
		idle:       runContainer(t, "mesos-idle-"+suffix, idle, "sleep 3600"),
		unlabelled: runContainer(t, "other-busy-"+suffix, "", "while :; do :; done"),
	}
}

func target(in *influxtest.Server) Influx {
	return Influx{Host: "127.0.0.1", Port: in.Port, Username: in.User, Password: in.Password, Database: "dirac"}
}

// start runs a collector (writing, quiet unless cfg.Out is set) until the
// test ends or stop is called; logs gathers its log.
func start(t testing.TB, cfg Config) (c *Collector, logs *testproc.Buffer, stop func()) {
	logs = &testproc.Buffer{}
	cfg.Write, cfg.Quiet, cfg.Log = true, cfg.Out == nil, log.New(logs, "", 0)
	c = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, logs, stop
}

func collector(t testing.TB, in *influxtest.Server, source, host string, interval time.Duration) (*Collector, *testproc.Buffer, func()) {
	return start(t, Config{Target: source, Interval: interval, Host: host, Influx: target(in)})
}

func num(v any) float64 {
	f, _ := v.(json.Number).Float64()
	return f
}

func count(t testing.TB, in *influxtest.Server, field, measurement, where string) int {
	t.Helper()
	s := in.Query("dirac", fmt.Sprintf(`SELECT count(%q) FROM %q WHERE %s`, field, measurement, where))
	if len(s) == 0 || len(s[0].Values) == 0 {
		return 0
	}
	return int(num(s[0].Values[0][1]))
}

// waitFor polls cond until it holds or the (generous) deadline passes.
func waitFor(t testing.TB, deadline time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("after %s, still waiting for %s: %s", deadline, what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// cpuPoints are a component's cpu points: times and usage_cores.
func cpuPoints(t testing.TB, in *influxtest.Server, component, host string) ([]time.Time, []float64) {
	t.Helper()
	s := in.Query("dirac", fmt.Sprintf(`SELECT "usage_cores" FROM "cpu" WHERE dirac_component = '%s' AND host = '%s'`, component, host))
	if len(s) == 0 {
		return nil, nil
	}
	var ts []time.Time
	var vs []float64
	for _, v := range s[0].Values {
		ns, _ := v[0].(json.Number).Int64()
		ts = append(ts, time.Unix(0, ns))
		vs = append(vs, num(v[1]))
	}
	return ts, vs
}

// minCPUPoints is how many cpu points of each component a check waits for.
const minCPUPoints = 8

// checkCPU compares a component's CPU in InfluxDB with its container's
// cgroup counter over the same window. Each cpu point is the rate since the
// container's previous point, so the points after the first, each times
// its interval, add up to the CPU time the cgroup used between the first
// point and the last; the cgroup's readings bound that time from below and
// above. The margin is for the sources' timestamps, taken a little apart
// from their reading of the counter: 150 ms of one core at each end, and 3%.
func checkCPU(t *testing.T, in *influxtest.Server, component, host string, cg *cgrouptest.Watch) {
	t.Helper()
	ts, vs := cpuPoints(t, in, component, host)
	if len(ts) < minCPUPoints {
		t.Fatalf("%s: %d cpu points, want %d", component, len(ts), minCPUPoints)
	}
	var used float64 // CPU seconds, as the collector says
	for i := 1; i < len(ts); i++ {
		used += vs[i] * ts[i].Sub(ts[i-1]).Seconds()
	}
	least, most, err := cg.Between(ts[0], ts[len(ts)-1])
	if err != nil {
		t.Fatal(err)
	}
	window := ts[len(ts)-1].Sub(ts[0])
	margin := 0.3 + 0.03*most.Seconds()
	t.Logf("%s: the collector says %.3f CPU s over %s (%d points, %.2f cores); its cgroup %.3f–%.3f", component, used, window.Round(time.Millisecond), len(ts), used/window.Seconds(), least.Seconds(), most.Seconds())
	if used < least.Seconds()-margin || used > most.Seconds()+margin {
		t.Errorf("%s: the collector says %.3f CPU seconds from %s to %s; the container's cgroup used %.3f–%.3f", component, used, ts[0].Format(time.StampMilli), ts[len(ts)-1].Format(time.StampMilli), least.Seconds(), most.Seconds())
	}
}

// waitCPUPoints waits until both components have minCPUPoints cpu points.
func waitCPUPoints(t *testing.T, in *influxtest.Server, host string) {
	t.Helper()
	where := func(c string) string { return fmt.Sprintf("dirac_component = '%s' AND host = '%s'", c, host) }
	waitFor(t, 3*time.Minute, fmt.Sprintf("%d cpu points of each component from %s", minCPUPoints, host), func() (bool, string) {
		b, i := count(t, in, "usage_cores", "cpu", where(busy)), count(t, in, "usage_cores", "cpu", where(idle))
		return b >= minCPUPoints && i >= minCPUPoints, fmt.Sprintf("%d and %d", b, i)
	})
}

func checkComponents(t *testing.T, in *influxtest.Server, host string, ct started, busyCG, idleCG *cgrouptest.Watch) {
	t.Helper()
	checkCPU(t, in, busy, host, busyCG)
	checkCPU(t, in, idle, host, idleCG)
	for _, c := range []string{busy, idle} {
		s := in.Query("dirac", fmt.Sprintf(`SELECT mean("usage"), count("usage") FROM "memory" WHERE dirac_component = '%s' AND host = '%s'`, c, host))
		if len(s) == 0 || num(s[0].Values[0][1]) < 1<<16 || num(s[0].Values[0][1]) > 1<<30 {
			t.Errorf("%s: memory usage %v", c, s)
		}
	}
	// Tagged with the Marathon task's identity; nothing unlabelled.
	tags := in.Query("dirac", `SHOW TAG VALUES FROM "cpu" WITH KEY = "app_id"`)
	if len(tags) == 0 || !strings.Contains(fmt.Sprint(tags[0].Values), "/datamanagement/filecatalog") {
		t.Errorf("app_id tags %v", tags)
	}
	if n := count(t, in, "usage", "memory", fmt.Sprintf("docker_id = '%s'", ct.unlabelled)); n != 0 {
		t.Errorf("the unlabelled container was collected: %d points", n)
	}
}

// watchCgroups reads the busy and idle containers' cgroup counters.
func watchCgroups(t *testing.T, ct started) (busyCG, idleCG *cgrouptest.Watch) {
	t.Helper()
	for _, w := range []struct {
		id  string
		out **cgrouptest.Watch
	}{{ct.busy, &busyCG}, {ct.idle, &idleCG}} {
		c, err := cgrouptest.ForContainer(context.Background(), w.id)
		if err != nil {
			t.Fatal(err)
		}
		*w.out = cgrouptest.StartWatch(t, c)
	}
	return busyCG, idleCG
}

func TestCollectorFromDockerAndFromCAdvisor(t *testing.T) {
	in := influxtest.Start(t)
	in.CreateDatabase("dirac")
	ct := containers(t)
	busyCG, idleCG := watchCgroups(t, ct)
	cadv := cadvisortest.Start(t)

	// From the Docker Engine API.
	c, logs, stop := collector(t, in, "", "agent-test", time.Second)
	waitCPUPoints(t, in, "agent-test")
	stop()
	checkComponents(t, in, "agent-test", ct, busyCG, idleCG)
	st := c.Stats()
	// (Invalid is not checked: other tests on the machine may run
	// containers with odd labels.)
	if st.Written == 0 || st.Written+uint64(c.Buffer.Len()) != st.Points || st.Dropped+st.Refused != 0 {
		t.Errorf("docker source stats %+v, %d waiting", st, c.Buffer.Len())
	}
	if strings.Contains(logs.String(), in.Password) {
		t.Errorf("the password is in the log:\n%s", logs.String())
	}

	// From cAdvisor: the host tag is the target, as in the seed.
	c2, _, stop2 := collector(t, in, cadv.Addr, cadv.Addr, time.Second)
	waitCPUPoints(t, in, cadv.Addr)
	stop2()
	checkComponents(t, in, cadv.Addr, ct, busyCG, idleCG)
	if n := count(t, in, "usage", "memory", fmt.Sprintf("host = '%s' AND dirac_component = ''", cadv.Addr)); n == 0 {
		t.Error("no machine-level points from cAdvisor")
	}
	if st := c2.Stats(); st.Written == 0 {
		t.Errorf("cadvisor source stats %+v\n%s", st, cadv.Log())
	}
}

// memoryTimes are the times of the busy container's memory points in
// line protocol as the collector printed it.
func memoryTimes(t *testing.T, printed, id string) map[int64]bool {
	t.Helper()
	out := map[int64]bool{}
	dec := lineprotocol.NewDecoderWithBytes([]byte(printed))
	for dec.Next() {
		m, err := dec.Measurement()
		if err != nil {
			t.Fatal(err)
		}
		mine := false
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				t.Fatal(err)
			}
			if k == nil {
				break
			}
			mine = mine || (string(k) == "docker_id" && string(v) == id)
		}
		for k, _, err := dec.NextField(); k != nil || err != nil; k, _, err = dec.NextField() {
			if err != nil {
				t.Fatal(err)
			}
		}
		ts, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if string(m) == "memory" && mine {
			out[ts.UnixNano()] = true
		}
	}
	return out
}

// InfluxDB away for a while: the points wait and arrive afterwards, every
// one of them — the points in InfluxDB are exactly the points the
// collector printed, so no gap, whatever the machine's pace.
func TestNoGapWhileInfluxDBIsDown(t *testing.T) {
	in := influxtest.Start(t)
	in.CreateDatabase("dirac")
	ct := containers(t)
	printed := &testproc.Buffer{}
	c, logs, stop := start(t, Config{Interval: time.Second, Host: "agent-test", Influx: target(in), Out: printed})
	where := fmt.Sprintf("docker_id = '%s'", ct.busy)
	waitFor(t, 2*time.Minute, "points before the outage", func() (bool, string) {
		n := count(t, in, "usage", "memory", where)
		return n >= 2, fmt.Sprint(n)
	})
	in.Stop()
	down, r0 := time.Now(), c.Stats().Rounds
	waitFor(t, 2*time.Minute, "three rounds while InfluxDB is down", func() (bool, string) {
		r := c.Stats().Rounds
		return r >= r0+3, fmt.Sprintf("%d rounds", r-r0)
	})
	in.Restart()
	up := time.Now()
	waitFor(t, 2*time.Minute, "the buffer to drain", func() (bool, string) {
		return c.Buffer.Len() == 0 && c.Stats().Rounds > 0, fmt.Sprintf("%d points waiting", c.Buffer.Len())
	})
	stop()
	// The round stopped midway may have left points: InfluxDB is up.
	if _, err := c.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "points waiting") {
		t.Errorf("the outage was not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), in.Password) {
		t.Errorf("the password is in the log")
	}
	want := memoryTimes(t, printed.String(), ct.busy)
	s := in.Query("dirac", fmt.Sprintf(`SELECT "usage" FROM "memory" WHERE %s`, where))
	got := map[int64]bool{}
	if len(s) > 0 {
		for _, v := range s[0].Values {
			ns, _ := v[0].(json.Number).Int64()
			got[ns] = true
		}
	}
	var missing []string
	inOutage := 0
	for ns := range want {
		tm := time.Unix(0, ns)
		if tm.After(down) && tm.Before(up) {
			inOutage++
		}
		if !got[ns] {
			missing = append(missing, tm.Format("15:04:05.000"))
		}
	}
	sort.Strings(missing)
	t.Logf("%d points, %d of them taken while InfluxDB was down (%s–%s); %s", len(want), inOutage, down.Format("15:04:05.000"), up.Format("15:04:05.000"), logs.String())
	if len(missing) > 0 || len(got) != len(want) {
		t.Errorf("collected %d memory points, InfluxDB has %d; missing %v", len(want), len(got), missing)
	}
	if inOutage < 2 {
		t.Errorf("only %d points from the outage", inOutage)
	}
	if st := c.Stats(); st.Dropped+st.Refused != 0 || st.Written != st.Points {
		t.Errorf("stats %+v", st)
	}
}

// Points InfluxDB refuses — the seed's integer field meeting the
// collector's float (a field type conflict), a 70 KB tag — are dropped,
// counted and logged once each; the points beside and behind them, in the
// same batch and in the batches after it, arrive.
func TestRefusedPointsDoNotStallTheRest(t *testing.T) {
	in := influxtest.Start(t)
	in.CreateDatabase("dirac")
	w := &Writer{Target: target(in)}
	now := time.Now()
	// The seed wrote memory usage as an integer: in this shard the field
	// is an integer, and every float the collector writes conflicts.
	if err := w.Write(context.Background(), fmt.Appendf(nil, "memory,host=seed usage=1000i %d\n", now.UnixNano())); err != nil {
		t.Fatal(err)
	}
	ct := containers(t)
	// Queued before the collector's own points: a point with a 70 KB tag
	// (InfluxDB's series keys stop at 64 KiB), then a backlog larger than
	// two batches, as after an outage.
	const backlog = 12000
	lines := [][]byte{fmt.Appendf(nil, "cpu,host=seed,big=%s usage_cores=1 %d\n", strings.Repeat("x", 70<<10), now.UnixNano())}
	for i := range backlog {
		lines = append(lines, fmt.Appendf(nil, "backlog,host=seed n=%di %d\n", i, now.Add(-time.Minute+time.Duration(i)*time.Millisecond).UnixNano()))
	}
	c := New(Config{Write: true, Quiet: true, Interval: time.Second, Host: "agent-test", Influx: target(in)})
	logs := &testproc.Buffer{}
	c.cfg.Log = log.New(logs, "", 0)
	c.Buffer.Add(lines)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, 3*time.Minute, "the backlog and the collector's cpu points", func() (bool, string) {
		b, p := count(t, in, "n", "backlog", "true"), count(t, in, "usage_cores", "cpu", fmt.Sprintf("docker_id = '%s'", ct.busy))
		return b == backlog && p >= 3, fmt.Sprintf("backlog %d of %d, cpu points %d; stats %+v", b, backlog, p, c.Stats())
	})
	cancel()
	<-done
	st := c.Stats()
	t.Logf("stats %+v\n%s", st, logs.String())
	// Every point is written, waiting, or counted.
	if st.Written+st.Refused+uint64(c.Buffer.Len()) != st.Points+uint64(len(lines)) || st.Dropped+st.Invalid != 0 {
		t.Errorf("points unaccounted for: %+v, %d waiting, %d queued by the test", st, c.Buffer.Len(), len(lines))
	}
	// The 70 KB point and the collector's memory points were refused...
	if mem := count(t, in, "usage", "memory", fmt.Sprintf("docker_id = '%s'", ct.busy)); mem != 0 {
		t.Errorf("%d memory points written over the integer field", mem)
	}
	if st.Refused < 1+3 {
		t.Errorf("refused %d points", st.Refused)
	}
	// ...the collector's other points were not.
	for _, m := range []string{"tasks", "network"} {
		field := map[string]string{"tasks": "pids", "network": "rx_bytes_per_s"}[m]
		if n := count(t, in, field, m, fmt.Sprintf("docker_id = '%s'", ct.busy)); n < 3 {
			t.Errorf("%d %s points", n, m)
		}
	}
	// Each reason logged once, briefly, the 70 KB tag not quoted whole.
	l := logs.String()
	if n := strings.Count(l, "field type conflict"); n != 1 {
		t.Errorf("the field type conflict logged %d times:\n%s", n, l)
	}
	if n := strings.Count(l, "max key length exceeded"); n != 1 {
		t.Errorf("the 70 KB tag logged %d times:\n%.2000s", n, l)
	}
	if len(l) > 5000 || strings.Contains(l, in.Password) {
		t.Errorf("the log (%d bytes):\n%.3000s", len(l), l)
	}
}

// Containers whose labels line protocol cannot carry — a control
// character, a trailing backslash, 70 KB — have their points refused, each
// container named once in the log and its points counted; the honest
// container's points arrive.
func TestOddLabelsAreCountedAndLogged(t *testing.T) {
	in := influxtest.Start(t)
	in.CreateDatabase("dirac")
	suffix := fmt.Sprint(time.Now().UnixNano())
	honest := runContainer(t, "mesos-honest-"+suffix, idle, "sleep 3600")
	odd := map[string]string{
		runContainer(t, "mesos-ctl-"+suffix, "Data\x01Management/FileCatalog", "sleep 3600"): "control character",
		runContainer(t, "mesos-bs-"+suffix, `DataManagement\`, "sleep 3600"):                 "ends in a backslash",
		runContainer(t, "mesos-long-"+suffix, strings.Repeat("D", 70<<10), "sleep 3600"):     "over the 1024-byte limit",
	}
	c, logs, stop := collector(t, in, "", "agent-test", time.Second)
	waitFor(t, 3*time.Minute, "three rounds of the honest container", func() (bool, string) {
		n := count(t, in, "usage_cores", "cpu", fmt.Sprintf("docker_id = '%s'", honest))
		return n >= 3, fmt.Sprint(n)
	})
	stop()
	st := c.Stats()
	l := logs.String()
	t.Logf("stats %+v\n%.3000s", st, l)
	for id, why := range odd {
		if n := strings.Count(l, id); n != 1 {
			t.Errorf("container %.12s named %d times in the log", id, n)
		}
		if !strings.Contains(l, why) {
			t.Errorf("the log does not say %q", why)
		}
		if n := count(t, in, "usage", "memory", fmt.Sprintf("docker_id = '%s'", id)); n != 0 {
			t.Errorf("container %.12s: %d points written", id, n)
		}
	}
	// Three odd containers a round, two points each at least (memory, tasks).
	if st.Invalid < 3*2*3 || st.Written+uint64(c.Buffer.Len()) != st.Points || st.Refused != 0 {
		t.Errorf("stats %+v", st)
	}
	if len(l) > 4000 {
		t.Errorf("the log is %d bytes", len(l))
	}
}

// Credentials given in INFLUXDB_HOST (a URL with user:password@) are taken
// apart where the configuration enters: the points reach InfluxDB with
// them, and the log shows neither them nor the URL they came in.
func TestCredentialsInTheHostURL(t *testing.T) {
	in := influxtest.Start(t)
	in.CreateDatabase("dirac")
	suffix := fmt.Sprint(time.Now().UnixNano())
	runContainer(t, "mesos-cred-"+suffix, idle, "sleep 3600")
	env := map[string]string{
		"INFLUXDB_HOST":     fmt.Sprintf("http://%s:%s@127.0.0.1:%d/", in.User, in.Password, in.Port),
		"INFLUXDB_DATABASE": "dirac",
		"PARENT_HOST":       "cred-" + suffix,
	}
	var stdout, stderr strings.Builder
	code := Main(context.Background(), []string{"-i", "-q", "-once"}, func(k string) string { return env[k] }, &stdout, &stderr)
	t.Logf("exit %d:\n%s", code, stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := count(t, in, "usage", "memory", fmt.Sprintf("host = 'cred-%s'", suffix)); n == 0 {
		t.Error("no points written with the credentials of the URL")
	}
	if s := stderr.String(); strings.Contains(s, in.Password) || strings.Contains(s, in.User+":") || !strings.Contains(s, fmt.Sprintf("InfluxDB http://127.0.0.1:%d,", in.Port)) {
		t.Errorf("the log: %s", s)
	}
}
