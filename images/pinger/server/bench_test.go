package server_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
)

// BenchmarkPingerThroughput runs the real pinger binary as its own process
// on loopback, in front of the DIPS test server, and loads it with 32
// concurrent HTTP checks. Reports checks per second (target ≥ 500) and the
// pinger's peak resident memory (target ≤ 30 MB). Every check is a full DIPS
// ping: TCP, TLS handshake with the host certificate, proposal, result.
func BenchmarkPingerThroughput(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "pinger")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	for _, keys := range []string{"rsa2048", "ecdsa-p256"} {
		b.Run(keys, func(b *testing.B) { benchPinger(b, bin, keys == "ecdsa-p256") })
	}
}

func benchPinger(b *testing.B, bin string, ec bool) {
	dir := b.TempDir()
	pki, err := dipstest.NewPKI(dir, "Test CA")
	if err != nil {
		b.Fatal(err)
	}
	pki.ECDSA = ec
	host, err := pki.Host("host", "localhost")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := dipstest.Start(dipstest.Options{HostCert: host.CertFile, HostKey: host.KeyFile, CADir: pki.CADir(), Services: []string{svc}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PINGER_LISTEN=" + addr, fmt.Sprintf("PINGER_ALLOW=localhost:%[1]d,127.0.0.1:%[1]d,[::1]:%[1]d", srv.Port()),
		"DIRAC_X509_HOST_CERT=" + host.CertFile, "DIRAC_X509_HOST_KEY=" + host.KeyFile, "X509_CERT_DIR=" + pki.CADir(),
		"PINGER_MAX_CONCURRENT=64"}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	for i := 0; ; i++ {
		if resp, err := client.Get("http://" + addr + "/self"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			b.Fatal("pinger did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	url := fmt.Sprintf("http://%s/ping?host=localhost&port=%d&service=%s", addr, srv.Port(), svc)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				resp, err := client.Get(url)
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d of %d checks failed", failed.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "checks/s")
	b.ReportMetric(peakRSS(b, cmd.Process.Pid), "peak-RSS-MB")
}

// peakRSS reads VmHWM, the process's peak resident set, in MB.
func peakRSS(b *testing.B, pid int) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
