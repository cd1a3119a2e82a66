package version

import (
	"regexp"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, pre := range map[string]bool{"v9.1": false, "v9.1.2": false, "v8r5": false, "v8r5p3": false, "v9.1-pre1": true, "v10.0.0-pre": true, "v8r5p3-pre2": true} {
		v, err := Parse(in)
		if err != nil || v.Pre != pre || v.String() != in {
			t.Errorf("Parse(%q) = %+v, %v", in, v, err)
		}
	}
	for _, bad := range []string{"", "9.1", "v9", "v9.1.2.3", "v9.1-rc1", "v9.1 ", "v9.1;rm", "latest", "v9r", "V9.1", "v9.1-pre1x", "v9.1234567890", "v9.1-pre1234567890"} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Parse(%q) = %v, want an error naming it", bad, err)
		}
	}
}

func TestPEP440(t *testing.T) {
	for in, want := range map[string]string{"v9.1": "9.1", "v9r1": "9.1", "v8r5p3": "8.5.3", "v9.1.2-pre1": "9.1.2a1", "v11.0-pre": "11.0a0"} {
		v, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.PEP440(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// TestEveryVersionIsAValidTag: v9.<140 digits> built, smoke-tested and
// pushed for 47 s before tagging failed. The longest version the check
// admits is still a valid image tag.
func TestEveryVersionIsAValidTag(t *testing.T) {
	long := "v9." + strings.Repeat("1", 140)
	if _, err := Parse(long); err == nil || !strings.Contains(err.Error(), "at most 9 digits") || len(err.Error()) > 300 {
		t.Fatalf("Parse(v9.<140 digits>) = %v", err)
	}
	n := strings.Repeat("9", MaxDigits)
	longest := "v" + n + "." + n + "." + n + "-pre" + n
	if _, err := Parse(longest); err != nil {
		t.Fatal(err)
	}
	tag := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`) // the OCI distribution spec's tag
	if !tag.MatchString(longest) {
		t.Fatalf("%q is not a valid tag", longest)
	}
}
