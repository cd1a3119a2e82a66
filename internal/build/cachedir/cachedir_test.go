package cachedir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRootAndSub(t *testing.T) {
	root := filepath.Join(t.TempDir(), "c")
	t.Cleanup(Swap(root))
	got, err := Sub("a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if got != filepath.Join(root, "a", "b") {
		t.Fatalf("Sub = %s", got)
	}
	if st, err := os.Stat(got); err != nil || !st.IsDir() {
		t.Fatalf("Sub did not create %s: %v", got, err)
	}
}
