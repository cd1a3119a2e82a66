// Package cgrouptest reads a container's CPU time from its own cgroup on
// the host — the kernel's counter, the one Docker and cAdvisor read — so
// tests compare a collector's CPU figure with the truth over the same
// window instead of with "about one core", which a loaded machine breaks.
package cgrouptest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
)

// Counter is one container's cumulative CPU time in its cgroup: cgroup v2's
// cpu.stat usage_usec, or cgroup v1's cpuacct.usage where the container's
// CPU accounting is on v1 (Docker on a v1 host).
type Counter struct {
	Path string // the file read
	v1   bool   // cpuacct.usage (ns) rather than cpu.stat (usage_usec)
}

// ForContainer finds the cgroup counter of a running container.
func ForContainer(ctx context.Context, container string) (*Counter, error) {
	pid, err := dockercli.Inspect(ctx, "container", container, "{{.State.Pid}}")
	if err != nil {
		return nil, err
	}
	return ForPID(strings.TrimSpace(pid))
}

// ForPID finds the cgroup counter of a process (on the host, so in the
// host's view of /proc and /sys/fs/cgroup).
func ForPID(pid string) (*Counter, error) {
	cg, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return nil, err
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	var v1Path, v2Path string
	for _, l := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2Path = parts[2]
		case hasController(parts[1], "cpuacct"):
			v1Path = parts[2]
		}
	}
	// v1's cpuacct where the container is accounted there (it is then what
	// Docker reads); otherwise v2's cpu.stat.
	if m, ok := mounts["cpuacct"]; ok && v1Path != "" {
		p := filepath.Join(m.dir, strings.TrimPrefix(v1Path, m.root), "cpuacct.usage")
		if _, err := os.Stat(p); err == nil {
			return &Counter{Path: p, v1: true}, nil
		}
	}
	if m, ok := mounts["cgroup2"]; ok && v2Path != "" {
		p := filepath.Join(m.dir, strings.TrimPrefix(v2Path, m.root), "cpu.stat")
		if _, err := os.Stat(p); err == nil {
			return &Counter{Path: p}, nil
		}
	}
	return nil, fmt.Errorf("process %s: no cgroup CPU counter found (cgroup %q)", pid, strings.TrimSpace(string(cg)))
}

type mount struct{ dir, root string }

// cgroupMounts maps "cpuacct" to the v1 hierarchy holding it and
// "cgroup2" to the unified one, from /proc/self/mountinfo.
func cgroupMounts() (map[string]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]mount{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(lf) < 5 || len(rf) < 3 {
			continue
		}
		m := mount{dir: lf[4], root: lf[3]}
		switch rf[0] {
		case "cgroup2":
			out["cgroup2"] = m
		case "cgroup":
			if hasController(rf[2], "cpuacct") {
				out["cpuacct"] = m
			}
		}
	}
	return out, sc.Err()
}

func hasController(list, c string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == c {
			return true
		}
	}
	return false
}

// Read is the CPU time used so far.
func (c *Counter) Read() (time.Duration, error) {
	b, err := os.ReadFile(c.Path)
	if err != nil {
		return 0, err
	}
	if c.v1 {
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return time.Duration(ns), err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("%s: no usage_usec", c.Path)
}

// Reading is the counter read between two instants.
type Reading struct {
	After, Before time.Time // the read happened between these
	Used          time.Duration
}

// Watch reads the counter every 50 ms until the test ends.
type Watch struct {
	c    *Counter
	mu   sync.Mutex
	read []Reading
	err  error
}

// StartWatch reads c every 50 ms until the test ends (or Stop).
func StartWatch(t testing.TB, c *Counter) *Watch {
	w := &Watch{c: c}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			t0 := time.Now()
			used, err := c.Read()
			t1 := time.Now()
			w.mu.Lock()
			if err != nil {
				w.err = err
			} else {
				w.read = append(w.read, Reading{After: t0, Before: t1, Used: used})
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// Between bounds the CPU time the cgroup used from t0 to t1: the counter
// only grows, so it lies between the readings taken before t0 and after t1
// (most) and the readings taken after t0 and before t1 (least). It fails
// when the readings do not cover the window. A window ending a moment ago
// is waited for (up to coverWait): the watch reads every 50 ms, so the
// reading begun after t1 may not have been taken yet when a test asks
// straight after the last point it compares (a CI failure: the last reading
// 5 ms before t1).
func (w *Watch) Between(t0, t1 time.Time) (least, most time.Duration, err error) {
	deadline := time.Now().Add(coverWait)
	for {
		w.mu.Lock()
		covered := w.err != nil || len(w.read) > 0 && w.read[len(w.read)-1].After.After(t1)
		w.mu.Unlock()
		if covered || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, 0, w.err
	}
	r := w.read
	// The last reading done before an instant, the first begun after it.
	before := func(t time.Time) int {
		return sort.Search(len(r), func(i int) bool { return !r[i].Before.Before(t) }) - 1
	}
	after := func(t time.Time) int { return sort.Search(len(r), func(i int) bool { return r[i].After.After(t) }) }
	b0, a0, b1, a1 := before(t0), after(t0), before(t1), after(t1)
	if b0 < 0 || a1 >= len(r) {
		return 0, 0, fmt.Errorf("the cgroup readings (%d, %s to %s) do not cover %s to %s", len(r), first(r).After.Format(time.StampMilli), last(r).Before.Format(time.StampMilli), t0.Format(time.StampMilli), t1.Format(time.StampMilli))
	}
	most = r[a1].Used - r[b0].Used
	if a0 <= b1 {
		least = r[b1].Used - r[a0].Used
	}
	return least, most, nil
}

// coverWait is how long Between waits for a reading after its window: many
// of the watch's 50 ms periods, as a loaded machine delays its goroutine.
const coverWait = 2 * time.Second

func first(r []Reading) Reading {
	if len(r) == 0 {
		return Reading{}
	}
	return r[0]
}

func last(r []Reading) Reading {
	if len(r) == 0 {
		return Reading{}
	}
	return r[len(r)-1]
}
