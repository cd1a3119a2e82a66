package hostimages

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRepoRootFromASubdirectory(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ToolsModuleDir, "go.sum")); err != nil {
		t.Fatalf("RepoRoot %s holds no tools module: %v", root, err)
	}
}
