// Package version validates LHCbDIRAC release versions. A version becomes an
// image tag, a git ref and part of Marathon app definitions, so it is
// checked once, strictly, before anything uses it.
package version

import (
	"fmt"
	"regexp"
	"strings"
)

// DIRAC's two numbering schemes: vXrY[pZ] (up to v10) and vX.Y[.Z] (v9 on),
// with an optional -pre[N] pre-release suffix. Every number has at most
// MaxDigits digits, so every version is a valid image tag (at most 128
// characters of [A-Za-z0-9_.-]), a valid git ref and a PEP 440 version.
var re = regexp.MustCompile(`^v[0-9]{1,9}((r[0-9]{1,9}(p[0-9]{1,9})?)|(\.[0-9]{1,9}){1,2})(-pre[0-9]{0,9})?$`)

// MaxDigits bounds each number of a version.
const MaxDigits = 9

var preRE = regexp.MustCompile(`-pre[0-9]*$`)

// Version is a checked release version.
type Version struct {
	Raw string
	Pre bool // a -pre version: builds and moves the devel tag, never deploys to production
}

func (v Version) String() string { return v.Raw }

// Parse checks a version string.
func Parse(s string) (Version, error) {
	if !re.MatchString(s) {
		shown := s
		if len(shown) > 60 {
			shown = shown[:60] + "…"
		}
		return Version{}, fmt.Errorf("version %q: want vX.Y[.Z] or vXrY[pZ], optionally with -preN, each number at most %d digits (e.g. v9.1, v9.1.2-pre1, v8r5p3)", shown, MaxDigits)
	}
	return Version{Raw: s, Pre: preRE.MatchString(s)}, nil
}

// PEP440 is the version as pip knows it: v9.1 and v9r1 are 9.1, v8r5p3 is
// 8.5.3, and -preN is the pre-release aN.
func (v Version) PEP440() string {
	s := strings.TrimPrefix(v.Raw, "v")
	pre := ""
	if i := strings.Index(s, "-pre"); i >= 0 {
		n := s[i+4:]
		if n == "" {
			n = "0"
		}
		s, pre = s[:i], "a"+n
	}
	s = strings.NewReplacer("r", ".", "p", ".").Replace(s)
	return s + pre
}
