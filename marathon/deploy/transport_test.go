package deploy

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
)

// The network between the deploy and Marathon fails as it does during a
// leader election or a proxy restart: the Marathon stand-in
// (marathontest, Marathon cannot be installed here) sits behind a proxy on
// loopback that refuses, resets, closes, loses answers or hangs when the
// test says.

func setupProxied(t testing.TB) (*marathontest.Server, *marathontest.Proxy, *client.Client, Options, *syncBuf) {
	t.Helper()
	srv := marathontest.New()
	t.Cleanup(srv.Close)
	p, err := marathontest.NewProxy(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	c := newClient(t, p.URL, client.Config{})
	log := &syncBuf{}
	return srv, p, c, Options{Timeout: 20 * time.Second, Settle: 100 * time.Millisecond, Poll: 15 * time.Millisecond, Log: log}, log
}

// afterRequest runs f once the stand-in has answered a request starting
// with prefix ("PUT /v2/apps"), in the background.
func afterRequest(t testing.TB, srv *marathontest.Server, prefix string, f func()) {
	go func() {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if countRequests(srv, prefix) > 0 {
				f()
				return
			}
		}
	}()
}

// Refused, reset and closed connections while a deploy waits for its
// deployment are retried with backoff, and the deploy succeeds: they are
// what a leader election or a restarting proxy looks like.
func TestTransportFailuresMidDeployAreRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault marathontest.Fault
		shows string
	}{
		{"refused", marathontest.Refuse, "connection refused"},
		{"reset", marathontest.Reset, "reset"},
		{"closed", marathontest.Close, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, p, c, o, log := setupProxied(t)
			srv.Behaviour = func(map[string]any) marathontest.Outcome {
				return marathontest.Outcome{Healthy: true, Delay: time.Second}
			}
			// The fault begins once the PUT is answered and lasts until the
			// deploy has met it twice (two retries, the backoff growing),
			// however long that takes on this machine.
			afterRequest(t, srv, "PUT /v2/apps", func() {
				p.Set(tc.fault)
				for deadline := time.Now().Add(30 * time.Second); strings.Count(log.String(), "retrying in") < 2 && time.Now().Before(deadline); {
					time.Sleep(5 * time.Millisecond)
				}
				p.Set(marathontest.Pass)
			})
			res, err := Apply(context.Background(), c, renderApps(t, "v9.1", nil)[:1], o)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			if res[0].RolledBack || !strings.Contains(log.String(), "retrying in") || !strings.Contains(log.String(), tc.shows) {
				t.Fatalf("the %s connections were not retried: %+v\n%s", tc.name, res[0], log.String())
			}
		})
	}
}

// A scale meets the same failures, on its PUT and while it waits.
func TestTransportFailuresDuringAScaleAreRetried(t *testing.T) {
	srv, p, c, o, log := setupProxied(t)
	ctx := context.Background()
	apps := renderApps(t, "v9.1", nil)[:1]
	if _, err := Apply(ctx, c, apps, o); err != nil {
		t.Fatal(err)
	}
	// The first two scale PUTs are reset; the two requests that follow the
	// third (the scale waiting for its deployment) are closed unanswered.
	var puts, after atomic.Int32
	p.Decide(func(r *http.Request) marathontest.Fault {
		if r.Method == http.MethodPut {
			if puts.Add(1) <= 2 {
				return marathontest.Reset
			}
			return marathontest.Pass
		}
		if puts.Load() > 2 && after.Add(1) <= 2 {
			return marathontest.Close
		}
		return marathontest.Pass
	})
	res, err := Scale(ctx, c, apps[0].ID, 3, o)
	if err != nil || res.RolledBack {
		t.Fatalf("%+v %v\n%s", res, err, log.String())
	}
	if p.Met(marathontest.Reset) != 2 || p.Met(marathontest.Close) != 2 || srv.Definition(apps[0].ID).Instances != 3 {
		t.Fatalf("%d resets, %d closed, %v instances\n%s", p.Met(marathontest.Reset), p.Met(marathontest.Close), srv.Definition(apps[0].ID).Instances, log.String())
	}
}

// Marathon acts on the PUT but its answer is lost: the PUT is sent again
// (a PUT of the whole definition is idempotent) and the deploy ends as if
// nothing had happened — the second PUT meets the first one's deployment
// holding the app, waits for it, and leaves the app as rendered.
func TestALostAnswerToThePUTIsRetried(t *testing.T) {
	srv, p, c, o, log := setupProxied(t)
	var puts atomic.Int32
	p.Decide(func(r *http.Request) marathontest.Fault {
		if r.Method == http.MethodPut && puts.Add(1) == 1 {
			return marathontest.LoseAnswer
		}
		return marathontest.Pass
	})
	apps := renderApps(t, "v9.1", nil)[:1]
	res, err := Apply(context.Background(), c, apps, o)
	if err != nil || res[0].RolledBack {
		t.Fatalf("%+v %v\n%s", res[0], err, log.String())
	}
	if p.Met(marathontest.LoseAnswer) != 1 {
		t.Fatalf("no answer was lost")
	}
	a := srv.Definition(apps[0].ID)
	if img := a.Image(); !strings.HasSuffix(img, ":v9.1") || a.TasksHealthy != a.Instances {
		t.Fatalf("the app runs %v, %v/%v healthy", img, a.TasksHealthy, a.Instances)
	}
}

// Marathon is unreachable from just after the PUT until past the deploy's
// deadline: the retries run out while the deployment is under way, and the
// deploy still rolls the app back once Marathon answers again (within the
// rollback's own deadline) instead of leaving the half-done deployment.
func TestRetriesRunOutMidDeployTheRollbackIsStillMade(t *testing.T) {
	srv, p, c, o, log := setupProxied(t)
	ctx := context.Background()
	apps := renderApps(t, "v9.1", nil)[:1]
	if _, err := Apply(ctx, c, apps, o); err != nil {
		t.Fatal(err)
	}
	srv.Behaviour = func(def map[string]any) marathontest.Outcome {
		if strings.HasSuffix(imageOf(def), ":v9.2") {
			return marathontest.Outcome{Healthy: true, Delay: time.Hour} // never in time
		}
		return marathontest.Outcome{Healthy: true, Delay: 20 * time.Millisecond}
	}
	o.Timeout = 2 * time.Second
	before := countRequests(srv, "PUT /v2/apps")
	go func() {
		for countRequests(srv, "PUT /v2/apps") == before {
			time.Sleep(5 * time.Millisecond)
		}
		// The deadline began before the PUT: refused until past it.
		p.Set(marathontest.Refuse)
		time.Sleep(o.Timeout + 300*time.Millisecond)
		p.Set(marathontest.Pass)
	}()
	res, err := Apply(ctx, c, renderApps(t, "v9.2", nil)[:1], o)
	if err == nil || !res[0].RolledBack || !strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("%+v %v\n%s", res[0], err, log.String())
	}
	img := srv.Definition(apps[0].ID).Image()
	if !strings.HasSuffix(img, ":v9.1") {
		t.Fatalf("after the rollback the app runs %v", img)
	}
}

// A Marathon that hangs: MARATHON_TIMEOUT bounds the whole call, not each
// request (the HTTP client's own 30 s timeout made a 20 s deploy take 31 s).
// Hanging from the start, nothing was changed and the deploy fails after
// its timeout; hanging after the PUT, the rollback gets its own timeout
// and the call ends after both.
//
// The bound is half the client's per-request timeout, which a call that
// let a request run its course would take at least: it says which timeout
// ended the call, not how fast the machine is.
func TestAHangingMarathonHonoursTheTimeout(t *testing.T) {
	srv, p, c, o, log := setupProxied(t)
	ctx := context.Background()
	apps := renderApps(t, "v9.1", nil)[:1]
	o.Timeout = time.Second
	bound := client.DefaultRequestTimeout / 2
	p.Set(marathontest.Hang)
	start := time.Now()
	_, err := Apply(ctx, c, apps, o)
	if took := time.Since(start); err == nil || took > bound {
		t.Fatalf("deploy with a 1 s timeout against a hanging Marathon: %v after %s (a request's own timeout is %s)", err, took, client.DefaultRequestTimeout)
	}
	start = time.Now()
	_, err = Scale(ctx, c, apps[0].ID, 2, o)
	if took := time.Since(start); err == nil || took > bound {
		t.Fatalf("scale with a 1 s timeout against a hanging Marathon: %v after %s (a request's own timeout is %s)", err, took, client.DefaultRequestTimeout)
	}

	p.Set(marathontest.Pass)
	srv.Behaviour = func(map[string]any) marathontest.Outcome {
		return marathontest.Outcome{Healthy: true, Delay: time.Hour}
	}
	afterRequest(t, srv, "PUT /v2/apps", func() { p.Set(marathontest.Hang) })
	start = time.Now()
	_, err = Apply(ctx, c, apps, o)
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "the rollback could not start") || took > bound {
		t.Fatalf("a Marathon that hangs after the PUT: %v after %s\n%s", err, took, log.String())
	}
}
