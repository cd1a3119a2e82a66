package pipeline

import (
	"os"
	"sync"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
)

// Releases starting at once get the same FIXTURE repositories, made once
// and never replaced under a release reading them.
func TestFixtureReposAreMadeOnceForReleasesAtOnce(t *testing.T) {
	cachedir.SetRoot(t.TempDir())
	t.Cleanup(func() { cachedir.SetRoot("") })
	const n = 4
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := fixtureRepos(t.Context())
			dirs[i], errs[i] = r.DIRAC, err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("release %d: %v", i, errs[i])
		}
		if dirs[i] != dirs[0] {
			t.Fatalf("release %d got %s, release 0 %s", i, dirs[i], dirs[0])
		}
	}
	before, err := os.Stat(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	// A later release finds them and leaves them as they are.
	r, err := fixtureRepos(t.Context())
	if err != nil || r.DIRAC != dirs[0] {
		t.Fatalf("a later release: %v, %v", r, err)
	}
	if after, err := os.Stat(dirs[0]); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the repositories were made again: %v", err)
	}
	if _, err := os.Stat(r.Installer); err != nil {
		t.Error(err)
	}
}
