package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
)

// The client against a STAND-IN for Marathon (marathontest: Marathon
// cannot be installed here), and against servers that are no Marathon at
// all: a recorder, a redirector, an echo of the credentials.

// recorder is a server that is not a Marathon: it records what reaches it.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "METHOD path Authorization"
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.Method+" "+req.URL.Path+" "+req.Header.Get("Authorization"))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"apps":[]}`)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// redirector answers every request with a 307 to target (same path).
func redirector(t *testing.T, target string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, target+req.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(s.Close)
	return s
}

var credentialSets = []struct {
	name string
	cfg  Config
	sees []string // what must never reach another host, nor an error
}{
	{"token", Config{Token: "tok-PLANTED-77"}, []string{"tok-PLANTED-77"}},
	{"basic", Config{User: "lhcbrm", Password: "pw-PLANTED-55"},
		[]string{"pw-PLANTED-55", base64.StdEncoding.EncodeToString([]byte("lhcbrm:pw-PLANTED-55"))}},
}

func newClient(t testing.TB, urls string, cfg Config) *Client {
	t.Helper()
	cfg.URLs = urls
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A Marathon (or what poses as one) that redirects to another host: the
// redirect is refused with an error naming both, and the other host sees
// neither the request nor the credentials — for the client's calls, the
// event stream and go-marathon's calls alike.
func TestCredentialsAreNotSentToARedirectedHost(t *testing.T) {
	for _, cs := range credentialSets {
		t.Run(cs.name, func(t *testing.T) {
			evil := newRecorder(t)
			front := redirector(t, evil.URL)
			c := newClient(t, front.URL, cs.cfg)
			ctx := context.Background()
			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s: the redirect to %s was followed", what, evil.URL)
				}
				for _, want := range []string{strings.TrimPrefix(front.URL, "http://"), strings.TrimPrefix(evil.URL, "http://"), "not followed"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s: the error does not name %q: %v", what, want, err)
					}
				}
				if Transient(err) {
					t.Errorf("%s: a refused redirect is retried as transient: %v", what, err)
				}
			}
			_, err := c.ListApps(ctx)
			check("GET /v2/apps", err)
			_, err = c.PutApp(ctx, "/sys/x", map[string]any{"id": "/sys/x"}, PutOptions{})
			check("PUT /v2/apps/sys/x", err)
			_, err = c.AppVersions(ctx, "/sys/x")
			check("GET /v2/apps/sys/x/versions", err)
			body, err := c.Events(ctx)
			if body != nil {
				body.Close()
			}
			check("GET /v2/events", err)
			_, err = c.Marathon().Applications(nil)
			if err == nil {
				t.Error("go-marathon followed the redirect")
			}
			if got := evil.requests(); len(got) > 0 {
				t.Fatalf("the other host was reached: %q", got)
			}
		})
	}
}

// A redirect to another Marathon Config.URLs lists is followed, with the
// credentials (a load balancer in front of the cluster sending clients to
// the leader): the listed hosts are the allow-list.
func TestARedirectToAListedMarathonIsFollowed(t *testing.T) {
	for _, cs := range credentialSets {
		t.Run(cs.name, func(t *testing.T) {
			srv := marathontest.New()
			t.Cleanup(srv.Close)
			srv.Token, srv.User, srv.Password = cs.cfg.Token, cs.cfg.User, cs.cfg.Password
			front := redirector(t, srv.URL)
			c := newClient(t, front.URL+","+srv.URL, cs.cfg)
			ctx := context.Background()
			if _, err := c.ListApps(ctx); err != nil {
				t.Fatalf("GET /v2/apps through the redirect: %v", err)
			}
			ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			body, err := c.Events(ectx)
			if err != nil {
				t.Fatalf("GET /v2/events through the redirect: %v", err)
			}
			defer body.Close()
			line, err := bufio.NewReader(body).ReadString('\n')
			if err != nil || !strings.Contains(line, "event_stream_attached") {
				t.Fatalf("event stream: %q %v", line, err)
			}
		})
	}
}

// Config.URLs may list several Marathons, comma-separated; one that does
// not answer is passed over for the next. Entries are checked one by one,
// an empty list names the variable, and credentials in a URL are refused
// without being shown.
func TestSeveralMarathonsAndFailover(t *testing.T) {
	srv := marathontest.New()
	t.Cleanup(srv.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there now: connection refused
	c := newClient(t, downURL+","+strings.TrimPrefix(srv.URL, "http://"), Config{})
	var log strings.Builder
	if _, err := Retry(context.Background(), time.Now().Add(10*time.Second), &log, "listing", c.ListApps); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "connection refused") {
		t.Errorf("the first Marathon was never tried:\n%s", log.String())
	}
	for spec, want := range map[string]string{
		"":                             "MARATHON_URL is not set",
		" ":                            "MARATHON_URL is not set",
		"http://a:8080,,http://b:8080": "entry 2 is empty",
		"http://a:8080,ftp://b":        `"ftp://b"`,
		"http://a:8080,http://u:PLANTED-PW@b:8080": "not in the URL",
		"http://deployer:PLANTED-PW@marathon:8080": "put credentials in MARATHON_USER/MARATHON_PASSWORD or MARATHON_TOKEN",
		"http://a:8080/?x=1":                       "want http(s)://host",
	} {
		_, err := New(Config{URLs: spec})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "PLANTED-PW") {
			t.Errorf("%q: %v, want an error with %q and no password", spec, err, want)
		}
	}
}

// An answer larger than the client's bound is an error saying so, not a
// truncated body that fails as "unexpected EOF"; Config.MaxAnswer sets it.
func TestAnAnswerOverTheBoundIsRefusedNotCut(t *testing.T) {
	srv := marathontest.New()
	t.Cleanup(srv.Close)
	for i := range 20 {
		srv.Seed(map[string]any{"id": fmt.Sprintf("/sys/app%d", i), "instances": 1, "cpus": 0.1, "mem": 64,
			"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "r/x:1"}}})
	}
	c := newClient(t, srv.URL, Config{MaxAnswer: 4096})
	_, err := c.ListApps(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than 4096 bytes") {
		t.Fatalf("got %v", err)
	}
	c.MaxAnswer = 0 // the default
	if apps, err := c.ListApps(context.Background()); err != nil || len(apps) != 20 {
		t.Fatalf("%d apps, %v", len(apps), err)
	}
}

// Marathon's (or a proxy's) error answers reach errors cut to a few
// hundred bytes and without the credentials, even when the answer echoes
// the request's Authorization header.
func TestErrorAnswersAreRedactedAndBounded(t *testing.T) {
	for _, cs := range credentialSets {
		t.Run(cs.name, func(t *testing.T) {
			filler := strings.Repeat("x", 1<<20)
			echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth := r.Header.Get("Authorization")
				switch {
				case strings.HasPrefix(r.URL.Path, "/v2/apps/json"):
					w.WriteHeader(http.StatusUnprocessableEntity)
					fmt.Fprintf(w, `{"message":"refused: Authorization: %s %s","details":[{"path":"/","errors":["%s"]}]}`, auth, filler, auth)
				case r.URL.Path == "/v2/deployments":
					w.WriteHeader(http.StatusBadGateway)
					fmt.Fprintf(w, "<html>bad gateway for %s %s</html>", auth, filler)
				default:
					w.WriteHeader(http.StatusInternalServerError)
					fmt.Fprintf(w, "upstream said: Authorization: %s\n%s", auth, filler)
				}
			}))
			t.Cleanup(echo.Close)
			c := newClient(t, echo.URL, cs.cfg)
			ctx := context.Background()
			var log strings.Builder
			var errs []error
			_, err := c.GetApp(ctx, "/plain")
			errs = append(errs, err)
			_, err = c.GetApp(ctx, "/json")
			errs = append(errs, err)
			_, err = c.AppVersions(ctx, "/json")
			errs = append(errs, err)
			_, err = c.Events(ctx)
			errs = append(errs, err)
			_, err = Retry(ctx, time.Now().Add(600*time.Millisecond), &log, "listing deployments", c.Deployments)
			errs = append(errs, err)
			for i, err := range errs {
				if err == nil {
					t.Fatalf("call %d did not fail", i)
				}
				if len(err.Error()) > 1500 {
					t.Errorf("call %d: an error of %d bytes: %.200s…", i, len(err.Error()), err)
				}
				for _, secret := range cs.sees {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("call %d: the error shows the credentials: %.400s", i, err)
					}
				}
			}
			for _, secret := range cs.sees {
				if strings.Contains(log.String(), secret) {
					t.Errorf("the log shows the credentials: %.400s", log.String())
				}
			}
			if !strings.Contains(log.String(), "retrying in") || len(log.String()) > 20_000 {
				t.Errorf("the retries' log: %d bytes: %.300s", len(log.String()), log.String())
			}
			var ae *APIError
			if !errors.As(errs[1], &ae) || ae.Status != 422 || !strings.Contains(ae.Message, "refused: Authorization:") {
				t.Errorf("the 422 lost its status or message: %v", errs[1])
			}
		})
	}
}
