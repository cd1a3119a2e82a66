// Package etcdtest runs a real etcd for tests: Debian's etcd-server
// (`mage test` installs it), one member on loopback ports of its own, its
// data in the test's temporary directory. A missing etcd fails the test.
package etcdtest

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
)

// Binary is Debian's etcd.
const Binary = "/usr/bin/etcd"

// Etcd is one running member.
type Etcd struct {
	Endpoint string // http://127.0.0.1:<port>
	t        testing.TB
	proc     *testproc.Proc
}

// Start runs etcd until the test ends.
func Start(t testing.TB) *Etcd {
	t.Helper()
	if _, err := exec.LookPath(Binary); err != nil {
		t.Fatalf("etcd is not installed (%s): run `go run mage.go test`, which installs Debian's etcd-server, or apt-get install etcd-server", Binary)
	}
	e := &Etcd{t: t}
	e.proc, _ = testproc.StartOnPorts(t, 2, func(ports []int) testproc.Spec {
		e.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		return testproc.Spec{Name: "etcd", Path: Binary, Timeout: 20 * time.Second, Ready: e.healthy,
			Args: []string{"--name", "test", "--data-dir", t.TempDir(),
				"--listen-client-urls", e.Endpoint, "--advertise-client-urls", e.Endpoint,
				"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
				"--initial-cluster", "test=" + peerURL, "--log-level", "warn"}}
	})
	return e
}

func (e *Etcd) healthy() bool {
	resp, err := testproc.Get(e.Endpoint + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// Stop ends etcd (its data stays for Restart).
func (e *Etcd) Stop() { e.proc.Stop() }

// Restart starts a stopped etcd again on the same ports and data.
func (e *Etcd) Restart() { e.t.Helper(); e.proc.Restart(e.t) }
