//go:build integration

package benchpeer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/benchpeer"
)

// TestIntegrationPeerBuildsTheLock runs the peer once on the host's Docker:
// the real lock of a release (the one remembered, else resolved from the
// index), the project's own bases from the local registry. The image it
// pushes must be in the registry at the digest reported, every figure
// measured, and the rebuild with nothing changed no slower than the cold
// build (it is all cache).
func TestIntegrationPeerBuildsTheLock(t *testing.T) {
	ctx := t.Context()
	p := testenv.Reporter(t)
	addr, err := registry.Up(ctx, p)
	if err != nil {
		t.Fatalf("INTEGRATION TEST CANNOT RUN: %v", err)
	}
	v, err := version.Parse("v12.0.21")
	if err != nil {
		t.Fatal(err)
	}
	lock, _ := lhcbdirac.RememberedLock(v, "")
	if lock == nil {
		tools, err := pytools.Ensure(ctx, p, "")
		if err != nil {
			t.Fatalf("INTEGRATION TEST CANNOT RUN: no lock for %s and no tools to resolve one: %v", v.Raw, err)
		}
		if lock, err = lhcbdirac.ResolveAndRemember(ctx, p, tools, v, ""); err != nil {
			t.Fatalf("INTEGRATION TEST CANNOT RUN: resolving the lock of %s: %v", v.Raw, err)
		}
	}
	bases, err := baseimage.BuildAll(ctx, p, []baseimage.Spec{lhcbdirac.BuilderBase, lhcbdirac.Base}, []string{
		addr + "/lhcbdirac-pipeline/base:bookworm-" + lhcbdirac.BuilderBase.Key(),
		addr + "/lhcbdirac-pipeline/base:bookworm-" + lhcbdirac.Base.Key(),
	})
	if err != nil {
		t.Fatal(err)
	}
	fig, err := benchpeer.Run(ctx, p, benchpeer.Inputs{Lock: lock, BuilderBase: bases[0], Base: bases[1],
		Repo: addr + "/lhcbdirac-pipeline/bench-peer", WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peer: cold %s, push %s, warm %s, one-line entrypoint change %s build + %s push, %d layers, %.1f MB as pushed",
		fig.Cold, fig.Push, fig.Warm, fig.EntrypointBuild, fig.EntrypointPush, fig.Layers, float64(fig.Size)/1e6)
	if fig.Cold <= 0 || fig.Warm <= 0 || fig.EntrypointBuild <= 0 || fig.EntrypointPush <= 0 {
		t.Fatalf("a figure was not measured: %+v", fig)
	}
	if fig.Warm > fig.Cold {
		t.Errorf("the unchanged rebuild (%s) took longer than the cold build (%s): the cache was not used", fig.Warm, fig.Cold)
	}
	if !strings.HasPrefix(fig.Digest, "sha256:") || fig.Layers < 4 || fig.Size < 50e6 {
		t.Fatalf("the pushed image looks wrong: %+v", fig)
	}
	// The peer is a working image: its entrypoint sets up DIRAC's
	// environment and the lock's LHCbDIRAC imports.
	ref := addr + "/lhcbdirac-pipeline/bench-peer@" + fig.Digest
	out, err := dockercli.Run(ctx, "run", "--rm", ref, "python", "-c", "import DIRAC, LHCbDIRAC, M2Crypto, MySQLdb, gfal2; print(LHCbDIRAC.__version__)")
	if id, ierr := dockercli.Inspect(ctx, "image", ref, "{{.Id}}"); ierr == nil {
		t.Cleanup(func() { dockercli.Run(context.WithoutCancel(ctx), "image", "rm", "--force", id) })
	}
	if err != nil || !strings.Contains(out, lock.LHCbDIRACVersion()) {
		t.Fatalf("the peer's image does not run LHCbDIRAC %s: %q %v", lock.LHCbDIRACVersion(), out, err)
	}
}
