package cachedir

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEntryIsBuiltOnceAndOnlyWhole: concurrent callers build it once; a
// failed build leaves nothing that looks whole; an expired one is rebuilt.
func TestEntryIsBuiltOnceAndOnlyWhole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "entry")
	e := Entry{Dir: dir}
	var builds atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Ensure(func(d string) error {
				builds.Add(1)
				return os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644)
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	// The build writes into its directory, which must exist.
	wg.Wait()
	if builds.Load() != 1 {
		t.Fatalf("built %d times", builds.Load())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "x" {
		t.Fatalf("entry content %q %v", b, err)
	}

	bad := Entry{Dir: filepath.Join(t.TempDir(), "bad")}
	boom := errors.New("boom")
	if _, err := bad.Ensure(func(d string) error { os.MkdirAll(d, 0o755); return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	for _, p := range []string{bad.Dir, bad.Dir + ".tmp", bad.Marker()} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind by a failed build", p)
		}
	}

	old := Entry{Dir: filepath.Join(t.TempDir(), "old"), MaxAge: time.Hour}
	mk := func(d string) error { return os.MkdirAll(d, 0o755) }
	if built, err := old.Ensure(mk); !built || err != nil {
		t.Fatal(built, err)
	}
	if built, _ := old.Ensure(mk); built {
		t.Fatal("a fresh entry was built again")
	}
	os.Chtimes(old.Marker(), time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	if built, _ := old.Ensure(mk); !built {
		t.Fatal("an expired entry was reused")
	}
}
