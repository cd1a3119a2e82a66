// Package gobuild compiles this repository's Go commands inside Dagger.
// Containers here cannot resolve the Go module proxy, so the modules are
// prepared on the host — `go mod download` into a dedicated cache, which is
// then handed to the container as a file:// GOPROXY — and the toolchain is
// the host's own Go, handed in as a directory on a Debian base pinned by
// digest. Builds are static (CGO_ENABLED=0), -trimpath, without build ids
// or timestamps, so the same sources give the same bytes.
package gobuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// Modules is a directory laid out as a module proxy (GOMODCACHE/cache/download).
type Modules struct {
	Dir string
	Key string // hash of go.sum: what the directory holds
}

// PrepareModules downloads every module of repoRoot's build list into a
// cache directory of its own (reused while go.sum is unchanged). The host's
// module cache serves as the first proxy, so a warm host needs no network.
func PrepareModules(ctx context.Context, p *progress.Reporter, repoRoot string) (Modules, error) {
	sum, err := os.ReadFile(filepath.Join(repoRoot, "go.sum"))
	if err != nil {
		return Modules{}, err
	}
	h := sha256.Sum256(sum)
	key := hex.EncodeToString(h[:])[:16]
	base, err := cachedir.Sub("gomod")
	if err != nil {
		return Modules{}, err
	}
	modcache := filepath.Join(base, key)
	m := Modules{Dir: filepath.Join(modcache, "cache", "download"), Key: key}
	step := p.Start("Go modules for builds in Dagger")
	built, err := cachedir.Entry{Dir: modcache}.Ensure(func(tmp string) error {
		hostCache, err := goEnv(ctx, "GOMODCACHE")
		if err != nil {
			return err
		}
		proxy, _ := goEnv(ctx, "GOPROXY")
		cmd := exec.CommandContext(ctx, "go", "mod", "download")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "GOMODCACHE="+tmp, "GOFLAGS=-mod=mod",
			"GOPROXY=file://"+filepath.Join(hostCache, "cache", "download")+","+proxy)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go mod download for the builds in Dagger failed (is the Go module proxy reachable?):\n%s", out)
		}
		// The go command makes its module cache read-only; the entry is
		// renamed into place, so its directories must stay writable.
		return makeWritable(tmp)
	})
	switch {
	case err != nil:
		return Modules{}, step.Fail(err)
	case !built:
		step.Cached()
	default:
		step.Done()
	}
	return m, nil
}

// makeWritable gives the owner write permission on every directory.
func makeWritable(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chmod(path, 0o755)
		}
		return err
	})
}

func goEnv(ctx context.Context, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Builder builds Go commands in a container.
type Builder struct {
	c       *dagger.Client
	base    string
	goroot  string
	version string
	mods    Modules
	src     *dagger.Directory
	// Rerun, when set, makes Dagger run the builds again instead of using
	// its cache (reproducibility tests: the bytes must not change).
	Rerun string
}

// NewBuilder: base is a Debian image pinned by digest; repoRoot the clone.
func NewBuilder(ctx context.Context, c *dagger.Client, base, repoRoot string, mods Modules) (*Builder, error) {
	goroot, err := goEnv(ctx, "GOROOT")
	if err != nil {
		return nil, err
	}
	src := c.Host().Directory(repoRoot, dagger.HostDirectoryOpts{
		Include: []string{"go.mod", "go.sum", "**/*.go", "**/*.json", "**/*.tmpl"},
		Exclude: []string{".git", "**/testdata", "**/*_test.go", "tools", "dist", "docs"},
	})
	return &Builder{c: c, base: base, goroot: goroot, version: runtime.Version(), mods: mods, src: src}, nil
}

// GoVersion is the toolchain the builds use (the host's, recorded in labels).
func (b *Builder) GoVersion() string { return b.version }

// Container is the build container, before any command.
func (b *Builder) Container() *dagger.Container {
	toolchain := b.c.Host().Directory(b.goroot, dagger.HostDirectoryOpts{Exclude: []string{"test", "doc", "api", "misc"}})
	return b.c.Container().From(b.base).
		WithDirectory("/usr/local/go", toolchain).
		WithDirectory("/goproxy", b.c.Host().Directory(b.mods.Dir)).
		WithMountedCache("/root/go/pkg/mod", b.c.CacheVolume("lhcbdirac-gomod-"+b.mods.Key)).
		WithMountedCache("/root/.cache/go-build", b.c.CacheVolume("lhcbdirac-gobuild-"+b.version)).
		WithEnvVariable("PATH", "/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").
		WithEnvVariable("GOROOT", "/usr/local/go").
		WithEnvVariable("GOPROXY", "file:///goproxy").
		WithEnvVariable("GOSUMDB", "off"). // go.sum still verifies every module
		WithEnvVariable("GOFLAGS", "-mod=readonly").
		WithEnvVariable("GOTOOLCHAIN", "local").
		WithEnvVariable("CGO_ENABLED", "0").
		WithDirectory("/src", b.src).
		WithWorkdir("/src").
		WithEnvVariable("LHCBDIRAC_RERUN", b.Rerun)
}

// Binary builds one package (a path inside the module, e.g. ./images/pinger)
// and returns the executable with a fixed timestamp.
func (b *Builder) Binary(pkg string) *dagger.File {
	out := "/out/" + path.Base(pkg)
	return b.Container().
		WithExec([]string{"go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", out, pkg}).
		File(out).
		WithTimestamps(0)
}
