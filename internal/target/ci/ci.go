// Package ci is what the GitLab and GitHub pipelines call (ci/): ci:plan,
// ci:release, ci:login, ci:testChanged; every decision is made in ci/.
package ci

import (
	"context"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// Plan prints what CI does for a tag (final, pre-release, or an error for anything else; hotfix overrides from the environment).
func Plan(tag string) error { return pipeline.RunCIPlan(settings.Load(), tag, os.Stdout) }

// Release decides what the tag means and runs the release for it; deploys only what the plan allows (LHCBDIRAC_CI_DRY_RUN=1 prints the mage call instead).
func Release(ctx context.Context, tag string) error {
	return pipeline.RunCIRelease(ctx, settings.Load(), tag, os.Stdout)
}

// Login writes registry credentials from REGISTRY/REGISTRY_USER/REGISTRY_PASSWORD (or GitLab's CI_REGISTRY*) into the Docker config; with none set it does nothing.
func Login() error { return pipeline.RunCILogin(settings.Load(), os.Stdout) }

// TestChanged runs testService for every service a change since base touches (LHCBDIRAC_CI_DRY_RUN=1 lists them).
func TestChanged(ctx context.Context, base string) error {
	return pipeline.RunCITestChanged(ctx, settings.Load(), base, os.Stdout)
}
