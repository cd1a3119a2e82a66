//go:build integration

package registrator

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
)

// labelled is a file-catalog-like app (dynamic port, the pinger's check)
// with labels overriding its own.
func (w *world) labelled(id string, labels map[string]any) map[string]any {
	d := w.fileCatalog("1s")
	d["id"] = id
	d["requirePorts"] = false
	for k, v := range labels {
		d["labels"].(map[string]any)[k] = v
	}
	return d
}

// holds: etcd holds exactly Marathon's running tasks of etcdApps and of no
// other app, Consul those of consulApps.
func (w *world) holds(etcdApps, consulApps []string) func() (bool, string) {
	return func() (bool, string) {
		truth, et, ct := w.truth(), w.etcdTasks(), w.consulTasks()
		pick := func(apps []string) map[string][]string {
			out := map[string][]string{}
			for _, a := range apps {
				if len(truth[a]) == 0 {
					out[a] = []string{"(marathon runs none yet)"}
				} else {
					out[a] = truth[a]
				}
			}
			return out
		}
		we, wc := pick(etcdApps), pick(consulApps)
		ok := fmt.Sprint(we) == fmt.Sprint(et) && fmt.Sprint(wc) == fmt.Sprint(ct)
		return ok, fmt.Sprintf("want etcd %v\n got %v\nwant consul %v\n got %v", we, et, wc, ct)
	}
}

func healthz(r *Registrator) (int, string) {
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	return rec.Code, rec.Body.String()
}

func refusedTotal(r *Registrator, sink, reason string) float64 {
	return testutil.ToFloat64(r.m.refusedTotal.WithLabelValues(sink, reason))
}

// Point 2 of issue 19: one task a sink would refuse used to abort the
// whole sync — /healthz stayed 503 "no full sync yet" and honest apps went
// unwritten. Each is now refused alone (counted, logged once) and every
// other app is written: check_interval "0s" (Consul refuses it), a
// dirac_component over Consul's 512-byte meta value limit, one of 2 MiB
// (over etcd's request limit).
func TestOneRefusedTaskNeverStopsTheSync(t *testing.T) {
	w := newWorld(t)
	r, _ := w.start(time.Second) // a full sync every second: refusals must still be logged once
	w.put(w.fileCatalog("1s"))
	w.put(web(1))
	zero := w.labelled("/lhcb/zero", map[string]any{LabelCheckInterval: "0s"})
	long := w.labelled("/lhcb/long", map[string]any{LabelComponent: strings.Repeat("c", MaxLabel+1)})
	huge := w.labelled("/lhcb/huge", map[string]any{LabelComponent: strings.Repeat("h", 2<<20)})
	notes := web(1) // a 2 MiB label the registrator never reads: an honest app
	notes["id"], notes["labels"] = "/lhcb/notes", map[string]any{"notes": strings.Repeat("n", 2<<20)}
	fits := w.labelled("/lhcb/fits", map[string]any{LabelComponent: strings.Repeat("f", MaxLabel)})
	for _, d := range []map[string]any{zero, long, huge, notes, fits} {
		w.put(d)
	}
	fc, lw := "/datamanagement/filecatalog", "/lhcb/web"
	w.eventually("honest apps written; each bad one kept out of what it cannot be in",
		w.holds([]string{fc, lw, "/lhcb/zero", "/lhcb/notes", "/lhcb/fits"}, []string{fc, lw, "/lhcb/notes", "/lhcb/fits"}))
	syncs := testutil.ToFloat64(r.m.fullSyncs)
	w.eventually("three more full syncs", func() (bool, string) {
		n := testutil.ToFloat64(r.m.fullSyncs)
		return n >= syncs+3, fmt.Sprint(n)
	})
	if code, body := healthz(r); code != 200 {
		t.Errorf("/healthz %d %s", code, body)
	}
	for _, c := range []struct {
		sink, reason string
		want         float64
	}{{"consul", ReasonCheckInterval, 1}, {"etcd", ReasonBadLabel, 2}, {"consul", ReasonBadLabel, 2}, {"etcd", ReasonRefused, 0}, {"consul", ReasonRefused, 0}} {
		if got := refusedTotal(r, c.sink, c.reason); got != c.want {
			t.Errorf("registrator_entries_refused_total{sink=%q,reason=%q} = %v, want %v", c.sink, c.reason, got, c.want)
		}
	}
	logs := w.logs.String()
	for _, want := range []string{
		`app /lhcb/zero: task lhcb_zero.`, `not written to consul: label check_interval="0s": at least 1s`,
		"app /lhcb/long: task lhcb_long.", "not written to etcd: label dirac_component: 513 bytes (at most 512",
		"app /lhcb/huge: task lhcb_huge.", "label dirac_component: 2097152 bytes",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	for _, once := range []string{"app /lhcb/zero: task", "app /lhcb/long: task", "app /lhcb/huge: task"} {
		if n := strings.Count(logs, once); n != 1+boolInt(once != "app /lhcb/zero: task") {
			// zero: Consul only; long and huge: etcd and Consul, each once
			t.Errorf("%q logged %d times over the resyncs:\n%s", once, n, logs)
		}
	}
	if len(logs) > 20000 {
		t.Errorf("the 2 MiB label reached the log (%d bytes)", len(logs))
	}
	metrics := httptest.NewRecorder()
	r.Handler().ServeHTTP(metrics, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{`registrator_entries_refused_total{reason="check_interval",sink="consul"} 1`, `registrator_entries_refused{reason="bad_label",sink="etcd"} 2`} {
		if !strings.Contains(metrics.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Fixed labels: the tasks are written, and no longer counted as refused now.
	zero["labels"].(map[string]any)[LabelCheckInterval] = "2s"
	delete(huge["labels"].(map[string]any), LabelComponent)
	w.put(zero)
	w.put(huge)
	w.eventually("fixed apps written", w.holds([]string{fc, lw, "/lhcb/zero", "/lhcb/huge", "/lhcb/notes", "/lhcb/fits"},
		[]string{fc, lw, "/lhcb/zero", "/lhcb/huge", "/lhcb/notes", "/lhcb/fits"}))
	w.eventually("the refusals gauge follows", func() (bool, string) {
		n := testutil.ToFloat64(r.m.refused.WithLabelValues("etcd", ReasonBadLabel))
		c := testutil.ToFloat64(r.m.refused.WithLabelValues("consul", ReasonCheckInterval))
		return n == 1 && c == 0, fmt.Sprintf("etcd bad_label %v, consul check_interval %v", n, c)
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The etcd sink alone, against real etcd: a transaction is bounded by
// bytes as well as by operations (100 tasks of 20 KB would be a 2 MB
// transaction, and etcd refuses over 1.5 MiB: "request is too large",
// none written), and an entry too large by itself is refused while
// every other is written — also when etcd, not the sink's own bound,
// finds a transaction too large.
func TestEtcdSinkSplitsTransactionsByBytes(t *testing.T) {
	w := newWorld(t)
	want := func() []Want {
		var out []Want
		for i := range 100 {
			out = append(out, Want{Entry: entry.Entry{App: "/lhcb/big", Task: fmt.Sprintf("lhcb_big.instance-%03d._app.1", i), Host: "127.0.0.1", Component: strings.Repeat("x", 20000)}})
		}
		return append(out, Want{Entry: entry.Entry{App: "/lhcb/big", Task: "lhcb_big.instance-huge._app.1", Host: "127.0.0.1", Component: strings.Repeat("y", 2<<20)}})
	}
	for _, c := range []struct {
		name     string
		txnBytes int
		reason   string
	}{{"own bound", maxTxnBytes, ReasonTooLarge}, {"etcd's refusal", 8 << 20, ReasonRefused}} {
		t.Run(c.name, func(t *testing.T) {
			defer func(n int) { txnBytes = n }(txnBytes)
			txnBytes = c.txnBytes
			s, err := newEtcdSink([]string{w.etcd.Endpoint}, "/"+strings.ReplaceAll(c.name, " ", ""), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			refused, err := s.Apply(w.ctx, nil, true, want())
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if len(refused) != 1 || refused[0].Task != "lhcb_big.instance-huge._app.1" || refused[0].Reason != c.reason {
				t.Fatalf("refused %+v, want the huge entry alone (%s)", refused, c.reason)
			}
			resp, err := w.kv.Get(w.ctx, entry.AppKey(s.prefix, "/lhcb/big"), clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			if resp.Count != 100 {
				t.Errorf("etcd holds %d keys, want the 100 that fit", resp.Count)
			}
		})
	}
}

// The Consul sink alone, against a real agent: registrations the agent
// refuses (400: an interval of 0s, a meta value over 512 bytes) are
// refusals, and the others are registered.
func TestConsulSinkRefusesOneRegistrationAndWritesTheRest(t *testing.T) {
	w := newWorld(t)
	s, err := newConsulSink(w.agent.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	check := "http://" + w.pinger + "/ping?host=127.0.0.1&port=1&service=A/B"
	want := []Want{
		{Entry: entry.Entry{App: "/lhcb/ok", Task: "lhcb_ok.1", Host: "127.0.0.1"}, CheckHTTP: check, CheckInterval: "10s"},
		{Entry: entry.Entry{App: "/lhcb/zero", Task: "lhcb_zero.1", Host: "127.0.0.1"}, CheckHTTP: check, CheckInterval: "0s"},
		{Entry: entry.Entry{App: "/lhcb/long", Task: "lhcb_long.1", Host: "127.0.0.1", Component: strings.Repeat("c", 513)}},
	}
	refused, err := s.Apply(w.ctx, nil, true, want)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	sort.Slice(refused, func(i, j int) bool { return refused[i].Task < refused[j].Task })
	if len(refused) != 2 || refused[0].Task != "lhcb_long.1" || refused[1].Task != "lhcb_zero.1" ||
		!strings.Contains(refused[0].Detail, "Consul answered 400") || !strings.Contains(refused[0].Detail, "too long") ||
		!strings.Contains(refused[1].Detail, "Interval must be > 0") {
		t.Fatalf("refused %+v", refused)
	}
	if got := w.consulTasks(); fmt.Sprint(got) != "map[/lhcb/ok:[lhcb_ok.1]]" {
		t.Errorf("consul holds %v", got)
	}
}

// Point 3 of issue 19: check_http is a URL Consul calls from its host, so
// only the pinger's /ping (REGISTRATOR_PINGER_URL) and URLs under the
// allow-list are registered; every other is refused and counted, the
// task still in etcd. A check_interval under the floor is refused too.
func TestChecksOnlyThroughThePinger(t *testing.T) {
	w := newWorld(t)
	pinger := "http://" + w.pinger
	good := pinger + "/ping?host={host}&port={port}&service=" + w.dipsSvc
	bad := map[string]string{
		"metadata":  "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"agentself": "http://" + w.agent.Addr + "/v1/agent/self",
		"hostbuilt": "http://{host}.attacker.example:8500/v1/agent/self",
		"hostport":  "http://{host}:8500/v1/agent/self",
		"userinfo":  "http://user:pw@" + w.pinger + "/ping?host={host}&port={port}",
		"userat":    "http://" + w.pinger + "@169.254.169.254/ping",
		"https":     "https://" + w.pinger + "/ping?host={host}&port={port}",
		"ftp":       "ftp://" + w.pinger + "/ping",
		"dotdot":    pinger + "/ping/../../v1/agent/self",
		"encoded":   pinger + "/ping/%2e%2e/%2e%2e/v1/agent/self",
		"encslash":  pinger + "/ping%2f..%2f..%2fv1%2fagent%2fself",
		"backslash": pinger + `/ping\..\v1\agent\self`,
		"sibling":   pinger + "/pinger?host={host}",
		"below":     pinger + "/ping/more?host={host}",
		"otherport": "http://127.0.0.1:1/ping?host={host}",
	}
	cfg := Config{Resync: time.Hour, Checks: CheckPolicy{Pinger: pinger, Allow: []string{"http://{host}:{port}/status"}}}
	r, _ := w.startWith(cfg)
	etcdApps := []string{"/lhcb/good", "/lhcb/allowed", "/lhcb/fast"}
	consulApps := []string{"/lhcb/good", "/lhcb/allowed"}
	w.put(w.labelled("/lhcb/good", map[string]any{LabelCheckHTTP: good}))
	w.put(w.labelled("/lhcb/allowed", map[string]any{LabelCheckHTTP: "http://{host}:{port}/status/dirac"}))
	w.put(w.labelled("/lhcb/fast", map[string]any{LabelCheckHTTP: good, LabelCheckInterval: "1ms"}))
	for name, u := range bad {
		w.put(w.labelled("/lhcb/"+name, map[string]any{LabelCheckHTTP: u}))
		etcdApps = append(etcdApps, "/lhcb/"+name)
	}
	w.eventually("etcd holds every task; Consul the pinger's and the allowed checks only", w.holds(etcdApps, consulApps))
	// A sync notes its refusals once every sink is written: etcd and
	// Consul hold the truth a moment before the last app's are counted
	// (a long moment on a loaded machine).
	w.eventually("every refusal counted", func() (bool, string) {
		n, b, i := refusedTotal(r, "consul", ReasonCheckNotAllowed), refusedTotal(r, "consul", ReasonBadCheck), refusedTotal(r, "consul", ReasonCheckInterval)
		return n >= float64(len(bad)-1) && b >= 1 && i >= 1, fmt.Sprintf("%v not allowed, %v no http(s) URL, %v intervals", n, b, i)
	})
	if n, b := refusedTotal(r, "consul", ReasonCheckNotAllowed), refusedTotal(r, "consul", ReasonBadCheck); n != float64(len(bad)-1) || b != 1 {
		t.Errorf("%v checks refused as not allowed and %v as no http(s) URL (ftp), want %d and 1", n, b, len(bad)-1)
	}
	if n := refusedTotal(r, "consul", ReasonCheckInterval); n != 1 {
		t.Errorf("%v intervals refused, want 1", n)
	}
	checks, err := w.cat.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if svc := c.ServiceName; svc != "lhcb-good" && svc != "lhcb-allowed" {
			t.Errorf("Consul runs check %s of %s", c.CheckID, svc)
		}
	}
	w.eventually("the refusals logged", w.logged("app /lhcb/metadata: task", `label check_http="http://169.254.169.254/latest/meta-data/iam/security-credentials/": not the pinger's /ping (REGISTRATOR_PINGER_URL) nor under REGISTRATOR_CHECK_ALLOW`,
		`label check_interval="1ms": at least 1s`))
}

// logged holds once the registrator's log has every one of wants (a
// refusal is logged just after it is counted, by the writer).
func (w *world) logged(wants ...string) func() (bool, string) {
	return func() (bool, string) {
		for _, want := range wants {
			if !strings.Contains(w.logs.String(), want) {
				return false, fmt.Sprintf("the log lacks %q", want)
			}
		}
		return true, ""
	}
}
