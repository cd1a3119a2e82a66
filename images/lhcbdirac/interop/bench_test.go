//go:build integration

package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/server"
)

// pingTimesScript is DIRAC's own client pinging n times, each on a new
// connection (RPCClient does not keep one), timing each call.
const pingTimesScript = `
import json, sys, time
from DIRAC.Core.Base.Script import Script
Script.parseCommandLine(ignoreErrors=True)
from DIRAC.Core.DISET.RPCClient import RPCClient
url, n = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(n):
    t0 = time.perf_counter()
    r = RPCClient(url).ping()
    times.append(time.perf_counter() - t0)
    assert r["OK"], r
print(json.dumps(times))
`

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkPingRealDIRAC pings DIRAC's own dirac-service on loopback, a
// new connection per ping, with the project's client; then DIRAC's own
// client does the same. It reports p50 and p99 of each and the ratio,
// with RSA-2048 host keys (as grid host certificates are) and with ECDSA
// P-256 ones.
//
// The "-nodelay" runs are a measurement aid, not production: the service
// is patched (a sitecustomize on its PYTHONPATH) to set TCP_NODELAY on
// the connections it accepts, so no segment waits for an acknowledgement.
// What a ping takes then is DIRAC's own work, the floor any client can
// reach; the unpatched runs show how close the client gets on its own.
func BenchmarkPingRealDIRAC(b *testing.B) {
	for _, run := range []struct {
		name           string
		ecdsa, nodelay bool
	}{{"RSA-2048", false, false}, {"ECDSA-P256", true, false}, {"RSA-2048-nodelay", false, true}, {"ECDSA-P256-nodelay", true, true}} {
		b.Run(run.name, func(b *testing.B) { benchPing(b, run.ecdsa, run.nodelay) })
	}
}

// noDelaySiteCustomize makes a Python process set TCP_NODELAY on every
// connection it accepts.
const noDelaySiteCustomize = `import socket
_accept = socket.socket.accept
def _accept_nodelay(self):
    conn, addr = _accept(self)
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    return conn, addr
socket.socket.accept = _accept_nodelay
`

func benchPing(b *testing.B, ecdsa, nodelay bool) {
	var env []string
	if nodelay {
		dir := b.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "sitecustomize.py"), []byte(noDelaySiteCustomize), 0o644); err != nil {
			b.Fatal(err)
		}
		env = append(env, "PYTHONPATH="+dir)
	}
	d, s := startServiceKeys(b, "RequestManagement/ReqProxy", ecdsa, env...)
	c := goClient(b, d)
	ctx := b.Context()
	for range 3 { // warm the service's imports
		if _, err := c.Ping(ctx, s.URL()); err != nil {
			b.Fatal(err)
		}
	}
	var goTimes []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.Ping(ctx, s.URL()); err != nil {
			b.Fatal(err)
		}
		goTimes = append(goTimes, time.Since(t0))
	}
	b.StopTimer()
	cmd := d.Cmd(ctx, "python", "-c", pingTimesScript, s.URL(), "40")
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("DIRAC's client: %v", err)
	}
	var secs []float64
	if err := json.Unmarshal(lastLine(out), &secs); err != nil {
		b.Fatal(err)
	}
	var diracTimes []time.Duration
	for _, s := range secs[5:] {
		diracTimes = append(diracTimes, time.Duration(s*float64(time.Second)))
	}
	gp50, gp99 := percentile(goTimes, 0.5), percentile(goTimes, 0.99)
	dp50, dp99 := percentile(diracTimes, 0.5), percentile(diracTimes, 0.99)
	b.ReportMetric(float64(gp50.Microseconds())/1000, "go-p50-ms")
	b.ReportMetric(float64(gp99.Microseconds())/1000, "go-p99-ms")
	b.ReportMetric(float64(dp50.Microseconds())/1000, "dirac-p50-ms")
	b.ReportMetric(float64(dp99.Microseconds())/1000, "dirac-p99-ms")
	b.ReportMetric(float64(dp50)/float64(gp50), "speedup-p50")
}

// BenchmarkPingerRealDIRAC is the pinger (its HTTP handler, as Consul
// calls it) in front of a real dirac-service: pings per second with 16
// checks at once, RSA-2048 host keys.
func BenchmarkPingerRealDIRAC(b *testing.B) {
	d, s := startService(b, "RequestManagement/ReqProxy")
	al, err := server.ParseAllowList(fmt.Sprintf("localhost:%[1]d,127.0.0.1:%[1]d,[::1]:%[1]d", s.Port)) // localhost is loopback: address entries admit it
	if err != nil {
		b.Fatal(err)
	}
	h, err := server.NewHandler(server.Config{Client: goClient(b, d), Allow: al, MaxConcurrent: 64})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	url := ts.URL + "/ping?" + neturl.Values{"host": {"localhost"}, "port": {fmt.Sprint(s.Port)}, "service": {s.Name}}.Encode()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var failed atomic.Int64
	b.SetParallelism(8) // 16 goroutines on 2 cores
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "checks/s")
	if failed.Load() > 0 {
		b.Fatalf("%d of %d checks failed", failed.Load(), b.N)
	}
}
