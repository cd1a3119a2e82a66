package deploy

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
)

// The deploy when the way to Marathon fails: one Marathon of the list
// down, answers that echo the credentials, counts no cluster should run.
// (The client's own rules are tested in marathon/client.)

// Of the Marathons MARATHON_URL lists, one that does not answer is passed
// over for the next, and the deploy succeeds.
func TestSeveralMarathonsAndFailover(t *testing.T) {
	srv := marathontest.New()
	t.Cleanup(srv.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there now: connection refused
	c := newClient(t, downURL+","+strings.TrimPrefix(srv.URL, "http://"), client.Config{})
	log := &syncBuf{}
	o := Options{Timeout: 10 * time.Second, Settle: 50 * time.Millisecond, Poll: 15 * time.Millisecond, Log: log}
	if _, err := Apply(context.Background(), c, renderApps(t, "v9.1", nil)[:1], o); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "connection refused") {
		t.Errorf("the first Marathon was never tried:\n%s", log.String())
	}
}

// Marathon's (or a proxy's) error answers reach the deploy's errors and
// log cut to a few hundred bytes and without the credentials, even when
// the answer echoes the request's Authorization header.
func TestErrorAnswersAreRedactedAndBounded(t *testing.T) {
	for _, cs := range []struct {
		name string
		cfg  client.Config
		sees []string
	}{
		{"token", client.Config{Token: "tok-PLANTED-77"}, []string{"tok-PLANTED-77"}},
		{"basic", client.Config{User: "lhcbrm", Password: "pw-PLANTED-55"},
			[]string{"pw-PLANTED-55", base64.StdEncoding.EncodeToString([]byte("lhcbrm:pw-PLANTED-55"))}},
	} {
		t.Run(cs.name, func(t *testing.T) {
			filler := strings.Repeat("x", 1<<20)
			echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth := r.Header.Get("Authorization")
				switch {
				case strings.HasPrefix(r.URL.Path, "/v2/apps/json"):
					w.WriteHeader(http.StatusUnprocessableEntity)
					fmt.Fprintf(w, `{"message":"refused: Authorization: %s %s","details":[{"path":"/","errors":["%s"]}]}`, auth, filler, auth)
				case r.URL.Path == "/v2/deployments": // retried: its log lines count too
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
			log := &syncBuf{}
			var errs []error
			_, err := runningDeployments(ctx, c, time.Now().Add(600*time.Millisecond), log)
			errs = append(errs, err)
			_, err = Scale(ctx, c, "/json", 2, Options{Timeout: 500 * time.Millisecond, Log: log})
			errs = append(errs, err)
			_, err = Apply(ctx, c, renderApps(t, "v9.1", nil)[:1], Options{Timeout: 500 * time.Millisecond, Log: log})
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
			if len(log.String()) > 20_000 {
				t.Errorf("the log holds %d bytes for a few retries", len(log.String()))
			}
		})
	}
}

// `scale … 1000000000` and negative counts are refused before anything is
// asked of Marathon, naming the value; MARATHON_MAX_INSTANCES moves the
// bound.
func TestScaleRefusesAbsurdCountsBeforeAskingMarathon(t *testing.T) {
	srv, c, o, _ := setup(t)
	ctx := context.Background()
	for _, n := range []int{1_000_000_000, -1, DefaultMaxInstances + 1} {
		_, err := Scale(ctx, c, "/sys/x", n, o)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d instances: want 0 to %d", n, DefaultMaxInstances)) {
			t.Errorf("scale to %d: %v", n, err)
		}
	}
	if got := srv.Requests(); len(got) > 0 {
		t.Fatalf("refused counts reached Marathon: %v", got)
	}
	o.MaxInstances = 500 // MARATHON_MAX_INSTANCES=500, as the settings read it
	if _, err := Scale(ctx, c, "/sys/x", 400, o); err == nil || !strings.Contains(err.Error(), "does not run on Marathon") {
		t.Fatalf("with %s=500, scale to 400: %v", MaxInstancesEnv, err)
	}
}
