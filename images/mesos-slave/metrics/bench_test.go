//go:build integration

package metrics

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/cadvisortest"
)

// fifty starts 50 labelled (idle) containers, as on a busy agent.
func fifty(b *testing.B) {
	b.Helper()
	img := localImage(b)
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range 50 {
		name := fmt.Sprintf("mesos-bench-%d", i)
		dockercli.RemoveContainer(ctx, name)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := dockercli.Run(ctx, "run", "-d", "--name", name, "--label", LabelComponent+"=Bench/Service"+strconv.Itoa(i%6),
				"-e", "MARATHON_APP_ID=/bench/service", "--entrypoint", "/bin/sh", img, "-c", "sleep 3600"); err != nil {
				b.Error(err)
			}
		}()
		b.Cleanup(func() { dockercli.RemoveContainer(context.Background(), name) })
	}
	wg.Wait()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKiB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// BenchmarkCollect50 is one collection round on an agent with 50 labelled
// containers, from each source: containers read per second, the
// collector's CPU per round and its share at the default 30 s interval,
// and the process's resident memory.
func BenchmarkCollect50(b *testing.B) {
	fifty(b)
	cadv := cadvisortest.Start(b)
	time.Sleep(3 * time.Second) // cAdvisor's first samples
	for _, src := range []struct{ name, target string }{{"docker", ""}, {"cadvisor", cadv.Addr}} {
		b.Run(src.name, func(b *testing.B) {
			c := New(Config{Target: src.target, Quiet: true, Host: "bench"})
			c.Collect(context.Background()) // the first round has no rates
			cpu0, n := cpuTime(), 0
			start := time.Now()
			for b.Loop() {
				k, _, err := c.Collect(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				n += k
			}
			el := time.Since(start)
			perRound := (cpuTime() - cpu0) / time.Duration(b.N)
			b.ReportMetric(float64(n)/el.Seconds(), "containers/s")
			b.ReportMetric(float64(n)/float64(b.N), "containers/round")
			b.ReportMetric(float64(perRound.Microseconds())/1000, "cpu-ms/round")
			b.ReportMetric(100*perRound.Seconds()/30, "cpu-%-at-30s")
			b.ReportMetric(float64(rssKiB())/1024, "rss-MiB")
		})
	}
}
