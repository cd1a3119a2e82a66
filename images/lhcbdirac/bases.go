package lhcbdirac

import "github.com/lhcbdirac/lhcbdirac-pipeline/internal/baseimage"

// Base is the offline base, made with debootstrap when no base is
// configured (LHCBDIRAC_BASE_LHCBDIRAC gives one pinned by digest): what
// the DIRACOS2 installer and pip need (the real DIRACOS2 brings its own
// Python; the fixture installer uses this one), and git for hotfixes at
// container start.
var Base = baseimage.Spec{Suite: "bookworm", Variant: "minbase",
	Packages: []string{"ca-certificates", "git", "python3", "python3-setuptools", "python3-venv", "python3-wheel"}}
