package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/deploy"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/runspec"
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
// of ver would (the template and schema the settings name), each naming
// the digest ver's tag names in the registry.
func marathonApps(ctx context.Context, st settings.Settings, servicesFile, env, ver string) ([]render.App, error) {
	c, err := marathonConfig(st, servicesFile, env, ver)
	if err != nil {
		return nil, err
	}
	pins, err := releasedPins(ctx, c)
	if err != nil {
		return nil, err
	}
	return renderApps(c, pins)
}

// marathonConfig is a release's configuration for servicesFile and env.
func marathonConfig(st settings.Settings, servicesFile, env, ver string) (Config, error) {
	if err := st.Need(settings.AreaRelease); err != nil {
		return Config{}, err
	}
	v, err := version.Parse(ver)
	if err != nil {
		return Config{}, err
	}
	rel := st.Release
	rel.ServicesFile, rel.Environment = servicesFile, env
	return NewConfig(v, rel, RegistryAddress(st))
}

// RunMarathonRender is `mage marathon:render`.
func RunMarathonRender(ctx context.Context, st settings.Settings, servicesFile, env, ver, dir string, out io.Writer) error {
	apps, err := marathonApps(ctx, st, servicesFile, env, ver)
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
	apps, err := marathonApps(ctx, st, servicesFile, env, ver)
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
	FormatPlanFields(out, plan)
	return nil
}

// RunMarathonDeploy is `mage marathon:deploy`.
func RunMarathonDeploy(ctx context.Context, st settings.Settings, servicesFile, env, ver string, log io.Writer) error {
	apps, err := marathonApps(ctx, st, servicesFile, env, ver)
	if err != nil {
		return err
	}
	d, err := deployer(st, log)
	if err != nil {
		return err
	}
	if _, err := VerifyApps(ctx, st.Evidence, apps, env); err != nil {
		return fmt.Errorf("nothing was deployed: %w", err)
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
	// Every app's new image: the digest ver's tag names, verified before
	// any app changes.
	pin := func(repo string) (string, error) {
		ref, err := name.NewTag(repo + ":" + ver)
		if err != nil {
			return "", err
		}
		desc, err := remote.Head(ref, append(registryAuth(), remote.WithContext(ctx))...)
		if err != nil {
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		if _, err := VerifyRefs(ctx, st.Evidence, []string{repo + "@" + desc.Digest.String()}, ""); err != nil {
			return "", err
		}
		return desc.Digest.String(), nil
	}
	_, err = deploy.SoftUpdate(ctx, d.Client, ver, pin, d.Options)
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
	// Scaling starts more of what runs: its image's evidence is checked
	// before Marathon is asked to change anything.
	id := render.AppID(s.Name)
	cur, err := d.Client.GetApp(ctx, id)
	if err != nil {
		return err
	}
	if cur != nil {
		if _, err := VerifyRefs(ctx, st.Evidence, []string{cur.Image()}, st.Release.Environment); err != nil {
			return fmt.Errorf("scale %s: %w", id, err)
		}
	}
	_, err = deploy.Scale(ctx, d.Client, id, count, d.Options)
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
