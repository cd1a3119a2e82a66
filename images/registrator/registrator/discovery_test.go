//go:build integration

package registrator

import (
	"context"
	"fmt"
	"io"
	"log"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/server"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/consultest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/etcdtest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
)

// These tests run the registrator against real etcd (Debian's) and a real
// Consul agent (built from its module); Marathon is the stand-in
// marathon/marathontest, which emits Marathon's events for tasks
// starting, scaling, failing and stopping. Consul runs each HTTP check
// through the real pinger against a DIPS server the test starts.

type world struct {
	t       testing.TB
	ctx     context.Context
	srv     *marathontest.Server
	mc      *client.Client
	etcd    *etcdtest.Etcd
	agent   *consultest.Agent
	kv      *clientv3.Client
	cat     *consul.Client
	dips    *dipstest.Server
	pinger  string // host:port
	logs    *testproc.Buffer
	dipsSvc string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &world{t: t, ctx: ctx, logs: &testproc.Buffer{}, dipsSvc: "DataManagement/FileCatalog"}
	w.etcd = etcdtest.Start(t)
	w.agent = consultest.Start(t)
	var err error
	if w.kv, err = clientv3.New(clientv3.Config{Endpoints: []string{w.etcd.Endpoint}, DialTimeout: 5 * time.Second, Logger: quietZap()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.kv.Close() })
	cfg := consul.DefaultConfig()
	cfg.Address = w.agent.Addr
	if w.cat, err = consul.NewClient(cfg); err != nil {
		t.Fatal(err)
	}

	// A DIRAC service stand-in answering DIPS pings, and the real pinger.
	dir := t.TempDir()
	pki, err := dipstest.NewPKI(filepath.Join(dir, "grid-security"), "Test CA")
	if err != nil {
		t.Fatal(err)
	}
	host, err := pki.Host("host", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if w.dips, err = dipstest.Start(dipstest.Options{HostCert: host.CertFile, HostKey: host.KeyFile, CADir: pki.CADir(), Services: []string{w.dipsSvc}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.dips.Close() })
	ready := make(chan string, 1)
	go server.Main(ctx, []string{"-listen", "127.0.0.1:0", "-allow", "127.0.0.1:1-65535", "-cert", host.CertFile, "-key", host.KeyFile, "-ca-dir", pki.CADir(), "-timeout", "2s"},
		func(string) string { return "" }, io.Discard, ready)
	w.pinger = <-ready

	w.srv = marathontest.New()
	w.srv.Hosts = []string{"127.0.0.1"}
	t.Cleanup(w.srv.Close)
	if w.mc, err = client.New(client.Config{URLs: w.srv.URL}); err != nil {
		t.Fatal(err)
	}
	return w
}

// start runs a registrator until the returned stop is called (stop
// revokes nothing when kill is true: the process died).
func (w *world) start(resync time.Duration) (r *Registrator, stop func(kill bool)) {
	w.t.Helper()
	return w.startWith(Config{Resync: resync})
}

// startWith runs a registrator with cfg, the world's Marathon, etcd,
// Consul and pinger filling what cfg leaves empty (a check interval floor
// of 1 s, so checks pass or fail quickly).
func (w *world) startWith(cfg Config) (r *Registrator, stop func(kill bool)) {
	w.t.Helper()
	if cfg.Marathon == nil {
		cfg.Marathon = w.mc
	}
	if cfg.EtcdEndpoints == nil {
		cfg.EtcdEndpoints = []string{w.etcd.Endpoint}
	}
	if cfg.ConsulAddr == "" {
		cfg.ConsulAddr = w.agent.Addr
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = log.New(w.logs, "", 0)
	}
	if cfg.Checks.Pinger == "" {
		cfg.Checks.Pinger = "http://" + w.pinger
	}
	if cfg.Checks.MinInterval == 0 {
		cfg.Checks.MinInterval = time.Second
	}
	r, err := New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	var once sync.Once
	stop = func(kill bool) {
		once.Do(func() {
			cancel()
			<-done
			if kill {
				r.etcd.cli.Close() // no revoke: the lease runs out on its own
			} else {
				r.Close()
			}
		})
	}
	w.t.Cleanup(func() { stop(false) })
	return r, stop
}

// fileCatalog is a DIRAC service app on host networking whose one port is
// the DIPS server's, with LHCb's Consul labels.
func (w *world) fileCatalog(interval string) map[string]any {
	return map[string]any{
		"id": "/datamanagement/filecatalog", "instances": 1, "cpus": 0.1, "mem": 64,
		"container":    map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "lhcbdirac:v1"}},
		"networks":     []any{map[string]any{"mode": "host"}},
		"requirePorts": true, "portDefinitions": []any{map[string]any{"port": w.dips.Port(), "name": "dips", "protocol": "tcp"}},
		"labels": map[string]any{
			LabelComponent:     w.dipsSvc,
			LabelCheckHTTP:     "http://" + w.pinger + "/ping?host={host}&port={port}&service=" + w.dipsSvc,
			LabelCheckInterval: interval,
		},
	}
}

// web is an app on bridge networking with two named, dynamic ports.
func web(n int) map[string]any {
	return map[string]any{
		"id": "/lhcb/web", "instances": n, "cpus": 0.1, "mem": 64,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "web:v1"},
			"portMappings": []any{map[string]any{"containerPort": 8080, "hostPort": 0, "name": "http"}, map[string]any{"containerPort": 9090, "hostPort": 0, "name": "metrics"}}},
		"networks": []any{map[string]any{"mode": "container/bridge"}},
	}
}

func (w *world) put(def map[string]any) {
	w.t.Helper()
	if _, err := w.mc.PutApp(w.ctx, def["id"].(string), def, client.PutOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.settle()
}

// settle waits for Marathon's deployments to finish (a scale meanwhile
// would meet a 409).
func (w *world) settle() {
	w.t.Helper()
	w.eventually("deployments finish", func() (bool, string) {
		deps, err := w.mc.Marathon().Deployments()
		if err != nil {
			w.t.Fatal(err)
		}
		return len(deps) == 0, fmt.Sprintf("%d deployments", len(deps))
	})
}

func (w *world) remove(id string) {
	w.t.Helper()
	if _, err := w.mc.Marathon().DeleteApplication(id, false); err != nil {
		w.t.Fatal(err)
	}
	w.settle()
}

// truth is what Marathon runs: app → sorted running task ids.
func (w *world) truth() map[string][]string {
	apps, err := listApps(w.ctx, w.mc)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, a := range apps {
		for _, x := range a.wants(&checkRules{}) {
			out[a.ID] = append(out[a.ID], x.Task)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func (w *world) etcdEntries() map[string][]entry.Entry {
	resp, err := w.kv.Get(w.ctx, entry.AppsKey(entry.DefaultPrefix), clientv3.WithPrefix())
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string][]entry.Entry{}
	for _, kv := range resp.Kvs {
		e, err := entry.Decode(string(kv.Key), kv.Value)
		if err != nil {
			w.t.Fatal(err)
		}
		if string(kv.Key) != entry.Key(entry.DefaultPrefix, e.App, e.Task) {
			w.t.Errorf("entry of %s under %s", e.Task, kv.Key)
		}
		out[e.App] = append(out[e.App], e)
	}
	return out
}

func (w *world) etcdTasks() map[string][]string {
	out := map[string][]string{}
	for app, es := range w.etcdEntries() {
		for _, e := range es {
			out[app] = append(out[app], e.Task)
		}
		sort.Strings(out[app])
	}
	return out
}

func (w *world) consulTasks() map[string][]string {
	svcs, err := w.cat.Agent().ServicesWithFilter(fmt.Sprintf("Meta.%s == %q", metaOwner, ownerValue))
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string][]string{}
	for id, s := range svcs {
		out[s.Meta[metaApp]] = append(out[s.Meta[metaApp]], id)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// eventually polls cond until it holds or 30 s pass.
func (w *world) eventually(what string, cond func() (bool, string)) time.Duration {
	w.t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < 30*time.Second {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	w.t.Fatalf("%s: not within 30s; last state: %s\nregistrator log:\n%s", what, last, w.logs.String())
	return 0
}

// converged: Marathon runs want (app → running tasks) and etcd and Consul
// hold exactly those tasks (Consul only those of consulApps).
func (w *world) converged(want map[string]int, consulApps ...string) func() (bool, string) {
	return func() (bool, string) {
		truth, et, ct := w.truth(), w.etcdTasks(), w.consulTasks()
		for app, n := range want {
			if len(truth[app]) != n {
				return false, fmt.Sprintf("marathon runs %d tasks of %s, not yet %d", len(truth[app]), app, n)
			}
		}
		if len(truth) != len(want) {
			return false, fmt.Sprintf("marathon runs %v, want %v", truth, want)
		}
		wantConsul := map[string][]string{}
		for _, a := range consulApps {
			if v, ok := truth[a]; ok {
				wantConsul[a] = v
			}
		}
		ok := fmt.Sprint(truth) == fmt.Sprint(et) && fmt.Sprint(wantConsul) == fmt.Sprint(ct)
		return ok, fmt.Sprintf("marathon %v\netcd %v\nconsul %v", truth, et, ct)
	}
}

func (w *world) checkStatus(task string) string {
	checks, _, err := w.cat.Health().Checks(ServiceName("/datamanagement/filecatalog"), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, c := range checks {
		if c.ServiceID == task {
			return c.Status
		}
	}
	return "absent"
}

func TestRegistratorKeepsEtcdAndConsulInStepWithMarathon(t *testing.T) {
	w := newWorld(t)
	w.start(time.Minute)
	w.put(w.fileCatalog("1s"))
	w.put(web(2))
	both := []string{"/datamanagement/filecatalog", "/lhcb/web"}
	took := w.eventually("two apps registered", w.converged(map[string]int{both[0]: 1, both[1]: 2}, both...))
	t.Logf("2 apps, 3 tasks: in etcd and Consul %s after the PUTs", took.Round(time.Millisecond))

	// The entries say where each task is.
	fc := w.etcdEntries()["/datamanagement/filecatalog"]
	if len(fc) != 1 || fc[0].Host != "127.0.0.1" || fc[0].Component != w.dipsSvc {
		t.Fatalf("file catalog entry %+v", fc)
	}
	if p, ok := fc[0].Port("dips"); !ok || p.Host != w.dips.Port() {
		t.Errorf("dips port %+v, want %d", fc[0].Ports, w.dips.Port())
	}
	for _, e := range w.etcdEntries()["/lhcb/web"] {
		h, _ := e.Port("http")
		m, _ := e.Port("metrics")
		if h.Container != 8080 || m.Container != 9090 || h.Host < 31000 || m.Host <= h.Host {
			t.Errorf("web ports %+v", e.Ports)
		}
	}
	// Each key is bound to a lease: a dead registrator's entries expire.
	resp, err := w.kv.Get(w.ctx, entry.AppsKey(entry.DefaultPrefix), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if kv.Lease == 0 {
			t.Errorf("%s has no lease", kv.Key)
		}
	}

	// Consul runs the labels' check through the pinger against the DIPS
	// server: passing while it answers.
	task := fc[0].Task
	svc, _, err := w.cat.Agent().Service(task, nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Address != "127.0.0.1" || svc.Port != w.dips.Port() || svc.Service != "datamanagement-filecatalog" {
		t.Errorf("consul service %+v", svc)
	}
	took = w.eventually("the check passes", func() (bool, string) { s := w.checkStatus(task); return s == consul.HealthPassing, s })
	t.Logf("Consul check passing %s later; the DIPS server answered %d pings", took.Round(time.Millisecond), w.dips.Calls())
	if w.dips.Calls() == 0 {
		t.Error("the check never reached the DIPS server")
	}

	// Scaling up and down, a crashed task and its replacement.
	scale := func(n int) {
		if _, err := w.mc.Marathon().ScaleApplicationInstances("/lhcb/web", n, false); err != nil {
			t.Fatal(err)
		}
		w.settle()
	}
	scale(4)
	w.eventually("scaled to 4", w.converged(map[string]int{both[0]: 1, both[1]: 4}, both...))
	failed := w.srv.FailTask("/lhcb/web")
	if failed == "" {
		t.Fatal("no task to fail")
	}
	w.eventually("the failed task replaced", func() (bool, string) {
		ok, s := w.converged(map[string]int{both[0]: 1, both[1]: 4}, both...)()
		for _, id := range w.etcdTasks()["/lhcb/web"] {
			ok = ok && id != failed
		}
		return ok, s
	})
	scale(1)
	w.eventually("scaled to 1", w.converged(map[string]int{both[0]: 1, both[1]: 1}, both...))

	// The service stops answering: the check turns critical.
	calls := w.dips.Calls()
	w.eventually("the check keeps passing", func() (bool, string) {
		s := w.checkStatus(task)
		return s == consul.HealthPassing && w.dips.Calls() >= calls+2, fmt.Sprintf("%s after %d pings", s, w.dips.Calls())
	})
	w.dips.Close()
	took = w.eventually("the check turns critical", func() (bool, string) { s := w.checkStatus(task); return s == consul.HealthCritical, s })
	t.Logf("Consul check critical %s after the DIPS server stopped", took.Round(time.Millisecond))

	// Apps that go take their entries with them.
	w.remove("/datamanagement/filecatalog")
	w.remove("/lhcb/web")
	w.eventually("every entry gone", func() (bool, string) {
		et, ct := w.etcdTasks(), w.consulTasks()
		return len(et) == 0 && len(ct) == 0, fmt.Sprintf("etcd %v consul %v", et, ct)
	})
}

// Bad input gives a log line naming the app and never a wrong entry: an
// app whose check needs a port it lacks, a check_http that is no URL.
func TestRegistratorLogsBadAppsAndRegistersNoWrongEntry(t *testing.T) {
	w := newWorld(t)
	w.start(time.Minute)
	noPorts := w.fileCatalog("1s")
	noPorts["id"] = "/lhcb/noports"
	noPorts["portDefinitions"] = []any{}
	badURL := w.fileCatalog("1s")
	badURL["id"] = "/lhcb/badurl"
	badURL["requirePorts"] = false
	badURL["labels"].(map[string]any)[LabelCheckHTTP] = "pinger:1234/ping?host={host}"
	badInterval := w.fileCatalog("often")
	badInterval["id"] = "/lhcb/badinterval"
	badInterval["requirePorts"] = false
	for _, d := range []map[string]any{noPorts, badURL, badInterval, web(1)} {
		w.put(d)
	}
	w.eventually("etcd holds every task; Consul only the well-labelled",
		w.converged(map[string]int{"/lhcb/noports": 1, "/lhcb/badurl": 1, "/lhcb/badinterval": 1, "/lhcb/web": 1}, "/lhcb/web"))
	// Refusals are logged once every sink is written: a moment after etcd
	// and Consul hold the rest.
	w.eventually("each bad app logged, named", w.logged(
		"app /lhcb/noports: task lhcb_noports.", "label check_http uses {port} but the task has no port",
		"app /lhcb/badurl: task", `label check_http="pinger:1234/ping?host={host}": not an http(s) URL`,
		"app /lhcb/badinterval: task", `label check_interval="often"`,
	))
}

// Killed mid-stream (its lease left to run out), apps changed meanwhile,
// started again: etcd and Consul converge to the truth. A dropped event
// stream is followed by a full resync too.
//
// The killed registrator's lease outlives the wait for convergence, so its
// stale keys are gone because the new registrator deleted them, not because
// the lease ran out while the test waited.
func TestRegistratorConvergesAfterARestartAndALostStream(t *testing.T) {
	w := newWorld(t)
	_, stop := w.startWith(Config{Resync: time.Hour, LeaseTTL: 2 * time.Minute}) // no periodic resync: only reconnects resync
	w.put(w.fileCatalog("2s"))
	w.put(web(3))
	w.eventually("registered", w.converged(map[string]int{"/datamanagement/filecatalog": 1, "/lhcb/web": 3}, "/datamanagement/filecatalog", "/lhcb/web"))

	stop(true)
	w.remove("/datamanagement/filecatalog")
	if _, err := w.mc.Marathon().ScaleApplicationInstances("/lhcb/web", 1, false); err != nil {
		t.Fatal(err)
	}
	w.settle()
	other := web(2)
	other["id"] = "/lhcb/other"
	w.put(other) // put and remove wait for Marathon's deployments: the changes are made while nobody listens
	if stale := w.etcdTasks()["/datamanagement/filecatalog"]; len(stale) != 1 {
		t.Fatalf("the killed registrator's entry of the removed app should still be in etcd: %v", stale)
	}
	w.start(time.Hour)
	took := w.eventually("converged after the restart", w.converged(map[string]int{"/lhcb/web": 1, "/lhcb/other": 2}, "/lhcb/web", "/lhcb/other"))
	t.Logf("converged %s after the restart", took.Round(time.Millisecond))

	// The stream drops; a change made meanwhile is found by the resync
	// that follows the reconnect.
	w.srv.DropEventStreams()
	w.remove("/lhcb/other")
	w.eventually("converged after the stream dropped", w.converged(map[string]int{"/lhcb/web": 1}, "/lhcb/web"))
}

// etcd down past the lease's TTL (every key gone with the lease) and the
// Consul agent restarted empty: the registrator logs, retries, and writes
// everything again once they are back.
func TestRegistratorRetriesWhileEtcdOrConsulIsDown(t *testing.T) {
	defer func(d time.Duration) { SinkTimeout = d }(SinkTimeout)
	SinkTimeout = 2 * time.Second
	w := newWorld(t)
	w.start(time.Hour)
	w.put(web(2))
	w.eventually("registered", w.converged(map[string]int{"/lhcb/web": 2}, "/lhcb/web"))

	w.etcd.Stop()
	if _, err := w.mc.Marathon().ScaleApplicationInstances("/lhcb/web", 3, false); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.eventually("the failure logged", func() (bool, string) {
		return strings.Contains(w.logs.String(), "etcd: "), w.logs.String()
	})
	// Down past the 5 s lease: the registrator gives it up (its keep-alive
	// ends), and must write every entry again under a new one.
	w.eventually("the lease given up", func() (bool, string) {
		return strings.Contains(w.logs.String(), "etcd: the lease expired"), w.logs.String()
	})
	w.etcd.Restart()
	took := w.eventually("etcd written again", w.converged(map[string]int{"/lhcb/web": 3}, "/lhcb/web"))
	t.Logf("etcd back: converged %s later", took.Round(time.Millisecond))

	w.agent.Stop()
	w.srv.FailTask("/lhcb/web")
	w.eventually("the failure logged", func() (bool, string) {
		return strings.Contains(w.logs.String(), "consul: "), w.logs.String()
	})
	w.agent.Restart()
	took = w.eventually("Consul written again", w.converged(map[string]int{"/lhcb/web": 3}, "/lhcb/web"))
	t.Logf("Consul back (empty): converged %s later", took.Round(time.Millisecond))
}
