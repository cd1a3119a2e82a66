package gobuild

import (
	"os"
	"os/exec"
	"path"
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
	write := func(p, text string) { writeFile(t, root, p, text) }
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

// TestEachProgramBuildsFromItsOwnFilesAlone: the files the plan gives a
// program are enough to build it (each is built here from a directory
// holding those files and nothing else), they hold no other program's
// main package, and the packages from outside the module are the
// standard library's and the modules'.
func TestEachProgramBuildsFromItsOwnFilesAlone(t *testing.T) {
	root := repoRoot(t)
	programs, err := Programs(root)
	if err != nil {
		t.Fatal(err)
	}
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	mods := Modules{Dir: filepath.Join(strings.TrimSpace(string(modcache)), "cache", "download")}
	pl, err := planBuilds(t.Context(), root, mods, programs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fmt", "runtime"} {
		if !slices.Contains(pl.external, want) {
			t.Errorf("external packages lack %s", want)
		}
	}
	for _, p := range pl.external {
		if strings.HasPrefix(p, "github.com/lhcbdirac/lhcbdirac-pipeline") {
			t.Errorf("external packages hold the module's own %s", p)
		}
	}
	entry := pl.files["./images/lhcbdirac/entrypoint"]
	if !slices.Contains(entry, "images/lhcbdirac/entrypoint/main.go") || slices.Contains(entry, "images/pinger/cmd/pinger/main.go") {
		t.Errorf("the entrypoint's files: %q", entry)
	}
	for _, prog := range programs {
		files := pl.files[prog]
		for _, other := range programs {
			if other != prog && slices.ContainsFunc(files, func(f string) bool { return path.Dir(f) == strings.TrimPrefix(other, "./") }) {
				t.Errorf("%s is built from %s's files", prog, other)
			}
		}
		dir := t.TempDir()
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				t.Fatalf("%s: %v", prog, err)
			}
			os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", os.DevNull, prog)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not build from its %d files alone: %v\n%s", prog, len(files), err, out)
		}
	}
}

// TestAProgramsFilesHoldWhatItsPackagesEmbed: a file a package of the
// module embeds is among the files its program is built from; a package
// it does not import is not.
func TestAProgramsFilesHoldWhatItsPackagesEmbed(t *testing.T) {
	root := t.TempDir()
	write := func(p, text string) { writeFile(t, root, p, text) }
	write("go.mod", "module example.com/m\n\ngo 1.26\n")
	write("go.sum", "")
	write("images/a/main.go", "package main\nimport \"example.com/m/lib\"\nfunc main() { print(lib.T) }\n")
	write("lib/lib.go", "package lib\nimport _ \"embed\"\n//go:embed app.tmpl\nvar T string\n")
	write("lib/app.tmpl", "{{.}}\n")
	write("lib/lib_test.go", "package lib\n")
	write("other/other.go", "package other\n")
	programs, err := Programs(root)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := planBuilds(t.Context(), root, Modules{Dir: filepath.Join(t.TempDir(), "cache", "download")}, programs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"go.mod", "go.sum", "images/a/main.go", "lib/app.tmpl", "lib/lib.go"}
	if got := pl.files["./images/a"]; !slices.Equal(got, want) {
		t.Fatalf("files of ./images/a = %q, want %q", got, want)
	}
}

func TestTheToolchainTagHoldsAnyGoVersion(t *testing.T) {
	for v, want := range map[string]string{"go1.26.8": "go1.26.8", "devel go1.27-abc Tue Dec 1 10:00:00 2026 +0000": "devel_go1.27-abc_Tue_Dec_1_10_00_00_2026__0000", "go1.26.0 X:jsonv2": "go1.26.0_X_jsonv2"} {
		if got := tagSafe(v); got != want {
			t.Errorf("tagSafe(%q) = %q, want %q", v, got, want)
		}
	}
}

// writeFile writes text to root/p, making its directories.
func writeFile(t *testing.T, root, p, text string) {
	t.Helper()
	p = filepath.Join(root, p)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
