package gobuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestProgramsAreTheImagesMainPackages: the one build covers exactly the
// main packages the go command sees under images/.
func TestProgramsAreTheImagesMainPackages(t *testing.T) {
	root := repoRoot(t)
	got, err := Programs(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-f", `{{if eq .Name "main"}}{{.Dir}}{{end}}`, "./images/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, dir := range strings.Fields(string(out)) {
		rel, _ := filepath.Rel(root, dir)
		want = append(want, "./"+filepath.ToSlash(rel))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Programs = %q\ngo list finds %q", got, want)
	}
	for _, p := range []string{"./images/pinger/cmd/pinger", "./images/lhcbdirac/entrypoint"} {
		if !slices.Contains(got, p) {
			t.Errorf("Programs lacks %s", p)
		}
	}
}

func TestProgramsSkipTestdataAndTests(t *testing.T) {
	root := t.TempDir()
	write := func(p, text string) {
		p = filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("images/a/cmd/a/main.go", "package main\nfunc main() {}\n")
	write("images/a/lib/lib.go", "package lib\n")
	write("images/a/testdata/x/main.go", "package main\n")
	write("images/a/only/main_test.go", "package main\n")
	got, err := Programs(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"./images/a/cmd/a"}) {
		t.Fatalf("Programs = %q", got)
	}
	write("images/b/bad.go", "not go")
	if _, err := Programs(root); err == nil || !strings.Contains(err.Error(), "bad.go") {
		t.Fatalf("an unreadable file should be named: %v", err)
	}
}
