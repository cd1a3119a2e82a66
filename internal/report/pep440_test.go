package report

import "testing"

// PEP 440's own ordering examples, and the spellings its normalisation
// makes equal.
func TestCompareVersionsOrder(t *testing.T) {
	ordered := []string{
		"0.9", "1.0.dev0", "1.0.dev1", "1.0a0.dev1", "1.0a1", "1.0a1.post1.dev1", "1.0a1.post1", "1.0a2",
		"1.0b1", "1.0rc1", "1.0rc2.dev3", "1.0rc2", "1.0", "1.0+abc", "1.0+abc.5", "1.0+5", "1.0.post1.dev1", "1.0.post1",
		"1.0.1", "1.1", "1.10", "2.0", "2013.10", "1!0.1",
	}
	for i := range ordered {
		for j := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := CompareVersions(ordered[i], ordered[j]); got != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestCompareVersionsEqualSpellings(t *testing.T) {
	for _, p := range [][2]string{
		{"1.0", "1.0.0"}, {"1.0", "1.0.0.0"}, {"v1.0", "1.0"}, {"1.0a1", "1.0-alpha.1"}, {"1.0a1", "1.0A1"},
		{"1.0rc1", "1.0c1"}, {"1.0rc1", "1.0pre1"}, {"1.0rc1", "1.0preview1"}, {"1.0b0", "1.0beta"},
		{"1.0.post1", "1.0-1"}, {"1.0.post1", "1.0post1"}, {"1.0.post1", "1.0.rev1"}, {"1.0.post0", "1.0.post"},
		{"1.0.dev0", "1.0dev"}, {"0!1.0", "1.0"}, {"01.002", "1.2"}, {" 1.0 ", "1.0"},
		{"12.0.21", "12.0.21"},
	} {
		if got := CompareVersions(p[0], p[1]); got != 0 {
			t.Errorf("CompareVersions(%q, %q) = %d, want 0", p[0], p[1], got)
		}
	}
}

func TestCompareVersionsNotPEP440(t *testing.T) {
	if CompareVersions("not a version", "0.1") != -1 || CompareVersions("0.1", "not a version") != 1 {
		t.Error("a string that is no version sorts first")
	}
	if CompareVersions("abc", "abd") != -1 || CompareVersions("abc", "abc") != 0 {
		t.Error("two non-versions compare as strings")
	}
	// Release numbers past 64 bits are no version to the project's PEP 440
	// implementation: they sort first, as any non-version does, and
	// nothing overflows.
	if CompareVersions("1.99999999999999999999999", "1.0") != -1 {
		t.Error("an over-long release number")
	}
}
