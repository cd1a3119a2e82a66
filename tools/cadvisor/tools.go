//go:build tools

// Package tools records cAdvisor (built from its Go module, as Debian does
// not ship it), which the monitoring tests run, so that `go mod tidy`
// keeps every package it needs in go.sum. v0.36.0 is the last release
// whose command is in the module the Go module proxy serves (later ones
// moved it to github.com/google/cadvisor/cmd, which it does not serve).
package tools

import _ "github.com/google/cadvisor"
