package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"dagger.io/dagger"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/deploy"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/recipes"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/smoke"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/progress"
)

// Image names, in the order the summary lists them.
const (
	ImageLHCbDIRAC  = "lhcbdirac"
	ImagePinger     = "pinger"
	ImageMesosSlave = "mesos-slave"
)

// ImageNames lists the release's images.
var ImageNames = []string{ImageLHCbDIRAC, ImagePinger, ImageMesosSlave}

// Image is one image of the release and what happened to it.
type Image struct {
	Name      string
	Container *dagger.Container
	BuildTime time.Duration
	Smoke     string // "passed (6 services)", "failed: …", "not run"
	Pushed    push.Pushed
}

// Release is one run of the release: its configuration, its connection,
// and what each stage hands to the next.
type Release struct {
	Config  Config
	F       *Foundation
	P       *progress.Reporter
	Out     io.Writer // the deploy plan, testService's logs
	Deploy  *deploy.Client
	DeployO deploy.Options

	Apps    []render.App
	Images  map[string]*Image
	Sources []sources.Source
	Smoke   []smoke.Result
	Written []string // app definition files
	Pushed  bool
	// Deployed says what the deploy stage did (or why it did not).
	Deployed string

	// Rerun makes Dagger build again rather than reuse its cache.
	Rerun string

	builder   *gobuild.Builder
	toolsBase string
	lbase     string
	mbase     string
}

// Stages is the release, in order: inputs → build → smoke → push → render → deploy.
func (r *Release) Stages() []Stage {
	return []Stage{inputsStage{r}, buildStage{r}, smokeStage{r}, pushStage{r}, renderStage{r}, deployStage{r}}
}

// Run runs every stage and writes the summary (also on failure: it says
// which image got how far).
func (r *Release) Run(ctx context.Context) error {
	r.Images = map[string]*Image{}
	for _, n := range ImageNames {
		r.Images[n] = &Image{Name: n, Smoke: "not run"}
	}
	err := Run(ctx, r.P, r.Stages()...)
	r.WriteSummary(r.Out)
	if werr := r.saveSummary(); werr != nil && err == nil {
		err = werr
	}
	return err
}

// ---- inputs: everything that can be wrong is checked before building ----

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
		{"LHCBDIRAC_BASE_LHCBDIRAC", c.LHCbDIRACBase, recipes.LHCbDIRACBase, &r.lbase},
		{"LHCBDIRAC_BASE_MESOS_SLAVE", c.MesosSlaveBase, recipes.MesosSlaveBase, &r.mbase},
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

// ---- build: the three images, concurrently ----

type buildStage struct{ r *Release }

func (buildStage) String() string { return "build" }

// Recipes returns the three image recipes (not yet evaluated).
func (r *Release) Recipes() (map[string]*dagger.Container, error) {
	c := r.F.Client
	var installer *dagger.File
	if inst := r.Config.Installer; isURL(inst) {
		installer = c.HTTP(inst)
	} else {
		installer = c.Host().File(inst)
	}
	in := recipes.LHCbDIRACInputs{
		Base: r.lbase, Version: r.Config.Version, Installer: installer,
		InstallerFrom: installerLabel(r.Config.Installer), Sources: r.Sources, PipIndexURL: r.Config.PipIndexURL,
		Rerun: r.Rerun,
	}
	r.builder.Rerun = r.Rerun
	for _, s := range r.Sources {
		in.SourceDirs = append(in.SourceDirs, c.Host().Directory(s.Dir))
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	return map[string]*dagger.Container{
		ImageLHCbDIRAC:  recipes.LHCbDIRAC(c, r.builder, in),
		ImagePinger:     recipes.Pinger(c, r.builder, r.Config.Version.Raw),
		ImageMesosSlave: recipes.MesosSlave(c, r.builder, recipes.MesosSlaveInputs{Base: r.mbase, Version: r.Config.Version, StandinAgent: r.Config.MesosSlaveBase == ""}),
	}, nil
}

// installerLabel keeps the label free of host-specific paths offline.
func installerLabel(inst string) string {
	if isURL(inst) {
		return inst
	}
	return "file:" + filepath.Base(inst)
}

// isURL tells an installer to download from a path on this machine.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func (s buildStage) Run(ctx context.Context) error { return s.r.build(ctx, ImageNames...) }

// build evaluates the recipes of the named images concurrently, recording
// each image's container and build time.
func (r *Release) build(ctx context.Context, names ...string) error {
	ctrs, err := r.Recipes()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := r.P.Start("build %s", n)
			start := time.Now()
			ctr, err := ctrs[n].Sync(ctx)
			r.Images[n].BuildTime = time.Since(start)
			if err != nil {
				errs[i] = step.Fail(fmt.Errorf("building %s: %w", n, err))
				return
			}
			r.Images[n].Container = ctr
			step.Done()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ---- smoke ----

type smokeStage struct{ r *Release }

func (smokeStage) String() string { return "smoke" }

func (s smokeStage) Run(ctx context.Context) error {
	r := s.r
	kit, err := smoke.NewKit(r.Apps)
	if err != nil {
		return err
	}
	client := r.F.Client.Container().From(r.toolsBase)
	imgs := smoke.Images{LHCbDIRAC: r.Images[ImageLHCbDIRAC].Container, Pinger: r.Images[ImagePinger].Container, Client: client}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	sem := make(chan struct{}, 6) // mostly waiting for services to start
	for _, app := range r.Apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			step := r.P.Start("smoke %s", app.Service.Name)
			res, err := smoke.Service(ctx, r.F.Client, imgs, app, kit, smoke.Options{Fresh: r.Config.FreshSmoke})
			mu.Lock()
			defer mu.Unlock()
			r.Smoke = append(r.Smoke, res)
			if err != nil {
				errs = append(errs, step.Fail(err))
				return
			}
			step.Done()
		}()
	}
	var merr error
	if r.Config.Only == "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := r.P.Start("smoke mesos-slave (%d ENVIRONMENT presets, watchdog)", len(smoke.Environments))
			_, merr = smoke.MesosSlave(ctx, r.F.Client, r.Images[ImageMesosSlave].Container, client)
			if merr != nil {
				step.Fail(merr)
			} else {
				step.Done()
			}
		}()
	}
	wg.Wait()
	sort.Slice(r.Smoke, func(i, j int) bool { return r.Smoke[i].Service < r.Smoke[j].Service })
	n := len(r.Apps)
	if len(errs) > 0 {
		r.Images[ImageLHCbDIRAC].Smoke = fmt.Sprintf("FAILED (%d of %d services)", len(errs), n)
		r.Images[ImagePinger].Smoke = "FAILED (see services)"
	} else {
		r.Images[ImageLHCbDIRAC].Smoke = fmt.Sprintf("passed (%s: health check + DIPS ping)", plural(n, "service"))
		r.Images[ImagePinger].Smoke = fmt.Sprintf("passed (%s)", plural(n, "ping"))
	}
	switch {
	case r.Config.Only != "":
		r.Images[ImageMesosSlave].Smoke = "not run (testService)"
	case merr != nil:
		r.Images[ImageMesosSlave].Smoke = "FAILED"
		errs = append(errs, merr)
	default:
		r.Images[ImageMesosSlave].Smoke = fmt.Sprintf("passed (%d presets, watchdog)", len(smoke.Environments))
	}
	return errors.Join(errs...)
}

// ---- push: by digest, then tags once every image passed ----

type pushStage struct{ r *Release }

func (pushStage) String() string { return "push" }

func (s pushStage) Run(ctx context.Context) error {
	r := s.r
	if !r.Config.Push {
		return Skip("not pushing (testService)")
	}
	work, err := cachedir.Sub("push")
	if err != nil {
		return err
	}
	var pushed []push.Pushed
	for _, n := range ImageNames {
		step := r.P.Start("push %s by digest", n)
		p, err := push.ByDigest(ctx, r.Images[n].Container, n, r.Config.ImageRepo(n), filepath.Join(work, n))
		if err != nil {
			return step.Fail(err)
		}
		step.Done()
		r.Images[n].Pushed = p
		pushed = append(pushed, p)
	}
	step := r.P.Start("tag %s", strings.Join(push.Tags(r.Config.Version), ", "))
	if err := push.MoveTags(ctx, pushed, r.Config.Version); err != nil {
		return step.Fail(err)
	}
	step.Done()
	r.Pushed = true
	return nil
}

// ---- render ----

type renderStage struct{ r *Release }

func (renderStage) String() string { return "render" }

func (s renderStage) Run(ctx context.Context) error {
	r := s.r
	dir := filepath.Join(r.Config.Dist, "marathon")
	if err := render.WriteDir(r.Apps, dir); err != nil {
		return err
	}
	for _, a := range r.Apps {
		r.Written = append(r.Written, filepath.Join(dir, a.FileName()))
	}
	r.P.Infof("%d app definitions in %s", len(r.Apps), dir)
	return nil
}

// ---- deploy ----

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

// ---- summary ----

// WriteSummary prints the table: image, digest, size, build time, smoke.
func (r *Release) WriteSummary(w io.Writer) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "\nRelease %s\n", r.Config.Version.Raw)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE\tBUILD\tSMOKE")
	for _, n := range ImageNames {
		im := r.Images[n]
		digest, size := "(not pushed)", "-"
		if im.Pushed.Digest != "" {
			digest = im.Pushed.Ref()
			size = fmt.Sprintf("%.1f MB", float64(im.Pushed.Size)/1e6)
		}
		build := "-"
		if im.BuildTime > 0 {
			build = im.BuildTime.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, digest, size, build, im.Smoke)
	}
	tw.Flush()
	if r.Pushed {
		fmt.Fprintf(w, "Tags: %s\n", strings.Join(push.Tags(r.Config.Version), ", "))
	}
	if r.Deployed != "" {
		fmt.Fprintf(w, "Deploy: %s\n", r.Deployed)
	}
	for _, s := range r.Sources {
		fmt.Fprintf(w, "%s: %s %s @ %s\n", s.Name, s.Repo, s.Branch, s.Commit)
	}
}

func (r *Release) saveSummary() error {
	if err := os.MkdirAll(r.Config.Dist, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	r.WriteSummary(&b)
	return os.WriteFile(filepath.Join(r.Config.Dist, "summary.txt"), []byte(b.String()), 0o644)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
