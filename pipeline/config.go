package pipeline

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
	Repository string // image repository prefix: <Repository>/lhcbdirac, /pinger, /mesos-slave

	DIRAC, LHCbDIRAC sources.Spec // Repo "" = not a hotfix
	PipIndexURL      string       // "" = offline
	Installer        string       // DIRACOS2 installer URL or path; "" = the fixture
	LHCbDIRACBase    string       // pinned base; "" = offline debootstrap base
	MesosSlaveBase   string

	Dist       string // where app definitions and the summary are written
	Push       bool
	FreshSmoke bool // run the smoke tests even when Dagger has them cached
}

// Offline is true when nothing is fetched from a package index: the
// DIRAC and LHCbDIRAC sources are git checkouts (the fixtures by default).
func (c Config) Offline() bool { return c.PipIndexURL == "" }

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
//	LHCBDIRAC_PIP_INDEX_URL     pip index (site mirror); unset = offline
//	LHCBDIRAC_DIRACOS_INSTALLER DIRACOS2 installer URL or path (required with an index)
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
	if c.PipIndexURL != "" && c.Installer == "" {
		return c, fmt.Errorf("LHCBDIRAC_PIP_INDEX_URL is set but LHCBDIRAC_DIRACOS_INSTALLER is not: give the DIRACOS2 installer's URL or path (your site's mirror of DIRACOS-Linux-x86_64.sh)")
	}
	for _, b := range []struct{ name, val string }{{"LHCBDIRAC_BASE_LHCBDIRAC", c.LHCbDIRACBase}, {"LHCBDIRAC_BASE_MESOS_SLAVE", c.MesosSlaveBase}} {
		if b.val != "" && !strings.Contains(b.val, "@sha256:") {
			return c, fmt.Errorf("%s=%q: pin the base by digest (repository@sha256:…), so the same release always builds on the same base", b.name, b.val)
		}
	}
	path := getenv("LHCBDIRAC_SERVICES")
	if path == "" {
		c.Services, err = services.Parse(DefaultServicesName, defaultServices)
	} else {
		c.Services, err = services.Load(path)
	}
	if err != nil {
		return c, err
	}
	if _, ok := c.Services.Environments[c.Environment]; !ok {
		return c, fmt.Errorf("LHCBDIRAC_ENVIRONMENT=%q is not an environment of %s (have %s)", c.Environment, c.Services.Path, strings.Join(c.Services.EnvironmentNames(), ", "))
	}
	c.Services.Image = c.ImageRepo("lhcbdirac")
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
