package toolmod

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

func TestBuildFailureFromAnUnfetchableModuleNamesTheFix(t *testing.T) {
	mod := t.TempDir()
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.invalid/m\n\ngo 1.22\n\nrequire example.invalid/missing v1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(mod, "main.go"), []byte("package main\nimport _ \"example.invalid/missing\"\nfunc main() {}\n"), 0o644)
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	_, err := Module{Dir: mod, Cache: "toolmod-test", Version: "v1"}.Build(context.Background(), progress.New(nil), Binary{Name: "m", Package: "."})
	if err == nil || !strings.Contains(err.Error(), "could not be fetched") || !strings.Contains(err.Error(), "GOPROXY") {
		t.Fatalf("error should say a module could not be fetched and name GOPROXY: %v", err)
	}
}

func TestKeyFollowsTheModule(t *testing.T) {
	mod := t.TempDir()
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module a\n"), 0o644)
	m := Module{Dir: mod, Version: "v1"}
	k1, err := m.Key()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := m.Key()
	os.WriteFile(filepath.Join(mod, "go.sum"), []byte("x\n"), 0o644)
	k3, _ := m.Key()
	m.LDFlags = "-s"
	k4, _ := m.Key()
	if k1 != k2 || k1 == k3 || k3 == k4 {
		t.Fatalf("keys %s %s %s %s: stable for the same files, new for changed ones or flags", k1, k2, k3, k4)
	}
}
