// Package dev is the developers' targets: bench, smoke, lint, test.
package dev

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// Bench measures the release as users wait for it: from empty caches, a no-op (five `go run mage.go release`), one entrypoint line, one Go program and one port changed, and the lhcbdirac image against the peer (a plain multi-stage Dockerfile of the same lock built by Docker) in the same run.
func Bench(ctx context.Context) error { return pipeline.RunBench(ctx, settings.Load(), os.Stdout) }

// BenchFresh measures the first release with every cache of the project's own new (pipeline cache, engine and its state, registry, Go's build cache) and prints each stage's share: the fresh-machine figure, without a new machine.
func BenchFresh(ctx context.Context) error {
	return pipeline.RunBenchFresh(ctx, settings.Load(), os.Stdout)
}

// Smoke checks the foundation alone: engine and registry up, then a command, a publish and a service binding checked end to end.
func Smoke(ctx context.Context) error { return pipeline.RunSmoke(ctx, settings.Load(), os.Stdout) }

// Lint fails when gofmt would change a file or go vet reports anything.
func Lint(ctx context.Context) error { return pipeline.RunLint(ctx) }

// Test lints, sets up the host (Docker, debootstrap, etcd… when missing), provisions the engine and registry, then runs every test (integration tests included) against them.
func Test(ctx context.Context) error {
	mg.CtxDeps(ctx, Lint)
	return pipeline.RunTest(ctx, settings.Load())
}

// BenchSmoke measures the smoke stage at scale: the release with the first 6, 12, 24 and all services the image ships (services:all's list), each cold (every service started and pinged again) and warm (the same release again), with the engine's peak memory.
func BenchSmoke(ctx context.Context) error {
	return pipeline.RunBenchSmoke(ctx, settings.Load(), os.Stdout)
}
