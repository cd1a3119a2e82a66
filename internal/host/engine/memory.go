package engine

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryPeak samples the local engine container's memory (`docker stats`,
// every interval) until the returned stop is called, which returns the
// highest sample in MiB (0 when none could be read: an external engine).
// Every container a build or smoke test starts runs inside the engine, so
// this is their memory together, the engine's cache included: an upper
// bound of what a stage needs.
func MemoryPeak(ctx context.Context, every time.Duration) (stop func() float64) {
	var mu sync.Mutex
	peak := 0.0
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			out, err := exec.CommandContext(ctx, "docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", ContainerName()).Output()
			if err == nil {
				used, _, _ := strings.Cut(string(out), "/")
				if mib := ParseMiB(used); mib > 0 {
					mu.Lock()
					peak = max(peak, mib)
					mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()
	return func() float64 {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// ParseMiB reads docker stats' memory figure ("1.5GiB", "812.3MiB",
// "900KiB") in MiB; 0 when it is not one.
func ParseMiB(s string) float64 {
	s = strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		mul    float64
	}{{"GiB", 1024}, {"MiB", 1}, {"KiB", 1.0 / 1024}, {"B", 1.0 / (1024 * 1024)}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0
			}
			return f * u.mul
		}
	}
	return 0
}
