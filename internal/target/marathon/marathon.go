// Package marathon is the Marathon side's targets: marathon:render, plan,
// deploy, softUpdate, dockerRun.
package marathon

import (
	"context"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// Render writes one <System>_<Service>.json per service of the services file (YAML, or the seed's JSON) for env and version into dir, each naming its image by the digest version's tag names in the registry.
func Render(ctx context.Context, servicesFile, env, version, dir string) error {
	return pipeline.RunMarathonRender(ctx, settings.Load(), servicesFile, env, version, dir, os.Stdout)
}

// Plan prints what deploying would change on $MARATHON_URL: create / update (with a diff) / unchanged.
func Plan(ctx context.Context, servicesFile, env, version string) error {
	return pipeline.RunMarathonPlan(ctx, settings.Load(), servicesFile, env, version, os.Stdout)
}

// Deploy verifies the evidence of every image, then creates or updates every app on $MARATHON_URL and waits until each is healthy, rolling back the ones that are not (MARATHON_FORCE=1 overrides running deployments; MARATHON_TIMEOUT).
func Deploy(ctx context.Context, servicesFile, env, version string) error {
	return pipeline.RunMarathonDeploy(ctx, settings.Load(), servicesFile, env, version, os.Stderr)
}

// SoftUpdate swaps the image tag of every app labelled dirac_component on $MARATHON_URL for version, keeping instance counts (the seed's soft update).
func SoftUpdate(ctx context.Context, version string) error {
	return pipeline.RunSoftUpdate(ctx, settings.Load(), version, os.Stderr)
}

// DockerRun prints the docker run command a Mesos agent would execute for a task of APP.json (deimos's, for an app in its format; DEIMOS_EXPOSED_PORTS gives the image's EXPOSEd ports).
func DockerRun(appFile string) error {
	return pipeline.RunDockerRun(settings.Load(), appFile, os.Stdout, os.Stderr)
}
