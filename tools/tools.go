//go:build tools

// Keeps the mage runner in go.mod for the zero-install entry (mage.go), whose
// `ignore` build tag hides it from `go mod tidy`.
package main

import _ "github.com/magefile/mage/mage"
