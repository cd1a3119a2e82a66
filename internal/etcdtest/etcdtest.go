// Package etcdtest runs a real etcd for tests: Debian's etcd-server
// (`mage test` installs it), one member on loopback ports of its own, its
// data in the test's temporary directory. A missing etcd fails the test.
package etcdtest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Binary is Debian's etcd.
const Binary = "/usr/bin/etcd"

// Etcd is one running member.
type Etcd struct {
	Endpoint string // http://127.0.0.1:<port>
	t        testing.TB
	args     []string
	mu       sync.Mutex
	cmd      *exec.Cmd
	log      lockedBuf
}

// Start runs etcd until the test ends.
func Start(t testing.TB) *Etcd {
	t.Helper()
	if _, err := exec.LookPath(Binary); err != nil {
		t.Fatalf("etcd is not installed (%s): run `go run mage.go test`, which installs Debian's etcd-server, or apt-get install etcd-server", Binary)
	}
	client, peer := freePort(t), freePort(t)
	e := &Etcd{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", client), t: t}
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	e.args = []string{"--name", "test", "--data-dir", t.TempDir(),
		"--listen-client-urls", e.Endpoint, "--advertise-client-urls", e.Endpoint,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "test=" + peerURL, "--log-level", "warn"}
	e.start()
	t.Cleanup(e.Stop)
	return e
}

func (e *Etcd) start() {
	e.t.Helper()
	e.mu.Lock()
	e.cmd = exec.Command(Binary, e.args...)
	e.cmd.Stdout, e.cmd.Stderr = &e.log, &e.log
	err := e.cmd.Start()
	e.mu.Unlock()
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(e.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("etcd did not answer on %s within 20s:\n%s", e.Endpoint, e.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends etcd (its data stays for Restart).
func (e *Etcd) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	e.cmd.Process.Kill()
	e.cmd.Wait()
	e.cmd = nil
}

// Restart starts a stopped etcd again on the same ports and data.
func (e *Etcd) Restart() { e.start() }

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuf collects the process's output while tests read it.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
