package lhcbdirac

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// A lock is every Python distribution the image installs, pinned by
// version and sha256, in pip's requirements format (uv and pip read it
// as it is), with a few "# lhcbdirac:" directives a reader can ignore:
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

// Pin is one locked distribution.
type Pin struct {
	Name    string // as written
	Version string
	Hashes  []string
	Text    string // its lines in the lock
}

// Key is the PEP 503 normalized name.
func (p Pin) Key() string { return pytools.Normalize(p.Name) }

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

var pinRE = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)`)
var hashRE = regexp.MustCompile(`--hash=sha256:([0-9a-f]{64})`)

// ParseLock reads a lock; name (a file name) is used in errors. Every
// entry must be pinned with == and carry at least one sha256.
func ParseLock(name string, b []byte) (*Lock, error) {
	l := &Lock{Raw: b}
	section := ""
	var cur *Pin
	flush := func() {
		if cur == nil {
			return
		}
		switch section {
		case "runtime":
			l.Runtime = append(l.Runtime, *cur)
		case "build":
			l.Build = append(l.Build, *cur)
		}
		cur = nil
	}
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# lhcbdirac:"):
			flush()
			key, val, _ := strings.Cut(strings.TrimPrefix(trimmed, "# lhcbdirac:"), " ")
			switch key {
			case "section":
				if val != "runtime" && val != "build" {
					return nil, fmt.Errorf("%s:%d: unknown section %q", name, n, val)
				}
				section = val
			case "requirement":
				l.Requirement = val
			case "source-built":
				l.SourceBuilt = strings.Fields(val)
			}
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			flush()
		case strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t"):
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: a continuation line outside an entry", name, n)
			}
			for _, m := range hashRE.FindAllStringSubmatch(line, -1) {
				cur.Hashes = append(cur.Hashes, m[1])
			}
			cur.Text += line + "\n"
		default:
			flush()
			m := pinRE.FindStringSubmatch(trimmed)
			if m == nil {
				return nil, fmt.Errorf("%s:%d: %q is not pinned with == (a lock pins every distribution)", name, n, trimmed)
			}
			if section == "" {
				return nil, fmt.Errorf("%s:%d: %s comes before any '# lhcbdirac:section'", name, n, m[1])
			}
			cur = &Pin{Name: m[1], Version: m[3], Text: line + "\n"}
			for _, h := range hashRE.FindAllStringSubmatch(line, -1) {
				cur.Hashes = append(cur.Hashes, h[1])
			}
		}
	}
	flush()
	for _, p := range append(append([]Pin{}, l.Runtime...), l.Build...) {
		if len(p.Hashes) == 0 {
			return nil, fmt.Errorf("%s: %s==%s has no sha256 hash (a lock pins every distribution by hash)", name, p.Name, p.Version)
		}
	}
	if len(l.Runtime) == 0 {
		return nil, fmt.Errorf("%s: no '# lhcbdirac:section runtime' with distributions: not an lhcbdirac lock (make one with go run mage.go lock VERSION)", name)
	}
	for _, want := range []string{"lhcbdirac", "dirac"} {
		if _, ok := l.Find(want); !ok {
			return nil, fmt.Errorf("%s: the lock does not install %s", name, want)
		}
	}
	for _, s := range l.SourceBuilt {
		if _, ok := l.Find(s); !ok {
			return nil, fmt.Errorf("%s: source-built %s is not in the runtime section", name, s)
		}
	}
	return l, nil
}

// CheckVersion refuses a lock made for another LHCbDIRAC than the release.
func (l *Lock) CheckVersion(name string, v version.Version) error {
	if got := l.LHCbDIRACVersion(); !samePEP440(got, v.PEP440()) {
		return fmt.Errorf("%s installs LHCbDIRAC %s, but the release is %s (LHCbDIRAC %s): make a lock for it with go run mage.go lock %s", name, got, v.Raw, v.PEP440(), v.Raw)
	}
	return nil
}

// samePEP440 compares two versions the way an index does for these simple
// forms (leading zeros and a trailing .0 aside, text equal).
func samePEP440(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(s)
		parts := regexp.MustCompile(`\d+`).ReplaceAllStringFunc(s, func(d string) string {
			d = strings.TrimLeft(d, "0")
			if d == "" {
				return "0"
			}
			return d
		})
		return parts
	}
	return norm(a) == norm(b)
}

// RuntimeRequirements is the runtime section for an installer, without the
// source-built distributions and without those named in skip (hotfixed).
func (l *Lock) RuntimeRequirements(skip ...string) []byte {
	var b bytes.Buffer
	for _, p := range l.Runtime {
		if !slices.Contains(l.SourceBuilt, p.Key()) && !containsNorm(skip, p.Key()) {
			b.WriteString(p.Text)
		}
	}
	return b.Bytes()
}

// RequirementOf is the named distribution's requirement line, with its
// hashes (empty when the lock lacks it or builds it from source).
func (l *Lock) RequirementOf(name string) []byte {
	p, ok := l.Find(name)
	if !ok || slices.Contains(l.SourceBuilt, p.Key()) {
		return nil
	}
	return []byte(p.Text)
}

// SourceRequirements are the source-built distributions (minus skip).
func (l *Lock) SourceRequirements(skip ...string) []byte {
	var b bytes.Buffer
	for _, p := range l.Runtime {
		if slices.Contains(l.SourceBuilt, p.Key()) && !containsNorm(skip, p.Key()) {
			b.WriteString(p.Text)
		}
	}
	return b.Bytes()
}

// BuildRequirements is the build section.
func (l *Lock) BuildRequirements() []byte {
	var b bytes.Buffer
	for _, p := range l.Build {
		b.WriteString(p.Text)
	}
	return b.Bytes()
}

// ExtraTools are the build tools the runtime section lacks (pip, wheel,
// setuptools_scm…): the image keeps them, for a hotfix at container start.
func (l *Lock) ExtraTools() []byte {
	var b bytes.Buffer
	for _, p := range l.Build {
		if _, ok := l.Find(p.Name); !ok {
			b.WriteString(p.Text)
		}
	}
	return b.Bytes()
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

// ReadLock reads LHCBDIRAC_LOCK's file.
func ReadLock(path string) (*Lock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("LHCBDIRAC_LOCK: %w", err)
	}
	return ParseLock(path, b)
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
		if samePEP440(h, want) {
			return nil
		}
	}
	return fmt.Errorf("the index has no LHCbDIRAC %s (release %s); the nearest it has: %s", want, v.Raw, strings.Join(Nearest(have, want, 3), ", "))
}

// Nearest returns up to n versions either side of where want would sort
// among have (PEP 440 order for X.Y.Z[aN] forms), in ascending order.
func Nearest(have []string, want string, n int) []string {
	sorted := slices.Clone(have)
	slices.SortFunc(sorted, comparePEP440)
	i, _ := slices.BinarySearchFunc(sorted, want, comparePEP440)
	return sorted[max(0, i-n):min(len(sorted), i+n)]
}

var relRE = regexp.MustCompile(`^(\d+(?:\.\d+)*)(?:(a|b|rc)(\d+))?`)

// comparePEP440 orders X.Y.Z[{a|b|rc}N] versions: release numbers, then a
// pre-release before its final release.
func comparePEP440(a, b string) int {
	pa, pb := relRE.FindStringSubmatch(a), relRE.FindStringSubmatch(b)
	if pa == nil || pb == nil {
		return strings.Compare(a, b)
	}
	na, nb := strings.Split(pa[1], "."), strings.Split(pb[1], ".")
	for i := 0; i < max(len(na), len(nb)); i++ {
		x, y := 0, 0
		if i < len(na) {
			fmt.Sscan(na[i], &x)
		}
		if i < len(nb) {
			fmt.Sscan(nb[i], &y)
		}
		if x != y {
			return x - y
		}
	}
	rank := func(m []string) (int, int) {
		if m[2] == "" {
			return 4, 0 // final
		}
		n := 0
		fmt.Sscan(m[3], &n)
		return map[string]int{"a": 1, "b": 2, "rc": 3}[m[2]], n
	}
	ra, xa := rank(pa)
	rb, xb := rank(pb)
	if ra != rb {
		return ra - rb
	}
	return xa - xb
}
