// Command lhcbdirac-entrypoint is the lhcbdirac image's entrypoint
// (installed as /opt/dirac/dockerEntrypoint.sh, the path the Marathon health
// check names): it sets up the DIRAC environment, applies the hotfix
// variables, and execs its arguments. See package diracentry.
package main

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/diracentry"
)

func main() {
	e := diracentry.Entry{Root: diracentry.Root, Log: os.Stderr}
	env, err := e.Prepare(context.Background(), os.Args[1:], os.Environ())
	if err == nil {
		var path string
		if path, err = diracentry.LookPath(os.Args[1], env); err == nil {
			err = syscall.Exec(path, os.Args[1:], env)
		}
	}
	fmt.Fprintln(os.Stderr, "dockerEntrypoint:", err)
	os.Exit(127)
}
