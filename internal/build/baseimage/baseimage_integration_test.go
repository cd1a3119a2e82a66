//go:build integration

package baseimage_test

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

// TestIntegrationBaseBuildIsPinnedAndReproducible pushes a debootstrap base
// to the real registry twice: both pushes give the same digest, and the
// registry serves the tag at that digest.
func TestIntegrationBaseBuildIsPinnedAndReproducible(t *testing.T) {
	ctx := t.Context()
	p := testenv.Reporter(t)
	addr, err := registry.Up(ctx, p)
	if err != nil {
		t.Fatalf("INTEGRATION TEST CANNOT RUN: %v", err)
	}
	tag := addr + "/lhcbdirac-pipeline/base-test:reproducible"
	first, err := baseimage.Build(ctx, p, enginecheck.BaseSpec, tag)
	if err != nil {
		t.Fatal(err)
	}
	second, err := baseimage.Build(ctx, p, enginecheck.BaseSpec, tag)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || !strings.Contains(first, "@sha256:") {
		t.Fatalf("two builds of one spec: %s and %s", first, second)
	}
	ref, _ := name.ParseReference(tag)
	desc, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(first, "@"+desc.Digest.String()) {
		t.Fatalf("registry serves %s for %s, Build reported %s", desc.Digest, tag, first)
	}
}

func TestRootfsWithoutDebootstrapNamesTheFix(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir())) // nothing cached: debootstrap would be needed
	t.Setenv("PATH", t.TempDir())
	_, err := baseimage.Rootfs(t.Context(), testenv.Reporter(t), baseimage.Spec{Packages: []string{"busybox"}})
	if err == nil || !strings.Contains(err.Error(), "apt-get install debootstrap") {
		t.Fatalf("error should say how to install debootstrap: %v", err)
	}
}
