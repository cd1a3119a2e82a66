// Package testenv gives tests the shared test data, failing loudly — never
// skipping — when it is absent, and a progress reporter on the test log.
// (The engine and registry are in testengine.)
package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// TestdataEnv overrides where the shared test data lives.
const TestdataEnv = "LHCBDIRAC_TESTDATA"

// Reporter returns a progress reporter that writes to the test log.
func Reporter(t testing.TB) *progress.Reporter { return progress.New(logWriter{t}) }

type logWriter struct{ t testing.TB }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// Testdata returns the shared test data directory ($LHCBDIRAC_TESTDATA, else
// ../shared/testdata beside the clone) and fails the test when it is absent:
// conformance tests must never pass without their vectors.
func Testdata(t testing.TB) string {
	t.Helper()
	dir := settings.Load().Host.Testdata
	if dir == "" {
		root, err := hostimages.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(filepath.Dir(root), "shared", "testdata")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("SHARED TEST DATA MISSING: %s is not a directory (set %s): conformance tests cannot run without it", dir, TestdataEnv)
	}
	return dir
}
