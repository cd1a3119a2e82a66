// Command dirac-discover answers, from inside a service's container, where
// its peers and its own ports are; see package discover.
package main

import (
	"context"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/discover"
)

func main() {
	os.Exit(discover.Run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
