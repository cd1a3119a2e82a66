// Package gobuild compiles this repository's Go commands inside Dagger.
// Containers here cannot resolve the Go module proxy, so the modules are
// prepared on the host — `go mod download` into a dedicated cache, which is
// then handed to the container as a file:// GOPROXY — and the toolchain is
// the host's own Go, made once into an image on a Debian base pinned by
// digest (ToolchainImage). Builds are static (CGO_ENABLED=0), -trimpath, without build ids
// or timestamps, so the same sources give the same bytes.
package gobuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lines"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// Modules is a directory laid out as a module proxy (GOMODCACHE/cache/download).
type Modules struct {
	Dir string
	Key string // hash of go.sum: what the directory holds
}

// cacheRoot is the module cache Dir is the download cache of.
func (m Modules) cacheRoot() string { return filepath.Dir(filepath.Dir(m.Dir)) }

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
	c *dagger.Client
	// base is the image the builds start from: Debian and the toolchain
	// at GoRoot (ToolchainImage), pinned by digest.
	base    string
	version string
	mods    Modules
	root    string
	src     *dagger.Directory
	// plan says what each of the images' programs (every main package
	// under images/) is built from.
	plan plan
	once sync.Once
	deps *dagger.Container
	// Rerun, when set, makes Dagger run the builds again instead of using
	// its cache (reproducibility tests: the bytes must not change).
	Rerun string
	// CacheVolume names the Go build cache's volume; "" is the shared one
	// of this Go version. A new name is a build from an empty cache (the
	// benchmark's cold figure, the reproducibility test).
	CacheVolume string
}

// NewBuilder: base is a Debian image pinned by digest (the toolchain is
// added to it: ToolchainImage, made once); repoRoot the clone.
func NewBuilder(ctx context.Context, c *dagger.Client, p *progress.Reporter, base, repoRoot string, mods Modules) (*Builder, error) {
	base, err := ToolchainImage(ctx, p, base)
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
	pl, err := planBuilds(ctx, repoRoot, mods, programs)
	if err != nil {
		return nil, err
	}
	return &Builder{c: c, base: base, version: runtime.Version(), mods: mods, root: repoRoot, src: src, plan: pl}, nil
}

// ProgramsDir is where the images' programs live, relative to the clone.
const ProgramsDir = "images"

// Programs are the main packages below repoRoot/images (testdata aside),
// as ./-relative paths, sorted: what Builder.Binary builds each from its
// own files. Only package clauses are read, so this costs milliseconds.
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

// Container is the build container with the whole module's sources,
// before any command.
func (b *Builder) Container() *dagger.Container {
	return b.toolchain().WithDirectory("/src", b.src).WithWorkdir("/src")
}

// toolchain is the build container without sources.
func (b *Builder) toolchain() *dagger.Container {
	return b.c.Container().From(b.base).
		WithDirectory("/goproxy", b.c.Host().Directory(b.mods.Dir)).
		WithMountedCache("/root/go/pkg/mod", b.c.CacheVolume("lhcbdirac-gomod-"+b.mods.Key)).
		WithMountedCache("/root/.cache/go-build", b.c.CacheVolume(b.cacheVolume())).
		WithEnvVariable("PATH", GoRoot+"/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").
		WithEnvVariable("GOROOT", GoRoot).
		WithEnvVariable("GOPROXY", "file:///goproxy").
		WithEnvVariable("GOSUMDB", "off"). // go.sum still verifies every module
		WithEnvVariable("GOFLAGS", "-mod=readonly").
		WithEnvVariable("GOTOOLCHAIN", "local").
		WithEnvVariable("CGO_ENABLED", "0").
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
// and returns the executable with a fixed timestamp.
//
// One of the images' programs is built from its own files alone — the
// packages of this module it imports, as the go command lists them — on
// top of one step that compiled every package from outside the module
// the programs need (the standard library first): so a change to one
// program compiles and links that program and no other, and on a cold
// cache the shared packages are compiled once, not by every program at
// the same time. Any other package is built from the whole module.
func (b *Builder) Binary(pkg string) *dagger.File {
	pkg = "./" + path.Clean(strings.TrimPrefix(pkg, "./"))
	out := "/out/" + path.Base(pkg)
	ctr := b.Container()
	if files, ok := b.plan.files[pkg]; ok {
		ctr = b.dependencies().WithDirectory("/src", b.c.Host().Directory(b.root, dagger.HostDirectoryOpts{Include: files}))
	}
	return ctr.
		WithExec(append(append([]string{"go", "build"}, buildFlags...), "-o", out, pkg)).
		File(out).
		WithTimestamps(0)
}

// dependencies is the toolchain with every package from outside the
// module the programs import compiled into the build cache. Its inputs
// are go.mod, go.sum and that list: a change inside the module does not
// run it again.
func (b *Builder) dependencies() *dagger.Container {
	b.once.Do(func() {
		mod := b.c.Host().Directory(b.root, dagger.HostDirectoryOpts{Include: []string{"go.mod", "go.sum"}})
		ctr := b.toolchain().WithDirectory("/src", mod).WithWorkdir("/src")
		if len(b.plan.external) > 0 {
			args := append(append([]string{"go", "build"}, buildFlags...), b.plan.external...)
			ctr = ctr.WithExec(args)
		}
		b.deps = ctr
	})
	return b.deps
}

// plan is what the images' programs are built from, read from the go
// command on the host (go list -deps: a fraction of a second) with the
// build's own settings and the build's own module cache, offline.
type plan struct {
	// external are the packages from outside the module (the standard
	// library's included) any program imports, sorted.
	external []string
	// files are, by program (./-relative), the module's files it is built
	// from: go.mod, go.sum, and the Go and embedded files of every
	// package of the module it imports, sorted.
	files map[string][]string
}

// listedPackage is what planBuilds reads of `go list -json`.
type listedPackage struct {
	ImportPath string
	Dir        string
	Name       string
	Module     *struct{ Main bool }
	Deps       []string
	GoFiles    []string
	EmbedFiles []string
	Error      *struct{ Err string }
}

func planBuilds(ctx context.Context, root string, mods Modules, programs []string) (plan, error) {
	pl := plan{files: map[string][]string{}}
	if len(programs) == 0 {
		return pl, nil
	}
	pkgs, err := listDeps(ctx, root, mods, programs)
	if err != nil {
		return pl, err
	}
	byPath := map[string]listedPackage{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	external := map[string]bool{}
	for _, p := range pkgs {
		rel, err := filepath.Rel(root, p.Dir)
		prog := "./" + filepath.ToSlash(rel)
		if p.Name != "main" || err != nil || !slices.Contains(programs, prog) {
			continue
		}
		files := []string{"go.mod", "go.sum"}
		for _, dep := range append([]string{p.ImportPath}, p.Deps...) {
			d, ok := byPath[dep]
			switch {
			case !ok:
				return pl, fmt.Errorf("go list: %s imports %s, which it did not list", p.ImportPath, dep)
			case d.Module == nil || !d.Module.Main:
				external[d.ImportPath] = true
				continue
			}
			rel, err := filepath.Rel(root, d.Dir)
			if err != nil || strings.HasPrefix(rel, "..") {
				return pl, fmt.Errorf("go list: package %s is at %s, outside %s", d.ImportPath, d.Dir, root)
			}
			for _, f := range append(append([]string(nil), d.GoFiles...), d.EmbedFiles...) {
				files = append(files, path.Join(filepath.ToSlash(rel), f))
			}
		}
		slices.Sort(files)
		pl.files[prog] = slices.Compact(files)
	}
	for _, prog := range programs {
		if _, ok := pl.files[prog]; !ok {
			return pl, fmt.Errorf("go list does not see %s as a main package", prog)
		}
	}
	for p := range external {
		pl.external = append(pl.external, p)
	}
	slices.Sort(pl.external)
	return pl, nil
}

// listDeps lists the programs and every package they import, as the
// build in the container sees them: linux on this machine's architecture,
// no cgo, the build's module cache, no network.
func listDeps(ctx context.Context, root string, mods Modules, programs []string) ([]listedPackage, error) {
	args := append([]string{"list", "-deps", "-json=ImportPath,Dir,Name,Module,Deps,GoFiles,EmbedFiles,Error"}, programs...)
	// The go of the toolchain the container builds with (GOROOT), without
	// the host's go env file: the lists must be the container's.
	goroot, err := goEnv(ctx, "GOROOT")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(goroot, "bin", "go"), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-mod=readonly",
		"GOTOOLCHAIN=local", "GOWORK=off", "GOPROXY=off", "GOENV=off", "GOMODCACHE="+mods.cacheRoot())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps of the images' programs (what each is built from): %w\n%s", err, lines.Tail(stderr.String(), 10))
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list -deps of the images' programs: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go list -deps of the images' programs: package %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}
