//go:build integration

package lhcbdirac

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

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
