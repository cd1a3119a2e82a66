// Package hostimages builds, without pulling anything, the two images the
// pipeline runs on the host's Docker: the Dagger engine (v0.19.7, compiled
// from the pinned tools module) and the embedded OCI registry (Debian's
// docker-registry). Both stand on one debootstrap tree, so the second costs
// almost nothing once the first exists.
package hostimages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// DaggerVersion is the engine, CLI and SDK version; all three must match.
const DaggerVersion = "v0.19.7"

// ToolsModuleDir is where the tools module lives, relative to the repository.
const ToolsModuleDir = "tools/dagger"

// Binary is one program built from the tools module.
type Binary struct {
	Name    string // file name in the cache
	Package string // Go package path
}

// Binaries are the programs the engine image and the host need (ENGINE.md).
var Binaries = []Binary{
	{"dagger", "github.com/dagger/dagger/cmd/dagger"},
	{"dagger-engine", "github.com/dagger/dagger/cmd/engine"},
	{"dagger-init", "github.com/dagger/dagger/cmd/init"},
	{"buildctl", "github.com/dagger/dagger/cmd/dialstdio"},
	{"dnsname", "github.com/dagger/dagger/cmd/dnsname"},
}

// Tools is the directory holding the built binaries.
type Tools struct {
	Dir string
	Key string // hash of everything the binaries are built from
}

// Path returns the path of one built binary.
func (t Tools) Path(name string) string { return filepath.Join(t.Dir, name) }

// RepoRoot finds the repository root (the directory holding the tools module)
// from the working directory upwards, so targets and tests in sub-packages
// find it alike.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, ToolsModuleDir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("cannot find %s/go.mod above the working directory: run from inside the lhcbdirac-pipeline clone", ToolsModuleDir)
		}
		dir = parent
	}
}

// toolsKey hashes the tools module's files, the Go version and the build flags.
func toolsKey(modDir string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, DaggerVersion, runtime.Version(), ldflags())
	var files []string
	err := filepath.WalkDir(modDir, func(path string, d fs.DirEntry, err error) error {
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
		rel, _ := filepath.Rel(modDir, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func ldflags() string {
	return "-s -w -X github.com/dagger/dagger/engine.Version=" + DaggerVersion +
		" -X github.com/dagger/dagger/engine.Tag=" + DaggerVersion
}

// BuildTools compiles the Dagger binaries from the tools module into the
// cache, unless a build from identical inputs is already there. The go.sum is
// complete and committed, so the build asks no checksum database (the one
// public database lacks entries for Dagger's own modules).
func BuildTools(ctx context.Context, p *progress.Reporter, repoRoot string) (Tools, error) {
	modDir := filepath.Join(repoRoot, ToolsModuleDir)
	key, err := toolsKey(modDir)
	if err != nil {
		return Tools{}, err
	}
	base, err := cachedir.Sub("dagger")
	if err != nil {
		return Tools{}, err
	}
	t := Tools{Dir: filepath.Join(base, DaggerVersion+"-"+key), Key: key}
	unlock, err := cachedir.Lock(t.Dir + ".lock")
	if err != nil {
		return Tools{}, err
	}
	defer unlock()
	if _, err := exec.LookPath("go"); err != nil {
		return Tools{}, errors.New("the go command is not on PATH: install Go (the pipeline builds the Dagger engine from source)")
	}
	for _, b := range Binaries {
		step := p.Start("build %s %s", b.Name, DaggerVersion)
		if _, err := os.Stat(t.Path(b.Name)); err == nil {
			step.Cached()
			continue
		}
		if err := goBuild(ctx, modDir, b, t.Path(b.Name)); err != nil {
			return Tools{}, step.Fail(err)
		}
		step.Done()
	}
	return t, nil
}

func goBuild(ctx context.Context, modDir string, b Binary, out string) error {
	tmp := out + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-mod=readonly", "-trimpath", "-ldflags", ldflags(), "-o", tmp, b.Package)
	cmd.Dir = modDir
	// Static binaries: dagger-init and the engine run inside a Debian image
	// whose libc need not match the host's.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	out2, err := cmd.CombinedOutput()
	if err != nil {
		msg := lastLines(string(out2), 12)
		if looksLikeFetchFailure(msg) {
			return fmt.Errorf("building %s: a Go module could not be fetched. Make the Go module proxy reachable (GOPROXY), or pre-fill the module cache (GOMODCACHE) on a machine that can:\n%s", b.Name, msg)
		}
		return fmt.Errorf("building %s from %s failed:\n%s", b.Name, modDir, msg)
	}
	return os.Rename(tmp, out)
}

func looksLikeFetchFailure(msg string) bool {
	for _, s := range []string{"dial tcp", "no such host", "403 Forbidden", "404 Not Found", "410 Gone",
		"module lookup disabled", "verifying module", "missing go.sum entry", "connection refused", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
