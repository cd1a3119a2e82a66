// Package lock is the LHCbDIRAC lock's targets: lock:resolve (lock, for
// short) and lock:check.
package lock

import (
	"context"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// Resolve resolves the lock of LHCbDIRAC VERSION (every distribution pinned by version and sha256) without building, writes it to dist/VERSION/lhcbdirac.lock; releases of VERSION use it from then on.
func Resolve(ctx context.Context, version string) error {
	return pipeline.RunLockResolve(ctx, settings.Load(), version, os.Stdout)
}

// Check reads FILE as a release would (LHCBDIRAC_LOCK=FILE) and prints a one-line summary, or fails naming the line and what is wrong; it builds nothing and needs no engine, Docker or network.
func Check(file string) error { return pipeline.RunLockCheck(file, os.Stdout) }
