package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/ci"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// What CI calls (ci/): every decision is ci's; these only carry it out.

// RunCIPlan is `mage ci:plan TAG`.
func RunCIPlan(st settings.Settings, tag string, out io.Writer) error {
	p, err := ci.Decide(tag, st)
	if err == nil {
		fmt.Fprintln(out, p)
	}
	return err
}

// RunCIRelease is `mage ci:release TAG`: the release the tag means,
// deployed only where the plan allows; LHCBDIRAC_CI_DRY_RUN=1 prints the
// call instead.
func RunCIRelease(ctx context.Context, st settings.Settings, tag string, out io.Writer) error {
	p, err := ci.Decide(tag, st)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "ci:", p)
	if st.CI.DryRun {
		fmt.Fprintf(out, "dry run: would run: mage release %s (deploy: %v)\n", p.Version.Raw, p.Deploy)
		return nil
	}
	return runRelease(ctx, st, p.Version, p.Deploy) // the version ci.Decide parsed, typed
}

// RunCILogin is `mage ci:login`: the registry credentials CI holds into
// the Docker config; with none set it does nothing.
func RunCILogin(st settings.Settings, out io.Writer) error {
	if err := st.Need(settings.AreaCI); err != nil {
		return err
	}
	l := st.CI.Login
	if l.Empty() {
		fmt.Fprintln(out, "ci:login: no registry credentials set; pushing anonymously")
		return nil
	}
	if err := ci.Login(st.CI.DockerConfig, l.Registry, l.User, l.Password); err != nil {
		return err
	}
	fmt.Fprintf(out, "ci:login: credentials for %s written to %s/config.json\n", l.Registry, st.CI.DockerConfig)
	return nil
}

// RunCITestChanged is `mage ci:testChanged BASE`: testService for every
// service a change since base touches, in the services file the release
// uses (LHCBDIRAC_CI_DRY_RUN=1 lists them).
func RunCITestChanged(ctx context.Context, st settings.Settings, base string, out io.Writer) error {
	if err := st.Need(settings.AreaRelease, settings.AreaCI); err != nil {
		return err
	}
	f, err := LoadServices(st.Release)
	if err != nil {
		return err
	}
	path := st.Release.ServicesFile
	if path == "" {
		path = "pipeline/services.yaml" // the embedded file, as the repository has it
	}
	names, err := ci.ChangedServices(ctx, ".", base, path, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ci:testChanged: %d services to test: %s\n", len(names), strings.Join(names, " "))
	if st.CI.DryRun {
		return nil
	}
	for _, n := range names {
		if err := RunTestService(ctx, st, n); err != nil {
			return err
		}
	}
	return nil
}
