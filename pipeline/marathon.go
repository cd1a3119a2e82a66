package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/deploy"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/runspec"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// The Marathon side alone (marathon:*, scale): the same settings, the same
// rendering and the same deploy as the release's.

// NewDeployer connects to the Marathon the settings name.
func NewDeployer(m settings.Marathon, log io.Writer) (*Deployer, error) {
	if m.URL == "" {
		return nil, fmt.Errorf("MARATHON_URL is not set")
	}
	c, err := client.New(client.Config{URLs: m.URL, User: m.User, Password: m.Password, Token: m.Token})
	if err != nil {
		return nil, err
	}
	return &Deployer{Client: c, Options: deploy.Options{Force: m.Force, Timeout: m.Timeout, Settle: m.Settle, MaxInstances: m.MaxInstances, Log: log}}, nil
}

// marathonApps renders servicesFile's apps for env at ver, as a release
// of ver would (the template and schema the settings name).
func marathonApps(st settings.Settings, servicesFile, env, ver string) ([]render.App, error) {
	if err := st.Need(settings.AreaRelease); err != nil {
		return nil, err
	}
	v, err := version.Parse(ver)
	if err != nil {
		return nil, err
	}
	f, err := services.Load(servicesFile)
	if err != nil {
		return nil, err
	}
	c := Config{Release: st.Release, Version: v, Services: f}
	c.Environment = env
	return renderApps(c, nil)
}

// RunMarathonRender is `mage marathon:render`.
func RunMarathonRender(st settings.Settings, servicesFile, env, ver, dir string, out io.Writer) error {
	apps, err := marathonApps(st, servicesFile, env, ver)
	if err != nil {
		return err
	}
	if err := render.WriteDir(apps, dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d app definitions written to %s\n", len(apps), dir)
	return nil
}

func deployer(st settings.Settings, log io.Writer) (*Deployer, error) {
	if err := st.Need(settings.AreaMarathon); err != nil {
		return nil, err
	}
	return NewDeployer(st.Marathon, log)
}

// RunMarathonPlan is `mage marathon:plan`.
func RunMarathonPlan(ctx context.Context, st settings.Settings, servicesFile, env, ver string, out io.Writer) error {
	apps, err := marathonApps(st, servicesFile, env, ver)
	if err != nil {
		return err
	}
	d, err := deployer(st, out)
	if err != nil {
		return err
	}
	plan, err := deploy.Plan(ctx, d.Client, apps)
	if err != nil {
		return err
	}
	deploy.FormatPlan(out, plan)
	return nil
}

// RunMarathonDeploy is `mage marathon:deploy`.
func RunMarathonDeploy(ctx context.Context, st settings.Settings, servicesFile, env, ver string, log io.Writer) error {
	apps, err := marathonApps(st, servicesFile, env, ver)
	if err != nil {
		return err
	}
	d, err := deployer(st, log)
	if err != nil {
		return err
	}
	_, err = deploy.Apply(ctx, d.Client, apps, d.Options)
	return err
}

// RunSoftUpdate is `mage marathon:softUpdate VERSION`.
func RunSoftUpdate(ctx context.Context, st settings.Settings, ver string, log io.Writer) error {
	if _, err := version.Parse(ver); err != nil {
		return err
	}
	d, err := deployer(st, log)
	if err != nil {
		return err
	}
	_, err = deploy.SoftUpdate(ctx, d.Client, ver, d.Options)
	return err
}

// RunScale is `mage scale System/Service N`: the service must be in the
// services file the release uses.
func RunScale(ctx context.Context, st settings.Settings, service string, count int, log io.Writer) error {
	if err := st.Need(settings.AreaRelease); err != nil {
		return err
	}
	f, err := LoadServices(st.Release)
	if err != nil {
		return err
	}
	s, ok := f.Find(service)
	if !ok {
		return fmt.Errorf("%s: no service %q (have %s)", f.Path, service, strings.Join(f.Names(), ", "))
	}
	d, err := deployer(st, log)
	if err != nil {
		return err
	}
	_, err = deploy.Scale(ctx, d.Client, render.AppID(s.Name), count, d.Options)
	return err
}

// RunDockerRun is `mage marathon:dockerRun APP.json`.
func RunDockerRun(st settings.Settings, appFile string, out, notes io.Writer) error {
	o, err := runspec.ParseOptions(st.Marathon.DeimosExposedPorts)
	if err != nil {
		return err
	}
	s, err := runspec.FromFile(appFile, o)
	if err != nil {
		return err
	}
	for _, w := range s.Warnings {
		fmt.Fprintln(notes, "note:", w)
	}
	fmt.Fprintln(out, s.DockerRunLine())
	return nil
}
