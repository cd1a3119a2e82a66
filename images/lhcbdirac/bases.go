package recipes

import "github.com/lhcbdirac/lhcbdirac-pipeline/baseimage"

// Offline bases, made with the foundation's debootstrap target when no base
// is configured. In production the bases are given pinned by digest
// (LHCBDIRAC_BASE_LHCBDIRAC, LHCBDIRAC_BASE_MESOS_SLAVE).
var (
	// LHCbDIRACBase: what the DIRACOS2 installer and pip need (the real
	// DIRACOS2 brings its own Python; the fixture installer uses this one),
	// and git for hotfixes at container start.
	LHCbDIRACBase = baseimage.Spec{Suite: "bookworm", Variant: "minbase",
		Packages: []string{"ca-certificates", "git", "python3", "python3-setuptools", "python3-venv", "python3-wheel"}}
	// MesosSlaveBase: the supervisor and log shipper the image runs around
	// the agent (the STAND-IN agent is added by the recipe offline).
	MesosSlaveBase = baseimage.Spec{Suite: "bookworm", Variant: "minbase",
		Packages: []string{"ca-certificates", "rsyslog", "supervisor"}}
)

// StandardPath is the PATH every image starts with (the bases set none).
const StandardPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
