// Command standin-marathon is the registrator smoke test's Marathon: the
// STAND-IN marathon/marathontest (Marathon cannot be installed here)
// serving on :8080 with two apps already running, so the registrator has
// tasks and events to follow.
package main

import (
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
)

// SmokeApps are what the stand-in runs.
var smokeApps = []map[string]any{
	{"id": "/datamanagement/filecatalog", "instances": 2, "labels": map[string]any{"dirac_component": "DataManagement/FileCatalog"},
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "lhcbdirac:smoke"},
			"portMappings": []any{map[string]any{"containerPort": 9197, "hostPort": 0, "name": "dips"}}},
		"networks": []any{map[string]any{"mode": "container/bridge"}}},
	{"id": "/requestmanagement/reqproxy", "instances": 1, "labels": map[string]any{"dirac_component": "RequestManagement/ReqProxy"},
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "lhcbdirac:smoke"},
			"portMappings": []any{map[string]any{"containerPort": 9161, "hostPort": 0, "name": "dips"}}},
		"networks": []any{map[string]any{"mode": "container/bridge"}}},
}

func main() {
	l, err := net.Listen("tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	s := marathontest.NewOn(l)
	s.Hosts = []string{"agent-1.smoke", "agent-2.smoke"}
	for _, a := range smokeApps {
		s.Seed(a)
	}
	log.Printf("STAND-IN Marathon on %s with %d apps", l.Addr(), len(smokeApps))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Close()
}
