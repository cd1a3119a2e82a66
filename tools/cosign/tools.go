//go:build tools

// Package tools records the cosign CLI the evidence tests run (built from
// its Go module, as Consul is), so that `go mod tidy` keeps every package
// it needs in go.sum.
package tools

import _ "github.com/sigstore/cosign/v3/cmd/cosign"
