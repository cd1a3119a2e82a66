package lhcbdirac

import "github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"

// The offline bases, made with debootstrap when none is configured
// (LHCBDIRAC_BASE_LHCBDIRAC gives the runtime base pinned by digest).
var (
	// Base is what the image runs on: Debian's python3.11 (the venv's
	// interpreter), the libraries the compiled distributions link against
	// (OpenSSL for M2Crypto, MariaDB's client for mysqlclient), Debian's
	// gfal2 Python binding (see constraints.txt), and git for a hotfix
	// applied at container start. No compiler, no headers.
	Base = baseimage.Spec{Suite: "bookworm", Variant: "minbase",
		Packages: []string{"ca-certificates", "git", "python3", "libssl3", "libmariadb3", "python3-gfal2"}}
	// BuilderBase is where the install runs: compilers, swig and the -dev
	// packages the source-only distributions build against, python3-venv
	// for the build tools' environment; on the FIXTURE route, the
	// setuptools and wheel its offline pip install uses.
	BuilderBase = baseimage.Spec{Suite: "bookworm", Variant: "minbase",
		Packages: []string{"ca-certificates", "git", "python3", "python3-dev", "python3-venv", "python3-setuptools", "python3-wheel",
			"build-essential", "pkg-config", "swig", "libssl-dev", "libmariadb-dev", "libmariadb-dev-compat", "python3-gfal2"}}
)
