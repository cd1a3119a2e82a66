//go:build integration

package baseimage_test

import (
	"fmt"
	"os"
	"path/filepath"
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

// TestIntegrationBasesShareOneDebootstrapAndAreReproducible makes two bases
// with BuildAll from an empty cache, twice (two caches): each round runs
// debootstrap once, not once per base, and the second round gives the
// same digests as the first — the trees are the same to the byte although
// every file was made again (a user created by a package, Python's
// bytecode, ldconfig's cache). The trees hold what was asked and none of
// the install's leftovers.
func TestIntegrationBasesShareOneDebootstrapAndAreReproducible(t *testing.T) {
	ctx := t.Context()
	p := testenv.Reporter(t)
	addr, err := registry.Up(ctx, p) // before the cache moves: the registry's own image is the machine's
	if err != nil {
		t.Fatalf("INTEGRATION TEST CANNOT RUN: %v", err)
	}
	specs := []baseimage.Spec{
		{Packages: []string{"busybox"}},
		{Packages: []string{"python3", "etcd-server"}},
	}
	round := func(n int) []string {
		t.Helper()
		restore := cachedir.Swap(t.TempDir())
		defer restore()
		var refs []string
		for _, s := range specs {
			refs = append(refs, fmt.Sprintf("%s/lhcbdirac-pipeline/base-test:%s-round%d", addr, s.Key(), n))
		}
		rp := testenv.Reporter(t)
		out, err := baseimage.BuildAll(ctx, rp, specs, refs)
		if err != nil {
			t.Fatal(err)
		}
		ran := 0
		for _, st := range rp.Steps() {
			if strings.HasPrefix(st.Name, "debootstrap ") && !st.Cached {
				ran++
			}
		}
		if ran != 1 {
			t.Errorf("round %d ran debootstrap %d times for %d bases, want once", n, ran, len(specs))
		}
		tree, err := baseimage.Rootfs(ctx, rp, specs[1])
		if err != nil {
			t.Fatal(err)
		}
		checkTree(t, tree, specs[1].Packages)
		return out
	}
	first, second := round(1), round(2)
	for i := range specs {
		d1, d2 := first[i][strings.Index(first[i], "@"):], second[i][strings.Index(second[i], "@"):]
		if d1 != d2 {
			t.Errorf("%v made twice from empty caches: %s and %s", specs[i].Packages, d1, d2)
		}
	}
}

// checkTree: the packages are installed, the install left no package, no
// list, no log and no policy-rc.d behind.
func checkTree(t *testing.T, tree string, pkgs []string) {
	t.Helper()
	status, err := os.ReadFile(filepath.Join(tree, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range pkgs {
		if !strings.Contains(string(status), "Package: "+pkg+"\nStatus: install ok installed\n") {
			t.Errorf("%s is not installed in %s", pkg, tree)
		}
	}
	for _, gone := range []string{"usr/sbin/policy-rc.d", "var/cache/ldconfig/aux-cache"} {
		if _, err := os.Lstat(filepath.Join(tree, gone)); err == nil {
			t.Errorf("%s left in the tree", gone)
		}
	}
	for _, dir := range []string{"var/cache/apt", "var/lib/apt/lists", "var/log"} {
		filepath.WalkDir(filepath.Join(tree, dir), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Errorf("%s left in the tree", path)
			}
			return nil
		})
	}
}
