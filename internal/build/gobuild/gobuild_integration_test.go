//go:build integration

package gobuild_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

// TestIntegrationProgramsAreReproducibleFromAnEmptyBuildCache builds every
// image program twice in the real engine, each time from a Go build cache
// volume of its own, new and empty, with Dagger's cache bypassed: the two
// builds give the same bytes, program by program. The shared build cache
// is a cache only — what it holds never reaches a binary.
func TestIntegrationProgramsAreReproducibleFromAnEmptyBuildCache(t *testing.T) {
	f := testengine.Foundation(t)
	p := testenv.Reporter(t)
	ctx := t.Context()
	root, err := hostimages.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	base, err := baseimage.Build(ctx, p, enginecheck.BaseSpec, enginecheck.BaseRef(f.Registry))
	if err != nil {
		t.Fatal(err)
	}
	mods, err := gobuild.PrepareModules(ctx, p, root)
	if err != nil {
		t.Fatal(err)
	}
	programs, err := gobuild.Programs(root)
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	build := func(run string) map[string]string {
		b, err := gobuild.NewBuilder(ctx, f.Client, p, base, root, mods)
		if err != nil {
			t.Fatal(err)
		}
		b.CacheVolume = "gobuild-test-" + stamp + "-" + run
		b.Rerun = stamp + run
		dir := t.TempDir()
		sums := map[string]string{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for _, prog := range programs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := filepath.Join(dir, path.Base(prog))
				if _, err := b.Binary(prog).Export(ctx, out); err != nil {
					t.Error(err)
					return
				}
				data, err := os.ReadFile(out)
				if err != nil {
					t.Error(err)
					return
				}
				h := sha256.Sum256(data)
				mu.Lock()
				sums[prog] = hex.EncodeToString(h[:])
				mu.Unlock()
			}()
		}
		wg.Wait()
		t.Logf("run %s: %d programs from an empty build cache in %s", run, len(programs), time.Since(start).Round(time.Second))
		return sums
	}
	a, b := build("a"), build("b")
	if t.Failed() {
		return
	}
	if len(a) != len(programs) || len(programs) < 5 {
		t.Fatalf("built %d of %d programs", len(a), len(programs))
	}
	for _, prog := range programs {
		if a[prog] != b[prog] {
			t.Errorf("%s: %s, then %s", prog, a[prog], b[prog])
		}
	}
}
