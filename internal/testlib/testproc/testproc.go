// Package testproc runs the real servers tests stand on (etcd, Consul,
// InfluxDB, cAdvisor) as child processes on loopback ports of their own.
//
// Ports are the part that goes wrong: a port asked of the kernel with
// 127.0.0.1:0 and closed again comes from the ephemeral range, which every
// outgoing connection of every test on the machine draws its source port
// from, so by the time the server binds it another process may hold it
// (CI saw Consul fail with "address already in use" that way). Ports here
// come from below the ephemeral range, are checked free for TCP and UDP,
// are never handed out twice in one process, and a server that still loses
// the race is started again on new ports.
package testproc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Spec says how to run one server and how to know it serves.
type Spec struct {
	Name    string        // for messages: "consul", "etcd"
	Path    string        // the binary
	Args    []string      // its arguments
	Ready   func() bool   // true once the server answers
	Timeout time.Duration // how long it may take to become Ready
}

// Proc is one running server.
type Proc struct {
	spec Spec
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
	log  Buffer
}

// errPortTaken is a server's exit because one of its ports was taken.
var errPortTaken = errors.New("a port was taken")

// StartOnPorts picks n ports, builds the server's Spec from them and starts
// it, up to three times when another process took one of the ports first.
// The server is stopped when the test ends.
func StartOnPorts(t testing.TB, n int, spec func(ports []int) Spec) (*Proc, []int) {
	t.Helper()
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		ports := Ports(t, n)
		p := &Proc{spec: spec(ports)}
		err := p.start()
		if err == nil {
			t.Cleanup(p.Stop)
			return p, ports
		}
		p.Stop()
		if !errors.Is(err, errPortTaken) {
			t.Fatal(err)
		}
		last = err
	}
	t.Fatalf("%v (3 attempts on different ports)", last)
	return nil, nil
}

// Restart starts a stopped server again with the same arguments, so on
// the same ports.
func (p *Proc) Restart(t testing.TB) {
	t.Helper()
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
}

func (p *Proc) start() error {
	p.mu.Lock()
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.spec.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() { cmd.Wait(); close(done) }()

	deadline := time.Now().Add(p.spec.Timeout)
	for {
		if p.spec.Ready() {
			return nil
		}
		select {
		case <-done:
			log := p.log.String()
			if strings.Contains(log, "address already in use") {
				return fmt.Errorf("%s exited, %w:\n%s", p.spec.Name, errPortTaken, log)
			}
			return fmt.Errorf("%s exited (%v) before it answered:\n%s", p.spec.Name, cmd.ProcessState, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s:\n%s", p.spec.Name, p.spec.Timeout, p.log.String())
		}
	}
}

// probeClient is what Ready probes use: a port squatted by something that
// accepts and never answers must not hang the probe.
var probeClient = &http.Client{Timeout: 2 * time.Second}

// Get is http.Get for Ready probes, with a time limit.
func Get(url string) (*http.Response, error) { return probeClient.Get(url) }

// Stop ends the server and waits for it; its data stays for Restart.
func (p *Proc) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Log is the server's output so far, across restarts.
func (p *Proc) Log() string { return p.log.String() }

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// Ports returns n distinct loopback ports below the kernel's ephemeral
// range, free for TCP and UDP when checked, none handed out before by this
// process.
func Ports(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := 10000, ephemeralLow()
	if hi-lo < 1000 {
		// An unusual ephemeral range: above it, then.
		lo, hi = 61000, 65000
	}
	portsMu.Lock()
	defer portsMu.Unlock()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 10000 {
			t.Fatalf("no free loopback port in %d-%d", lo, hi)
		}
		port := lo + rand.IntN(hi-lo)
		if given[port] || !free(port) {
			continue
		}
		given[port] = true
		out = append(out, port)
	}
	return out
}

// free says whether port can be bound on loopback for TCP and UDP (Consul's
// serf ports take both).
func free(port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// ephemeralLow is the first port of Linux's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 32768
	}
	return lo
}

// Buffer collects what a process or goroutine writes while a test reads
// it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is what was written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
