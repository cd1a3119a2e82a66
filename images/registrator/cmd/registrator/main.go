// Command registrator keeps etcd and Consul in step with Marathon's running
// tasks; see package registrator. It stops on SIGTERM (what Marathon and
// Docker send) or SIGINT, revoking its etcd lease so its entries go at once.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/registrator/registrator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(registrator.Main(ctx, os.Getenv, os.Stderr))
}
