// Package lhcbdirac is the lhcbdirac service image: its recipe (here), the
// lock it installs (lock.go), its programs (entrypoint/ over diracentry/,
// dirac-self-ping/ over selfping/), the FIXTURE sources of the pipeline's
// fast tests (fixture/) and its smoke test, which runs every service as
// Marathon would.
package lhcbdirac

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// DiracRoot is where DIRAC is installed; dirac.cfg and grid-security are
// mounted under DiracRoot/etc.
const DiracRoot = "/opt/dirac"

// EntrypointPath keeps the seed's entrypoint path, which app definitions and
// their COMMAND health checks name.
const EntrypointPath = DiracRoot + "/dockerEntrypoint.sh"

// LockPath is where the image keeps the lock it was installed from.
const LockPath = DiracRoot + "/lhcbdirac.lock"

//go:embed install.sh
var installScript string

// TornadoServicePath is dirac-tornado-service, which runs one HTTPS
// (Tornado) service as dirac-service runs a DIPS one: the rendered app of
// an HTTPS service runs it (marathon/render/app.json.tmpl).
const TornadoServicePath = "/usr/local/bin/dirac-tornado-service"

//go:embed tornado-service/dirac-tornado-service
var tornadoService string

// patchFiles are the project's patches to source-built distributions
// (patches/<name>-<version>.patch, each saying what it changes and why):
// install.sh applies each to /src/<name>-<version> before building it.
// They reach the build as files of its own step, so a changed patch is a
// new install (and, being under images/, a new inputs digest).
//
//go:embed patches/*.patch
var patchFiles embed.FS

// Patches are the project's patches, by file name.
func Patches() map[string]string {
	out := map[string]string{}
	names, _ := fs.Glob(patchFiles, "patches/*.patch")
	for _, n := range names {
		b, err := patchFiles.ReadFile(n)
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		out[path.Base(n)] = string(b)
	}
	return out
}

// AppliedPatch is a patch the install applies, by its file's sha256 (hex).
type AppliedPatch struct{ Name, SHA256 string }

// AppliedPatches are the patches install.sh applies for this lock: those
// named after one of its source-built distributions at its locked
// version, the hotfixed ones (skip) aside. The DIRACOS route builds
// nothing from source and applies none.
func AppliedPatches(l *Lock, skip ...string) []AppliedPatch {
	patches := Patches()
	var out []AppliedPatch
	for _, p := range l.Runtime {
		name := p.Name + "-" + p.Version + ".patch"
		text, ok := patches[name]
		if !ok || !slices.Contains(l.SourceBuilt, p.Key()) || containsNorm(skip, p.Key()) {
			continue
		}
		sum := sha256.Sum256([]byte(text))
		out = append(out, AppliedPatch{Name: name, SHA256: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(out, func(a, b AppliedPatch) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Inputs are what the lhcbdirac image is made from.
type Inputs struct {
	Base        string // the runtime base, pinned by digest
	BuilderBase string // the build base (compilers, -dev packages), pinned by digest
	Version     version.Version

	// Lock, when set, is installed: LHCbDIRAC and its whole tree from the
	// index, every distribution checked against its hash. Without it the
	// FIXTURE route runs: Sources are DIRAC and LHCbDIRAC themselves.
	Lock *Lock
	// IndexURL is the index (with its credentials), nil for the default.
	IndexURL *dagger.Secret
	// IndexShown is the index as a label may show it ("" for the default).
	IndexShown string

	// Sources are git checkouts installed in place of the locked DIRAC or
	// LHCbDIRAC (a hotfix), or, on the FIXTURE route, DIRAC and LHCbDIRAC.
	Sources    []sources.Source
	SourceDirs []*dagger.Directory // one per Source

	// Installer is DIRACOS2's installer (DIRACOS-Linux-x86_64.sh): on the
	// index route it brings Python and the compiled distributions; on the
	// FIXTURE route it is the FIXTURE installer. InstallerFrom is its label.
	Installer     *dagger.File
	InstallerFrom string

	// Rerun, when set, makes Dagger install again instead of using its
	// cache; it never reaches the image (reproducibility tests).
	Rerun string
	// UVCache names the cache volume of uv's downloads ("" for the
	// default); a new name is a build from an empty cache.
	UVCache string
}

// Validate reports inputs the recipe cannot build from.
func (in Inputs) Validate() error {
	if len(in.Sources) != len(in.SourceDirs) {
		return fmt.Errorf("lhcbdirac: %d sources but %d source directories", len(in.Sources), len(in.SourceDirs))
	}
	if in.Lock == nil && (!in.has("DIRAC") || !in.has("LHCbDIRAC") || in.Installer == nil) {
		return fmt.Errorf("lhcbdirac: without a lock, both DIRAC and LHCbDIRAC must come from git and an installer must be given (the FIXTURE route)")
	}
	return nil
}

func (in Inputs) has(name string) bool {
	for _, s := range in.Sources {
		if s.Name == name {
			return true
		}
	}
	return false
}

// bashrc is what the entrypoint sources: where DIRAC is, its configuration
// and certificates. DIRAC computes its root from sys.base_prefix (/usr in a
// venv), so DIRAC_ROOT_PATH says where etc/dirac.cfg and etc/grid-security
// are mounted.
func bashrc(diracos bool) string {
	b := "# Written by the lhcbdirac recipe; sourced by the entrypoint.\n"
	if diracos {
		b += ". /opt/dirac/diracos/diracosrc\n"
	} else {
		b += "export PATH=/opt/dirac/bin:$PATH\n"
	}
	return b + `export DIRAC=/opt/dirac
export DIRAC_ROOT_PATH=/opt/dirac
export DIRACSYSCONFIG=/opt/dirac/etc/dirac.cfg
export X509_CERT_DIR=/opt/dirac/etc/grid-security/certificates
`
}

// Recipe is the service image. The install runs in a builder container;
// only /opt/dirac is copied onto the runtime base (no compiler, headers or
// package cache). Its layers go from what changes least to what changes
// most, so a change rebuilds and pushes only its own layer and those
// above it: the base; the tree installed from the lock (hundreds of
// megabytes, new only with the lock, the bases or a hotfix); the small
// configuration files (bashrc, the lock's text, the grid-security mount
// point); then the project's programs, dirac-discover, dirac-self-ping,
// dirac-tornado-service and the entrypoint, a few megabytes each. Every
// time in the layers is zeroed when the image is pushed (the canonical
// form, internal/build/push), so the same inputs give the same digest
// without touching the tree's files here.
func Recipe(c *dagger.Client, b *gobuild.Builder, in Inputs) *dagger.Container {
	var tree *dagger.Directory
	if in.Lock != nil {
		tree = lockInstall(c, in).Directory(DiracRoot)
	} else {
		// The FIXTURE's install ran through the entrypoint: it and the
		// bashrc it read come from their own layers instead.
		tree = fixtureInstall(c, b, in).Directory(DiracRoot).
			WithoutFiles([]string{strings.TrimPrefix(EntrypointPath, DiracRoot+"/"), "bashrc"})
	}
	ctr := c.Container().From(in.Base).
		WithDirectory(DiracRoot, tree).
		WithDirectory(DiracRoot, configFiles(c, in)).
		WithFile("/usr/local/bin/dirac-discover", b.Binary("./images/lhcbdirac/dirac-discover")).
		WithFile("/usr/local/bin/dirac-self-ping", b.Binary("./images/lhcbdirac/dirac-self-ping")).
		WithNewFile(TornadoServicePath, tornadoService, dagger.ContainerWithNewFileOpts{Permissions: 0o755}).
		WithFile(EntrypointPath, b.Binary("./images/lhcbdirac/entrypoint")).
		WithEnvVariable("PATH", baseimage.StandardPath).
		WithEnvVariable("LHCB_DIRAC_VERSION", in.Version.Raw).
		WithWorkdir(DiracRoot).
		WithEntrypoint([]string{EntrypointPath}).
		WithLabel("org.opencontainers.image.title", "lhcbdirac").
		WithLabel("org.opencontainers.image.version", in.Version.Raw).
		WithLabel("org.opencontainers.image.base.name", in.Base).
		WithLabel("org.lhcbdirac.pipeline.go-version", b.GoVersion())
	if in.InstallerFrom != "" {
		ctr = ctr.WithLabel("org.lhcbdirac.diracos.installer", in.InstallerFrom)
	}
	if in.Lock != nil {
		ctr = ctr.WithLabel("org.lhcbdirac.lock.digest", in.Lock.Digest()).
			WithLabel("org.lhcbdirac.lhcbdirac.version", in.Lock.LHCbDIRACVersion()).
			WithLabel("org.lhcbdirac.dirac.version", in.Lock.DIRACVersion())
		if in.IndexShown != "" {
			ctr = ctr.WithLabel("org.lhcbdirac.index", redact.URL(in.IndexShown))
		}
	} else {
		ctr = ctr.WithLabel("org.lhcbdirac.sources", "FIXTURE (a test double: not the real DIRAC)")
	}
	for _, s := range in.Sources {
		key := "org.lhcbdirac." + strings.ToLower(s.Name)
		ctr = ctr.WithLabel(key+".repo", s.Repo).
			WithLabel(key+".branch", s.Branch).
			WithLabel(key+".commit", s.Commit)
	}
	return ctr
}

// configFiles are /opt/dirac's small files, one layer: what the
// entrypoint sources, the lock the tree was installed from, and the mount
// point of grid-security.
func configFiles(c *dagger.Client, in Inputs) *dagger.Directory {
	d := c.Directory().
		WithNewFile("bashrc", bashrc(in.Installer != nil)).
		WithNewDirectory("etc/grid-security/certificates")
	if in.Lock != nil {
		d = d.WithNewFile(strings.TrimPrefix(LockPath, DiracRoot+"/"), string(in.Lock.Raw))
	}
	return d
}

// HotfixVersion is the version a hotfix checkout is installed as: the
// locked release's, marked with the commit (a PEP 440 local version, which
// every requirement on the release still admits).
func HotfixVersion(locked string, s sources.Source) string {
	return locked + "+hotfix." + s.Commit[:12]
}

// installedLast is installed after every other distribution. LHCbDIRAC
// ships console scripts under the names of DIRAC's (its own dirac-dms-*
// and others, 14 in 12.0.21); uv installs in parallel, so which of the two
// files ended in bin/ changed from build to build, and with it the image's
// digest. pip installs a dependency before what needs it, so LHCbDIRAC's
// scripts win there; they win here too, every time.
const installedLast = "LHCbDIRAC"

// inputFile is one file install.sh reads.
type inputFile struct{ path, text string }

// installInputs are the files recipe.go writes for install.sh: each is
// written from the lock's parsed entries (never copied from the lock
// file), without the distributions hotfixed from the sources.
func installInputs(l *Lock, srcs []sources.Source) []inputFile {
	var skip []string
	for _, s := range srcs {
		skip = append(skip, s.Name)
	}
	var last []byte
	if !containsNorm(skip, pytools.Normalize(installedLast)) {
		last = l.RequirementOf(installedLast)
	}
	return []inputFile{
		{"/in/build.txt", string(l.BuildRequirements())},
		{"/in/runtime.txt", string(l.RuntimeRequirements(append(skip, installedLast)...))},
		{"/in/last.txt", string(last)},
		{"/in/sources.txt", string(l.SourceRequirements(skip...))},
		{"/in/extra.txt", string(l.ExtraTools())},
	}
}

// lockInstall runs install.sh in the builder: the lock's distributions
// (the hotfixed ones aside) from the index, the source-only ones built by
// the locked build tools, the hotfixes built the same way.
func lockInstall(c *dagger.Client, in Inputs) *dagger.Container {
	l := in.Lock
	cache := in.UVCache
	if cache == "" {
		cache = "lhcbdirac-uv"
	}
	ctr := c.Container().From(in.BuilderBase).
		WithEnvVariable("PATH", baseimage.StandardPath).
		WithEnvVariable("SOURCE_DATE_EPOCH", "0").
		WithEnvVariable("PYTHONDONTWRITEBYTECODE", "1").
		WithEnvVariable("LHCBDIRAC_RERUN", in.Rerun).
		WithMountedCache("/root/.cache/uv", c.CacheVolume(cache)).
		WithNewFile("/in/install.sh", installScript).
		WithNewFile("/in/tools.lock", string(pytools.Lock))
	for _, f := range installInputs(l, in.Sources) {
		ctr = ctr.WithNewFile(f.path, f.text)
	}
	patches := Patches()
	for _, name := range slices.Sorted(maps.Keys(patches)) {
		ctr = ctr.WithNewFile("/in/patches/"+name, patches[name])
	}
	if in.IndexURL != nil {
		ctr = ctr.WithSecretVariable("PIP_INDEX_URL", in.IndexURL).
			WithSecretVariable("UV_DEFAULT_INDEX", in.IndexURL)
	}
	diracos := in.Installer != nil
	if diracos {
		ctr = ctr.WithFile("/in/"+installerName, in.Installer, dagger.ContainerWithFileOpts{Permissions: 0o755}).
			WithEnvVariable("DIRACOS_INSTALLER", "/in/"+installerName)
	}
	for i, s := range in.Sources {
		pin, _ := l.Find(s.Name)
		ctr = ctr.WithDirectory("/in/src/"+s.Name, in.SourceDirs[i]).
			WithEnvVariable("SETUPTOOLS_SCM_PRETEND_VERSION_FOR_"+strings.ToUpper(pytools.Normalize(s.Name)), HotfixVersion(pin.Version, s))
	}
	return ctr.WithExec([]string{"bash", "/in/install.sh"})
}

// InstallTimes are the seconds each phase of the lock's install took
// (install.sh: tools, download-sources, compile — the index's install
// beside it —, install-index, install, check): what a
// benchmark reads of a build.
func InstallTimes(ctx context.Context, c *dagger.Client, b *gobuild.Builder, in Inputs) (map[string]float64, error) {
	out, err := lockInstall(c, in).File("/in/times").Contents(ctx)
	if err != nil {
		return nil, err
	}
	times := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var name string
		var secs float64
		if _, err := fmt.Sscan(line, &name, &secs); err == nil {
			times[name] = secs
		}
	}
	return times, nil
}

// SingleStage is what a naive one-stage recipe would ship: the builder
// after the install, compilers, headers, build tools and sources
// included (a benchmark compares its size with the image's).
func SingleStage(c *dagger.Client, b *gobuild.Builder, in Inputs) *dagger.Container {
	return lockInstall(c, in).
		WithDirectory(DiracRoot, configFiles(c, in)).
		WithFile(EntrypointPath, b.Binary("./images/lhcbdirac/entrypoint")).
		WithEntrypoint([]string{EntrypointPath})
}

// fixtureInstall is the FIXTURE route: the FIXTURE installer run in
// /opt/dirac, then pip installs the DIRAC and LHCbDIRAC checkouts offline
// through the image's own entrypoint (the build sets up the same DIRAC
// environment a container start does).
func fixtureInstall(c *dagger.Client, b *gobuild.Builder, in Inputs) *dagger.Container {
	ctr := c.Container().From(in.BuilderBase).
		WithEnvVariable("PATH", baseimage.StandardPath).
		WithEnvVariable("SOURCE_DATE_EPOCH", "0").
		WithEnvVariable("PYTHONDONTWRITEBYTECODE", "1").
		WithEnvVariable("LHCBDIRAC_RERUN", in.Rerun).
		WithFile(EntrypointPath, b.Binary("./images/lhcbdirac/entrypoint")).
		WithFile("/tmp/"+installerName, in.Installer, dagger.ContainerWithFileOpts{Permissions: 0o755}).
		WithWorkdir(DiracRoot).
		WithExec([]string{"bash", "/tmp/" + installerName}).
		WithNewFile(DiracRoot+"/bashrc", bashrc(true))
	args := []string{EntrypointPath, "pip", "install", "--no-compile", "--no-cache-dir", "--no-index", "--no-deps", "--no-build-isolation"}
	for i, s := range in.Sources {
		ctr = ctr.WithDirectory("/tmp/src/"+s.Name, in.SourceDirs[i])
		args = append(args, "/tmp/src/"+s.Name)
	}
	// No bytecode: pip and the installer may leave some, and it would
	// make every build differ.
	return ctr.WithExec(args).
		WithExec([]string{"find", DiracRoot, "-depth", "-name", "__pycache__", "-type", "d", "-exec", "rm", "-rf", "{}", "+"})
}

const installerName = "DIRACOS-Linux-x86_64.sh"
