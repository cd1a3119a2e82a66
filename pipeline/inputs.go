package pipeline

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
	mesosslave "github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// The inputs stage: everything that can be wrong is checked before building.

type inputsStage struct{ r *Release }

func (inputsStage) String() string { return "inputs" }

func (s inputsStage) Run(ctx context.Context) error {
	r, c := s.r, s.r.Config
	rd, err := render.New(os.Getenv("LHCBDIRAC_MARATHON_TEMPLATE"), nil)
	if err != nil {
		return err
	}
	apps, err := rd.Render(c.Services, c.Environment, c.Version.Raw)
	if err != nil {
		return err
	}
	for _, a := range apps {
		if c.Only == "" || a.Service.Name == c.Only {
			r.Apps = append(r.Apps, a)
		}
	}
	// Sources: a hotfix from its repository; offline, the fixtures.
	specs := []sources.Spec{c.DIRAC, c.LHCbDIRAC}
	if c.Offline() && (c.DIRAC.Repo == "" || c.LHCbDIRAC.Repo == "") {
		dir, err := cachedir.Sub("fixture-repos")
		if err != nil {
			return err
		}
		repos, err := fixture.Create(ctx, dir)
		if err != nil {
			return fmt.Errorf("creating the FIXTURE repositories: %w", err)
		}
		if specs[0].Repo == "" {
			specs[0].Repo, specs[0].Branch = repos.DIRAC, fixture.Branch
		}
		if specs[1].Repo == "" {
			specs[1].Repo, specs[1].Branch = repos.LHCbDIRAC, fixture.Branch
		}
		if c.Installer == "" {
			r.Config.Installer = repos.Installer
		}
	}
	for _, sp := range specs {
		if sp.Repo == "" {
			continue
		}
		src, err := sources.Resolve(ctx, sp)
		if err != nil {
			return err
		}
		r.P.Infof("%s: %s %s at %s", src.Name, src.Repo, src.Branch, src.Commit[:12])
		r.Sources = append(r.Sources, src)
	}
	if inst := r.Config.Installer; !isURL(inst) {
		if _, err := os.Stat(inst); err != nil {
			return fmt.Errorf("LHCBDIRAC_DIRACOS_INSTALLER=%q: %w", inst, err)
		}
	}
	// Bases: configured ones must be pullable now; offline ones are built.
	for _, b := range []struct {
		name, val string
		spec      baseimage.Spec
		out       *string
	}{
		{"LHCBDIRAC_BASE_LHCBDIRAC", c.LHCbDIRACBase, lhcbdirac.Base, &r.lbase},
		{"LHCBDIRAC_BASE_MESOS_SLAVE", c.MesosSlaveBase, mesosslave.Base, &r.mbase},
		{"", "", enginecheck.BaseSpec, &r.toolsBase},
	} {
		if b.val != "" {
			ref, err := name.ParseReference(b.val)
			if err == nil {
				_, err = remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
			}
			if err != nil {
				return fmt.Errorf("%s=%q cannot be pulled: %w (check the reference and docker login)", b.name, b.val, err)
			}
			*b.out = b.val
			continue
		}
		tag := strings.Join(append([]string{b.spec.Suite}, b.spec.Packages...), "-")
		if len(tag) > 100 {
			tag = tag[:100]
		}
		ref, err := baseimage.Build(ctx, r.P, b.spec, c.Registry+"/lhcbdirac-pipeline/base:"+tag)
		if err != nil {
			return err
		}
		*b.out = ref
	}
	root, err := hostimages.RepoRoot()
	if err != nil {
		return err
	}
	mods, err := gobuild.PrepareModules(ctx, r.P, root)
	if err != nil {
		return err
	}
	r.builder, err = gobuild.NewBuilder(ctx, r.F.Client, r.toolsBase, root, mods)
	return err
}
