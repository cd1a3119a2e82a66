// Package testenv gives integration tests the real engine, the real registry
// and the shared test data, and fails loudly — never skips — when any of them
// cannot be had: a green run must mean the integration tests ran.
package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
	"github.com/lhcbdirac/lhcbdirac-pipeline/progress"
)

// TestdataEnv overrides where the shared test data lives.
const TestdataEnv = "LHCBDIRAC_TESTDATA"

// Foundation provisions (or reuses) the engine and registry and connects.
// Provisioning progress goes to the test log.
func Foundation(t testing.TB) *pipeline.Foundation {
	t.Helper()
	// The Dagger session lives as long as the context it was opened with, so
	// the context ends with the test, not with this function.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	f, err := pipeline.Connect(ctx, progress.New(logWriter{t}), nil)
	if err != nil {
		cancel()
		t.Fatalf("INTEGRATION TEST CANNOT RUN: no Dagger engine/registry: %v", err)
	}
	t.Cleanup(func() {
		f.Close()
		cancel()
	})
	return f
}

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
	dir := os.Getenv(TestdataEnv)
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
