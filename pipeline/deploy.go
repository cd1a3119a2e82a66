package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/deploy"
)

// The deploy stage: to Marathon when MARATHON_URL is set, else a dry run.

type deployStage struct{ r *Release }

func (deployStage) String() string { return "deploy" }

func (s deployStage) Run(ctx context.Context) (err error) {
	r := s.r
	defer func() {
		switch {
		case err == nil:
			r.Deployed = fmt.Sprintf("deployed %d apps to Marathon", len(r.Apps))
		case errors.Is(err, ErrSkip):
			r.Deployed = "not deployed: " + strings.TrimPrefix(err.Error(), "skipped: ")
		default:
			r.Deployed = "FAILED: " + err.Error()
		}
	}()
	switch {
	case !r.Config.Push:
		return Skip("testService does not deploy")
	case r.Config.Version.Pre:
		return Skip(r.Config.Version.Raw + " is a pre-release: pushed and tagged devel, not deployed")
	case r.Deploy == nil:
		fmt.Fprintf(r.Out, "Dry run (MARATHON_URL is not set): would deploy %d apps:\n", len(r.Apps))
		for _, a := range r.Apps {
			fmt.Fprintf(r.Out, "  %-40s %s ×%d\n", a.ID, a.Service.Image+":"+r.Config.Version.Raw, a.Service.Instances)
		}
		return Skip("dry run: set MARATHON_URL to deploy")
	}
	plan, err := deploy.Plan(ctx, r.Deploy, r.Apps)
	if err != nil {
		return err
	}
	deploy.FormatPlan(r.Out, plan)
	_, err = deploy.Apply(ctx, r.Deploy, r.Apps, r.DeployO)
	return err
}
