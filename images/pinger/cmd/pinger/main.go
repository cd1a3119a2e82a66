// Command pinger serves DIPS pings over HTTP for Consul health checks; see
// package server. It stops gracefully on SIGTERM (what Marathon and Docker
// send) or SIGINT.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(server.Main(ctx, os.Args[1:], os.Getenv, os.Stderr, nil))
}
