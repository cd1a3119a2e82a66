package pipeline

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

//go:embed services.yaml
var defaultServices []byte

// DefaultServicesName names the embedded services file in messages.
const DefaultServicesName = "pipeline/services.yaml (embedded)"

// Config is everything a release is made from. ConfigFromEnv documents
// each variable; the zero values are the offline defaults.
type Config struct {
	Version     version.Version
	Services    *services.File
	Environment string // environment of the services file
	Only        string // one System/Service (testService); "" for all

	Registry   string // host:port
	Repository string // image repository prefix: <Repository>/lhcbdirac, /pinger, /mesos-slave, /registrator

	// Sources is where DIRAC and LHCbDIRAC come from: SourcesIndex (the
	// real releases, from a lock) or SourcesFixture (the test double).
	Sources          string
	LockFile         string       // LHCBDIRAC_LOCK: install exactly this lock
	DIRAC, LHCbDIRAC sources.Spec // Repo "" = not a hotfix
	PipIndexURL      string       // "" = the default index; may hold credentials
	Installer        string       // DIRACOS2 installer URL or path; "" = none (index) or the FIXTURE's
	LHCbDIRACBase    string       // pinned base; "" = offline debootstrap base
	MesosSlaveBase   string

	Dist       string // where app definitions and the summary are written
	Push       bool
	FreshSmoke bool // run the smoke tests even when Dagger has them cached
}

// Where DIRAC and LHCbDIRAC come from (LHCBDIRAC_SOURCES).
const (
	SourcesIndex   = "index"   // the real releases from the index, through a lock (the default)
	SourcesFixture = "fixture" // the FIXTURE test double (images/lhcbdirac/fixture), for fast tests
)

// Fixture is true on the FIXTURE route.
func (c Config) Fixture() bool { return c.Sources == SourcesFixture }

// ImageRepo is where an image of the release is pushed.
func (c Config) ImageRepo(name string) string { return c.Repository + "/" + name }

// Getenv reads a variable (os.Getenv, or a map in tests).
type Getenv func(string) string

// ConfigFromEnv validates the version and reads the configuration:
//
//	LHCBDIRAC_SERVICES          services file (default: the embedded one)
//	LHCBDIRAC_ENVIRONMENT       its environment (default: certification)
//	LHCBDIRAC_REPOSITORY        image repository prefix (default: <registry>/lhcbdirac-pipeline)
//	DIRAC_REPO, DIRAC_BRANCH    hotfix: DIRAC from this git repository and branch
//	LHCB_DIRAC_REPO, LHCB_DIRAC_BRANCH   the same for LHCbDIRAC
//	LHCBDIRAC_SOURCES           index (default: the real releases) or fixture (the test double)
//	LHCBDIRAC_LOCK              install exactly this lock (made by mage lock, or by a release in dist/)
//	LHCBDIRAC_PIP_INDEX_URL     the package index (a site mirror); unset = the default index
//	LHCBDIRAC_DIRACOS_INSTALLER DIRACOS2 installer URL or path: Python and the compiled distributions from it
//	LHCBDIRAC_BASE_LHCBDIRAC, LHCBDIRAC_BASE_MESOS_SLAVE   bases pinned by digest
//	LHCBDIRAC_DIST              output directory (default: dist)
func ConfigFromEnv(ver string, registry string, getenv Getenv) (Config, error) {
	v, err := version.Parse(ver)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		Version:        v,
		Environment:    or(getenv("LHCBDIRAC_ENVIRONMENT"), "certification"),
		Registry:       registry,
		Sources:        or(getenv("LHCBDIRAC_SOURCES"), SourcesIndex),
		LockFile:       getenv("LHCBDIRAC_LOCK"),
		Repository:     strings.TrimSuffix(or(getenv("LHCBDIRAC_REPOSITORY"), registry+"/lhcbdirac-pipeline"), "/"),
		PipIndexURL:    getenv("LHCBDIRAC_PIP_INDEX_URL"),
		Installer:      getenv("LHCBDIRAC_DIRACOS_INSTALLER"),
		LHCbDIRACBase:  getenv("LHCBDIRAC_BASE_LHCBDIRAC"),
		MesosSlaveBase: getenv("LHCBDIRAC_BASE_MESOS_SLAVE"),
		Dist:           or(getenv("LHCBDIRAC_DIST"), "dist"),
		Push:           true,
	}
	overrides := sources.Overrides(getenv)
	c.DIRAC, c.LHCbDIRAC = overrides[0], overrides[1]
	for _, s := range overrides {
		if err := sources.CheckOverride(s); err != nil {
			return c, err
		}
	}
	switch c.Sources {
	case SourcesIndex:
	case SourcesFixture:
		for _, v := range []struct{ name, val string }{{"LHCBDIRAC_LOCK", c.LockFile}, {"LHCBDIRAC_PIP_INDEX_URL", c.PipIndexURL}} {
			if v.val != "" {
				return c, fmt.Errorf("%s is set, but LHCBDIRAC_SOURCES=fixture installs the FIXTURE, not an index's packages: unset one of them", v.name)
			}
		}
	default:
		return c, fmt.Errorf("LHCBDIRAC_SOURCES=%q: want %s (the real releases, the default) or %s (the FIXTURE test double)", c.Sources, SourcesIndex, SourcesFixture)
	}
	if u := c.PipIndexURL; u != "" && !isURL(u) {
		return c, fmt.Errorf("LHCBDIRAC_PIP_INDEX_URL=%q: want an http(s) URL of a package index", redact.URL(u))
	}
	for _, b := range []struct{ name, val string }{{"LHCBDIRAC_BASE_LHCBDIRAC", c.LHCbDIRACBase}, {"LHCBDIRAC_BASE_MESOS_SLAVE", c.MesosSlaveBase}} {
		if b.val != "" && !strings.Contains(b.val, "@sha256:") {
			return c, fmt.Errorf("%s=%q: pin the base by digest (repository@sha256:…), so the same release always builds on the same base", b.name, b.val)
		}
	}
	if c.Services, err = ServicesFromEnv(getenv); err != nil {
		return c, err
	}
	if _, ok := c.Services.Environments[c.Environment]; !ok {
		return c, fmt.Errorf("LHCBDIRAC_ENVIRONMENT=%q is not an environment of %s (have %s)", c.Environment, c.Services.Path, strings.Join(c.Services.EnvironmentNames(), ", "))
	}
	c.Services.Image = c.ImageRepo("lhcbdirac")
	if c.Services.Discovery != nil {
		c.Services.Discovery.Image = c.ImageRepo("registrator")
	}
	c.Dist = filepath.Join(c.Dist, v.Raw)
	return c, nil
}

// WithOnly restricts the release to one service, which must exist.
func (c Config) WithOnly(name string) (Config, error) {
	if _, ok := c.Services.Find(name); !ok {
		var names []string
		for _, s := range c.Services.Services {
			names = append(names, s.Name)
		}
		if name == "" {
			return c, fmt.Errorf("no service named: give System/Service, one of %s (from %s)", strings.Join(names, ", "), c.Services.Path)
		}
		return c, fmt.Errorf("service %q is not in %s (have %s)", name, c.Services.Path, strings.Join(names, ", "))
	}
	c.Only = name
	return c, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// OSGetenv is os.Getenv.
var OSGetenv Getenv = os.Getenv

// DefaultVersion is the version testService builds when LHCBDIRAC_VERSION
// is not set: the newest final LHCbDIRAC release the index has (v0.0 on
// the FIXTURE route, whose packages have no version of their own).
func DefaultVersion(ctx context.Context, p *progress.Reporter, getenv Getenv) (string, error) {
	if getenv("LHCBDIRAC_SOURCES") == SourcesFixture {
		return "v0.0", nil
	}
	tools, err := pytools.Ensure(ctx, p, getenv("LHCBDIRAC_PIP_INDEX_URL"))
	if err != nil {
		return "", err
	}
	have, err := tools.Versions(ctx, "LHCbDIRAC")
	if err != nil {
		return "", fmt.Errorf("listing LHCbDIRAC's versions on the index (or set LHCBDIRAC_VERSION): %w", err)
	}
	for _, v := range have { // newest first
		if !strings.ContainsAny(v, "abcr") {
			return "v" + v, nil
		}
	}
	return "", fmt.Errorf("the index has no final LHCbDIRAC release: set LHCBDIRAC_VERSION")
}

// WriteLock resolves the release's lock afresh (go run mage.go lock) and
// writes it to dist/<version>/; the next release of that version uses it.
func WriteLock(ctx context.Context, p *progress.Reporter, c Config) (string, *lhcbdirac.Lock, error) {
	if c.Fixture() {
		return "", nil, fmt.Errorf("LHCBDIRAC_SOURCES=fixture: the FIXTURE has no lock")
	}
	l, err := ResolveLock(ctx, p, c)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(c.Dist, 0o755); err != nil {
		return "", nil, err
	}
	path := filepath.Join(c.Dist, LockFileName)
	return path, l, cachedir.WriteFile(path, l.Raw)
}

// ServicesFromEnv reads $LHCBDIRAC_SERVICES, or the embedded default
// services file when it is not set.
func ServicesFromEnv(getenv Getenv) (*services.File, error) {
	if path := getenv("LHCBDIRAC_SERVICES"); path != "" {
		return services.Load(path)
	}
	return services.Parse(DefaultServicesName, defaultServices)
}
