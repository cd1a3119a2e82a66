// Package sources resolves the DIRAC and LHCbDIRAC sources of a build: a
// git repository and branch (the hotfix overrides DIRAC_REPO/DIRAC_BRANCH,
// LHCB_DIRAC_REPO/LHCB_DIRAC_BRANCH, or the fixture repositories offline)
// are resolved to a commit before anything is built, and that commit's tree
// is checked out into the cache. Values only ever reach git as separate
// arguments after "--"; no shell sees them.
package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cachedir"
)

// Source is one resolved source tree.
type Source struct {
	Name   string // DIRAC or LHCbDIRAC
	Repo   string
	Branch string // as given; "" means the repository's default branch
	Commit string
	Dir    string // checkout of Commit (no .git)
}

// Spec names what to resolve. RepoVar and BranchVar are the variables the
// values came from, for error messages.
type Spec struct {
	Name               string
	Repo, Branch       string
	RepoVar, BranchVar string
}

var sha1RE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Timeout bounds each git call (an unreachable server must fail early).
var Timeout = 2 * time.Minute

// Check validates the values without touching the network.
func Check(s Spec) error {
	if s.Repo == "" {
		return fmt.Errorf("%s is empty: give a git repository URL or path", s.RepoVar)
	}
	if strings.HasPrefix(s.Repo, "-") || strings.ContainsAny(s.Repo, "\x00\n\r") {
		return fmt.Errorf("%s=%q is not a repository URL or path", s.RepoVar, s.Repo)
	}
	if s.Branch == "" {
		return nil
	}
	if strings.HasPrefix(s.Branch, "-") {
		return fmt.Errorf("%s=%q: a branch cannot start with '-'", s.BranchVar, s.Branch)
	}
	if err := exec.Command("git", "check-ref-format", "--branch", s.Branch).Run(); err != nil {
		return fmt.Errorf("%s=%q is not a valid branch name (git check-ref-format --branch refuses it)", s.BranchVar, s.Branch)
	}
	return nil
}

// Resolve finds the commit the branch points at, then checks it out under
// the cache (once per commit).
func Resolve(ctx context.Context, s Spec) (Source, error) {
	if err := Check(s); err != nil {
		return Source{}, err
	}
	commit, err := remoteCommit(ctx, s)
	if err != nil {
		return Source{}, err
	}
	dir, err := checkout(ctx, s, commit)
	if err != nil {
		return Source{}, err
	}
	return Source{Name: s.Name, Repo: s.Repo, Branch: s.Branch, Commit: commit, Dir: dir}, nil
}

func remoteCommit(ctx context.Context, s Spec) (string, error) {
	ref := "HEAD"
	if s.Branch != "" {
		ref = "refs/heads/" + s.Branch
	}
	out, err := git(ctx, "", "ls-remote", "--", s.Repo, ref)
	if err != nil {
		return "", fmt.Errorf("%s=%q cannot be reached (check the URL, network and credentials): %w", s.RepoVar, s.Repo, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == ref && sha1RE.MatchString(f[0]) {
			return f[0], nil
		}
	}
	if s.Branch == "" {
		return "", fmt.Errorf("%s=%q has no default branch (HEAD): set %s", s.RepoVar, s.Repo, s.BranchVar)
	}
	return "", fmt.Errorf("%s=%q does not exist in %s=%q (git ls-remote found no refs/heads/%s)", s.BranchVar, s.Branch, s.RepoVar, s.Repo, s.Branch)
}

func checkout(ctx context.Context, s Spec, commit string) (string, error) {
	base, err := cachedir.Sub("sources")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, s.Name+"-"+commit)
	unlock, err := cachedir.Lock(dir + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(dir + ".complete"); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	os.RemoveAll(dir)
	if _, err := git(ctx, "", "init", "--quiet", tmp); err != nil {
		return "", err
	}
	// Fetch the branch (servers need not allow fetching a bare commit id),
	// then insist on the commit resolved above: a branch moved in between is
	// an error, never a silent mix.
	what := "HEAD"
	if s.Branch != "" {
		what = "refs/heads/" + s.Branch
	}
	if _, err := git(ctx, tmp, "fetch", "--quiet", "--depth", "1", "--", s.Repo, what); err != nil {
		return "", fmt.Errorf("fetching %s %s from %s: %w", s.Name, what, s.Repo, err)
	}
	got, err := git(ctx, tmp, "rev-parse", "FETCH_HEAD")
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(got) != commit {
		return "", fmt.Errorf("%s=%q moved from %s to %s while building: retry", s.BranchVar, s.Branch, commit, strings.TrimSpace(got))
	}
	if _, err := git(ctx, tmp, "checkout", "--quiet", "--detach", commit); err != nil {
		return "", err
	}
	if err := os.RemoveAll(filepath.Join(tmp, ".git")); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, os.WriteFile(dir+".complete", nil, 0o644)
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// Never prompt for credentials: an unreachable or private repository
	// must fail, not hang the release.
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", fmt.Errorf("git %s timed out after %s", args[0], Timeout)
		}
		msg := strings.TrimSpace(errb.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 && strings.HasPrefix(msg[i+1:], "fatal:") {
			msg = msg[i+1:]
		}
		return "", fmt.Errorf("git %s: %s", args[0], msg)
	}
	return out.String(), nil
}

// The hotfix overrides: the variables that name another DIRAC or LHCbDIRAC
// repository and branch. The release, CI's decision and the image's
// entrypoint all read these, and only these.
var (
	DIRACOverride     = Spec{Name: "DIRAC", RepoVar: "DIRAC_REPO", BranchVar: "DIRAC_BRANCH"}
	LHCbDIRACOverride = Spec{Name: "LHCbDIRAC", RepoVar: "LHCB_DIRAC_REPO", BranchVar: "LHCB_DIRAC_BRANCH"}
)

// Overrides reads both overrides (DIRAC first) from the environment.
func Overrides(getenv func(string) string) []Spec {
	var out []Spec
	for _, s := range []Spec{DIRACOverride, LHCbDIRACOverride} {
		s.Repo, s.Branch = getenv(s.RepoVar), getenv(s.BranchVar)
		out = append(out, s)
	}
	return out
}

// CheckOverride validates an override at build time: unset is fine, a
// branch needs its repository, and set values must pass Check.
func CheckOverride(s Spec) error {
	if s.Repo == "" && s.Branch != "" {
		return fmt.Errorf("%s=%q is set without %s: a hotfix build needs the repository too", s.BranchVar, s.Branch, s.RepoVar)
	}
	if s.Repo == "" {
		return nil
	}
	return Check(s)
}
