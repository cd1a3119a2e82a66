// Package machine is the foundation's targets: the engine, the registry,
// the Debian bases.
package machine

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// Engine manages the Dagger engine.
type Engine mg.Namespace

// Registry manages the embedded OCI registry.
type Registry mg.Namespace

// Base makes offline base images.
type Base mg.Namespace

// Up provisions the Dagger engine (builds it when none can be downloaded) and prints the variables the SDK needs.
func (Engine) Up(ctx context.Context) error {
	return pipeline.RunEngineUp(ctx, settings.Load(), os.Stdout)
}

// Down stops and removes the local engine container (its cache volume and image stay).
func (Engine) Down(ctx context.Context) error { return pipeline.RunEngineDown(ctx, settings.Load()) }

// Status tells which engine is used and whether it runs.
func (Engine) Status(ctx context.Context) error {
	return pipeline.RunEngineStatus(ctx, settings.Load(), os.Stdout)
}

// Up starts the embedded registry (data kept in a Docker volume) unless LHCBDIRAC_REGISTRY names another.
func (Registry) Up(ctx context.Context) error {
	return pipeline.RunRegistryUp(ctx, settings.Load(), os.Stdout)
}

// Down stops the embedded registry; its data volume stays.
func (Registry) Down(ctx context.Context) error {
	return pipeline.RunRegistryDown(ctx, settings.Load())
}

// Status tells which registry is used and whether it answers.
func (Registry) Status(ctx context.Context) error {
	return pipeline.RunRegistryStatus(ctx, settings.Load(), os.Stdout)
}

// Build makes a Debian base with debootstrap (packages comma-separated, "" for none), pushes it as <registry>/lhcbdirac-pipeline/base:<name> and prints its digest.
func (Base) Build(ctx context.Context, name, packages string) error {
	return pipeline.RunBaseBuild(ctx, settings.Load(), name, packages, os.Stdout)
}
