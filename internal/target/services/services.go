// Package services is the services file's targets: services:all.
package services

import (
	"context"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// All reads the release image <registry>/lhcbdirac-pipeline/lhcbdirac:VERSION and writes dist/VERSION/services.all.yaml with every service it ships (cannotRun for those that cannot run on a build machine): a services file for release, testService, marathon:* and promote (LHCBDIRAC_SERVICES).
func All(ctx context.Context, version string) error {
	return pipeline.RunServicesAll(ctx, settings.Load(), version, os.Stdout)
}
