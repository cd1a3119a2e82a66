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
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

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
	// programs are the images' programs (every main package under
	// images/), built by one go build; by their ./-relative paths.
	programs []string
	once     sync.Once
	all      *dagger.Directory
	// Rerun, when set, makes Dagger run the builds again instead of using
	// its cache (reproducibility tests: the bytes must not change).
	Rerun string
	// CacheVolume names the Go build cache's volume; "" is the shared one
	// of this Go version. A new name is a build from an empty cache (the
	// benchmark's cold figure, the reproducibility test).
	CacheVolume string
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
	programs, err := Programs(repoRoot)
	if err != nil {
		return nil, err
	}
	return &Builder{c: c, base: base, goroot: goroot, version: runtime.Version(), mods: mods, src: src, programs: programs}, nil
}

// ProgramsDir is where the images' programs live, relative to the clone.
const ProgramsDir = "images"

// Programs are the main packages below repoRoot/images (testdata aside),
// as ./-relative paths, sorted: what Builder.Binary builds together. Only
// package clauses are read, so this costs milliseconds.
func Programs(repoRoot string) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(repoRoot, ProgramsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != filepath.Join(repoRoot, ProgramsDir) && (n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.PackageClauseOnly)
		if err != nil {
			return fmt.Errorf("reading the package clause of %s: %w", p, err)
		}
		if f.Name.Name == "main" {
			rel, _ := filepath.Rel(repoRoot, filepath.Dir(p))
			out = append(out, "./"+filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return slices.Compact(out), err
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
		WithMountedCache("/root/.cache/go-build", b.c.CacheVolume(b.cacheVolume())).
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

// cacheVolume is the Go build cache: one per Go version (the cache is
// content-addressed, so every program and image shares it safely; a new
// toolchain starts a new one rather than filling the old).
func (b *Builder) cacheVolume() string {
	if b.CacheVolume != "" {
		return b.CacheVolume
	}
	return "lhcbdirac-gobuild-" + b.version
}

// buildFlags make the binary depend on the sources alone: no paths, no
// VCS stamp, no build id, no symbol table.
var buildFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid="}

// Binary builds one package (a path inside the module, e.g. ./images/pinger)
// and returns the executable with a fixed timestamp. The images' programs
// all come from one go build (Programs), which every recipe shares: the
// packages they have in common (the standard library first) are compiled
// once, not once per program at the same time on a cold cache.
func (b *Builder) Binary(pkg string) *dagger.File {
	pkg = "./" + path.Clean(strings.TrimPrefix(pkg, "./"))
	if slices.Contains(b.programs, pkg) && unique(b.programs, path.Base(pkg)) {
		return b.allPrograms().File(path.Base(pkg)).WithTimestamps(0)
	}
	out := "/out/" + path.Base(pkg)
	return b.Container().
		WithExec(append(append([]string{"go", "build"}, buildFlags...), "-o", out, pkg)).
		File(out).
		WithTimestamps(0)
}

// allPrograms is the one build of every program whose name no other
// shares (go build -o DIR/ names each after its directory).
func (b *Builder) allPrograms() *dagger.Directory {
	b.once.Do(func() {
		var pkgs []string
		for _, p := range b.programs {
			if unique(b.programs, path.Base(p)) {
				pkgs = append(pkgs, p)
			}
		}
		args := append(append([]string{"go", "build"}, buildFlags...), "-o", "/out/")
		b.all = b.Container().WithExec(append(args, pkgs...)).Directory("/out")
	})
	return b.all
}

func unique(pkgs []string, name string) bool {
	n := 0
	for _, p := range pkgs {
		if path.Base(p) == name {
			n++
		}
	}
	return n == 1
}
