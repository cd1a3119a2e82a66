package lhcbdirac

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPatchesAreForTheLocksSourceBuiltDistributions: every patch is named
// <name>-<version>.patch after a distribution the 12.0.21 lock builds from
// source (install.sh applies it to /src/<name>-<version>, the sdist's
// directory), says what it does before its first hunk, and changes files
// under a/ and b/ (patch -p1).
func TestPatchesAreForTheLocksSourceBuiltDistributions(t *testing.T) {
	l, err := ReadLock(filepath.Join("testdata", "resolved.lock"))
	if err != nil {
		t.Fatal(err)
	}
	patches := Patches()
	if _, ok := patches["tornado-5.1.1.patch"]; !ok {
		t.Fatalf("no tornado-5.1.1.patch among %v", patches)
	}
	for name, text := range patches {
		found := false
		for _, p := range l.Runtime {
			if slices.Contains(l.SourceBuilt, p.Key()) && name == p.Name+"-"+p.Version+".patch" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s is for no source-built distribution of the lock (%v)", name, l.SourceBuilt)
		}
		header, _, ok := strings.Cut(text, "\n--- a/")
		if !ok || len(strings.TrimSpace(header)) < 200 {
			t.Errorf("%s: no hunk, or no header saying what it does and why", name)
		}
		for _, line := range strings.Split(text, "\n") {
			if (strings.HasPrefix(line, "--- ") && !strings.HasPrefix(line, "--- a/")) || (strings.HasPrefix(line, "+++ ") && !strings.HasPrefix(line, "+++ b/")) {
				t.Errorf("%s: %q is not a -p1 path", name, line)
			}
		}
	}
}

// TestAppliedPatches: what provenance names is what install.sh applies
// for the lock: tornado's patch, unless tornado is hotfixed.
func TestAppliedPatches(t *testing.T) {
	l, err := ReadLock(filepath.Join("testdata", "resolved.lock"))
	if err != nil {
		t.Fatal(err)
	}
	got := AppliedPatches(l)
	if len(got) != 1 || got[0].Name != "tornado-5.1.1.patch" || len(got[0].SHA256) != 64 {
		t.Fatalf("applied patches: %+v", got)
	}
	if got := AppliedPatches(l, "Tornado"); len(got) != 0 {
		t.Fatalf("with tornado hotfixed: %+v", got)
	}
}
