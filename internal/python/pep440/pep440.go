// Package pep440 is the pipeline's one implementation of Python's version
// scheme (PEP 440): parsing, normal form, order and specifiers. It wraps
// github.com/aquasecurity/go-pep440-version (a port of pypa's packaging)
// and is stricter at the edges, where the pipeline's inputs enter: no
// surrounding whitespace, no leading "v", bounded length.
package pep440

import (
	"fmt"
	"strconv"
	"strings"

	pep "github.com/aquasecurity/go-pep440-version"
)

// MaxLen bounds a version string: the longest real one on the index is
// far shorter, and an error quoting one stays readable.
const MaxLen = 128

// Version is a parsed PEP 440 version.
type Version struct {
	v   pep.Version
	raw string
}

// Parse reads a version in any spelling PEP 440 admits ("1.0-1", "1.0RC1"
// and "01.2" too: String gives the normal form).
func Parse(s string) (Version, error) {
	if len(s) > MaxLen {
		return Version{}, fmt.Errorf("version %.40q…: longer than %d characters", s, MaxLen)
	}
	if s == "" || strings.TrimSpace(s) != s || s[0] == 'v' || s[0] == 'V' {
		return Version{}, fmt.Errorf("%q is not a PEP 440 version", s)
	}
	v, err := pep.Parse(s)
	if err != nil {
		return Version{}, fmt.Errorf("%q is not a PEP 440 version", s)
	}
	return Version{v: v, raw: s}, nil
}

// String is the version's normal form (what an index and uv write).
func (v Version) String() string { return v.v.String() }

// Raw is the version as it was written.
func (v Version) Raw() string { return v.raw }

// Normal tells whether the version was written in its normal form.
func (v Version) Normal() bool { return v.raw == v.v.String() }

// Local is the local version label ("" for a public version).
func (v Version) Local() string { return v.v.Local() }

// IsPreRelease tells a pre- or development release.
func (v Version) IsPreRelease() bool { return v.v.IsPreRelease() }

// Compare orders two versions as PEP 440 does: -1, 0 or 1.
func (v Version) Compare(o Version) int { return v.v.Compare(o.v) }

// Equal tells two versions PEP 440 holds equal (1.0 and 1.0.0).
func (v Version) Equal(o Version) bool { return v.Compare(o) == 0 }

// Same tells whether two version strings are the same version: equal
// under PEP 440 when both parse, else equal as text.
func Same(a, b string) bool {
	va, errA := Parse(a)
	vb, errB := Parse(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return va.Equal(vb)
}

// Compare orders version strings: PEP 440 order, with anything that is no
// version first (in text order), so a list from an index sorts whatever
// it holds.
func Compare(a, b string) int {
	va, errA := Parse(a)
	vb, errB := Parse(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	if c := va.Compare(vb); c != 0 {
		return c
	}
	return strings.Compare(a, b) // 1.0 and 1.0.0: still a total order
}

// Operators are PEP 440's comparison operators.
var Operators = []string{"~=", "==", "!=", "<=", ">=", "<", ">", "==="}

// Specifier is one version clause ("<3.12", "==3.11.*", "~=3.11.2").
type Specifier struct {
	Op, Version string
	s           pep.Specifiers
}

// ParseSpecifier checks a clause: a PEP 440 operator and a version it
// admits (a trailing .* only with == and !=, no local version with an
// ordering operator, ~= with two release numbers or more).
func ParseSpecifier(op, version string) (Specifier, error) {
	known := false
	for _, o := range Operators {
		known = known || o == op
	}
	if !known {
		return Specifier{}, fmt.Errorf("%q is not a PEP 440 operator", op)
	}
	if op == "===" {
		if version == "" || strings.ContainsAny(version, " \t,|") || len(version) > MaxLen {
			return Specifier{}, fmt.Errorf("%q: not a version for ===", version)
		}
		return Specifier{Op: op, Version: version}, nil
	}
	base, _ := strings.CutSuffix(version, ".*")
	if _, err := Parse(base); err != nil {
		return Specifier{}, err
	}
	// One clause, checked above; the library refuses what PEP 440 does
	// not admit (.* after an ordering operator, ~=1, <1.0+local…).
	s, err := pep.NewSpecifiers(op + version)
	if err != nil {
		return Specifier{}, fmt.Errorf("%s%s: %v", op, version, err)
	}
	return Specifier{Op: op, Version: version, s: s}, nil
}

// Contains tells whether v satisfies the clause (pre-releases admitted, as
// for an environment marker).
func (s Specifier) Contains(v Version) bool {
	if s.Op == "===" {
		return strings.EqualFold(v.raw, s.Version)
	}
	return s.s.Check(v.v)
}

func (s Specifier) String() string { return s.Op + s.Version }

// Release is the version's epoch and release numbers (1!2.0.3: 1, [2 0 3]).
func (v Version) Release() (epoch uint64, release []uint64) {
	base := v.v.BaseVersion()
	if e, rest, ok := strings.Cut(base, "!"); ok {
		epoch, _ = strconv.ParseUint(e, 10, 64)
		base = rest
	}
	for _, n := range strings.Split(base, ".") {
		x, _ := strconv.ParseUint(n, 10, 64)
		release = append(release, x)
	}
	return epoch, release
}
