// Package release is the release's targets: release, testService, scale.
package release

import (
	"context"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// Release builds the images, smoke-tests every service as Marathon would run it, pushes and tags, renders the app definitions and deploys them (a dry run unless MARATHON_URL is set); version is vX.Y[.Z] or vXrY[pZ], optionally -preN.
func Release(ctx context.Context, version string) error {
	return pipeline.RunRelease(ctx, settings.Load(), version, true)
}

// TestService builds the images and runs one service (System/Service) as Marathon would, health-checks and pings it, shows its logs; nothing is pushed (LHCBDIRAC_VERSION, else the newest LHCbDIRAC on the index).
func TestService(ctx context.Context, service string) error {
	return pipeline.RunTestService(ctx, settings.Load(), service)
}

// Scale sets SERVICE's instance count on $MARATHON_URL to N and waits until every instance is healthy, rolling back otherwise (as marathon:deploy; the service must be in the services file; at most MARATHON_MAX_INSTANCES).
func Scale(ctx context.Context, service string, n int) error {
	return pipeline.RunScale(ctx, settings.Load(), service, n, os.Stderr)
}

// Keys makes a release key pair for local use (releases here sign with it unless LHCBDIRAC_SIGNING_KEY is set; deploys verify with it unless LHCBDIRAC_VERIFY_KEY is set) and says where it is.
func Keys() error { return pipeline.RunKeys(os.Stdout) }

// Promote deploys the digests VERSION pushed (read from the registry, verified first) to ENVIRONMENT of the services file, without rebuilding: the plan field by field, then a canary (one instance of each app, or of the services marked canary, gated on Marathon's health and a DIPS ping through the pinger), then the rest; any failure rolls every app back.
func Promote(ctx context.Context, version, environment string) error {
	_, err := pipeline.RunPromote(ctx, settings.Load(), version, environment, os.Stdout, os.Stderr)
	return err
}

// Rollback redeploys, at once, the previous release every app of ENVIRONMENT ran on Marathon (its evidence verified first) and says what it restored.
func Rollback(ctx context.Context, environment string) error {
	_, err := pipeline.RunRollback(ctx, settings.Load(), environment, os.Stdout, os.Stderr)
	return err
}

// Report writes dist/VERSION/report.html and release-notes.md from what the registry holds of VERSION (its images, their verified evidence, its lock), against the nearest lower release (--against PREVIOUS for another).
func Report(ctx context.Context, version string) error {
	st := settings.Load()
	return pipeline.RunReport(ctx, st, version, st.Release.ReportAgainst, os.Stdout)
}
