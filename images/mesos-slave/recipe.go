package recipes

import (
	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/version"
)

// MesosSlaveInputs are what the mesos-slave image is made from.
type MesosSlaveInputs struct {
	Base    string // a Mesos agent image with supervisord and rsyslogd, pinned by digest
	Version version.Version
	// StandinAgent installs the STAND-IN agent as /usr/sbin/mesos-slave:
	// offline, where the base is plain Debian and Mesos cannot be installed.
	StandinAgent bool
}

// MesosSlave is the agent image: the Go init (ENVIRONMENT presets,
// ENVIRONMENT_INIT, MESOS_* pass-through, supervisord configuration) and
// its watchdog, on the agent base.
func MesosSlave(c *dagger.Client, b *gobuild.Builder, in MesosSlaveInputs) *dagger.Container {
	ctr := c.Container().From(in.Base).
		WithFile("/usr/local/bin/mesos-slave-init", b.Binary("./images/mesos-slave/init")).
		WithEnvVariable("PATH", StandardPath).
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
