// Command dirac-self-ping is the COMMAND health check of every DIRAC service
// container: dirac-self-ping <port>/<System>/<Service>. See package selfping.
package main

import (
	"context"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/selfping"
)

func main() {
	os.Exit(selfping.Run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
