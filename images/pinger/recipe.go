// Package pinger is the pinger image: its recipe (here), its program
// (cmd/pinger, over the server library in server/) and its smoke test.
package pinger

import (
	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
)

// Port is where the pinger listens (the seed's port).
const Port = 1234

// Recipe is the pinger image: its static binary alone, no base at all (no
// shell, no package manager, nothing to patch), the OCI labels recording
// what it was built from.
func Recipe(c *dagger.Client, b *gobuild.Builder, version string) *dagger.Container {
	return c.Container().
		WithFile("/usr/local/bin/pinger", b.Binary("./images/pinger/cmd/pinger")).
		WithEntrypoint([]string{"/usr/local/bin/pinger"}).
		WithExposedPort(Port).
		WithLabel("org.opencontainers.image.title", "lhcbdirac-pinger").
		WithLabel("org.opencontainers.image.version", version).
		WithLabel("org.opencontainers.image.description", "HTTP to DIPS ping bridge for Consul health checks").
		WithLabel("org.lhcbdirac.pipeline.go-version", b.GoVersion())
}
