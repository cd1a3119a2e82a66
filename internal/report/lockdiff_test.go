package report_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/report"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/report/reporttest"
)

func TestDiffLocksSample(t *testing.T) {
	rel := reporttest.Passed()
	d, dupes := report.DiffLocks(rel.Lock.Current, rel.Lock.Previous, report.CompareVersions)
	if len(dupes) > 0 {
		t.Fatalf("dupes %q", dupes)
	}
	f := reporttest.LockFigures
	got := [7]int{d.Added, d.Removed, d.Upgraded, d.Downgraded, d.Refiled, d.Unchanged, d.Total}
	want := [7]int{f.Added, f.Removed, f.Upgraded, f.Downgraded, f.Refiled, f.Unchanged, f.Total}
	if got != want {
		t.Fatalf("added, removed, upgraded, downgraded, refiled, unchanged, total = %v, want %v", got, want)
	}
	var lines []string
	for _, c := range d.Changes {
		lines = append(lines, c.Name+" "+string(c.Kind)+" "+c.From+" "+c.To)
	}
	wantLines := []string{
		"LHCbDIRAC upgraded 12.0.20 12.0.21", "DIRAC upgraded 9.0.11 9.0.12",
		"pydantic upgraded 2.10.4 2.10.6", "urllib3 upgraded 1.26.20 2.3.0", "idna downgraded 3.10 3.9",
		"opensearch-py added  2.8.0", "rucio-clients added  37.1.0", "elasticsearch removed 7.17.12 ",
		"packaging same version, other files 24.2 24.2",
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("changes:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
	for _, c := range d.Changes {
		if c.Major != (c.Name == "urllib3") {
			t.Errorf("%s: major=%v", c.Name, c.Major)
		}
	}
}

func dist(name, version string, hashes ...string) report.Distribution {
	return report.Distribution{Name: name, Version: version, Hashes: hashes}
}

func TestDiffLocksNamesVersionsHashes(t *testing.T) {
	cur := []report.Distribution{
		dist("PyYAML", "6.0.2"), dist("typing_extensions", "4.12.2"), dist("Zope.Interface", "7.0"),
		dist("six", "1.17.0"),                  // 1.17 before: the same version
		dist("wheel-added", "1.0", "h1", "h2"), // a new file under the same version: unchanged
		dist("rebuilt", "2.0", "new"),          // none of the old hashes: other files
		dist("nohash", "1.0"),                  // no hashes to compare: unchanged
		dist("dirac", "9.0.12"), dist("lhcbdirac", "12.0.21"),
		dist("PyYAML", "9.9"), // twice: the first wins, reported
	}
	prev := []report.Distribution{
		dist("pyyaml", "6.0.1"), dist("typing-extensions", "4.12.2"), dist("zope-interface", "7.0"),
		dist("six", "1.17"), dist("wheel_added", "1.0", "h1"), dist("rebuilt", "2.0", "old"), dist("nohash", "1.0", "x"),
		dist("DIRAC", "9.0.12"), dist("LHCbDIRAC", "12.0.20"),
	}
	d, dupes := report.DiffLocks(cur, prev, report.CompareVersions)
	if !slices.Equal(dupes, []string{"PyYAML"}) {
		t.Errorf("dupes %q", dupes)
	}
	if d.Upgraded != 2 || d.Refiled != 1 || d.Unchanged != 6 || d.Added != 0 || d.Removed != 0 {
		t.Errorf("%+v", d)
	}
	if d.Changes[0].Name != "lhcbdirac" || d.Changes[1].Name != "PyYAML" || d.Changes[2].Name != "rebuilt" {
		t.Errorf("order: %+v", d.Changes)
	}
}

// The comparator is the one given: the lead swaps in the shared PEP 440
// package through it.
func TestDiffLocksUsesTheGivenComparator(t *testing.T) {
	reversed := func(a, b string) int { return -report.CompareVersions(a, b) }
	d, _ := report.DiffLocks([]report.Distribution{dist("x", "2.0")}, []report.Distribution{dist("x", "1.0")}, reversed)
	if d.Downgraded != 1 || d.Upgraded != 0 {
		t.Errorf("the given comparator was not used: %+v", d)
	}
	// a string order would call 3.9 after 3.10 an upgrade; PEP 440 does not
	d, _ = report.DiffLocks([]report.Distribution{dist("idna", "3.9")}, []report.Distribution{dist("idna", "3.10")}, strings.Compare)
	if d.Upgraded != 1 {
		t.Fatal("strings.Compare should get this wrong (the test would prove nothing)")
	}
	d, _ = report.DiffLocks([]report.Distribution{dist("idna", "3.9")}, []report.Distribution{dist("idna", "3.10")}, report.CompareVersions)
	if d.Downgraded != 1 {
		t.Errorf("3.10 → 3.9 is a downgrade: %+v", d)
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{"PyYAML": "pyyaml", "typing_extensions": "typing-extensions", "Zope..Interface": "zope-interface", "a-_.b": "a-b", " LHCbDIRAC ": "lhcbdirac"} {
		if got := report.NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}
