// Package mesosslave is the mesos-slave image: its recipe, its programs
// (init/: the Go init and watchdog; slaveinit/: their library;
// collector/ over metrics/: the containers' metrics into InfluxDB;
// standin-agent/: the STAND-IN agent used where Mesos cannot be installed)
// and its smoke test.
package mesosslave

import (
	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// Inputs are what the mesos-slave image is made from.
type Inputs struct {
	Base    string // a Mesos agent image with supervisord and rsyslogd, pinned by digest
	Version version.Version
	// StandinAgent installs the STAND-IN agent as /usr/sbin/mesos-slave:
	// offline, where the base is plain Debian and Mesos cannot be installed.
	StandinAgent bool
}

// Recipe is the agent image: the Go init (ENVIRONMENT presets,
// ENVIRONMENT_INIT, MESOS_* pass-through, supervisord configuration) and
// its watchdog, on the agent base.
func Recipe(c *dagger.Client, b *gobuild.Builder, in Inputs) *dagger.Container {
	ctr := c.Container().From(in.Base).
		WithFile("/usr/local/bin/mesos-slave-init", b.Binary("./images/mesos-slave/init")).
		WithFile("/usr/local/bin/lhcbdirac-collector", b.Binary("./images/mesos-slave/collector")).
		WithEnvVariable("PATH", baseimage.StandardPath).
		WithExposedPort(5051).
		WithEntrypoint([]string{"/usr/local/bin/mesos-slave-init"}).
		WithLabel("org.opencontainers.image.title", "mesos-slave").
		WithLabel("org.opencontainers.image.version", in.Version.Raw).
		WithLabel("org.opencontainers.image.base.name", in.Base).
		WithLabel("org.lhcbdirac.pipeline.go-version", b.GoVersion())
	if in.StandinAgent {
		ctr = ctr.WithFile("/usr/sbin/mesos-slave", b.Binary("./images/mesos-slave/standin-agent")).
			WithLabel("org.lhcbdirac.mesos.agent", "STAND-IN (not Mesos): offline build")
	}
	return ctr
}

// Base is the offline base: the supervisor and log shipper the image runs
// around the agent (the STAND-IN agent is added by the recipe offline).
// LHCBDIRAC_BASE_MESOS_SLAVE gives a real Mesos base pinned by digest.
var Base = baseimage.Spec{Suite: "bookworm", Variant: "minbase",
	Packages: []string{"ca-certificates", "rsyslog", "supervisor"}}
