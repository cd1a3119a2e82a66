// Package registrator is the registrator image: its recipe (here), its
// program (cmd/registrator over registrator/), the entries it writes
// (entry/, which dirac-discover reads) and its smoke test (smoke.go, with
// standin-marathon/: the STAND-IN Marathon).
package registrator

import (
	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
)

// Port is where the registrator serves /info, /metrics and /healthz when
// Marathon gives it no port ($PORT_HTTP).
const Port = 8080

// EtcdBase is the smoke test's etcd: Debian's etcd-server, with etcdctl
// and curl to look at what the registrator wrote.
var EtcdBase = baseimage.Spec{Suite: "bookworm", Variant: "minbase", Packages: []string{"etcd-server", "etcd-client", "curl"}}

// Recipe is the registrator image: its static binary alone (no shell, no
// package manager), the OCI labels recording what it was built from. It
// declares no port: on host networking it listens on the port Marathon
// gives it ($PORT_HTTP), and a declared port it does not open would keep
// Dagger (and Docker's health tooling) waiting.
func Recipe(c *dagger.Client, b *gobuild.Builder, version string) *dagger.Container {
	return c.Container().
		WithFile("/usr/local/bin/registrator", b.Binary("./images/registrator/cmd/registrator")).
		WithEntrypoint([]string{"/usr/local/bin/registrator"}).
		WithLabel("org.opencontainers.image.title", "lhcbdirac-registrator").
		WithLabel("org.opencontainers.image.version", version).
		WithLabel("org.opencontainers.image.description", "Marathon tasks into etcd and Consul (discovery)").
		WithLabel("org.lhcbdirac.pipeline.go-version", b.GoVersion())
}
