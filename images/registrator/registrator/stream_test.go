//go:build integration

package registrator

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Point 7 of issue 19: an event for /foo made the registrator rewrite the
// keys under …/apps/foo/ — those of /foo/bar and /foo/baz too, deleted as
// not /foo's. And a task id with '/' ("x/<task>") wrote its entry where a
// task of /lhcb/a/x lives. Scopes are whole segments; such ids are refused.
func TestEventScopesMatchWholeSegments(t *testing.T) {
	w := newWorld(t)
	f := w.front(nil)
	f.injectEvents() // the registrator sees only the events the test sends
	for id, n := range map[string]int{"/foo/bar": 2, "/foo/baz": 1, "/lhcb/a/x": 1, "/lhcb/a": 1} {
		d := web(n)
		d["id"] = id
		w.put(d)
	}
	victim := w.truth()["/lhcb/a/x"][0]
	f.setRewrite(func(a map[string]any) {
		if a["id"] == "/lhcb/a" {
			for _, t := range a["tasks"].([]any) {
				t.(map[string]any)["id"] = "x/" + victim // no Marathon makes this id
			}
		}
	})
	r, _ := w.startWith(Config{Marathon: f.client, Resync: time.Hour})
	all := []string{"/foo/bar", "/foo/baz", "/lhcb/a/x"}
	w.eventually("written, /lhcb/a's task refused", w.holds(all, all))
	// The refusal is counted once every sink is written, a moment after
	// etcd and Consul hold the rest.
	w.eventually("the refusal counted", func() (bool, string) {
		n := refusedTotal(r, "etcd", ReasonBadID)
		return n >= 1, fmt.Sprint(n)
	})
	if n := refusedTotal(r, "etcd", ReasonBadID); n != 1 {
		t.Errorf("%v refused for their id, want 1", n)
	}
	check := func(after string) {
		t.Helper()
		for _, e := range w.etcdEntries()["/lhcb/a/x"] {
			if e.App != "/lhcb/a/x" || e.Task != victim {
				t.Errorf("after %s: /lhcb/a/x's key holds %+v", after, e)
			}
		}
		if ok, state := w.holds(all, all)(); !ok {
			t.Errorf("after %s:\n%s", after, state)
		}
	}
	check("the first sync")
	for i, id := range []string{"/foo", "/lhcb/a", "/foo/ba", "/lhcb"} {
		f.send(t, "status_update_event", id)
		w.eventually("the event's app read and written", func() (bool, string) {
			n := testutil.ToFloat64(r.m.appSyncs)
			return n >= float64(i+1) && f.count("GET /v2/apps"+id+"?embed=app.tasks") == 1, fmt.Sprintf("%v app syncs", n)
		})
		check("an event for " + id)
	}
}

// Point 8 of issue 19: a stream that Marathon (or a proxy) opens and
// closes at once was reconnected every 0.5 s, each time with a full read:
// 20 of each in 10 s. The backoff now grows (with jitter) unless the
// stream stayed attached.
func TestStreamThatClosesAtOnceBacksOff(t *testing.T) {
	w := newWorld(t)
	w.put(web(1))
	f := w.front(nil)
	f.setEvents(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/event-stream")
		rw.WriteHeader(200)
		fmt.Fprintf(rw, "event: event_stream_attached\ndata: {}\n\n")
	})
	start := time.Now()
	r, stop := w.startWith(Config{Marathon: f.client, Resync: time.Hour})
	w.eventually("written", w.holds([]string{"/lhcb/web"}, []string{"/lhcb/web"}))
	time.Sleep(6*time.Second - time.Since(start))
	stop(false)
	window := time.Since(start)
	streams, reads := f.count("GET /v2/events"), f.count("GET /v2/apps?embed=apps.tasks")
	t.Logf("in %s: %d streams opened, %d full reads, %v reconnects counted", window.Round(time.Millisecond), streams, reads, testutil.ToFloat64(r.m.reconnects))
	// Waits of at least 0.25, 0.5, 1, 2 and 4 s (each drawn in the upper
	// half of 0.5 s doubling): at most 5 streams in 6 s, where a fixed
	// 0.5 s made 12. A slower machine only opens fewer.
	if limit := 5 + int((window-6*time.Second)/(4*time.Second)); streams > limit || streams < 2 {
		t.Errorf("%d streams opened in %s, want 2 to %d", streams, window, limit)
	}
	if reads > streams+1 {
		t.Errorf("%d full reads for %d streams", reads, streams)
	}
}

// Point 8 of issue 19: with GET /v2/events hanging (no answer at all),
// nothing was written until the 5-minute resync. Every app is read at
// start, as the docs say, stream or not.
func TestHangingEventStreamDoesNotDelayTheFirstWrite(t *testing.T) {
	w := newWorld(t)
	w.put(web(2))
	w.put(w.fileCatalog("1s"))
	f := w.front(nil)
	f.setEvents(func(rw http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	r, _ := w.startWith(Config{Marathon: f.client, Resync: time.Hour})
	both := []string{"/datamanagement/filecatalog", "/lhcb/web"}
	took := w.eventually("written without a stream", w.holds(both, both))
	t.Logf("written %s after the start, the stream still hanging", took.Round(time.Millisecond))
	// The full sync is recorded once every sink is written: a moment after
	// etcd and Consul hold the apps.
	w.eventually("/healthz: synced, the stream not attached", func() (bool, string) {
		code, body := healthz(r)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "the event stream is not attached") && !strings.Contains(body, "no full sync yet"), fmt.Sprintf("/healthz %d %q", code, body)
	})
}

// Point 8 of issue 19: what Marathon (or a proxy before it) answers went
// into errors whole, and errors into the unauthenticated /healthz: an
// echoed Authorization header, a 1 MB error page. They are scrubbed of
// credentials and bounded where they are kept.
func TestMarathonErrorsAreScrubbedAndBounded(t *testing.T) {
	w := newWorld(t)
	w.srv.User, w.srv.Password = "lhcb-registrator", "s3cr3t-Pa55"
	env := map[string]string{"MARATHON_USER": w.srv.User, "MARATHON_PASSWORD": w.srv.Password}
	basic := base64.StdEncoding.EncodeToString([]byte(w.srv.User + ":" + w.srv.Password))
	f := w.front(func(k string) string { return env[k] })
	f.setApps(func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(rw, "<html><pre>upstream failed\nGET %s\nAuthorization: %s\npassword=%s\n%s\n</pre></html>", r.URL, r.Header.Get("Authorization"), w.srv.Password, strings.Repeat("x", 1<<20))
	})
	f.setEvents(func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(rw, `{"message":"refused %s for user %s (Basic %s)"}`, r.Header.Get("Authorization"), w.srv.User, basic)
	})
	env["MARATHON_URL"], env["ETCD_ENDPOINTS"], env["CONSUL_HTTP_ADDR"] = f.srv.URL, w.etcd.Endpoint, w.agent.Addr
	cfg, _, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Resync = time.Hour
	r, _ := w.startWith(cfg)
	w.eventually("both failures logged", func() (bool, string) {
		l := w.logs.String()
		return strings.Contains(l, "event stream: GET /v2/events: Marathon answered 401") && strings.Contains(l, "marathon: reading the apps: GET /v2/apps?embed=apps.tasks: Marathon answered 502"), l
	})
	_, body := healthz(r)
	for what, text := range map[string]string{"/healthz": body, "the log": w.logs.String()} {
		for _, secret := range []string{w.srv.Password, basic} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds %q:\n%s", what, secret, text)
			}
		}
	}
	if len(body) > 1500 || strings.Count(body, "\n") > 1 {
		t.Errorf("/healthz is %d bytes, %d lines:\n%s", len(body), strings.Count(body, "\n"), body)
	}
	for _, line := range strings.Split(w.logs.String(), "\n") {
		if len(line) > maxMessage+200 {
			t.Errorf("a log line of %d bytes", len(line))
		}
	}
	if !strings.Contains(w.logs.String(), "Authorization: ****") {
		t.Errorf("log:\n%s", w.logs.String())
	}
}

// Point 8 of issue 19: a GET /v2/apps answer over 32 MiB was cut and
// decoded into "unexpected EOF". It is an error saying the limit, which
// REGISTRATOR_MARATHON_MAX_MIB raises.
func TestAppsAnswerOverTheLimitSaysSo(t *testing.T) {
	w := newWorld(t)
	pad := strings.Repeat("p", 33<<20)
	f := w.front(nil)
	f.setApps(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, `{"apps":[],"padding":"%s"}`, pad)
	})
	for _, c := range []struct {
		maxMiB string
		want   string
	}{{"", "GET /v2/apps?embed=apps.tasks: Marathon's answer is larger than 32 MiB (the client's limit)"}, {"64", ""}} {
		env := map[string]string{"MARATHON_URL": f.srv.URL, "ETCD_ENDPOINTS": w.etcd.Endpoint, EnvMaxAnswer: c.maxMiB}
		cfg, _, err := ConfigFromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		cfg.Resync, cfg.ConsulAddr = time.Hour, w.agent.Addr
		r, stop := w.startWith(cfg)
		w.eventually("a full sync tried", func() (bool, string) {
			if c.want == "" {
				return testutil.ToFloat64(r.m.fullSyncs) >= 1, "no full sync"
			}
			return strings.Contains(w.logs.String(), c.want), w.logs.String()
		})
		if strings.Contains(w.logs.String(), "unexpected EOF") {
			t.Errorf("log:\n%s", w.logs.String())
		}
		stop(false)
	}
}
