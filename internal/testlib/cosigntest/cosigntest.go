// Package cosigntest runs the real cosign CLI for tests: cosign built from
// its Go module (tools/cosign, as Consul is built from tools/consul),
// offline — no transparency log, no Fulcio, no TUF: every address but
// loopback is routed to a closed port, so a cosign that tried the network
// would fail, not hang or reach out.
package cosigntest

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/testtools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// Build compiles it (once per tools module; testtools.Cosign) and returns its path.
func Build(ctx context.Context, p *progress.Reporter) (string, error) {
	return testtools.Cosign.Build(ctx, p)
}

// Cosign is the built CLI with a home of its own.
type Cosign struct {
	Bin string
	env []string
}

// New builds cosign (failing the test when it cannot) and gives it an
// empty home, so no cached trust root or configuration of the machine's
// is used.
func New(t testing.TB) *Cosign {
	t.Helper()
	bin, err := Build(context.Background(), progress.New(nil))
	if err != nil {
		t.Fatalf("INTEGRATION TEST CANNOT RUN: building cosign: %v", err)
	}
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"TUF_ROOT=" + filepath.Join(home, "tuf"),
		"SIGSTORE_NO_CACHE=true",
		"DOCKER_CONFIG=" + filepath.Join(home, "docker"),
		// Loopback is never proxied (Go's ProxyFromEnvironment); anything
		// else goes to the discard port and is refused at once.
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=",
	}
	return &Cosign{Bin: bin, env: env}
}

// Run runs cosign with args; out is stdout and stderr together.
func (c *Cosign) Run(args ...string) (out string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Env = c.env
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err = cmd.Run()
	return b.String(), err
}
