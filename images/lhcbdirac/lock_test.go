package lhcbdirac

import (
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep440"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

func TestNearestAndOrder(t *testing.T) {
	have := []string{"12.0.21", "12.0.20", "12.0.9", "12.0.0", "12.0.0a31", "12.0.0a5", "11.0.61"}
	if got := strings.Join(Nearest(have, "12.0.10", 2), " "); got != "12.0.0 12.0.9 12.0.20 12.0.21" {
		t.Fatalf("Nearest 12.0.10: %s", got)
	}
	if got := strings.Join(Nearest(have, "12.0.0a6", 1), " "); got != "12.0.0a5 12.0.0a31" {
		t.Fatalf("Nearest 12.0.0a6: %s", got)
	}
	for _, c := range [][2]string{{"12.0.0a31", "12.0.0"}, {"12.0.9", "12.0.10"}, {"11.0.61", "12.0.0a5"}} {
		if pep440.Compare(c[0], c[1]) >= 0 {
			t.Errorf("%s should sort before %s", c[0], c[1])
		}
	}
}

func TestParseLockRefusesWhatIsNotALock(t *testing.T) {
	good := "# lhcbdirac:source-built m2crypto\n# lhcbdirac:section runtime\nlhcbdirac==12.0.21 \\\n    --hash=sha256:" + strings.Repeat("a", 64) + "\ndirac==9.1.22 --hash=sha256:" + strings.Repeat("b", 64) + "\nm2crypto==0.51.0 \\\n    --hash=sha256:" + strings.Repeat("c", 64) + "\n# lhcbdirac:section build\npip==26.3 --hash=sha256:" + strings.Repeat("d", 64) + "\n"
	l, err := ParseLock("x.lock", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if l.LHCbDIRACVersion() != "12.0.21" || l.DIRACVersion() != "9.1.22" || len(l.Build) != 1 {
		t.Fatalf("%+v", l)
	}
	if got := string(l.RuntimeRequirements("DIRAC")); strings.Contains("\n"+got, "\ndirac==") || strings.Contains(got, "m2crypto") || !strings.Contains(got, "lhcbdirac==12.0.21") {
		t.Fatalf("runtime requirements without DIRAC and source-built: %q", got)
	}
	if got := string(l.SourceRequirements()); !strings.HasPrefix(got, "m2crypto==0.51.0 \\\n    --hash") {
		t.Fatalf("source requirements: %q", got)
	}
	v, _ := version.Parse("v12.0.20")
	if err := l.CheckVersion("x.lock", v); err == nil || !strings.Contains(err.Error(), "installs LHCbDIRAC 12.0.21, but the release is v12.0.20") {
		t.Fatalf("CheckVersion: %v", err)
	}
	for body, want := range map[string]string{
		"": "not an lhcbdirac lock",
		"# lhcbdirac:section runtime\nlhcbdirac>=12\n":                 `x.lock:2: "lhcbdirac>=12" is not pinned with ==`,
		"# lhcbdirac:section runtime\nlhcbdirac==12.0.21\n":            "lhcbdirac==12.0.21 has no sha256 hash",
		"lhcbdirac==1 --hash=sha256:" + strings.Repeat("a", 64) + "\n": "x.lock:1: an entry before any",
		strings.Replace(good, "dirac==9.1.22", "diracx==9.1.22", 1):    "the lock does not install dirac",
	} {
		if _, err := ParseLock("x.lock", []byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", body, err, want)
		}
	}
}
