//go:build tools

// Package tools records the Consul agent the tests run (built from its Go
// module, as Debian no longer ships it), so that `go mod tidy` keeps every
// package it needs in go.sum.
package tools

import _ "github.com/hashicorp/consul"
