// Command lhcbdirac-collector writes the metrics of the node's DIRAC
// containers to InfluxDB; see package metrics. It stops on SIGTERM (what
// supervisord sends) or SIGINT.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave/metrics"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(metrics.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
