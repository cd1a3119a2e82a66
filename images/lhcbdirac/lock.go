package lhcbdirac

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep440"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// A lock is every Python distribution the image installs, pinned by
// version and sha256, in the requirements format uv writes, with a few
// "# lhcbdirac:" directives (lockparse.go gives the format; ParseLock is
// its one reader). pip and uv never read the file itself: what they
// install is written from its parsed entries.
//
//	# lhcbdirac:requirement LHCbDIRAC[server]==12.0.21
//	# lhcbdirac:source-built m2crypto mysqlclient tornado
//	# lhcbdirac:from-debian gfal2-python==1.12.0 python3-gfal2
//	# lhcbdirac:section runtime      what /opt/dirac holds
//	...
//	# lhcbdirac:section build        the tools that build the source-only
//	...                              distributions and hotfixes
//
// The same lock always gives the same image.

//go:embed constraints.txt
var constraints string

//go:embed build-requirements.in
var buildRequirements string

// FromDebian are the distributions the lock resolves but the image takes
// from Debian (see constraints.txt), with the package providing each.
var FromDebian = map[string]string{"gfal2-python": "python3-gfal2"}

// Pin is one locked distribution, as ParseLock read it.
type Pin struct {
	Name    string   // PEP 503 normal form (lhcbdirac, setuptools-scm)
	Version string   // a public PEP 440 version, in normal form
	Marker  string   // an environment marker true for the image, normal form; "" for none
	Hashes  []string // sha256, lower-case hex
	Line    int      // the entry's first line in the lock
}

// Key is the PEP 503 normalized name.
func (p Pin) Key() string { return p.Name }

// Requirement is the pin as pip and uv receive it, in uv's layout:
//
//	name==version[ ; marker] //	    --hash=sha256:<hex>
func (p Pin) Requirement() string {
	var b strings.Builder
	b.WriteString(p.Name + "==" + p.Version)
	if p.Marker != "" {
		b.WriteString(" ; " + p.Marker)
	}
	for _, h := range p.Hashes {
		b.WriteString(" \\\n    --hash=sha256:" + h)
	}
	b.WriteString("\n")
	return b.String()
}

// requirements writes pins for an installer.
func requirements(pins []Pin, keep func(Pin) bool) []byte {
	var b bytes.Buffer
	for _, p := range pins {
		if keep(p) {
			b.WriteString(p.Requirement())
		}
	}
	return b.Bytes()
}

// Lock is a parsed lock.
type Lock struct {
	Raw         []byte
	Requirement string   // LHCbDIRAC[server]==X
	SourceBuilt []string // normalized names built from source
	Runtime     []Pin
	Build       []Pin
}

// Digest is the lock's sha256, as its label records it.
func (l *Lock) Digest() string {
	h := sha256.Sum256(l.Raw)
	return "sha256:" + hex.EncodeToString(h[:])
}

// Find returns the runtime pin of a distribution.
func (l *Lock) Find(name string) (Pin, bool) {
	for _, p := range l.Runtime {
		if p.Key() == pytools.Normalize(name) {
			return p, true
		}
	}
	return Pin{}, false
}

// LHCbDIRACVersion and DIRACVersion are what the lock installs.
func (l *Lock) LHCbDIRACVersion() string { p, _ := l.Find("lhcbdirac"); return p.Version }
func (l *Lock) DIRACVersion() string     { p, _ := l.Find("dirac"); return p.Version }

// CheckVersion refuses a lock made for another LHCbDIRAC than the release.
func (l *Lock) CheckVersion(name string, v version.Version) error {
	if got := l.LHCbDIRACVersion(); !pep440.Same(got, v.PEP440()) {
		return fmt.Errorf("%s installs LHCbDIRAC %s, but the release is %s (LHCbDIRAC %s): make a lock for it with go run mage.go lock %s", name, got, v.Raw, v.PEP440(), v.Raw)
	}
	return nil
}

// RuntimeRequirements is the runtime section for an installer, without the
// source-built distributions and without those named in skip (hotfixed).
func (l *Lock) RuntimeRequirements(skip ...string) []byte {
	return requirements(l.Runtime, func(p Pin) bool {
		return !slices.Contains(l.SourceBuilt, p.Key()) && !containsNorm(skip, p.Key())
	})
}

// RequirementOf is the named distribution's requirement, with its hashes
// (empty when the lock lacks it or builds it from source).
func (l *Lock) RequirementOf(name string) []byte {
	p, ok := l.Find(name)
	if !ok || slices.Contains(l.SourceBuilt, p.Key()) {
		return nil
	}
	return []byte(p.Requirement())
}

// SourceRequirements are the source-built distributions (minus skip).
func (l *Lock) SourceRequirements(skip ...string) []byte {
	return requirements(l.Runtime, func(p Pin) bool {
		return slices.Contains(l.SourceBuilt, p.Key()) && !containsNorm(skip, p.Key())
	})
}

// BuildRequirements is the build section.
func (l *Lock) BuildRequirements() []byte {
	return requirements(l.Build, func(Pin) bool { return true })
}

// ExtraTools are the build tools the runtime section lacks (pip, wheel,
// setuptools_scm…): the image keeps them, for a hotfix at container start.
func (l *Lock) ExtraTools() []byte {
	return requirements(l.Build, func(p Pin) bool {
		_, ok := l.Find(p.Name)
		return !ok
	})
}

func containsNorm(names []string, key string) bool {
	for _, n := range names {
		if pytools.Normalize(n) == key {
			return true
		}
	}
	return false
}

// ResolveLock makes the lock of LHCbDIRAC[server]==v: the runtime tree for
// the image's platform (constraints.txt applied; the FromDebian ones left
// out), then the build tools with the runtime as constraints, then which
// distributions have no wheel.
func ResolveLock(ctx context.Context, p *progress.Reporter, t *pytools.Tools, v version.Version) (*Lock, error) {
	req := "LHCbDIRAC[server]==" + v.PEP440()
	step := p.Start("resolve %s (uv, with hashes)", req)
	var omit []string
	for name := range FromDebian {
		omit = append(omit, name)
	}
	slices.Sort(omit)
	runtime, err := t.Compile(ctx, req+"\n", constraints, omit...)
	if err != nil {
		return nil, step.Fail(err)
	}
	build, err := t.Compile(ctx, buildRequirements, constraints+"\n"+string(runtime))
	if err != nil {
		return nil, step.Fail(fmt.Errorf("resolving the build tools: %w", err))
	}
	src, err := t.SourceOnly(ctx, runtime)
	if err != nil {
		return nil, step.Fail(err)
	}
	slices.Sort(src)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# lhcbdirac lock for %s: every distribution the image installs, pinned by\n", req)
	fmt.Fprintf(&b, "# version and sha256, for CPython %s on %s. Made by lhcbdirac-pipeline\n", pytools.PythonVersion, pytools.PythonPlatform)
	b.WriteString("# (go run mage.go lock VERSION); install it again with LHCBDIRAC_LOCK=<this file>.\n#\n")
	fmt.Fprintf(&b, "# lhcbdirac:requirement %s\n", req)
	fmt.Fprintf(&b, "# lhcbdirac:source-built %s\n", strings.Join(src, " "))
	for _, name := range omit {
		fmt.Fprintf(&b, "# lhcbdirac:from-debian %s %s\n", name, FromDebian[name])
	}
	b.WriteString("\n# lhcbdirac:section runtime\n")
	b.Write(bytes.TrimSpace(runtime))
	b.WriteString("\n\n# lhcbdirac:section build\n")
	b.Write(bytes.TrimSpace(build))
	b.WriteString("\n")
	l, err := ParseLock("the resolved lock", b.Bytes())
	if err != nil {
		return nil, step.Fail(err)
	}
	step.Done()
	p.Infof("LHCbDIRAC %s, DIRAC %s: %d distributions (%d built from source), %d build tools; lock %s",
		l.LHCbDIRACVersion(), l.DIRACVersion(), len(l.Runtime), len(l.SourceBuilt), len(l.Build), l.Digest()[:19])
	return l, nil
}

// RememberedLock is the lock resolved before for version v from index
// ("" for the default), and where it is kept; nil when there is none. A
// release is repeatable: its lock is resolved once, then reused (go run
// mage.go lock resolves afresh).
func RememberedLock(v version.Version, index string) (*Lock, string) {
	path, err := rememberedPath(v, index)
	if err != nil {
		return nil, ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, ""
	}
	l, err := ParseLock(path, b)
	if err != nil {
		return nil, ""
	}
	return l, path
}

// rememberedPath names a remembered lock by everything it is resolved
// from: the version, the index (without its credentials), the tools, the
// constraints and build requirements.
func rememberedPath(v version.Version, index string) (string, error) {
	dir, err := cachedir.Sub("locks")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", v.PEP440(), redact.URL(index))
	h.Write(pytools.Lock)
	h.Write([]byte(constraints + "\n" + buildRequirements))
	return filepath.Join(dir, "lhcbdirac-"+v.PEP440()+"-"+hex.EncodeToString(h.Sum(nil))[:12]+".lock"), nil
}

// ResolveAndRemember checks that the index has LHCbDIRAC v, resolves its
// lock and remembers it.
func ResolveAndRemember(ctx context.Context, p *progress.Reporter, t *pytools.Tools, v version.Version, index string) (*Lock, error) {
	step := p.Start("LHCbDIRAC %s on the index", v.PEP440())
	if err := CheckIndexHas(ctx, t, v); err != nil {
		return nil, step.Fail(err)
	}
	step.Done()
	l, err := ResolveLock(ctx, p, t, v)
	if err != nil {
		return nil, err
	}
	path, err := rememberedPath(v, index)
	if err != nil {
		return nil, err
	}
	return l, cachedir.WriteFile(path, l.Raw)
}

// ReadLock reads a lock file (LHCBDIRAC_LOCK's, or lock:check's), at
// most MaxLockSize bytes of it.
func ReadLock(path string) (*Lock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxLockSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ParseLock(path, b)
}

// Summary is the lock in one line, as lock:check and lock print it.
func (l *Lock) Summary() string {
	return fmt.Sprintf("LHCbDIRAC %s, DIRAC %s, %d distributions (%d built from source), %d build tools, %s",
		l.LHCbDIRACVersion(), l.DIRACVersion(), len(l.Runtime), len(l.SourceBuilt), len(l.Build), l.Digest())
}

// CheckIndexHas fails, naming the nearest versions the index has, when
// the index has no LHCbDIRAC of the release's version.
func CheckIndexHas(ctx context.Context, t *pytools.Tools, v version.Version) error {
	have, err := t.Versions(ctx, "LHCbDIRAC")
	if err != nil {
		return fmt.Errorf("listing LHCbDIRAC's versions on the index: %w", err)
	}
	want := v.PEP440()
	for _, h := range have {
		if pep440.Same(h, want) {
			return nil
		}
	}
	return fmt.Errorf("the index has no LHCbDIRAC %s (release %s); the nearest it has: %s", want, v.Raw, strings.Join(Nearest(have, want, 3), ", "))
}

// Nearest returns up to n versions either side of where want would sort
// among have (PEP 440 order), in ascending order.
func Nearest(have []string, want string, n int) []string {
	sorted := slices.Clone(have)
	slices.SortFunc(sorted, pep440.Compare)
	i, _ := slices.BinarySearchFunc(sorted, want, pep440.Compare)
	return sorted[max(0, i-n):min(len(sorted), i+n)]
}
