package pipeline

import (
	"context"
	"fmt"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/deploy"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// The deploy stage: to Marathon when MARATHON_URL is set, else a dry run.

// Deployer is a Marathon to deploy to, and how.
type Deployer struct {
	Client  *client.Client
	Options deploy.Options
}

// Deployed is what the deploy stage did.
type Deployed struct {
	Apps     []render.App
	Skipped  string          // why nothing was deployed ("" when it was)
	Verified []Verified      // the evidence checked before anything was sent
	DryRun   []DryRunApp     // what a dry run would deploy
	Plan     []deploy.Change // the plan against what Marathon runs
	Results  []deploy.Result
}

// SkipReason is why nothing was deployed.
func (d *Deployed) SkipReason() string {
	if d == nil {
		return ""
	}
	return d.Skipped
}

// DryRunApp is one app a dry run would deploy.
type DryRunApp struct {
	ID        string
	Image     string
	Instances int
}

func deployStage(ctx context.Context, s *Session, c Config, apps []render.App, to *Deployer) (d *Deployed, err error) {
	d = &Deployed{Apps: apps}
	switch {
	case c.Version.Pre:
		d.Skipped = c.Version.Raw + " is a pre-release: pushed and tagged devel, not deployed"
		return d, nil
	case to == nil:
		for _, a := range apps {
			app, err := dryRunApp(a)
			if err != nil {
				return nil, err
			}
			d.DryRun = append(d.DryRun, app)
		}
		fmt.Fprintf(s.Out, "Dry run (MARATHON_URL is not set): would deploy %d apps:\n", len(d.DryRun))
		for _, a := range d.DryRun {
			fmt.Fprintf(s.Out, "  %-40s %s ×%d\n", a.ID, a.Image, a.Instances)
		}
		d.Skipped = "dry run: set MARATHON_URL to deploy"
		return d, nil
	}
	// Before any request to Marathon: every image the apps name carries
	// valid evidence for its digest.
	step := s.P.Start("verify the evidence of every image the apps name")
	if d.Verified, err = VerifyApps(ctx, s.Settings.Evidence, apps, c.Environment); err != nil {
		return d, step.Fail(fmt.Errorf("nothing was deployed: %w", err))
	}
	step.Done()
	plan, err := deploy.Plan(ctx, to.Client, apps)
	if err != nil {
		return nil, err
	}
	d.Plan = plan
	deploy.FormatPlan(s.Out, plan)
	d.Results, err = deploy.Apply(ctx, to.Client, apps, to.Options)
	return d, err
}

// dryRunApp is what a dry run shows of an app, read from its definition
// itself: the image and instance count it really has (the registrator's
// app has no DIRAC service behind it).
func dryRunApp(a render.App) (DryRunApp, error) {
	d := a.Definition()
	return DryRunApp{ID: d.ID, Image: d.Image(), Instances: d.Instances}, nil
}
