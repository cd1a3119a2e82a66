package pipeline

import (
	_ "embed"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

//go:embed services.yaml
var defaultServices []byte

// DefaultServicesName names the embedded services file in messages.
const DefaultServicesName = "pipeline/services.yaml (embedded)"

// Config is everything one release is made from: its version (parsed
// once, where it entered) and the release settings, with the services file
// loaded and the image repositories filled in.
type Config struct {
	settings.Release
	Version  version.Version
	Services *services.File
	Only     string // one System/Service (testService); "" for all

	Registry string // host:port
	// Repository is the image repository prefix: <Repository>/lhcbdirac,
	// /pinger, /mesos-slave, /registrator.
	Repository string
	// Dist is where this version's files go: dist/<version>.
	Dist string
	// FreshSmoke runs the smoke tests even when Dagger has them cached.
	FreshSmoke bool
}

// ImageRepo is where an image of the release is pushed.
func (c Config) ImageRepo(name string) string { return c.Repository + "/" + name }

// NewConfig is the configuration of release v from the settings, pushing
// to registry.
func NewConfig(v version.Version, rel settings.Release, registry string) (Config, error) {
	c := Config{Release: rel, Version: v, Registry: registry, Repository: rel.Repository}
	if c.Repository == "" {
		c.Repository = registry + "/lhcbdirac-pipeline"
	}
	var err error
	if c.Services, err = LoadServices(rel); err != nil {
		return c, err
	}
	if _, ok := c.Services.Environments[c.Environment]; !ok {
		return c, fmt.Errorf("LHCBDIRAC_ENVIRONMENT=%q is not an environment of %s (have %s)", c.Environment, c.Services.Path, strings.Join(c.Services.EnvironmentNames(), ", "))
	}
	c.Services.Image = c.ImageRepo("lhcbdirac")
	if c.Services.Discovery != nil {
		c.Services.Discovery.Image = c.ImageRepo("registrator")
	}
	c.Dist = filepath.Join(rel.Dist, v.Raw)
	return c, nil
}

// ConfigFor parses the version given on the command line — the one place
// it is parsed — and makes the release's configuration from st.
func ConfigFor(ver string, st settings.Settings, registry string) (Config, error) {
	v, err := version.Parse(ver)
	if err != nil {
		return Config{}, err
	}
	if err := st.Need(settings.AreaRelease); err != nil {
		return Config{}, err
	}
	return NewConfig(v, st.Release, registry)
}

// WithOnly restricts the release to one service, which must exist.
func (c Config) WithOnly(name string) (Config, error) {
	if _, ok := c.Services.Find(name); !ok {
		names := c.Services.Names()
		if name == "" {
			return c, fmt.Errorf("no service named: give System/Service, one of %s (from %s)", strings.Join(names, ", "), c.Services.Path)
		}
		return c, fmt.Errorf("service %q is not in %s (have %s)", name, c.Services.Path, strings.Join(names, ", "))
	}
	c.Only = name
	return c, nil
}

// LoadServices reads the services file the settings name, or the embedded
// default when they name none: every target that reads the services file
// reads it here, so they all read the same one.
func LoadServices(rel settings.Release) (*services.File, error) {
	if rel.ServicesFile != "" {
		return services.Load(rel.ServicesFile)
	}
	return services.Parse(DefaultServicesName, defaultServices)
}
