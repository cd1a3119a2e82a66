package report

import (
	"regexp"
	"strings"
)

// CompareVersions orders two versions as PEP 440 does: epoch, release
// (trailing zeros ignored: 1.0 == 1.0.0), then dev < pre (a < b < rc) <
// the release < post, then the local label (a release without one comes
// first; numeric parts rank above alphanumeric ones). Spelling variants
// are equal (1.0-alpha.1 == 1.0a1, 1.0-1 == 1.0.post1, v1.0 == 1.0).
//
// It is the report's own, minimal comparator; Renderer.Compare takes any
// other with the same contract. A string that is not a PEP 440 version
// sorts before every version, and two of them compare as strings.
func CompareVersions(a, b string) int {
	va, okA := parseVersion(a)
	vb, okB := parseVersion(b)
	switch {
	case !okA && !okB:
		return strings.Compare(a, b)
	case !okA:
		return -1
	case !okB:
		return 1
	}
	return va.compare(vb)
}

// The grammar of PEP 440's "Appendix B", written out here; it accepts
// every spelling the normalisation rules allow.
var versionPattern = regexp.MustCompile(`^\s*v?` +
	`(?:([0-9]+)!)?` + // 1 epoch
	`([0-9]+(?:\.[0-9]+)*)` + // 2 release
	`(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?([0-9]+)?)?` + // 3, 4 pre
	`(?:-([0-9]+)|[-_.]?(post|rev|r)[-_.]?([0-9]+)?)?` + // 5 | 6, 7 post
	`(?:[-_.]?(dev)[-_.]?([0-9]+)?)?` + // 8, 9 dev
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?` + // 10 local
	`\s*$`)

type version struct {
	epoch   string
	release []string
	// pre: rank 0 none, 1 a, 2 b, 3 rc; preN its number
	hasPre bool
	preL   int
	preN   string
	// post and dev: present or not, and their numbers
	hasPost, hasDev bool
	postN, devN     string
	local           []string // nil: none
}

func parseVersion(s string) (version, bool) {
	m := versionPattern.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return version{}, false
	}
	v := version{epoch: m[1]}
	v.release = strings.Split(m[2], ".")
	for len(v.release) > 1 && isZero(v.release[len(v.release)-1]) {
		v.release = v.release[:len(v.release)-1]
	}
	if m[3] != "" {
		v.hasPre, v.preN = true, m[4]
		switch m[3] {
		case "a", "alpha":
			v.preL = 1
		case "b", "beta":
			v.preL = 2
		default: // c, rc, pre, preview
			v.preL = 3
		}
	}
	if m[5] != "" {
		v.hasPost, v.postN = true, m[5]
	} else if m[6] != "" {
		v.hasPost, v.postN = true, m[7]
	}
	if m[8] != "" {
		v.hasDev, v.devN = true, m[9]
	}
	if m[10] != "" {
		v.local = strings.FieldsFunc(m[10], func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	}
	return v, true
}

func (a version) compare(b version) int {
	if c := compareNum(a.epoch, b.epoch); c != 0 {
		return c
	}
	for i := 0; i < max(len(a.release), len(b.release)); i++ {
		if c := compareNum(at(a.release, i), at(b.release, i)); c != 0 {
			return c
		}
	}
	if c := compareInts(a.preRank(), b.preRank()); c != 0 {
		return c
	}
	if a.hasPre && b.hasPre {
		if c := compareNum(a.preN, b.preN); c != 0 {
			return c
		}
	}
	if c := compareOptional(a.hasPost, a.postN, b.hasPost, b.postN, false); c != 0 {
		return c
	}
	if c := compareOptional(a.hasDev, a.devN, b.hasDev, b.devN, true); c != 0 {
		return c
	}
	return compareLocal(a.local, b.local)
}

// preRank places the pre-release part: a dev release of the release itself
// (1.0.dev1) comes before any pre-release of it; no pre-release after all.
func (v version) preRank() int {
	switch {
	case v.hasPre:
		return v.preL
	case v.hasDev && !v.hasPost:
		return -1
	default:
		return 4
	}
}

// compareOptional compares a post or dev part. Absent is lowest for post,
// highest for dev (absentHigh).
func compareOptional(hasA bool, a string, hasB bool, b string, absentHigh bool) int {
	switch {
	case hasA && hasB:
		return compareNum(a, b)
	case hasA == hasB:
		return 0
	case hasA == absentHigh:
		return -1
	default:
		return 1
	}
}

func compareLocal(a, b []string) int {
	for i := 0; i < min(len(a), len(b)); i++ {
		na, nb := isNum(a[i]), isNum(b[i])
		var c int
		switch {
		case na && nb:
			c = compareNum(a[i], b[i])
		case na:
			c = 1
		case nb:
			c = -1
		default:
			c = strings.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return compareInts(len(a), len(b))
}

// compareNum compares decimal strings of any length ("" is 0).
func compareNum(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if c := compareInts(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func compareInts(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func at(xs []string, i int) string {
	if i < len(xs) {
		return xs[i]
	}
	return ""
}

func isZero(s string) bool { return strings.TrimLeft(s, "0") == "" }

func isNum(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
