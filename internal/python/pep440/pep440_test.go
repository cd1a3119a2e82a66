package pep440

import (
	"slices"
	"strings"
	"testing"
)

func TestParseAndNormalForm(t *testing.T) {
	for in, normal := range map[string]string{
		"1.0": "1.0", "1.0.0": "1.0.0", "12.0.0a31": "12.0.0a31", "2026.10.19.post1": "2026.10.19.post1",
		"1.0-1": "1.0.post1", "1.0RC1": "1.0rc1", "01.2": "1.2", "1!2.0": "1!2.0", "1.0.dev3": "1.0.dev3", "1.0c1": "1.0rc1",
		"1.0+abc.5": "1.0+abc.5",
	} {
		v, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if v.String() != normal || v.Normal() != (in == normal) || v.Raw() != in {
			t.Errorf("Parse(%q) = %q (normal %v)", in, v.String(), v.Normal())
		}
	}
	for _, bad := range []string{"", "9.*", "v1.0", " 1.0", "1.0 ", "1..0", "1.0.", "abc", "1.0;x", "18446744073709551616", strings.Repeat("1.", 70) + "1", "1.0\x00"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestOrder: the cases the lock's Nearest relied on, and PEP 440's own
// (dev before pre before final before post; epochs; 1.0 == 1.0.0).
func TestOrder(t *testing.T) {
	ascending := []string{"11.0.61", "12.0.0.dev1", "12.0.0a5", "12.0.0a31", "12.0.0b1", "12.0.0rc1", "12.0.0", "12.0.0.post1", "12.0.9", "12.0.10", "12.0.20", "12.0.21", "1!0.1"}
	for i := range ascending {
		for j := range ascending {
			got := Compare(ascending[i], ascending[j])
			if (i < j && got >= 0) || (i > j && got <= 0) || (i == j && got != 0) {
				t.Errorf("Compare(%s, %s) = %d", ascending[i], ascending[j], got)
			}
		}
	}
	shuffled := slices.Clone(ascending)
	slices.Reverse(shuffled)
	shuffled = append(shuffled, "not-a-version")
	slices.SortFunc(shuffled, Compare)
	if shuffled[0] != "not-a-version" || !slices.Equal(shuffled[1:], ascending) {
		t.Errorf("sorted: %v", shuffled)
	}
	if !Same("12.0.0", "12.0") || !Same("12.0.00", "12.0.0") || Same("12.0.1", "12.0.10") || Same("12.0.0a1", "12.0.0") {
		t.Error("Same")
	}
}

func TestSpecifier(t *testing.T) {
	for _, c := range []struct {
		op, v, in string
		want      bool
	}{
		{"<", "3.12", "3.11.9", true}, {">=", "3.8", "3.11", true}, {"<", "3.8", "3.11", false},
		{"==", "3.11.*", "3.11.7", true}, {"==", "3.1.*", "3.11.7", false}, {"!=", "3.11.*", "3.11.0", false},
		{"~=", "3.11.2", "3.11.1", false}, {"~=", "3.11.2", "3.11.9", true}, {"~=", "3.11.2", "3.12.0", false},
		{"==", "3.11", "3.11.0", true}, {"===", "3.11", "3.11", true}, {"===", "3.11", "3.11.0", false},
		{"<", "3.1", "3.1.dev0", false}, {">", "3.1", "3.1.post1", false},
	} {
		s, err := ParseSpecifier(c.op, c.v)
		if err != nil {
			t.Errorf("%s%s: %v", c.op, c.v, err)
			continue
		}
		v, err := Parse(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Contains(v); got != c.want {
			t.Errorf("%s contains %s: %v, want %v", s, c.in, got, c.want)
		}
	}
	for _, bad := range [][2]string{{"=", "1"}, {"", "1"}, {"~=", "1"}, {">=", "1.*"}, {"<", "1.0+local"}, {"==", "1.0.dev1.*"}, {"==", "1.0,<2"}, {"==", "1 || 2"}, {"<>", "1"}, {"===", "a b"}} {
		if s, err := ParseSpecifier(bad[0], bad[1]); err == nil {
			t.Errorf("ParseSpecifier(%q, %q) accepted: %s", bad[0], bad[1], s)
		}
	}
}
