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
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// Source is one resolved source tree.
type Source struct {
	Name   string // DIRAC or LHCbDIRAC
	Repo   string // as shown and stored: without credentials
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

// Location is a repository value parsed once: its transport checked, its
// credentials split off. git is given Fetch; Shown is what may be printed
// and stored; http(s) credentials reach git only through the environment
// (Env), never its command line.
type Location struct {
	Fetch, Shown   string
	user, password string
}

// Transports are the git transports a repository may use. Others — git's
// remote helpers ("fd::3", "ext::…") above all — are refused: they hang,
// or run commands.
var Transports = []string{"https", "http", "ssh", "git", "file"}

// scpLike is git's [user@]host:path form of an ssh URL.
var scpLike = regexp.MustCompile(`^([A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*:[^/:]`)

// ParseLocation checks a repository value (named by variable in errors,
// which never quote its credentials).
func ParseLocation(variable, v string) (Location, error) {
	shown := redact.URL(v)
	switch {
	case v == "":
		return Location{}, fmt.Errorf("%s is empty: give a git repository URL or path", variable)
	case strings.HasPrefix(v, "-") || strings.ContainsAny(v, "\x00\n\r"):
		return Location{}, fmt.Errorf("%s=%q is not a repository URL or path", variable, shown)
	case strings.Contains(v, "://"):
		u, err := url.Parse(v)
		if err != nil || u.Host == "" && u.Scheme != "file" {
			return Location{}, fmt.Errorf("%s=%q is not a valid URL", variable, shown)
		}
		scheme := strings.ToLower(u.Scheme)
		if !slices.Contains(Transports, scheme) {
			return Location{}, fmt.Errorf("%s=%q: transport %q is not allowed (use %s)", variable, shown, u.Scheme, strings.Join(Transports, ", "))
		}
		loc := Location{Fetch: v, Shown: shown}
		_, hasPassword := u.User.Password()
		switch {
		case u.User == nil:
		case scheme == "http" || scheme == "https":
			loc.Fetch, loc.user, loc.password = redact.Split(v)
		case scheme == "ssh" && !hasPassword:
			// ssh://user@host: the user is not a secret and ssh needs it.
		default:
			return Location{}, fmt.Errorf("%s=%q: %s URLs cannot carry credentials (use an ssh key, or https with a token)", variable, shown, scheme)
		}
		return loc, nil
	case strings.Contains(v, "::"):
		return Location{}, fmt.Errorf("%s=%q: git remote helpers (<transport>::<address>) are not allowed (use %s)", variable, shown, strings.Join(Transports, ", "))
	case scpLike.MatchString(v) && !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "."):
		return Location{Fetch: v, Shown: v}, nil // [user@]host:path, ssh
	default:
		return Location{Fetch: v, Shown: v}, nil // a local path
	}
}

// Env is the environment git needs beside os.Environ(): a credential
// helper that answers from variables, so http(s) credentials never appear
// in git's argv, in a URL git prints, or on disk. Other helpers are
// cleared, so what is used is exactly what was given.
func (l Location) Env() []string {
	if l.user == "" && l.password == "" {
		return nil
	}
	return []string{
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=credential.helper", "GIT_CONFIG_VALUE_0=",
		"GIT_CONFIG_KEY_1=credential.helper",
		`GIT_CONFIG_VALUE_1=!f() { test "$1" = get && printf 'username=%s\npassword=%s\n' "$LHCBDIRAC_GIT_USERNAME" "$LHCBDIRAC_GIT_PASSWORD"; }; f`,
		"LHCBDIRAC_GIT_USERNAME=" + l.user, "LHCBDIRAC_GIT_PASSWORD=" + l.password,
	}
}

// Check validates the values without touching the network.
func Check(s Spec) error {
	if _, err := ParseLocation(s.RepoVar, s.Repo); err != nil {
		return err
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
	loc, _ := ParseLocation(s.RepoVar, s.Repo)
	commit, err := remoteCommit(ctx, s, loc)
	if err != nil {
		return Source{}, err
	}
	dir, err := checkout(ctx, s, loc, commit)
	if err != nil {
		return Source{}, err
	}
	return Source{Name: s.Name, Repo: loc.Shown, Branch: s.Branch, Commit: commit, Dir: dir}, nil
}

func remoteCommit(ctx context.Context, s Spec, loc Location) (string, error) {
	ref := "HEAD"
	if s.Branch != "" {
		ref = "refs/heads/" + s.Branch
	}
	out, err := git(ctx, "", loc, "ls-remote", "--", loc.Fetch, ref)
	if err != nil {
		return "", fmt.Errorf("%s=%q cannot be reached (check the URL, network and credentials): %w", s.RepoVar, loc.Shown, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == ref && sha1RE.MatchString(f[0]) {
			return f[0], nil
		}
	}
	if s.Branch == "" {
		return "", fmt.Errorf("%s=%q has no default branch (HEAD): set %s", s.RepoVar, loc.Shown, s.BranchVar)
	}
	return "", fmt.Errorf("%s=%q does not exist in %s=%q (git ls-remote found no refs/heads/%s)", s.BranchVar, s.Branch, s.RepoVar, loc.Shown, s.Branch)
}

func checkout(ctx context.Context, s Spec, loc Location, commit string) (string, error) {
	base, err := cachedir.Sub("sources")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, s.Name+"-"+commit)
	_, err = cachedir.Entry{Dir: dir}.Ensure(func(tmp string) error {
		if _, err := git(ctx, "", Location{}, "init", "--quiet", tmp); err != nil {
			return err
		}
		// Fetch the branch (servers need not allow fetching a bare commit
		// id), then insist on the commit resolved above: a branch moved in
		// between is an error, never a silent mix.
		what := "HEAD"
		if s.Branch != "" {
			what = "refs/heads/" + s.Branch
		}
		if _, err := git(ctx, tmp, loc, "fetch", "--quiet", "--depth", "1", "--", loc.Fetch, what); err != nil {
			return fmt.Errorf("fetching %s %s from %s: %w", s.Name, what, loc.Shown, err)
		}
		got, err := git(ctx, tmp, Location{}, "rev-parse", "FETCH_HEAD")
		if err != nil {
			return err
		}
		if strings.TrimSpace(got) != commit {
			return fmt.Errorf("%s=%q moved from %s to %s while building: retry", s.BranchVar, s.Branch, commit, strings.TrimSpace(got))
		}
		if _, err := git(ctx, tmp, Location{}, "checkout", "--quiet", "--detach", commit); err != nil {
			return err
		}
		return os.RemoveAll(filepath.Join(tmp, ".git"))
	})
	return dir, err
}

// git runs git with loc's credentials in its environment; its messages are
// scrubbed of them all the same (a server may echo a URL back).
func git(ctx context.Context, dir string, loc Location, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// Never prompt for credentials: an unreachable or private repository
	// must fail, not hang the release.
	cmd.Env = append(append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false"), loc.Env()...)
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
		return "", fmt.Errorf("git %s: %s", args[0], redact.Scrub(msg, loc.Secrets()))
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

// Secrets are the credentials to scrub from the messages of a tool that used them.
func (l Location) Secrets() []string {
	var out []string
	for _, v := range []string{l.user, l.password} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
