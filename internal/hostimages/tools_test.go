package hostimages

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildFailureFromAnUnfetchableModuleNamesTheFix(t *testing.T) {
	mod := t.TempDir()
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.invalid/m\n\ngo 1.22\n\nrequire example.invalid/missing v1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(mod, "main.go"), []byte("package main\nimport _ \"example.invalid/missing\"\nfunc main() {}\n"), 0o644)
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOMODCACHE", t.TempDir())
	err := goBuild(context.Background(), mod, Binary{Name: "m", Package: "."}, filepath.Join(t.TempDir(), "m"))
	if err == nil || !strings.Contains(err.Error(), "could not be fetched") || !strings.Contains(err.Error(), "GOPROXY") {
		t.Fatalf("error should say a module could not be fetched and name GOPROXY: %v", err)
	}
}

func TestToolsKeyFollowsTheModule(t *testing.T) {
	mod := t.TempDir()
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module a\n"), 0o644)
	k1, err := toolsKey(mod)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := toolsKey(mod)
	os.WriteFile(filepath.Join(mod, "go.sum"), []byte("x\n"), 0o644)
	k3, _ := toolsKey(mod)
	if k1 != k2 || k1 == k3 {
		t.Fatalf("keys %s %s %s: stable for the same files, new for changed ones", k1, k2, k3)
	}
}

func TestRepoRootFromASubdirectory(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ToolsModuleDir, "go.sum")); err != nil {
		t.Fatalf("RepoRoot %s holds no tools module: %v", root, err)
	}
}
