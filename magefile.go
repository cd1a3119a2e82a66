//go:build mage

// lhcbdirac-pipeline builds, smoke-tests, pushes and deploys the LHCbDIRAC
// service images. The targets live in internal/target/, one package per
// concern; this file imports them and checks the command line before any
// of them runs.
package main

import (
	"fmt"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/target/magecli"
	//mage:import ci
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/target/ci"
	//mage:import
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/target/dev"
	//mage:import lock
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/target/lock"
	//mage:import
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/target/machine"
	//mage:import marathon
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/target/marathon"
	//mage:import metrics
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/target/metrics"
	//mage:import
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/target/release"
	//mage:import services
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/target/services"
)

// Aliases: `lock VERSION` is lock:resolve, as it always was.
var Aliases = map[string]any{"lock": lock.Resolve}

// magecliTargets are every target, as mage names them: the command line is
// checked against them before any target runs (a test keeps the list whole).
var magecliTargets = map[string]any{
	"engine:up": machine.Engine.Up, "engine:down": machine.Engine.Down, "engine:status": machine.Engine.Status,
	"registry:up": machine.Registry.Up, "registry:down": machine.Registry.Down, "registry:status": machine.Registry.Status,
	"base:build":      machine.Base.Build,
	"marathon:render": marathon.Render, "marathon:plan": marathon.Plan, "marathon:deploy": marathon.Deploy,
	"marathon:softUpdate": marathon.SoftUpdate, "marathon:dockerRun": marathon.DockerRun,
	"release": release.Release, "testService": release.TestService, "scale": release.Scale, "keys": release.Keys,
	"promote": release.Promote, "rollback": release.Rollback, "report": release.Report,
	"lock": lock.Resolve, "lock:resolve": lock.Resolve, "lock:check": lock.Check,
	"ci:plan": ci.Plan, "ci:release": ci.Release, "ci:login": ci.Login, "ci:testChanged": ci.TestChanged,
	"bench": dev.Bench, "benchFresh": dev.BenchFresh, "benchSmoke": dev.BenchSmoke, "smoke": dev.Smoke, "lint": dev.Lint, "test": dev.Test,
	"metrics:report": metrics.Report,
	"services:all":   services.All,
}

func init() {
	// metrics:report takes --since, report --against, which mage cannot parse.
	args, err := magecli.Options(os.Args[1:], "metrics:report", map[string]string{"since": "LHCBDIRAC_METRICS_SINCE"}, os.Setenv)
	if err == nil {
		args, err = magecli.Options(args, "report", map[string]string{"against": "LHCBDIRAC_REPORT_AGAINST"}, os.Setenv)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(2)
	}
	os.Args = append(os.Args[:1], args...)
	listing := os.Getenv("MAGEFILE_LIST") == "1" || os.Getenv("MAGEFILE_HELP") == "1"
	if err := magecli.Check(os.Args[1:], magecliTargets, listing); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(2)
	}
}
