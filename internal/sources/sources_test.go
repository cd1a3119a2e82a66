package sources_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/sources"
)

func spec(repo, branch string) sources.Spec {
	return sources.Spec{Name: "DIRAC", Repo: repo, Branch: branch, RepoVar: "DIRAC_REPO", BranchVar: "DIRAC_BRANCH"}
}

func TestResolveFixtureBranchToCommitAndCheckout(t *testing.T) {
	t.Setenv("LHCBDIRAC_PIPELINE_CACHE", t.TempDir())
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
	t.Setenv("LHCBDIRAC_PIPELINE_CACHE", t.TempDir())
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
