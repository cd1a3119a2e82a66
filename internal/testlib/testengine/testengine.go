// Package testengine gives integration tests the real engine and registry,
// and fails loudly — never skips — when they cannot be had: a green run
// must mean the integration tests ran. (Apart from testenv so that packages
// the pipeline imports can use testenv's test data without a cycle.)
package testengine

import (
	"context"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/foundation"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

// Foundation provisions (or reuses) the engine and registry and connects.
// Provisioning progress goes to the test log.
func Foundation(t testing.TB) *foundation.Foundation {
	t.Helper()
	// The Dagger session lives as long as the context it was opened with, so
	// the context ends with the test, not with this function.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	settings.Load().Host.Apply()
	f, err := foundation.Connect(ctx, testenv.Reporter(t), nil)
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
