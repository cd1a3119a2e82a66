// Package images lists the release's images — lhcbdirac, pinger,
// mesos-slave, registrator — each with its recipe and its smoke test, in
// one shape, so the release's stages loop over the list instead of naming
// each image. Every image keeps its own folder (images/<name>/: recipe,
// programs, smoke test); this file only adapts them to the list.
package images

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	mesosslave "github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/registrator"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// Image names, in the order the summary lists them.
const (
	LHCbDIRAC   = "lhcbdirac"
	Pinger      = "pinger"
	MesosSlave  = "mesos-slave"
	Registrator = "registrator"
)

// Image is one image of the release.
type Image struct {
	Name string
	// Recipe is the image, not yet evaluated.
	Recipe func(Build) *dagger.Container
	// Smoke tests the built image; nil when another image's smoke test
	// exercises it (TestedBy).
	Smoke    func(context.Context, Smoke) (SmokeResult, error)
	TestedBy string
	// ForService is true for the images one DIRAC service's test needs
	// (testService builds only these).
	ForService bool
}

// All are the release's images.
var All = []Image{
	{Name: LHCbDIRAC, Recipe: lhcbdiracRecipe, Smoke: lhcbdiracSmoke, ForService: true},
	{Name: Pinger, Recipe: pingerRecipe, TestedBy: LHCbDIRAC, ForService: true},
	{Name: MesosSlave, Recipe: mesosSlaveRecipe, Smoke: mesosSlaveSmoke},
	{Name: Registrator, Recipe: registratorRecipe, Smoke: registratorSmoke},
}

// Names are the images' names, in order.
func Names() []string {
	var out []string
	for _, im := range All {
		out = append(out, im.Name)
	}
	return out
}

// ForService are the images one service's test builds.
func ForService() []Image {
	var out []Image
	for _, im := range All {
		if im.ForService {
			out = append(out, im)
		}
	}
	return out
}

// Bases are the bases the images build and run their smoke tests on,
// each pinned by digest.
type Bases struct {
	LHCbDIRAC, Builder, MesosSlave string // the images' own
	MariaDB, Etcd, Tools           string // the smoke tests' (and the Go builder's: Tools)
}

// BaseSpec is one base: the variable that configures it (if any) and the
// debootstrap spec made offline when it is not configured.
type BaseSpec struct {
	Env  string
	Spec baseimage.Spec
	Set  func(*Bases, string)
	// Fixture is false for a base the FIXTURE route does not need.
	Fixture bool
}

// BaseSpecs are every base, in the order they are made.
var BaseSpecs = []BaseSpec{
	{"LHCBDIRAC_BASE_LHCBDIRAC", lhcbdirac.Base, func(b *Bases, r string) { b.LHCbDIRAC = r }, true},
	{"", lhcbdirac.BuilderBase, func(b *Bases, r string) { b.Builder = r }, true},
	{"", lhcbdirac.MariaDBBase, func(b *Bases, r string) { b.MariaDB = r }, false},
	{"", registrator.EtcdBase, func(b *Bases, r string) { b.Etcd = r }, true},
	{"LHCBDIRAC_BASE_MESOS_SLAVE", mesosslave.Base, func(b *Bases, r string) { b.MesosSlave = r }, true},
	{"", enginecheck.BaseSpec, func(b *Bases, r string) { b.Tools = r }, true},
}

// Build is what every recipe is given.
type Build struct {
	Client  *dagger.Client
	Go      *gobuild.Builder
	Version version.Version
	Bases   Bases
	// LHCbDIRAC is the lhcbdirac image's own inputs (lock, sources,
	// installer).
	LHCbDIRAC lhcbdirac.Inputs
	// StandinAgent puts the STAND-IN agent in mesos-slave (its base is
	// plain Debian: no real Mesos base was configured).
	StandinAgent bool
}

func lhcbdiracRecipe(b Build) *dagger.Container {
	return lhcbdirac.Recipe(b.Client, b.Go, b.LHCbDIRAC)
}

func pingerRecipe(b Build) *dagger.Container {
	return pinger.Recipe(b.Client, b.Go, b.Version.Raw)
}

func mesosSlaveRecipe(b Build) *dagger.Container {
	return mesosslave.Recipe(b.Client, b.Go, mesosslave.Inputs{Base: b.Bases.MesosSlave, Version: b.Version, StandinAgent: b.StandinAgent})
}

func registratorRecipe(b Build) *dagger.Container {
	return registrator.Recipe(b.Client, b.Go, b.Version.Raw)
}

// Smoke is what every smoke test is given.
type Smoke struct {
	Client *dagger.Client
	Built  map[string]*dagger.Container // every built image, by name
	Apps   []render.App                 // the rendered apps (the services' and the registrator's)
	Bases  Bases
	Go     *gobuild.Builder
	P      *progress.Reporter
	// Fixture: the FIXTURE's services read no database.
	Fixture bool
	// Fresh runs the services again although Dagger has the result.
	Fresh bool
	// OneService is true for testService: one DIRAC service, no other
	// image's smoke test.
	OneService bool
	// Attested are the services (by name) an earlier run already
	// smoke-tested on this very image digest from this very app, with the
	// checks its smoke attestation records: they are not run again.
	Attested map[string][]Check
	// AttestedImage are the images (by name) whose own smoke test an
	// earlier run already passed on this very digest: not run again.
	AttestedImage map[string][]Check
}

// SmokeResult is what one image's smoke test found.
type SmokeResult struct {
	Passed bool
	// Summary says what passed or failed in a few words, for the table.
	Summary string
	// NotRun is why the test did not run ("" when it ran).
	NotRun string
	// Services are the DIRAC services' tests, for the lhcbdirac image.
	Services []ServiceResult
	// Checks are the image's own checks (mesos-slave's presets…).
	Checks []Check
	Took   time.Duration
	// Attested is true when the test was not run: an earlier run's smoke
	// attestation of the same digest says it passed.
	Attested bool
}

// ServiceResult is one service run as Marathon would run it.
type ServiceResult struct {
	Service string
	App     render.App
	Checks  []Check
	Log     string // the service's own output
	Took    time.Duration
	Err     error
	// Attested is true when the service was not run: an earlier run's
	// smoke attestation of the same digest and app says it passed.
	Attested bool
	// CannotRun, when set, is why the service was not run: what this
	// machine lacks ("cannot run here: …", from the services file or the
	// image's catalog). It neither passed nor failed.
	CannotRun string
}

// Passed is true when the service ran and every check passed.
func (s ServiceResult) Passed() bool { return s.Err == nil && s.CannotRun == "" }

// Check is one check of a smoke test.
type Check struct {
	Name   string // "COMMAND health check", "DIPS ping through the pinger", …
	Passed bool
	Output string
	Took   time.Duration
	At     time.Time // when it ended
	// Kind is the check's kind in the smoke attestation, for an image's
	// own checks (a service's are named by Name).
	Kind string
	// Spec is what the check ran from, for an image's own checks (a
	// service's ran from its app): hashed into the attestation.
	Spec string
}

func lhcbdiracSmoke(ctx context.Context, s Smoke) (SmokeResult, error) {
	start := time.Now()
	imgs := lhcbdirac.SmokeImages{LHCbDIRAC: s.Built[LHCbDIRAC], Pinger: s.Built[Pinger], PingerPort: pinger.Port, Client: s.Client.Container().From(s.Bases.Tools)}
	// The services an earlier run tested on this digest from this app
	// are not run again: their checks stand, as their attestation says.
	var run []render.App
	res := SmokeResult{}
	for _, a := range s.Apps {
		if checks, ok := s.Attested[a.Service.Name]; ok && a.Kind == render.KindService {
			res.Services = append(res.Services, ServiceResult{Service: a.Service.Name, App: a, Checks: checks, Attested: true})
			s.P.Start("smoke %s", a.Service.Name).Skip("attested before: this image digest, this app, passed")
			continue
		}
		run = append(run, a)
	}
	var results []lhcbdirac.SmokeResult
	var err error
	if len(render.Services(run)) > 0 {
		results, err = lhcbdirac.SmokeServices(ctx, s.Client, imgs, run, lhcbdirac.SmokeServicesOptions{
			MariaDBBase: s.Bases.MariaDB, Database: !s.Fixture, Fresh: s.Fresh, P: s.P})
	}
	res.Took = time.Since(start)
	failed, cannot := 0, 0
	for _, r := range results {
		sr := ServiceResult{Service: r.Service, App: r.App, Log: r.Log, Took: r.Elapsed, Err: r.Err, CannotRun: r.CannotRun}
		if r.CannotRun != "" {
			cannot++
			res.Services = append(res.Services, sr)
			continue
		}
		if r.Health != "" || r.Err != nil {
			sr.Checks = append(sr.Checks, Check{Name: CheckHealth, Passed: r.HealthPassed, Output: r.Health, Took: r.HealthTook, At: r.Start.Add(r.HealthTook)})
		}
		if r.HealthPassed {
			sr.Checks = append(sr.Checks, Check{Name: PingCheck(r.App.Service.Protocol), Passed: r.Err == nil, Output: r.Ping, Took: r.PingTook, At: r.Start.Add(r.HealthTook + r.PingTook)})
		}
		if r.Err != nil {
			failed++
		}
		res.Services = append(res.Services, sr)
	}
	sort.Slice(res.Services, func(i, j int) bool { return res.Services[i].Service < res.Services[j].Service })
	n := len(res.Services) - cannot
	notHere := ""
	if cannot > 0 {
		notHere = fmt.Sprintf("; %d cannot run here", cannot)
	}
	switch {
	case err != nil && n == 0:
		res.Summary = "FAILED" + notHere
	case failed > 0 || err != nil:
		res.Summary = fmt.Sprintf("FAILED (%d of %d services%s)", failed, n, notHere)
	case n == 0:
		// Nothing was tested: no smoke attestation, so nothing deploys it.
		res.NotRun = fmt.Sprintf("all %s cannot run here", plural(cannot, "service"))
		res.Summary = NotRunSummary(res.NotRun)
	default:
		res.Passed = true
		res.Summary = fmt.Sprintf("passed (%s%s: health check + %s%s)", plural(n, "service"), attestedOf(res.Services, n), pings(res.Services), notHere)
	}
	return res, err
}

// attestedOf says how many of the n services passed were not run again
// (their smoke attestation of this digest and app stands): "" for none.
func attestedOf(svcs []ServiceResult, n int) string {
	a := 0
	for _, s := range svcs {
		if s.Attested {
			a++
		}
	}
	switch {
	case a == 0:
		return ""
	case a == n:
		return ", all attested before"
	}
	return fmt.Sprintf(", %d attested before", a)
}

// pings says which pings the services that ran passed: "DIPS ping",
// "HTTPS ping", or both with the HTTPS count.
func pings(svcs []ServiceResult) string {
	dips, https := 0, 0
	for _, s := range svcs {
		switch {
		case s.CannotRun != "":
		case s.App.Service.Protocol == services.ProtocolHTTPS:
			https++
		default:
			dips++
		}
	}
	switch {
	case https == 0:
		return "DIPS ping"
	case dips == 0:
		return "HTTPS ping"
	}
	return fmt.Sprintf("DIPS ping, or HTTPS ping for %d Tornado", https)
}

// PingerSummary is what the pinger's column says: it is tested by every
// service's ping going through it.
func PingerSummary(l SmokeResult) string {
	if !l.Passed {
		return "FAILED (see services)"
	}
	pings := 0
	for _, s := range l.Services {
		if s.CannotRun == "" {
			pings++
		}
	}
	return fmt.Sprintf("passed (%s)", plural(pings, "ping"))
}

func mesosSlaveSmoke(ctx context.Context, s Smoke) (SmokeResult, error) {
	if s.OneService {
		return SmokeResult{NotRun: "testService"}, nil
	}
	if checks, ok := s.AttestedImage[MesosSlave]; ok {
		s.P.Start("smoke mesos-slave").Skip("attested before: this image digest passed")
		return SmokeResult{Passed: true, Attested: true, Checks: checks, Summary: fmt.Sprintf("passed (attested before: %d checks)", len(checks))}, nil
	}
	start := time.Now()
	step := s.P.Start("smoke mesos-slave (%d ENVIRONMENT presets, watchdog)", len(mesosslave.SmokeEnvironments))
	r, err := mesosslave.Smoke(ctx, s.Client, s.Built[MesosSlave], s.Client.Container().From(s.Bases.Tools))
	res := SmokeResult{Took: time.Since(start)}
	now := time.Now()
	for _, e := range mesosslave.SmokeEnvironments {
		if status, ok := r.Status[e.Name]; ok {
			res.Checks = append(res.Checks, Check{Name: "ENVIRONMENT=" + e.Name, Passed: true, Output: status, At: now,
				Kind: "supervisor-programs-running", Spec: fmt.Sprintf("ENVIRONMENT=%s running=%v absent=%v", e.Name, e.Running, e.Absent)})
		}
	}
	if r.Watchdog != "" {
		res.Checks = append(res.Checks, Check{Name: "watchdog", Passed: err == nil, Output: r.Watchdog, At: now,
			Kind: "watchdog-stops-the-container", Spec: "the STAND-IN agent told to crash"})
	}
	if err != nil {
		res.Summary = "FAILED"
		return res, step.Fail(err)
	}
	step.Done()
	res.Passed = true
	res.Summary = fmt.Sprintf("passed (%d presets, watchdog)", len(mesosslave.SmokeEnvironments))
	return res, nil
}

func registratorSmoke(ctx context.Context, s Smoke) (SmokeResult, error) {
	var app *render.App
	for i := range s.Apps {
		if s.Apps[i].Kind == render.KindRegistrator {
			app = &s.Apps[i]
		}
	}
	switch {
	case s.OneService:
		return SmokeResult{NotRun: "testService"}, nil
	case app == nil:
		return SmokeResult{NotRun: "no discovery in the services file"}, nil
	}
	if checks, ok := s.AttestedImage[Registrator]; ok {
		s.P.Start("smoke registrator").Skip("attested before: this image digest, this app, passed")
		return SmokeResult{Passed: true, Attested: true, Checks: checks, Summary: "passed (attested before)"}, nil
	}
	start := time.Now()
	step := s.P.Start("smoke registrator (STAND-IN Marathon, etcd)")
	out, err := registrator.Smoke(ctx, s.Client, s.Built[Registrator], *app, s.Go, s.Bases.Tools, s.Bases.Etcd)
	res := SmokeResult{Took: time.Since(start), Checks: []Check{{Name: "healthy, an etcd entry for every task", Passed: err == nil, Output: out,
		Took: time.Since(start), At: time.Now(), Kind: "etcd-entry-per-task", Spec: string(app.JSON)}}}
	if err != nil {
		res.Summary = "FAILED"
		return res, step.Fail(err)
	}
	step.Done()
	res.Passed = true
	res.Summary = fmt.Sprintf("passed (%d tasks into etcd)", registrator.SmokeTasks)
	return res, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// NotRunSummary is the table's word for a test that did not run.
func NotRunSummary(why string) string { return "not run (" + strings.TrimSpace(why) + ")" }

// Output is what the named check printed ("" when it did not run).
func (s ServiceResult) Output(check string) string {
	for _, c := range s.Checks {
		if c.Name == check {
			return c.Output
		}
	}
	return ""
}

// Names of the services' checks.
const (
	CheckHealth    = "COMMAND health check"
	CheckPing      = "DIPS ping through the pinger"
	CheckHTTPSPing = "HTTPS ping through the pinger" // a Tornado service's: DIRAC's POST method=ping
)

// PingCheck is the name of the ping check of a service speaking protocol
// (services.ProtocolDIPS or services.ProtocolHTTPS).
func PingCheck(protocol string) string {
	if protocol == services.ProtocolHTTPS {
		return CheckHTTPSPing
	}
	return CheckPing
}
