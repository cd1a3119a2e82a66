package report

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
)

// ChangeKind is how one distribution differs between two locks.
type ChangeKind string

const (
	Upgraded   ChangeKind = "upgraded"
	Downgraded ChangeKind = "downgraded"
	Added      ChangeKind = "added"
	Removed    ChangeKind = "removed"
	// Refiled is the same version with none of the previous hashes: other
	// files were published under the same version. Worth a look.
	Refiled ChangeKind = "same version, other files"
)

// LockChange is one line of the lock diff.
type LockChange struct {
	Name     string // as the current lock spells it (the previous one for Removed)
	Kind     ChangeKind
	From, To string // versions; From is empty for Added, To for Removed
	// Major is an upgrade or downgrade of the first release number.
	Major bool
}

// LockDiff is the difference between a release's lock and the previous
// release's.
type LockDiff struct {
	Against  string // the previous release
	Compared bool   // false: there was no previous lock (Missing says why)
	Missing  string
	Changes  []LockChange // LHCbDIRAC first, then DIRAC, then by kind and name
	// Counts by kind, and how many are the same in both.
	Added, Removed, Upgraded, Downgraded, Refiled, Unchanged int
	Total                                                    int // distributions in the current lock
}

// keyComponents come first in every list, in this order.
var keyComponents = []string{"lhcbdirac", "dirac"}

var kindOrder = map[ChangeKind]int{Upgraded: 0, Downgraded: 1, Added: 2, Removed: 3, Refiled: 4}

// DiffLocks compares two locks. Names are compared as PEP 503 normalises
// them (case, and runs of "-", "_", "." are one "-"); versions with compare
// (a PEP 440 order), so 1.0 and 1.0.0 are the same version. A lock that
// names a distribution twice keeps its first entry; dupes are returned.
func DiffLocks(current, previous []Distribution, compare func(a, b string) int) (d LockDiff, dupes []string) {
	cur, dupCur := index(current)
	prev, dupPrev := index(previous)
	dupes = append(dupCur, dupPrev...)
	d.Total, d.Compared = len(cur), true
	for key, c := range cur {
		p, ok := prev[key]
		if !ok {
			d.Changes = append(d.Changes, LockChange{Name: c.Name, Kind: Added, To: c.Version})
			continue
		}
		switch n := compare(c.Version, p.Version); {
		case n > 0:
			d.Changes = append(d.Changes, LockChange{Name: c.Name, Kind: Upgraded, From: p.Version, To: c.Version, Major: majorChange(p.Version, c.Version)})
		case n < 0:
			d.Changes = append(d.Changes, LockChange{Name: c.Name, Kind: Downgraded, From: p.Version, To: c.Version, Major: majorChange(p.Version, c.Version)})
		case len(c.Hashes) > 0 && len(p.Hashes) > 0 && !shareHash(c.Hashes, p.Hashes):
			d.Changes = append(d.Changes, LockChange{Name: c.Name, Kind: Refiled, From: p.Version, To: c.Version})
		default:
			d.Unchanged++
		}
	}
	for key, p := range prev {
		if _, ok := cur[key]; !ok {
			d.Changes = append(d.Changes, LockChange{Name: p.Name, Kind: Removed, From: p.Version})
		}
	}
	for _, c := range d.Changes {
		switch c.Kind {
		case Added:
			d.Added++
		case Removed:
			d.Removed++
		case Upgraded:
			d.Upgraded++
		case Downgraded:
			d.Downgraded++
		case Refiled:
			d.Refiled++
		}
	}
	slices.SortFunc(d.Changes, func(a, b LockChange) int {
		return cmp.Or(
			cmp.Compare(keyRank(a.Name), keyRank(b.Name)),
			cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]),
			strings.Compare(NormalizeName(a.Name), NormalizeName(b.Name)))
	})
	return d, dupes
}

// SortDistributions orders a lock for display: LHCbDIRAC, DIRAC, then by name.
func SortDistributions(ds []Distribution) {
	slices.SortStableFunc(ds, func(a, b Distribution) int {
		return cmp.Or(cmp.Compare(keyRank(a.Name), keyRank(b.Name)),
			strings.Compare(NormalizeName(a.Name), NormalizeName(b.Name)))
	})
}

func keyRank(name string) int {
	if i := slices.Index(keyComponents, NormalizeName(name)); i >= 0 {
		return i
	}
	return len(keyComponents)
}

var nameSeparators = regexp.MustCompile(`[-_.]+`)

// NormalizeName is a distribution's name as PEP 503 compares it.
func NormalizeName(name string) string {
	return nameSeparators.ReplaceAllString(strings.ToLower(strings.TrimSpace(name)), "-")
}

func index(ds []Distribution) (map[string]Distribution, []string) {
	m := make(map[string]Distribution, len(ds))
	var dupes []string
	for _, d := range ds {
		k := NormalizeName(d.Name)
		if _, ok := m[k]; ok {
			dupes = append(dupes, d.Name)
			continue
		}
		m[k] = d
	}
	return m, dupes
}

func shareHash(a, b []string) bool {
	for _, h := range a {
		if slices.Contains(b, h) {
			return true
		}
	}
	return false
}

var leadingNumber = regexp.MustCompile(`^\s*[vV]?(?:[0-9]+!)?0*([0-9]+)`)

// majorChange: the first release number differs (2.x → 3.x).
func majorChange(from, to string) bool {
	a, b := leadingNumber.FindStringSubmatch(from), leadingNumber.FindStringSubmatch(to)
	return a != nil && b != nil && a[1] != b[1]
}
