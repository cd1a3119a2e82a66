// Package recipes holds the image recipes of the release: each takes its
// inputs (a Go builder, versions, bases pinned by digest) and returns a
// Dagger container ready to test and publish. The files that go into each
// image live under images/<name>/.
package recipes

import (
	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/gobuild"
)

// PingerPort is where the pinger listens (the seed's port).
const PingerPort = 1234

// Pinger is the pinger image: its static binary alone, no base at all (no
// shell, no package manager, nothing to patch), the OCI labels recording
// what it was built from.
func Pinger(c *dagger.Client, b *gobuild.Builder, version string) *dagger.Container {
	return c.Container().
		WithFile("/usr/local/bin/pinger", b.Binary("./images/pinger")).
		WithEntrypoint([]string{"/usr/local/bin/pinger"}).
		WithExposedPort(PingerPort).
		WithLabel("org.opencontainers.image.title", "lhcbdirac-pinger").
		WithLabel("org.opencontainers.image.version", version).
		WithLabel("org.opencontainers.image.description", "HTTP to DIPS ping bridge for Consul health checks").
		WithLabel("org.lhcbdirac.pipeline.go-version", b.GoVersion())
}
