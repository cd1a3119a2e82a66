// Package consultest runs a real Consul agent for tests: Consul built from
// its Go module (tools/consul, as the Dagger engine is built from
// tools/dagger; Debian no longer ships Consul), in dev mode, every port
// on loopback and of its own.
package consultest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/toolmod"
)

// Version is the Consul release tools/consul pins.
const Version = "v1.22.6"

// Build compiles the agent (once per tools module) and returns its path.
func Build(ctx context.Context, p *progress.Reporter) (string, error) {
	root, err := toolmod.RepoRoot()
	if err != nil {
		return "", err
	}
	m := toolmod.Module{Dir: filepath.Join(root, "tools", "consul"), Cache: "consul", Version: Version, LDFlags: "-s -w"}
	dir, err := m.Build(ctx, p, toolmod.Binary{Name: "consul", Package: "github.com/hashicorp/consul"})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "consul"), nil
}

// Agent is one running dev agent.
type Agent struct {
	Addr string // 127.0.0.1:<http port>, what CONSUL_HTTP_ADDR takes
	t    testing.TB
	bin  string
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  lockedBuf
}

// Start runs a dev agent until the test ends.
func Start(t testing.TB) *Agent {
	t.Helper()
	bin, err := Build(context.Background(), progress.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	ports := make([]int, 5)
	for i := range ports {
		ports[i] = freePort(t)
	}
	hcl := fmt.Sprintf(`ports { http = %d, dns = -1, grpc = -1, grpc_tls = -1, serf_lan = %d, serf_wan = %d, server = %d }`, ports[0], ports[1], ports[2], ports[3])
	a := &Agent{Addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), t: t, bin: bin,
		args: []string{"agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1", "-node", "test-agent", "-data-dir", t.TempDir(), "-hcl", hcl, "-log-level", "warn"}}
	a.start()
	t.Cleanup(a.Stop)
	return a
}

// Restart starts a stopped agent again on the same ports; a dev agent
// comes back empty, as a node's agent that lost its state does.
func (a *Agent) Restart() { a.start() }

func (a *Agent) start() {
	a.t.Helper()
	a.mu.Lock()
	a.cmd = exec.Command(a.bin, a.args...)
	a.cmd.Stdout, a.cmd.Stderr = &a.log, &a.log
	err := a.cmd.Start()
	a.mu.Unlock()
	if err != nil {
		a.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		// A leader means the catalog accepts registrations.
		resp, err := http.Get("http://" + a.Addr + "/v1/status/leader")
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && len(bytes.Trim(bytes.TrimSpace(b.Bytes()), `"`)) > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("consul did not elect itself within 60s:\n%s", a.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Log is the agent's output so far.
func (a *Agent) Log() string { return a.log.String() }

// Stop ends the agent.
func (a *Agent) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil && a.cmd.Process != nil {
		a.cmd.Process.Kill()
		a.cmd.Wait()
		a.cmd = nil
	}
}

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
