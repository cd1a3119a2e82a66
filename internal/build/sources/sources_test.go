package sources_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/gitserve"
)

func spec(repo, branch string) sources.Spec {
	return sources.Spec{Name: "DIRAC", Repo: repo, Branch: branch, RepoVar: "DIRAC_REPO", BranchVar: "DIRAC_BRANCH"}
}

func TestResolveFixtureBranchToCommitAndCheckout(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	repos, err := fixture.Create(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sources.Resolve(t.Context(), spec(repos.DIRAC, fixture.Branch))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Commit) != 40 {
		t.Fatalf("commit %q", s.Commit)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "src/DIRAC/Core/scripts/dirac_service.py")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, ".git")); !os.IsNotExist(err) {
		t.Fatalf("the checkout keeps .git: %v", err)
	}
	// Fixed identity and dates: the fixture's commit never changes, which
	// is what makes release digests reproducible across machines.
	again, err := fixture.Create(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := sources.Resolve(t.Context(), spec(again.DIRAC, ""))
	if err != nil {
		t.Fatal(err)
	}
	if s2.Commit != s.Commit {
		t.Fatalf("fixture commit not reproducible: %s vs %s", s.Commit, s2.Commit)
	}
}

func TestResolveBadInputNamesTheValue(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	repos, err := fixture.Create(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ repo, branch, want string }{
		{repos.DIRAC, "no-such-branch", `DIRAC_BRANCH="no-such-branch" does not exist`},
		{filepath.Join(t.TempDir(), "missing.git"), "", "cannot be reached"},
		{repos.DIRAC, "--upload-pack=touch /tmp/pwned", "cannot start with '-'"},
		{repos.DIRAC, "a b", "not a valid branch name"},
		{repos.DIRAC, "$(reboot)", `DIRAC_BRANCH="$(reboot)" does not exist`}, // valid for git, never run
		{"--upload-pack=x", "", "is not a repository"},
		{"", "", "DIRAC_REPO is empty"},
		{"http://127.0.0.1:1/DIRAC.git", "", "cannot be reached"},
	} {
		_, err := sources.Resolve(t.Context(), spec(tc.repo, tc.branch))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("repo %q branch %q: got %v, want %q", tc.repo, tc.branch, err, tc.want)
		}
	}
}

func TestTransportsAreCheckedBeforeAnyNetwork(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	// "Refused, not tried": git is what would reach the network (or run a
	// remote helper), so a git first on PATH records every call and fails.
	// Check and Resolve must refuse each value without it running once.
	bin, calls := t.TempDir(), filepath.Join(t.TempDir(), "calls")
	recorder := "#!/bin/sh\nprintf '%s\\n' \"$*\" >>" + calls + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(recorder), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, tc := range []struct{ repo, want string }{
		{"fd::3", "git remote helpers"},
		{"ext::sh -c touch% /tmp/pwned", "git remote helpers"},
		{"ftp://host/DIRAC.git", `transport "ftp" is not allowed (use https, http, ssh, git, file)`},
		{"ssh://user:secretpw@host/DIRAC.git", "ssh URLs cannot carry credentials"},
		{"git://u:secretpw@host/DIRAC.git", "git URLs cannot carry credentials"},
		{"https:///nohost", "not a valid URL"},
	} {
		for name, run := range map[string]func() error{
			"Check":   func() error { return sources.Check(spec(tc.repo, "")) },
			"Resolve": func() error { _, err := sources.Resolve(t.Context(), spec(tc.repo, "")); return err },
		} {
			err := run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s %q: got %v, want %q", name, tc.repo, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secretpw") {
				t.Errorf("%s %q: the error quotes the password: %v", name, tc.repo, err)
			}
			if ran, _ := os.ReadFile(calls); len(ran) > 0 {
				t.Fatalf("%s %q: git ran (a transport must be refused, not tried):\n%s", name, tc.repo, ran)
			}
		}
	}
	// The recorder is the git these calls would meet: a value that passes
	// the check reaches it.
	if _, err := sources.Resolve(t.Context(), spec("https://git.invalid/DIRAC.git", "")); err == nil {
		t.Fatal("Resolve succeeded with a git that always fails")
	}
	if ran, _ := os.ReadFile(calls); !strings.Contains(string(ran), "ls-remote") {
		t.Fatalf("the recording git was not the one run: %q", ran)
	}
	os.Remove(calls)
	for _, ok := range []string{"https://gitlab.cern.ch/lhcb-dirac/LHCbDIRAC.git", "ssh://git@gitlab.cern.ch:7999/lhcb/DIRAC.git",
		"git@github.com:DIRACGrid/DIRAC.git", "git://host/DIRAC.git", "file:///srv/DIRAC.git", "/srv/DIRAC.git", "../DIRAC"} {
		if err := sources.Check(spec(ok, "")); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

// TestCredentialsInTheURLReachGitOnlyThroughItsEnvironment serves the
// FIXTURE DIRAC over authenticated HTTP (git's own http-backend) and
// resolves it with the token in the URL: the resolve works, and neither
// the Source, git's command line (recorded by a wrapper first on PATH) nor
// an error for a wrong token carries the token.
func TestCredentialsInTheURLReachGitOnlyThroughItsEnvironment(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	dir := t.TempDir()
	repos, err := fixture.Create(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	const token = "glpat-PLANTED-7f1d9c"
	srv := &gitserve.Server{Root: dir, User: "oauth2", Password: token}
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// A git wrapper that records every command line it is given.
	bin, argv := t.TempDir(), filepath.Join(t.TempDir(), "argv")
	realGit, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\nprintf '%s\\n' \"$*\" >>" + argv + "\nexec " + realGit + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+settings.Read("PATH"))

	_ = repos
	src, err := sources.Resolve(t.Context(), spec(srv.URL("DIRAC.git", "oauth2", token), fixture.Branch))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(src.Repo, token) || strings.Contains(src.Repo, "oauth2") || src.Repo != srv.URL("DIRAC.git", "", "") {
		t.Fatalf("Source.Repo %q", src.Repo)
	}
	if _, err := os.Stat(filepath.Join(src.Dir, "src/DIRAC/__init__.py")); err != nil {
		t.Fatalf("checkout: %v", err)
	}
	_, err = sources.Resolve(t.Context(), spec(srv.URL("DIRAC.git", "oauth2", "wrong-"+token), fixture.Branch))
	if err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("a wrong token: %v", err)
	}
	lines, _ := os.ReadFile(argv)
	if !strings.Contains(string(lines), "ls-remote") || !strings.Contains(string(lines), "fetch") {
		t.Fatalf("the wrapper saw no git calls:\n%s", lines)
	}
	if strings.Contains(string(lines), token) || strings.Contains(string(lines), "oauth2") {
		t.Fatalf("the token reached git's command line:\n%s", lines)
	}
}
