// Package target holds the mage targets, one package per concern, which
// magefile.go imports with // mage:import (as elastic/beats keeps its
// targets in dev-tools/mage/target): machine (engine:*, registry:*,
// base:build), release (release, testService, scale), lock (lock:*),
// marathon (marathon:*), ci (ci:*), metrics (metrics:report), dev (bench,
// smoke, lint, test). A target only parses its arguments and calls one
// function of pipeline/ (or of the package that owns the concern) with the
// settings read once at the boundary (internal/settings).
package target
