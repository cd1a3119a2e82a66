package toolmod

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
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

// toyModule writes a module with three programs: two under distinct names
// and one whose import path ends in a major-version element.
func toyModule(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"go.mod":        "module example.invalid/toy\n\ngo 1.22\n",
		"cmd/a/main.go": "package main\n\nfunc main() { println(\"a\") }\n",
		"cmd/b/main.go": "package main\n\nfunc main() { println(\"b\") }\n",
		"x/v2/main.go":  "package main\n\nfunc main() { println(\"x\") }\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goLogger puts a go command first on PATH that logs its arguments and
// runs the real one; it returns the log's path.
func goLogger(t *testing.T) string {
	t.Helper()
	real, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	log := filepath.Join(bin, "log")
	script := "#!/bin/sh\necho \"$*\" >>" + log + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

func builds(t *testing.T, log string) []string {
	b, _ := os.ReadFile(log)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(l, "build ") {
			out = append(out, l)
		}
	}
	return out
}

var toyBinaries = []Binary{
	{Name: "tool-a", Package: "example.invalid/toy/cmd/a"},
	{Name: "tool-b", Package: "example.invalid/toy/cmd/b"},
	{Name: "tool-x", Package: "example.invalid/toy/x/v2"},
}

// TestBinariesAreBuiltInOneGoBuild: the missing programs of a module are
// compiled by one go build (their shared packages compiled once), each
// lands under its own name, and a second call builds nothing.
func TestBinariesAreBuiltInOneGoBuild(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	t.Setenv("GOFLAGS", "")
	mod := t.TempDir()
	toyModule(t, mod)
	log := goLogger(t)
	m := Module{Dir: mod, Cache: "toy", Version: "v1"}
	dir, err := m.Build(context.Background(), progress.Discard(), toyBinaries...)
	if err != nil {
		t.Fatal(err)
	}
	if got := builds(t, log); len(got) != 1 || !strings.Contains(got[0], "-trimpath") {
		t.Fatalf("want one go build with -trimpath for the three programs, got %q", got)
	}
	for _, b := range toyBinaries {
		out, err := exec.Command(filepath.Join(dir, b.Name)).CombinedOutput()
		if want := b.Name[len("tool-"):]; err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%s printed %q (%v), want %q", b.Name, out, err, want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != len(toyBinaries) {
		t.Errorf("the cache entry holds %d files, want the %d programs only", len(entries), len(toyBinaries))
	}
	if _, err := m.Build(context.Background(), progress.Discard(), toyBinaries...); err != nil {
		t.Fatal(err)
	}
	if got := builds(t, log); len(got) != 1 {
		t.Fatalf("a second call ran go build again: %q", got)
	}
}

// TestASecondCloneReusesTheBuild: the cache key is the module's content
// (its files, go.sum included, the version, the flags), not where the
// clone is, so a second clone of the repository finds the programs the
// first one built.
func TestASecondCloneReusesTheBuild(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	t.Setenv("GOFLAGS", "")
	first, second := filepath.Join(t.TempDir(), "clone1", "tools", "toy"), filepath.Join(t.TempDir(), "clone2", "tools", "toy")
	toyModule(t, first)
	toyModule(t, second)
	log := goLogger(t)
	d1, err := Module{Dir: first, Cache: "toy", Version: "v1"}.Build(context.Background(), progress.Discard(), toyBinaries[0])
	if err != nil {
		t.Fatal(err)
	}
	p := progress.New(io.Discard)
	d2, err := Module{Dir: second, Cache: "toy", Version: "v1"}.Build(context.Background(), p, toyBinaries[0])
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 || len(builds(t, log)) != 1 {
		t.Fatalf("the second clone built again (%s vs %s, builds %q)", d1, d2, builds(t, log))
	}
	if st := p.Steps(); len(st) != 1 || !st[0].Cached {
		t.Fatalf("the second clone's step should say cached: %+v", st)
	}
}
