//go:build ignore

// Zero-install entry: `go run mage.go <target>` runs the targets of
// magefile.go without installing mage; `go run mage.go -l` lists them.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
