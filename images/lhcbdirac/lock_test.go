package lhcbdirac

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep440"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
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

// TestResolveRealLock resolves LHCbDIRAC 12.0.21 against the real index
// (uv, with hashes) and checks what the image needs of it.
func TestIntegrationResolveRealLock(t *testing.T) {
	tools, err := pytools.Ensure(t.Context(), testenv.Reporter(t), "")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := version.Parse("v12.0.21")
	if err := CheckIndexHas(t.Context(), tools, v); err != nil {
		t.Fatal(err)
	}
	missing, _ := version.Parse("v12.0.99")
	if err := CheckIndexHas(t.Context(), tools, missing); err == nil || !strings.Contains(err.Error(), "the index has no LHCbDIRAC 12.0.99 (release v12.0.99); the nearest it has: 12.0.19, 12.0.20, 12.0.21") {
		t.Fatalf("a version the index lacks: %v", err)
	}
	l, err := ResolveLock(t.Context(), testenv.Reporter(t), tools, v)
	if err != nil {
		t.Fatal(err)
	}
	if l.LHCbDIRACVersion() != "12.0.21" || !strings.HasPrefix(l.DIRACVersion(), "9.1.") {
		t.Fatalf("LHCbDIRAC %s DIRAC %s", l.LHCbDIRACVersion(), l.DIRACVersion())
	}
	for _, want := range []string{"m2crypto", "mysqlclient"} {
		if !strings.Contains(strings.Join(l.SourceBuilt, " "), want) {
			t.Errorf("%s is not among the source-built %v", want, l.SourceBuilt)
		}
	}
	if _, ok := l.Find("gfal2-python"); ok {
		t.Error("gfal2-python is in the runtime section; Debian provides it")
	}
	// What install.sh gets is the lock's entries, exactly as uv wrote them.
	for _, in := range installInputs(l, nil) {
		checkInstallInput(t, in.path, l, in.text)
	}
	if _, build, _ := strings.Cut(string(l.Raw), "# lhcbdirac:section build\n"); string(l.BuildRequirements()) != build {
		t.Errorf("the build section is not written as uv wrote it")
	}
	path := filepath.Join(t.TempDir(), "lhcbdirac.lock")
	os.WriteFile(path, l.Raw, 0o644)
	again, err := ReadLock(path)
	if err != nil || again.Digest() != l.Digest() || len(again.Runtime) != len(l.Runtime) {
		t.Fatalf("the lock does not read back: %v", err)
	}
	t.Logf("%d runtime distributions, %d build tools, source-built %v, %s", len(l.Runtime), len(l.Build), l.SourceBuilt, l.Digest())
}
