//go:build mage

// lhcbdirac-pipeline builds, smoke-tests, pushes and deploys the LHCbDIRAC
// service images. The targets only parse arguments and call the pipeline's
// packages, where the logic and its tests live.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/magefile/mage/mg"

	"github.com/lhcbdirac/lhcbdirac-pipeline/ci"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/foundation"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/hostsetup"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/magecli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/metricsreport"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/registry"
	versionpkg "github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/deploy"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/runspec"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// magecliTargets are every target, as mage names them: the command line is
// checked against them before any target runs (a test keeps the list whole).
var magecliTargets = map[string]any{
	"engine:up": Engine.Up, "engine:down": Engine.Down, "engine:status": Engine.Status,
	"registry:up": Registry.Up, "registry:down": Registry.Down, "registry:status": Registry.Status,
	"base:build":      Base.Build,
	"marathon:render": Marathon.Render, "marathon:plan": Marathon.Plan, "marathon:deploy": Marathon.Deploy, "marathon:softUpdate": Marathon.SoftUpdate, "marathon:dockerRun": Marathon.DockerRun, "scale": Scale,
	"release": Release, "testService": TestService,
	"lock:resolve": Lock.Resolve, "lock:check": Lock.Check, "lock": Lock.Resolve,
	"ci:plan": CI.Plan, "ci:release": CI.Release, "ci:login": CI.Login, "ci:testChanged": CI.TestChanged,
	"bench": Bench, "smoke": Smoke, "lint": Lint, "test": Test,
	"metrics:report": Metrics.Report,
}

// Aliases keeps "lock VERSION", the name lock:resolve had before lock:check
// joined it (mage cannot have both a target lock and a namespace lock).
var Aliases = map[string]any{"lock": Lock.Resolve}

func init() {
	// metrics:report takes --since, which mage cannot parse.
	args, err := magecli.Options(os.Args[1:], "metrics:report", map[string]string{"since": "LHCBDIRAC_METRICS_SINCE"}, os.Setenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(2)
	}
	os.Args = append(os.Args[:1], args...)
	if err := magecli.Check(os.Args[1:], magecliTargets); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(2)
	}
}

// Engine manages the Dagger engine.
type Engine mg.Namespace

// Registry manages the embedded OCI registry.
type Registry mg.Namespace

// Base makes offline base images.
type Base mg.Namespace

// Marathon renders and deploys the Marathon app definitions.
type Marathon mg.Namespace

// CI holds what the GitLab and GitHub pipelines call (ci/): every decision is made here.
type CI mg.Namespace

// Metrics reads what the nodes' collectors wrote to InfluxDB.
type Metrics mg.Namespace

// Lock resolves and checks LHCbDIRAC locks.
type Lock mg.Namespace

// Report writes dist/metrics/report.png and report.html: CPU and memory per DIRAC component over the last hour (--since 6h for another period), from the InfluxDB that INFLUXDB_* (or the JSON file LHCBDIRAC_METRICS_CONFIG) names.
func (Metrics) Report(ctx context.Context) error {
	o, err := metricsreport.OptionsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	png, page, stats, err := metricsreport.Report(ctx, o)
	if err != nil {
		return err
	}
	for _, s := range stats {
		fmt.Printf("%-40s %d containers  cpu %.3f cores (peak %.3f)  memory %.0f MiB (peak %.0f)\n", s.Component, s.Containers, s.CPUMean, s.CPUMax, s.MemMean, s.MemMax)
	}
	fmt.Printf("%s\n%s\n", png, page)
	return nil
}

// Up provisions the Dagger engine (builds it when none can be downloaded) and prints the variables the SDK needs.
func (Engine) Up(ctx context.Context) error {
	p := progress.New(nil)
	if err := hostsetup.Ensure(ctx, p); err != nil {
		return err
	}
	ep, err := engine.Up(ctx, p)
	if err != nil {
		return err
	}
	p.Summary("engine:up")
	for _, kv := range ep.Env() {
		fmt.Println("export " + kv)
	}
	return nil
}

// Down stops and removes the local engine container (its cache volume and image stay).
func (Engine) Down(ctx context.Context) error { return engine.Down(ctx) }

// Status tells which engine is used and whether it runs.
func (Engine) Status(ctx context.Context) error {
	s, err := engine.Status(ctx)
	if err == nil {
		fmt.Println(s)
	}
	return err
}

// Up starts the embedded registry (data kept in a Docker volume) unless LHCBDIRAC_REGISTRY names another.
func (Registry) Up(ctx context.Context) error {
	p := progress.New(nil)
	if err := hostsetup.Ensure(ctx, p); err != nil {
		return err
	}
	addr, err := registry.Up(ctx, p)
	if err == nil {
		fmt.Println(addr)
	}
	return err
}

// Down stops the embedded registry; its data volume stays.
func (Registry) Down(ctx context.Context) error {
	return registry.Down(ctx, registry.Embedded(), false)
}

// Status tells which registry is used and whether it answers.
func (Registry) Status(ctx context.Context) error {
	s, err := registry.Status(ctx)
	if err == nil {
		fmt.Println(s)
	}
	return err
}

// Build makes a Debian base with debootstrap (packages comma-separated, "" for none), pushes it as <registry>/lhcbdirac-pipeline/base:<name> and prints its digest.
func (Base) Build(ctx context.Context, name, packages string) error {
	if err := baseimage.CheckTag(name); err != nil {
		return fmt.Errorf("base name: %w", err)
	}
	spec := baseimage.Spec{Suite: "bookworm", Variant: "minbase"}
	for _, pkg := range strings.Split(packages, ",") {
		if pkg = strings.TrimSpace(pkg); pkg != "" {
			spec.Packages = append(spec.Packages, pkg)
		}
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	p := progress.New(nil)
	if err := hostsetup.Ensure(ctx, p); err != nil {
		return err
	}
	addr, err := registry.Up(ctx, p)
	if err != nil {
		return err
	}
	ref, err := baseimage.Build(ctx, p, spec, addr+"/lhcbdirac-pipeline/base:"+name)
	if err != nil {
		return err
	}
	fmt.Println(ref)
	return nil
}

func renderApps(servicesFile, env, version string) ([]render.App, error) {
	f, err := services.Load(servicesFile)
	if err != nil {
		return nil, err
	}
	// Marathon's own AppDefinition.json, when given, is checked as well.
	var extra []*render.Schema
	if path := os.Getenv("LHCBDIRAC_MARATHON_SCHEMA"); path != "" {
		s, err := render.LoadSchemaFile(path)
		if err != nil {
			return nil, err
		}
		extra = append(extra, s)
	}
	r, err := render.New(os.Getenv("LHCBDIRAC_MARATHON_TEMPLATE"), nil, extra...)
	if err != nil {
		return nil, err
	}
	return r.Render(f, env, version)
}

// marathonFromEnv connects to $MARATHON_URL with the options the
// environment sets (MARATHON_FORCE, MARATHON_TIMEOUT, MARATHON_SETTLE,
// MARATHON_MAX_INSTANCES).
//
// TEMPORARY SHIM until the settings package reads these variables: marathon/
// reads no environment, so the magefile does it here.
func marathonFromEnv() (*client.Client, deploy.Options, error) {
	o, err := deploy.ParseOptions(os.Getenv(deploy.ForceEnv), os.Getenv(deploy.TimeoutEnv), os.Getenv(deploy.SettleEnv), os.Getenv(deploy.MaxInstancesEnv))
	if err != nil {
		return nil, o, err
	}
	o.Log = os.Stderr
	c, err := client.New(client.Config{URLs: os.Getenv(client.URLEnv), User: os.Getenv(client.UserEnv),
		Password: os.Getenv(client.PasswordEnv), Token: os.Getenv(client.TokenEnv)})
	return c, o, err
}

// Render writes one <System>_<Service>.json per service of the services file (YAML, or the seed's JSON) for env and version into dir.
func (Marathon) Render(servicesFile, env, version, dir string) error {
	apps, err := renderApps(servicesFile, env, version)
	if err != nil {
		return err
	}
	if err := render.WriteDir(apps, dir); err != nil {
		return err
	}
	fmt.Printf("%d app definitions written to %s\n", len(apps), dir)
	return nil
}

// DockerRun prints the docker run command a Mesos agent would execute for a task of APP.json (deimos's, for an app in its format; DEIMOS_EXPOSED_PORTS gives the image's EXPOSEd ports).
func (Marathon) DockerRun(appFile string) error {
	o, err := runspec.ParseOptions(os.Getenv(runspec.ExposedPortsEnv)) // TEMPORARY SHIM: until the settings package reads it
	if err != nil {
		return err
	}
	s, err := runspec.FromFile(appFile, o)
	if err != nil {
		return err
	}
	for _, w := range s.Warnings {
		fmt.Fprintln(os.Stderr, "note:", w)
	}
	fmt.Println(s.DockerRunLine())
	return nil
}

// Plan prints what deploying would change on $MARATHON_URL: create / update (with a diff) / unchanged.
func (Marathon) Plan(ctx context.Context, servicesFile, env, version string) error {
	apps, err := renderApps(servicesFile, env, version)
	if err != nil {
		return err
	}
	c, _, err := marathonFromEnv()
	if err != nil {
		return err
	}
	plan, err := deploy.Plan(ctx, c, apps)
	if err != nil {
		return err
	}
	deploy.FormatPlan(os.Stdout, plan)
	return nil
}

// Deploy creates or updates every app on $MARATHON_URL and waits until each is healthy, rolling back the ones that are not (MARATHON_FORCE=1 overrides running deployments; MARATHON_TIMEOUT).
func (Marathon) Deploy(ctx context.Context, servicesFile, env, version string) error {
	apps, err := renderApps(servicesFile, env, version)
	if err != nil {
		return err
	}
	c, o, err := marathonFromEnv()
	if err != nil {
		return err
	}
	_, err = deploy.Apply(ctx, c, apps, o)
	return err
}

// SoftUpdate swaps the image tag of every app labelled dirac_component on $MARATHON_URL for version, keeping instance counts (the seed's soft update).
func (Marathon) SoftUpdate(ctx context.Context, version string) error {
	if _, err := versionpkg.Parse(version); err != nil {
		return err
	}
	c, o, err := marathonFromEnv()
	if err != nil {
		return err
	}
	_, err = deploy.SoftUpdate(ctx, c, version, o)
	return err
}

// Release builds the three images, smoke-tests every service as Marathon would run it, pushes and tags, renders the app definitions and deploys them (a dry run unless MARATHON_URL is set); version is vX.Y[.Z] or vXrY[pZ], optionally -preN.
func Release(ctx context.Context, version string) error {
	return release(ctx, version, nil)
}

// TestService builds the images and runs one service (System/Service) as Marathon would, health-checks and pings it, shows its logs; nothing is pushed (LHCBDIRAC_VERSION, else the newest LHCbDIRAC on the index).
func TestService(ctx context.Context, service string) error {
	version := os.Getenv("LHCBDIRAC_VERSION")
	if version == "" {
		var err error
		if version, err = pipeline.DefaultVersion(ctx, progress.New(nil), pipeline.OSGetenv); err != nil {
			return err
		}
	}
	return release(ctx, version, &service)
}

// Scale sets SERVICE's instance count on $MARATHON_URL to N (0 to MARATHON_MAX_INSTANCES, default 100) and waits until every instance is healthy, rolling back otherwise (as marathon:deploy; the service must be in the services file).
func Scale(ctx context.Context, service string, n int) error {
	f, err := pipeline.ServicesFromEnv(pipeline.OSGetenv)
	if err != nil {
		return err
	}
	s, ok := f.Find(service)
	if !ok {
		return fmt.Errorf("%s: no service %q (have %s)", f.Path, service, strings.Join(f.Names(), ", "))
	}
	c, o, err := marathonFromEnv()
	if err != nil {
		return err
	}
	_, err = deploy.Scale(ctx, c, render.AppID(s.Name), n, o)
	return err
}

// Resolve (alias: lock VERSION) resolves the lock of LHCbDIRAC VERSION (every distribution pinned by version and sha256) without building, writes it to dist/VERSION/lhcbdirac.lock; releases of VERSION use it from then on.
func (Lock) Resolve(ctx context.Context, version string) error {
	p := progress.New(nil)
	cfg, err := pipeline.ConfigFromEnv(version, "", pipeline.OSGetenv)
	if err != nil {
		return err
	}
	path, l, err := pipeline.WriteLock(ctx, p, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s\n", path, l.Summary())
	return nil
}

// Check reads FILE as a release would (LHCBDIRAC_LOCK=FILE) and prints a one-line summary, or fails naming the line and what is wrong; it builds nothing and needs no engine, Docker or network.
func (Lock) Check(file string) error {
	l, err := lhcbdirac.ReadLock(file)
	if err != nil {
		return err
	}
	fmt.Printf("%s: ok: %s\n", file, l.Summary())
	return nil
}

// release runs the release, or testService's part of it for *only.
func release(ctx context.Context, version string, only *string) error {
	p := progress.New(nil)
	addr, _ := registry.Address()
	cfg, err := pipeline.ConfigFromEnv(version, addr, pipeline.OSGetenv)
	if err != nil {
		return err
	}
	if only != nil {
		if cfg, err = cfg.WithOnly(*only); err != nil {
			return err
		}
		cfg.Push, cfg.FreshSmoke = false, true
	}
	r := &pipeline.Release{Config: cfg, P: p, Out: os.Stdout}
	if os.Getenv("MARATHON_URL") != "" && only == nil {
		if r.Deploy, r.DeployO, err = marathonFromEnv(); err != nil {
			return err
		}
	}
	if err := hostsetup.Ensure(ctx, p); err != nil {
		return err
	}
	f, err := foundation.Connect(ctx, p, nil)
	if err != nil {
		return err
	}
	defer f.Close()
	r.F = f
	err = r.Run(ctx)
	if only != nil {
		for _, s := range r.Smoke {
			fmt.Printf("\n%s health check:\n%s\n%s log:\n%s\nping through the pinger:\n%s\n", s.Service, s.Health, s.Service, s.Log, s.Ping)
		}
	}
	p.Summary("release " + cfg.Version.Raw)
	return err
}

// Plan prints what CI does for a tag (final, pre-release, or an error for anything else; hotfix overrides from the environment).
func (CI) Plan(ctx context.Context, tag string) error {
	p, err := ci.Decide(tag, os.Getenv)
	if err == nil {
		fmt.Println(p)
	}
	return err
}

// Release decides what the tag means and runs the release for it; deploys only what the plan allows (LHCBDIRAC_CI_DRY_RUN=1 prints the mage call instead).
func (CI) Release(ctx context.Context, tag string) error {
	p, err := ci.Decide(tag, os.Getenv)
	if err != nil {
		return err
	}
	fmt.Println("ci:", p)
	if os.Getenv("LHCBDIRAC_CI_DRY_RUN") == "1" {
		fmt.Printf("dry run: would run: mage release %s (deploy: %v)\n", p.Version.Raw, p.Deploy)
		return nil
	}
	if !p.Deploy {
		os.Unsetenv("MARATHON_URL")
	}
	return release(ctx, p.Version.Raw, nil)
}

// Login writes registry credentials from REGISTRY/REGISTRY_USER/REGISTRY_PASSWORD (or GitLab's CI_REGISTRY*) into the Docker config; with none set it does nothing.
func (CI) Login(ctx context.Context) error {
	get := func(a, b string) string {
		if v := os.Getenv(a); v != "" {
			return v
		}
		return os.Getenv(b)
	}
	reg, user, pass := get("REGISTRY", "CI_REGISTRY"), get("REGISTRY_USER", "CI_REGISTRY_USER"), get("REGISTRY_PASSWORD", "CI_REGISTRY_PASSWORD")
	if reg == "" && user == "" && pass == "" {
		fmt.Println("ci:login: no registry credentials set; pushing anonymously")
		return nil
	}
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		dir = home + "/.docker"
	}
	if err := ci.Login(dir, reg, user, pass); err != nil {
		return err
	}
	fmt.Printf("ci:login: credentials for %s written to %s/config.json\n", reg, dir)
	return nil
}

// TestChanged runs testService for every service a change since base touches (LHCBDIRAC_CI_DRY_RUN=1 lists them).
func (CI) TestChanged(ctx context.Context, base string) error {
	path := os.Getenv("LHCBDIRAC_SERVICES")
	var f *services.File
	var err error
	if path == "" {
		path = "pipeline/services.yaml"
	}
	if f, err = services.Load(path); err != nil {
		return err
	}
	names, err := ci.ChangedServices(ctx, ".", base, path, f)
	if err != nil {
		return err
	}
	fmt.Printf("ci:testChanged: %d services to test: %s\n", len(names), strings.Join(names, " "))
	if os.Getenv("LHCBDIRAC_CI_DRY_RUN") == "1" {
		return nil
	}
	for _, n := range names {
		if err := TestService(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// Bench measures the release on this machine: from empty caches and warm, the lhcbdirac build's download share, a version bump, its size against a naive single-stage image, each service's smoke test, the three builds concurrently against the slowest alone.
func Bench(ctx context.Context) error {
	p := progress.New(os.Stderr)
	if err := hostsetup.Ensure(ctx, p); err != nil {
		return err
	}
	v, bump, err := pipeline.BenchVersions(ctx, p, pipeline.OSGetenv)
	if err != nil {
		return err
	}
	addr, _ := registry.Address()
	cfg, err := pipeline.ConfigFromEnv(v.Raw, addr, pipeline.OSGetenv)
	if err != nil {
		return err
	}
	cfg.Repository = addr + "/lhcbdirac-pipeline-bench"
	f, err := foundation.Connect(ctx, p, nil)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = pipeline.Bench(ctx, &pipeline.Release{Config: cfg, F: f, P: progress.New(io.Discard), Out: io.Discard}, bump, os.Stdout)
	return err
}

// Smoke checks the foundation alone: engine and registry up, then a command, a publish and a service binding checked end to end.
func Smoke(ctx context.Context) error {
	p := progress.New(nil)
	if err := hostsetup.Ensure(ctx, p); err != nil {
		return err
	}
	f, err := foundation.Connect(ctx, p, nil)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := enginecheck.Smoke(ctx, f, p)
	p.Summary("smoke")
	if err != nil {
		return err
	}
	fmt.Printf("base:        %s\nexec:        %s\npublished:   %s\nregistry:    %s\nservice:     %s\n",
		r.Base, r.Exec, r.Published, r.RegistryDigest, r.ServiceReply)
	return nil
}

// Lint fails when gofmt would change a file or go vet reports anything.
func Lint(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "gofmt", "-l", ".").CombinedOutput()
	if err != nil {
		return fmt.Errorf("gofmt: %v: %s", err, out)
	}
	if files := strings.TrimSpace(string(out)); files != "" {
		return fmt.Errorf("gofmt would change these files (run gofmt -w):\n%s", files)
	}
	// magefile.go hides behind the mage build tag; vet it too.
	for _, args := range [][]string{{"vet", "-tags", "integration", "./..."}, {"vet", "-tags", "mage", "."}} {
		vet := exec.CommandContext(ctx, "go", args...)
		vet.Stdout, vet.Stderr = os.Stdout, os.Stderr
		if err := vet.Run(); err != nil {
			return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}

// Test lints, sets up the host (Docker, debootstrap, etcd… when missing), provisions the engine and registry, then runs every test (integration tests included) against them.
func Test(ctx context.Context) error {
	mg.CtxDeps(ctx, Lint)
	p := progress.New(nil)
	if err := hostsetup.EnsureForTests(ctx, p); err != nil {
		return err
	}
	if _, err := registry.Up(ctx, p); err != nil {
		return err
	}
	ep, err := engine.Up(ctx, p)
	if err != nil {
		return err
	}
	ep.Export()
	p.Summary("provisioning")
	cmd := exec.CommandContext(ctx, "go", "test", "-tags", "integration", "-count=1", "-timeout", "40m", "-v", "./...")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}
