package diracentry_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/diracentry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
)

// root makes a DIRAC root whose bashrc puts a recording pip first on PATH.
func root(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	rec := filepath.Join(dir, "pip.log")
	pip := "#!/bin/sh\necho \"$@\" >> " + rec + "\n"
	if err := os.WriteFile(filepath.Join(bin, "pip"), []byte(pip), 0o755); err != nil {
		t.Fatal(err)
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	rc := "export DIRAC=" + dir + "\nexport PATH=" + bin + ":" + filepath.Dir(git) + ":/usr/bin:/bin\n"
	if err := os.WriteFile(filepath.Join(dir, "bashrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, rec
}

func TestPrepareSetsUpTheDIRACEnvironment(t *testing.T) {
	dir, _ := root(t)
	var log strings.Builder
	env, err := diracentry.Entry{Root: dir, Log: &log}.Prepare(t.Context(), []string{"pip"}, []string{"KEEP=1"})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(env, "\n")
	if !strings.Contains(joined, "DIRAC="+dir) || !strings.Contains(joined, "KEEP=1") {
		t.Fatalf("environment: %s", joined)
	}
	p, err := diracentry.LookPath("pip", env)
	if err != nil || p != filepath.Join(dir, "bin", "pip") {
		t.Fatalf("pip resolves to %q, %v", p, err)
	}
	if !strings.Contains(log.String(), "No alternative DIRAC repository specified") {
		t.Fatalf("log: %s", log.String())
	}
	if _, err := (diracentry.Entry{Root: dir}).Prepare(t.Context(), nil, nil); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("no command: %v", err)
	}
}

func TestHotfixIsAppliedOnceAndValuesAreNeverShellCode(t *testing.T) {
	dir, rec := root(t)
	repos, err := fixture.Create(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	environ := []string{"DIRAC_REPO=" + repos.DIRAC, "DIRAC_BRANCH=" + fixture.Branch}
	e := diracentry.Entry{Root: dir}
	for range 2 { // the second start (or health check) reuses the first
		if _, err := e.Prepare(t.Context(), []string{"true"}, environ); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(rec)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "--no-index --no-deps") || !strings.HasSuffix(lines[0], filepath.Join(dir, "hotfix", "DIRAC")) {
		t.Fatalf("pip calls: %q", lines)
	}
	if _, err := os.Stat(filepath.Join(dir, "hotfix", "DIRAC", "src", "DIRAC", "__init__.py")); err != nil {
		t.Fatal(err)
	}

	pwned := filepath.Join(t.TempDir(), "pwned")
	for _, bad := range [][]string{
		{"DIRAC_REPO=" + repos.DIRAC, "DIRAC_BRANCH=x; touch " + pwned},
		{"DIRAC_REPO=--upload-pack=touch " + pwned},
		{"DIRAC_REPO=" + repos.DIRAC, "DIRAC_BRANCH=nope"},
	} {
		_, err := e.Prepare(t.Context(), []string{"true"}, bad)
		if err == nil || !strings.Contains(err.Error(), "DIRAC_") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a hotfix value was run as a command")
	}
	// A branch without a repository is ignored, as the seed did, and said.
	var log strings.Builder
	if _, err := (diracentry.Entry{Root: dir, Log: &log}).Prepare(t.Context(), []string{"true"}, []string{"LHCB_DIRAC_BRANCH=x"}); err != nil || !strings.Contains(log.String(), "LHCB_DIRAC_BRANCH=\"x\" is set without LHCB_DIRAC_REPO") {
		t.Fatalf("%v %s", err, log.String())
	}
}
