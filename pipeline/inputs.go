package pipeline

import (
	"context"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
	mesosslave "github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/registrator"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/pytools"
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
	// Sources: a hotfix from its repository; on the FIXTURE route, the
	// FIXTURE repositories and installer for what is not overridden.
	specs := []sources.Spec{c.DIRAC, c.LHCbDIRAC}
	if c.Fixture() {
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
	if inst := r.Config.Installer; inst != "" && !isURL(inst) {
		if _, err := os.Stat(inst); err != nil {
			return fmt.Errorf("LHCBDIRAC_DIRACOS_INSTALLER=%q: %w", inst, err)
		}
	}
	if !c.Fixture() {
		if err := r.lock(ctx); err != nil {
			return err
		}
	}
	// Bases: configured ones must be pullable now; offline ones are built.
	for _, b := range []struct {
		name, val string
		spec      baseimage.Spec
		out       *string
	}{
		{"LHCBDIRAC_BASE_LHCBDIRAC", c.LHCbDIRACBase, lhcbdirac.Base, &r.lbase},
		{"", "", lhcbdirac.BuilderBase, &r.builderBase},
		{"", "", lhcbdirac.MariaDBBase, &r.mariadbBase},
		{"", "", registrator.EtcdBase, &r.etcdBase},
		{"LHCBDIRAC_BASE_MESOS_SLAVE", c.MesosSlaveBase, mesosslave.Base, &r.mbase},
		{"", "", enginecheck.BaseSpec, &r.toolsBase},
	} {
		if b.out == &r.mariadbBase && c.Fixture() {
			continue // the FIXTURE's services read no database
		}
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
		ref, err := baseimage.Build(ctx, r.P, b.spec, c.Registry+"/lhcbdirac-pipeline/base:"+b.spec.Suite+"-"+b.spec.Key())
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

// lock finds the lock the release installs: LHCBDIRAC_LOCK's, checked
// against the version; else the one resolved before for this version and
// index (a release is repeatable: the lock is resolved once, then reused;
// go run mage.go lock resolves afresh); else a new one, after checking
// that the index has the version.
func (r *Release) lock(ctx context.Context) error {
	c := r.Config
	if c.LockFile != "" {
		l, err := lhcbdirac.ReadLock(c.LockFile)
		if err != nil {
			return fmt.Errorf("LHCBDIRAC_LOCK: %w", err)
		}
		if err := l.CheckVersion(c.LockFile, c.Version); err != nil {
			return err
		}
		r.Lock = l
		return nil
	}
	if l, path := lhcbdirac.RememberedLock(c.Version, c.PipIndexURL); l != nil {
		r.P.Start("lock of LHCbDIRAC %s (resolved before: %s)", l.LHCbDIRACVersion(), path).Cached()
		r.Lock = l
		return nil
	}
	l, err := ResolveLock(ctx, r.P, c)
	r.Lock = l
	return err
}

// ResolveLock checks that the index has the release's LHCbDIRAC, resolves
// its lock afresh and remembers it for the next release of that version.
func ResolveLock(ctx context.Context, p *progress.Reporter, c Config) (*lhcbdirac.Lock, error) {
	tools, err := pytools.Ensure(ctx, p, c.PipIndexURL)
	if err != nil {
		return nil, err
	}
	return lhcbdirac.ResolveAndRemember(ctx, p, tools, c.Version, c.PipIndexURL)
}
