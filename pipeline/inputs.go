package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// The inputs stage: everything that can be wrong is checked before building.

// Inputs are everything the images are built from, checked.
type Inputs struct {
	Config  Config
	Apps    []render.App     // the rendered apps (only testService's one, for testService)
	Sources []sources.Source // hotfix checkouts, or the FIXTURE's
	Lock    *lhcbdirac.Lock  // what the lhcbdirac image installs (nil on the FIXTURE route)
	Bases   images.Bases     // every base, pinned by digest
	Go      *gobuild.Builder // builds the images' Go programs in the engine
	Build   BuildKnobs       // the benchmark's knobs
	lhcb    lhcbdirac.Inputs // the lhcbdirac recipe's inputs, made once

	// Commit is the pipeline's own commit (the builder its provenance
	// names); Dirty, that the checkout had changes beside it.
	Commit string
	Dirty  bool
	// RunID tells this run from any other.
	RunID string
	// Digest is the digest of everything the images are made from
	// (inputsdigest.go): the same digest, the same images.
	Digest string

	root, installer string
	mods            gobuild.Modules
}

// prepare makes what a build needs of the engine — the Go builder, the
// lhcbdirac recipe's inputs — connecting to it first: a release whose
// images exist already (find.go) never connects at all.
func (in *Inputs) prepare(ctx context.Context, s *Session) error {
	if in.Go != nil {
		return nil
	}
	if err := s.Connect(ctx); err != nil {
		return err
	}
	var err error
	if in.Go, err = gobuild.NewBuilder(ctx, s.Client, s.P, in.Bases.Tools, in.root, in.mods); err != nil {
		return err
	}
	in.Go.Rerun = in.Build.Rerun
	in.lhcb, err = lhcbdiracInputs(s, in, in.installer)
	return err
}

// BuildKnobs make a build run again (the benchmark, the reproducibility
// tests); the zero value is a normal release.
type BuildKnobs struct {
	// Rerun, when set, makes Dagger build again rather than reuse its cache.
	Rerun string
	// UVCache names the cache volume of the lhcbdirac build's downloads
	// ("" for the default; a new name is a build from an empty cache).
	UVCache string
}

// LHCbDIRAC are the lhcbdirac recipe's inputs.
func (in *Inputs) LHCbDIRAC() lhcbdirac.Inputs { return in.lhcb }

// Recipe is what every image's recipe is given.
func (in *Inputs) Recipe(s *Session) images.Build {
	return images.Build{Client: s.Client, Go: in.Go, Version: in.Config.Version, Bases: in.Bases,
		LHCbDIRAC: in.lhcb, StandinAgent: in.Config.MesosSlaveBase == ""}
}

func inputs(ctx context.Context, s *Session, c Config, knobs BuildKnobs) (*Inputs, error) {
	in := &Inputs{Config: c, Build: knobs}
	apps, err := renderApps(c, nil)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		if c.Only == "" || a.Service.Name == c.Only {
			in.Apps = append(in.Apps, a)
		}
	}
	// Sources: a hotfix from its repository; on the FIXTURE route, the
	// FIXTURE repositories and installer for what is not overridden.
	specs := []sources.Spec{c.DIRAC, c.LHCbDIRAC}
	installer := c.Installer
	if c.Fixture() {
		repos, err := fixtureRepos(ctx)
		if err != nil {
			return nil, fmt.Errorf("creating the FIXTURE repositories: %w", err)
		}
		if specs[0].Repo == "" {
			specs[0].Repo, specs[0].Branch = repos.DIRAC, fixture.Branch
		}
		if specs[1].Repo == "" {
			specs[1].Repo, specs[1].Branch = repos.LHCbDIRAC, fixture.Branch
		}
		if installer == "" {
			installer = repos.Installer
		}
	}
	for _, sp := range specs {
		if sp.Repo == "" {
			continue
		}
		src, err := sources.Resolve(ctx, sp)
		if err != nil {
			return nil, err
		}
		s.P.Infof("%s: %s %s at %s", src.Name, src.Repo, src.Branch, src.Commit[:12])
		in.Sources = append(in.Sources, src)
	}
	if installer != "" && !settings.IsURL(installer) {
		if _, err := os.Stat(installer); err != nil {
			return nil, fmt.Errorf("LHCBDIRAC_DIRACOS_INSTALLER=%q: %w", installer, err)
		}
	}
	// The lock (the index's answer) and the bases (debootstrap and apt) wait
	// on different things: found side by side.
	var lockErr error
	lockDone := make(chan struct{})
	go func() {
		defer close(lockDone)
		if !c.Fixture() {
			in.Lock, lockErr = findLock(ctx, s.P, c)
		}
	}()
	in.Bases, err = bases(ctx, s, c)
	<-lockDone
	if lockErr != nil {
		return nil, lockErr
	}
	if err != nil {
		return nil, err
	}
	root, err := hostimages.RepoRoot()
	if err != nil {
		return nil, err
	}
	in.root, in.installer = root, installer
	// The Go builds' toolchain image (made once per toolchain) beside the
	// modules they read: the builder finds both ready.
	toolchainErr := make(chan error, 1)
	go func() {
		_, err := gobuild.ToolchainImage(ctx, s.P, in.Bases.Tools)
		toolchainErr <- err
	}()
	in.mods, err = gobuild.PrepareModules(ctx, s.P, root)
	if err := errors.Join(err, <-toolchainErr); err != nil {
		return nil, err
	}
	if in.Commit, in.Dirty, err = pipelineCommit(ctx, root); err != nil {
		return nil, err
	}
	in.RunID = runID()
	in.Digest, err = inputsDigest(ctx, root, in)
	return in, err
}

// renderApps renders the services file's apps for the release, checked
// against Marathon's own schema when LHCBDIRAC_MARATHON_SCHEMA names it —
// the same rendering marathon:render, plan and deploy do.
func renderApps(c Config, pins map[string]string) ([]render.App, error) {
	var extra []*render.Schema
	if c.MarathonSchema != "" {
		sch, err := render.LoadSchemaFile(c.MarathonSchema)
		if err != nil {
			return nil, fmt.Errorf("LHCBDIRAC_MARATHON_SCHEMA=%s: %w", c.MarathonSchema, err)
		}
		extra = append(extra, sch)
	}
	rd, err := render.New(c.MarathonTemplate, nil, extra...)
	if err != nil {
		return nil, err
	}
	rd.Pins = pins
	return rd.RenderVersion(c.Services, c.Environment, c.Version)
}

// bases pins every base: a configured one must be pullable now; an offline
// one is made (one debootstrap, each base apt's packages on a copy of it;
// several at once) or found made before, and pushed.
func bases(ctx context.Context, s *Session, c Config) (images.Bases, error) {
	var b images.Bases
	configured := map[string]string{"LHCBDIRAC_BASE_LHCBDIRAC": c.LHCbDIRACBase, "LHCBDIRAC_BASE_MESOS_SLAVE": c.MesosSlaveBase}
	var made []images.BaseSpec
	var specs []baseimage.Spec
	var refs []string
	for _, spec := range images.BaseSpecs {
		if c.Fixture() && !spec.Fixture {
			continue // the FIXTURE's services read no database
		}
		if val := configured[spec.Env]; spec.Env != "" && val != "" {
			ref, err := name.ParseReference(val)
			if err == nil {
				_, err = remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
			}
			if err != nil {
				return b, fmt.Errorf("%s=%q cannot be pulled: %w (check the reference and docker login)", spec.Env, val, err)
			}
			spec.Set(&b, val)
			continue
		}
		made = append(made, spec)
		specs = append(specs, spec.Spec)
		refs = append(refs, c.Registry+"/lhcbdirac-pipeline/base:"+spec.Spec.Suite+"-"+spec.Spec.Key())
	}
	pinned, err := baseimage.BuildAll(ctx, s.P, specs, refs)
	if err != nil {
		return b, err
	}
	for i, spec := range made {
		spec.Set(&b, pinned[i])
	}
	return b, nil
}

// lhcbdiracInputs are what the inputs stage found for the lhcbdirac image.
func lhcbdiracInputs(s *Session, in *Inputs, installer string) (lhcbdirac.Inputs, error) {
	c := s.Client
	li := lhcbdirac.Inputs{
		Base: in.Bases.LHCbDIRAC, BuilderBase: in.Bases.Builder, Version: in.Config.Version,
		Lock: in.Lock, Sources: in.Sources, Rerun: in.Build.Rerun, UVCache: in.Build.UVCache,
	}
	switch {
	case installer == "":
	case settings.IsURL(installer):
		li.Installer, li.InstallerFrom = c.HTTP(installer), redact.URL(installer)
	default:
		// The label names the file, not this machine's path to it.
		li.Installer, li.InstallerFrom = c.Host().File(installer), "file:"+filepath.Base(installer)
	}
	if u := in.Config.PipIndexURL; u != "" {
		li.IndexURL, li.IndexShown = c.SetSecret("lhcbdirac-index-url", u), u
	}
	for _, src := range in.Sources {
		li.SourceDirs = append(li.SourceDirs, c.Host().Directory(src.Dir))
	}
	return li, li.Validate()
}

// findLock finds the lock the release installs: LHCBDIRAC_LOCK's, checked
// against the version; else the one resolved before for this version and
// index (a release is repeatable: the lock is resolved once, then reused;
// go run mage.go lock resolves afresh); else a new one, after checking
// that the index has the version.
func findLock(ctx context.Context, p *progress.Reporter, c Config) (*lhcbdirac.Lock, error) {
	if c.LockFile != "" {
		l, err := lhcbdirac.ReadLock(c.LockFile)
		if err != nil {
			return nil, fmt.Errorf("LHCBDIRAC_LOCK: %w", err)
		}
		if err := l.CheckVersion(c.LockFile, c.Version); err != nil {
			return nil, err
		}
		return l, nil
	}
	if l, path := lhcbdirac.RememberedLock(c.Version, c.PipIndexURL); l != nil {
		p.Start("lock of LHCbDIRAC %s (resolved before: %s)", l.LHCbDIRACVersion(), path).Cached()
		return l, nil
	}
	return ResolveLock(ctx, p, c)
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

// fixtureRepos are the FIXTURE repositories in the cache, made once for
// each content of the fixture. They are never replaced in place: releases
// running at once (the tests run several) read them while another starts,
// and a release that removed and wrote them again broke the one reading
// (a CI failure: "unlinkat …/fixture-repos: directory not empty"). Each is
// made in a directory of its own and renamed into place; a release that
// finds it there, or loses the rename to another, uses that one.
func fixtureRepos(ctx context.Context) (fixture.Repos, error) {
	key, err := fixture.Key()
	if err != nil {
		return fixture.Repos{}, err
	}
	parent, err := cachedir.Sub("fixture-repos")
	if err != nil {
		return fixture.Repos{}, err
	}
	dir := filepath.Join(parent, key)
	if _, err := os.Stat(dir); err == nil {
		return fixture.At(dir), nil
	}
	tmp, err := os.MkdirTemp(parent, ".new-")
	if err != nil {
		return fixture.Repos{}, err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	if _, err := fixture.Create(ctx, tmp); err != nil {
		return fixture.Repos{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr != nil {
			return fixture.Repos{}, err
		}
	}
	return fixture.At(dir), nil
}
