// Package toolmod builds programs the pipeline does not import but runs —
// the Dagger engine and CLI, the Consul agent, cAdvisor — from tools
// modules of their own under tools/, each pinning one upstream release
// with a committed go.sum. The binaries land in the cache, keyed by the
// module's files, the Go version and the flags, so an unchanged module is
// built once.
package toolmod

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lines"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// Module is a tools module.
type Module struct {
	Dir     string // the module's directory
	Cache   string // the cache's sub-directory for its builds ("dagger")
	Version string // the upstream release, in progress lines and the directory name
	LDFlags string
	// Toolchain, when set, is the Go toolchain to build with (GOTOOLCHAIN;
	// the module proxy serves it): for a program whose code an older Go
	// accepted and the current one refuses.
	Toolchain string
}

// Binary is one program built from a module.
type Binary struct {
	Name    string // file name in the cache
	Package string // Go package path
}

// Key hashes the module's files, the Go version and the build flags.
func (m Module) Key() (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, m.Version, runtime.Version(), m.LDFlags)
	if m.Toolchain != "" {
		fmt.Fprintln(h, "toolchain", m.Toolchain)
	}
	var files []string
	err := filepath.WalkDir(m.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(m.Dir, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Build compiles the binaries into the cache, unless a build from
// identical inputs is there, and returns the directory holding them. The
// go.sum is complete and committed, so the build asks no checksum database.
func (m Module) Build(ctx context.Context, p *progress.Reporter, bins ...Binary) (string, error) {
	key, err := m.Key()
	if err != nil {
		return "", err
	}
	base, err := cachedir.Sub(m.Cache)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, m.Version+"-"+key)
	unlock, err := cachedir.Lock(dir + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := exec.LookPath("go"); err != nil {
		return "", errors.New("the go command is not on PATH: install Go (the pipeline builds its tools from source)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Every missing binary in one go build: the packages they share (most
	// of the engine's, for the Dagger binaries) are compiled once, and the
	// compiler keeps both cores busy while a link runs.
	var missing []Binary
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(dir, b.Name)); err != nil {
			missing = append(missing, b)
		}
	}
	step := p.Start("build %s %s", names(bins), m.Version)
	if len(missing) == 0 {
		step.Cached()
		return dir, nil
	}
	for _, group := range byOutputName(missing) {
		if err := m.build(ctx, group, dir); err != nil {
			return "", step.Fail(err)
		}
	}
	step.Done()
	return dir, nil
}

func names(bins []Binary) string {
	var ns []string
	for _, b := range bins {
		ns = append(ns, b.Name)
	}
	return strings.Join(ns, ", ")
}

// byOutputName splits bins into groups whose packages end in distinct
// names: go build -o DIR/ names each program after its package's last
// element, so two packages .../a/cmd and .../b/cmd cannot share one.
func byOutputName(bins []Binary) [][]Binary {
	var groups [][]Binary
	var used []map[string]bool
	for _, b := range bins {
		base := outputName(b.Package)
		if base == "" { // a relative package: a build of its own
			groups, used = append(groups, []Binary{b}), append(used, map[string]bool{})
			continue
		}
		i := 0
		for i < len(groups) && used[i][base] {
			i++
		}
		if i == len(groups) {
			groups, used = append(groups, nil), append(used, map[string]bool{})
		}
		groups[i], used[i][base] = append(groups[i], b), true
	}
	return groups
}

// outputName is the file go build -o DIR/ writes for an import path: its
// last element, or the one before a major-version suffix (…/v3); "" for a
// relative package.
func outputName(pkg string) string {
	if strings.HasPrefix(pkg, ".") {
		return ""
	}
	base := path.Base(pkg)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" {
		base = path.Base(path.Dir(pkg))
	}
	return base
}

// build compiles bins with one go build into a temporary directory of
// dir, then moves each program into place under its own name: a build
// that dies leaves no binary that looks whole.
func (m Module) build(ctx context.Context, bins []Binary, dir string) error {
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-mod=readonly", "-trimpath"}
	if m.LDFlags != "" {
		args = append(args, "-ldflags", m.LDFlags)
	}
	out := func(b Binary) string { return filepath.Join(tmp, outputName(b.Package)) }
	if len(bins) == 1 {
		out = func(Binary) string { return filepath.Join(tmp, "bin") }
		args = append(args, "-o", out(bins[0]))
	} else {
		args = append(args, "-o", tmp+string(os.PathSeparator))
	}
	for _, b := range bins {
		args = append(args, b.Package)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = m.Dir
	// Static binaries: some run inside Debian images whose libc need not
	// match the host's.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if m.Toolchain != "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+m.Toolchain)
	}
	outb, err := cmd.CombinedOutput()
	if err != nil {
		msg := lines.Tail(string(outb), 12)
		if FetchFailure(msg) {
			return fmt.Errorf("building %s: a Go module could not be fetched. Make the Go module proxy reachable (GOPROXY), or pre-fill the module cache (GOMODCACHE) on a machine that can:\n%s", names(bins), msg)
		}
		return fmt.Errorf("building %s from %s failed:\n%s", names(bins), m.Dir, msg)
	}
	for _, b := range bins {
		if err := os.Rename(out(b), filepath.Join(dir, b.Name)); err != nil {
			return fmt.Errorf("building %s: %w", b.Name, err)
		}
	}
	return nil
}

// FetchFailure tells a go command's output that failed for want of a module.
func FetchFailure(msg string) bool {
	for _, s := range []string{"dial tcp", "no such host", "403 Forbidden", "404 Not Found", "410 Gone",
		"module lookup disabled", "verifying module", "missing go.sum entry", "connection refused", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// RepoRoot finds the repository root (the directory holding tools/) from
// the working directory upwards, so targets and tests in sub-packages
// find it alike.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "dagger", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find tools/dagger/go.mod above the working directory: run from inside the lhcbdirac-pipeline clone")
		}
		dir = parent
	}
}
