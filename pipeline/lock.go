package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// The lock outside a release: testService's default version, mage lock.

// DefaultVersion is the version testService builds when LHCBDIRAC_VERSION
// is not set: the newest final LHCbDIRAC release the index has (v0.0 on
// the FIXTURE route, whose packages have no version of their own).
func DefaultVersion(ctx context.Context, p *progress.Reporter, rel settings.Release) (string, error) {
	if rel.Version != "" {
		return rel.Version, nil
	}
	if rel.Fixture() {
		return "v0.0", nil
	}
	tools, err := pytools.Ensure(ctx, p, rel.PipIndexURL)
	if err != nil {
		return "", err
	}
	have, err := tools.Versions(ctx, "LHCbDIRAC")
	if err != nil {
		return "", fmt.Errorf("listing LHCbDIRAC's versions on the index (or set LHCBDIRAC_VERSION): %w", err)
	}
	for _, v := range have { // newest first
		if !strings.ContainsAny(v, "abcr") {
			return "v" + v, nil
		}
	}
	return "", fmt.Errorf("the index has no final LHCbDIRAC release: set LHCBDIRAC_VERSION")
}

// WriteLock resolves the release's lock afresh (go run mage.go lock) and
// writes it to dist/<version>/; the next release of that version uses it.
func WriteLock(ctx context.Context, p *progress.Reporter, c Config) (string, *lhcbdirac.Lock, error) {
	if c.Fixture() {
		return "", nil, fmt.Errorf("LHCBDIRAC_SOURCES=fixture: the FIXTURE has no lock")
	}
	l, err := ResolveLock(ctx, p, c)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(c.Dist, 0o755); err != nil {
		return "", nil, err
	}
	path := filepath.Join(c.Dist, LockFileName)
	return path, l, cachedir.WriteFile(path, l.Raw)
}
