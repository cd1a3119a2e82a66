// Package diracentry is the lhcbdirac image's entrypoint: it sets up the
// DIRAC environment (sources /opt/dirac/bashrc), applies the hotfix
// variables the seed's dockerEntrypoint.sh honoured at every start
// (DIRAC_REPO/DIRAC_BRANCH, LHCB_DIRAC_REPO/LHCB_DIRAC_BRANCH), then
// returns the command to exec.
//
// Differences from the seed, on purpose: values reach git as separate
// arguments after "--" and are validated first (a branch with spaces or a
// leading '-' is refused, never interpreted by a shell); a hotfix is
// applied once per container and remembered, so the COMMAND health check,
// which runs through this entrypoint too, does not clone again; the code is
// pip-installed over the release (no DIRAC.orig/DIRAC_alt symlinks), which
// is how DIRAC v8+ is laid out.
package diracentry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/shellenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// Root is where the image installs DIRAC.
const Root = "/opt/dirac"

// Entry prepares a container start.
type Entry struct {
	Root string    // Root, or a test directory
	Log  io.Writer // the container's stderr
}

// Prepare returns the environment to exec args with.
func (e Entry) Prepare(ctx context.Context, args []string, environ []string) ([]string, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("usage: dockerEntrypoint.sh <command> [args...] (e.g. dirac-service DataManagement/FileCatalog)")
	}
	env, err := shellenv.Source(ctx, filepath.Join(e.Root, "bashrc"), shellenv.Environ(environ))
	if err != nil {
		return nil, fmt.Errorf("setting up the DIRAC environment from %s: %w", filepath.Join(e.Root, "bashrc"), err)
	}
	// LHCbDIRAC after DIRAC, as pip would resolve them.
	for _, h := range sources.Overrides(func(k string) string { return env[k] }) {
		if h.Repo == "" {
			if h.Branch != "" {
				e.logf("%s=%q is set without %s: ignored, as the seed did", h.BranchVar, h.Branch, h.RepoVar)
			} else {
				e.logf("No alternative %s repository specified", h.Name)
			}
			continue
		}
		if err := e.apply(ctx, h, env); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out, nil
}

func (e Entry) logf(format string, a ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, "[dockerEntrypoint] "+format+"\n", a...)
	}
}

// apply clones the hotfix and pip-installs it over the release, once: a
// marker records what was applied, and a lock makes a health check that
// starts meanwhile wait instead of cloning too.
func (e Entry) apply(ctx context.Context, h sources.Spec, env map[string]string) error {
	if err := sources.Check(h); err != nil {
		return err
	}
	loc, _ := sources.ParseLocation(h.RepoVar, h.Repo)
	dir := filepath.Join(e.Root, "hotfix")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	want := loc.Shown + "\n" + h.Branch + "\n" // no credentials on disk
	marker := filepath.Join(dir, h.Name+".applied")
	if b, err := os.ReadFile(marker); err == nil && string(b) == want {
		e.logf("%s hotfix from %s (branch %q) already applied", h.Name, loc.Shown, h.Branch)
		return nil
	}
	src := filepath.Join(dir, h.Name)
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	clone := []string{"clone", "--quiet", "--depth", "1", "--no-hardlinks"} // a local path must not hardlink across overlay layers
	if h.Branch != "" {
		clone = append(clone, "--branch", h.Branch)
	}
	clone = append(clone, "--", loc.Fetch, src)
	e.logf("%s hotfix: cloning %s (branch %q)", h.Name, loc.Shown, h.Branch)
	if err := run(ctx, env, loc, "git", clone...); err != nil {
		return fmt.Errorf("%s hotfix from %s=%q %s=%q: %w", h.Name, h.RepoVar, loc.Shown, h.BranchVar, h.Branch, err)
	}
	// A hotfix replaces the code, not its dependencies: nothing is fetched
	// from an index at container start.
	if err := run(ctx, env, sources.Location{}, "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation", src); err != nil {
		return fmt.Errorf("%s hotfix: pip install of %s failed: %w", h.Name, loc.Shown, err)
	}
	return os.WriteFile(marker, []byte(want), 0o644)
}

// run runs name with the DIRAC environment plus loc's credentials (for git:
// in the environment, never in args); its output, which may quote a URL,
// is scrubbed of them.
func run(ctx context.Context, env map[string]string, loc sources.Location, name string, args ...string) error {
	path, err := lookPath(name, env["PATH"])
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(append(cmd.Env, "GIT_TERMINAL_PROMPT=0"), loc.Env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, redact.Scrub(strings.TrimSpace(out.String()), loc.Secrets()))
	}
	return nil
}

// LookPath finds name on the PATH of the DIRAC environment.
func LookPath(name string, environ []string) (string, error) {
	return lookPath(name, shellenv.Environ(environ)["PATH"])
}

func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on the DIRAC environment's PATH (%s)", name, path)
}
