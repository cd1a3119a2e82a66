// Package consultest runs a real Consul agent for tests: Consul built from
// its Go module (tools/consul, as the Dagger engine is built from
// tools/dagger; Debian no longer ships Consul), in dev mode, every port
// on loopback and of its own.
package consultest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/testtools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
)

// Build compiles it (once per tools module; testtools.Consul) and returns its path.
func Build(ctx context.Context, p *progress.Reporter) (string, error) {
	return testtools.Consul.Build(ctx, p)
}

// Agent is one running dev agent.
type Agent struct {
	Addr string // 127.0.0.1:<http port>, what CONSUL_HTTP_ADDR takes
	t    testing.TB
	proc *testproc.Proc
}

// Start runs a dev agent until the test ends.
func Start(t testing.TB) *Agent {
	t.Helper()
	bin, err := Build(context.Background(), progress.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{t: t}
	a.proc, _ = testproc.StartOnPorts(t, 4, func(ports []int) testproc.Spec {
		a.Addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
		hcl := fmt.Sprintf(`ports { http = %d, dns = -1, grpc = -1, grpc_tls = -1, serf_lan = %d, serf_wan = %d, server = %d }`, ports[0], ports[1], ports[2], ports[3])
		return testproc.Spec{Name: "consul", Path: bin, Timeout: 60 * time.Second, Ready: a.hasLeader,
			Args: []string{"agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1", "-node", "test-agent", "-data-dir", t.TempDir(), "-hcl", hcl, "-log-level", "warn"}}
	})
	return a
}

// hasLeader says whether the catalog accepts registrations.
func (a *Agent) hasLeader() bool {
	resp, err := testproc.Get("http://" + a.Addr + "/v1/status/leader")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode == 200 && len(bytes.Trim(bytes.TrimSpace(b.Bytes()), `"`)) > 0
}

// Restart starts a stopped agent again on the same ports; a dev agent
// comes back empty, as a node's agent that lost its state does.
func (a *Agent) Restart() { a.t.Helper(); a.proc.Restart(a.t) }

// Log is the agent's output so far.
func (a *Agent) Log() string { return a.proc.Log() }

// Stop ends the agent.
func (a *Agent) Stop() { a.proc.Stop() }
