package metrics

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
)

// The servers here are stand-ins on purpose: they answer what no real
// cAdvisor, Docker or InfluxDB would (a 300 MiB answer, an error body
// echoing the request's credentials), to show what the collector does
// with a hostile or broken peer. They listen on loopback (or a socket in
// the test's directory).

// hugeBody writes about size bytes of valid JSON: prefix, item repeated
// (comma-separated), suffix.
func hugeBody(w http.ResponseWriter, size int, prefix, item, suffix string) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(prefix))
	chunk := []byte(strings.Repeat(item+",", 1<<16/len(item)))
	for n := 0; n < size; n += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return // the client hung up: what a bounded reader does
		}
	}
	w.Write([]byte(item + suffix))
}

// allocated is what f allocated, in bytes.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A 300 MiB answer from cAdvisor or Docker is refused with an error saying
// so, having cost a bounded amount of memory (it took 1.3 GiB decoded
// whole).
func TestOversizedAnswersAreRefused(t *testing.T) {
	const size = 300 << 20
	cadv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hugeBody(w, size, `{"/docker/abc":{"id":"abc","aliases":["mesos-abc"],"spec":{"labels":{"dirac_component":"A/B"}},"stats":[`,
			`{"timestamp":"2026-01-01T00:00:00Z","memory":{"usage":1,"cache":2,"rss":3},"task_stats":{"nr_running":1}}`, `]}}`)
	}))
	defer cadv.Close()
	var err error
	mem := allocated(func() { _, err = (CAdvisor{URL: cadv.URL}).Containers(context.Background()) })
	t.Logf("cAdvisor: %v; %d MiB allocated", err, mem>>20)
	if err == nil || !strings.Contains(err.Error(), "cAdvisor /api/v1.3/docker: answer larger than 32 MiB: refused") {
		t.Errorf("cAdvisor: %v", err)
	}
	if mem > 256<<20 {
		t.Errorf("cAdvisor: %d MiB allocated for a refused answer", mem>>20)
	}

	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/containers/json":
			fmt.Fprint(w, `[{"Id":"abc","Labels":{"dirac_component":"A/B"}}]`)
		case r.URL.Path == "/containers/abc/json":
			fmt.Fprint(w, `{"Config":{"Env":["MARATHON_APP_ID=/a/b"]}}`)
		default:
			hugeBody(w, size, `{"read":"2026-01-01T00:00:00Z","memory_stats":{"usage":1,"stats":{"cache":1,`, `"k":1`, `}}}`)
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	mem = allocated(func() { _, err = (&Docker{Socket: sock}).Containers(context.Background()) })
	t.Logf("Docker: %v; %d MiB allocated", err, mem>>20)
	if err == nil || !strings.Contains(err.Error(), "docker /containers/abc/stats: answer larger than 2 MiB: refused") {
		t.Errorf("Docker: %v", err)
	}
	if mem > 64<<20 {
		t.Errorf("Docker: %d MiB allocated for a refused answer", mem>>20)
	}
}

// An InfluxDB (or a proxy before it) whose error echoes the request —
// its Authorization header, the password — leaves none of it in the log.
func TestEchoedCredentialsStayOutOfTheLog(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":"authorization failed: Authorization: %s (user %s, password %s)"}`, r.Header.Get("Authorization"), user, pass)
	}))
	defer echo.Close()
	port := echo.Listener.Addr().(*net.TCPAddr).Port
	logs := &testproc.Buffer{}
	in := Influx{Host: "127.0.0.1", Port: port, Username: "admin", Password: "Zm9v-s3cr3t", Database: "dirac"}
	c := New(Config{Write: true, Quiet: true, Interval: 50 * 1e6, Influx: in, Docker: filepath.Join(t.TempDir(), "none.sock"), Log: log.New(logs, "", 0)})
	c.Buffer.Add([][]byte{[]byte("cpu,host=a usage_cores=1 1\n")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*1e9)
	defer cancel()
	c.Run(ctx)
	l := logs.String()
	t.Logf("%s", l)
	if !strings.Contains(l, "401 Unauthorized: authorization failed: Authorization: Basic ***") {
		t.Errorf("the failure is not logged as expected")
	}
	// Logged once, not every round (the next in ten minutes, with a count).
	if n := strings.Count(l, "401 Unauthorized"); n != 1 {
		t.Errorf("the write error logged %d times", n)
	}
	if n := strings.Count(l, "collect: docker"); n != 1 {
		t.Errorf("the collect error logged %d times", n)
	}
	for _, secret := range []string{"Zm9v-s3cr3t", "YWRtaW46Wm05di1zM2NyM3Q", "Basic YW"} {
		if strings.Contains(l, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}
