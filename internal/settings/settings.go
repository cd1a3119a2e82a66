// Package settings is the pipeline's one configuration boundary: every
// environment variable a target honours is read here, once, into typed
// values that are passed down. No other package outside the images' main
// programs reads the environment (a test keeps it so), so the release,
// marathon:* and CI see the same settings: a variable cannot be honoured
// by one target and ignored by another that uses the same thing.
//
// Each area (the release, Marathon, CI, the host, metrics, evidence) is
// checked when it is read, and its error is kept with it: a target asks
// only for the areas it uses (Need), so a bad INFLUXDB_PORT stops
// metrics:report, not a release.
package settings

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// Getenv reads a variable: os.Getenv at the boundary, a map in tests.
type Getenv func(string) string

// Area is a group of settings that one concern reads.
type Area string

const (
	AreaRelease  Area = "release"
	AreaMarathon Area = "Marathon"
	AreaCI       Area = "CI"
	AreaHost     Area = "host"
	AreaEvidence Area = "evidence"
)

// Settings are every variable the targets honour, read once.
type Settings struct {
	Release  Release
	Marathon Marathon
	CI       CI
	Host     Host
	Evidence Evidence
	// Env is the environment as read, for the few domain loaders that own
	// their variables' parsing (metrics:report's INFLUXDB_*, the runspec's
	// DEIMOS_EXPOSED_PORTS): called here and nowhere else.
	Env Getenv

	errs map[Area]error
}

// Load reads the process environment — the boundary — once per process:
// every target of one mage run sees the same settings.
func Load() Settings { return loaded() }

var loaded = sync.OnceValue(func() Settings { return FromEnv(os.Getenv) })

// FromEnv reads every area from getenv.
func FromEnv(getenv Getenv) Settings {
	s := Settings{Env: getenv, errs: map[Area]error{}}
	var err error
	s.Release, err = readRelease(getenv)
	s.errs[AreaRelease] = err
	s.Marathon, err = readMarathon(getenv)
	s.errs[AreaMarathon] = err
	s.CI, err = readCI(getenv)
	s.errs[AreaCI] = err
	s.Host, err = readHost(getenv)
	s.errs[AreaHost] = err
	s.Evidence, err = readEvidence(getenv)
	s.errs[AreaEvidence] = err
	return s
}

// Need returns the errors of the areas a target uses (nil when they are
// all valid).
func (s Settings) Need(areas ...Area) error {
	var errs []error
	for _, a := range areas {
		if err := s.errs[a]; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Release is what a release is made from, apart from its version.
type Release struct {
	ServicesFile string // LHCBDIRAC_SERVICES; "" = the embedded default
	Environment  string // LHCBDIRAC_ENVIRONMENT
	Dist         string // LHCBDIRAC_DIST
	Repository   string // LHCBDIRAC_REPOSITORY; "" = <registry>/lhcbdirac-pipeline
	Version      string // LHCBDIRAC_VERSION: testService's version; "" = the newest on the index

	Sources          string       // LHCBDIRAC_SOURCES: index or fixture
	LockFile         string       // LHCBDIRAC_LOCK
	DIRAC, LHCbDIRAC sources.Spec // DIRAC_REPO/BRANCH, LHCB_DIRAC_REPO/BRANCH
	PipIndexURL      string       // LHCBDIRAC_PIP_INDEX_URL (may hold credentials)
	Installer        string       // LHCBDIRAC_DIRACOS_INSTALLER
	LHCbDIRACBase    string       // LHCBDIRAC_BASE_LHCBDIRAC
	MesosSlaveBase   string       // LHCBDIRAC_BASE_MESOS_SLAVE

	MarathonTemplate string // LHCBDIRAC_MARATHON_TEMPLATE
	MarathonSchema   string // LHCBDIRAC_MARATHON_SCHEMA

	// BenchTag is LHCBDIRAC_BENCH_TAG: the benchmark's tag for one run
	// (<version>-<it>) instead of the version's, so runs of one version
	// with one change each stay in one repository.
	BenchTag string

	// ReportAgainst is LHCBDIRAC_REPORT_AGAINST (mage report's --against):
	// the release a report compares with; "" = the nearest lower one.
	ReportAgainst string
}

// Where DIRAC and LHCbDIRAC come from (LHCBDIRAC_SOURCES).
const (
	SourcesIndex   = "index"
	SourcesFixture = "fixture"
)

// Fixture is true on the FIXTURE route.
func (r Release) Fixture() bool { return r.Sources == SourcesFixture }

func readRelease(getenv Getenv) (Release, error) {
	r := Release{
		ServicesFile:     getenv("LHCBDIRAC_SERVICES"),
		Environment:      cmp.Or(getenv("LHCBDIRAC_ENVIRONMENT"), "certification"),
		Dist:             cmp.Or(getenv("LHCBDIRAC_DIST"), "dist"),
		Repository:       strings.TrimSuffix(getenv("LHCBDIRAC_REPOSITORY"), "/"),
		Version:          getenv("LHCBDIRAC_VERSION"),
		Sources:          cmp.Or(getenv("LHCBDIRAC_SOURCES"), SourcesIndex),
		LockFile:         getenv("LHCBDIRAC_LOCK"),
		PipIndexURL:      getenv("LHCBDIRAC_PIP_INDEX_URL"),
		Installer:        getenv("LHCBDIRAC_DIRACOS_INSTALLER"),
		LHCbDIRACBase:    getenv("LHCBDIRAC_BASE_LHCBDIRAC"),
		MesosSlaveBase:   getenv("LHCBDIRAC_BASE_MESOS_SLAVE"),
		MarathonTemplate: getenv("LHCBDIRAC_MARATHON_TEMPLATE"),
		MarathonSchema:   getenv("LHCBDIRAC_MARATHON_SCHEMA"),
		ReportAgainst:    getenv("LHCBDIRAC_REPORT_AGAINST"),
		BenchTag:         getenv("LHCBDIRAC_BENCH_TAG"),
	}
	overrides := sources.Overrides(getenv)
	r.DIRAC, r.LHCbDIRAC = overrides[0], overrides[1]
	for _, o := range overrides {
		if err := sources.CheckOverride(o); err != nil {
			return r, err
		}
	}
	switch r.Sources {
	case SourcesIndex:
	case SourcesFixture:
		for _, v := range []struct{ name, val string }{{"LHCBDIRAC_LOCK", r.LockFile}, {"LHCBDIRAC_PIP_INDEX_URL", r.PipIndexURL}} {
			if v.val != "" {
				return r, fmt.Errorf("%s is set, but LHCBDIRAC_SOURCES=fixture installs the FIXTURE, not an index's packages: unset one of them", v.name)
			}
		}
	default:
		return r, fmt.Errorf("LHCBDIRAC_SOURCES=%q: want %s (the real releases, the default) or %s (the FIXTURE test double)", r.Sources, SourcesIndex, SourcesFixture)
	}
	if t := r.BenchTag; t != "" && !benchTagRE.MatchString(t) {
		return r, fmt.Errorf("LHCBDIRAC_BENCH_TAG=%q: want letters, digits, . and - (at most 40)", t)
	}
	if u := r.PipIndexURL; u != "" && !IsURL(u) {
		return r, fmt.Errorf("LHCBDIRAC_PIP_INDEX_URL=%q: want an http(s) URL of a package index", redact.URL(u))
	}
	for _, b := range []struct{ name, val string }{{"LHCBDIRAC_BASE_LHCBDIRAC", r.LHCbDIRACBase}, {"LHCBDIRAC_BASE_MESOS_SLAVE", r.MesosSlaveBase}} {
		if b.val != "" && !strings.Contains(b.val, "@sha256:") {
			return r, fmt.Errorf("%s=%q: pin the base by digest (repository@sha256:…), so the same release always builds on the same base", b.name, b.val)
		}
	}
	return r, nil
}

// Marathon is where and how to deploy.
type Marathon struct {
	URL                   string        // MARATHON_URL: one, or several comma-separated; "" = a dry run
	User, Password, Token string        // MARATHON_USER/MARATHON_PASSWORD, MARATHON_TOKEN
	Force                 bool          // MARATHON_FORCE=1
	Timeout, Settle       time.Duration // MARATHON_TIMEOUT, MARATHON_SETTLE (0 = the deploy's defaults)
	MaxInstances          int           // MARATHON_MAX_INSTANCES (0 = the default bound)
	// DeimosExposedPorts is DEIMOS_EXPOSED_PORTS: marathon:dockerRun on a
	// deimos-era app, the image's EXPOSEd ports.
	DeimosExposedPorts string
}

// Secrets are the values that must never be shown.
func (m Marathon) Secrets() []string { return nonEmpty(m.Password, m.Token) }

func readMarathon(getenv Getenv) (Marathon, error) {
	m := Marathon{URL: getenv("MARATHON_URL"), User: getenv("MARATHON_USER"), Password: getenv("MARATHON_PASSWORD"), Token: getenv("MARATHON_TOKEN"),
		DeimosExposedPorts: getenv("DEIMOS_EXPOSED_PORTS")}
	switch f := getenv("MARATHON_FORCE"); f {
	case "", "0":
	case "1":
		m.Force = true
	default:
		return m, fmt.Errorf("MARATHON_FORCE=%q: want 1 (override running deployments) or unset", f)
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"MARATHON_TIMEOUT", &m.Timeout}, {"MARATHON_SETTLE", &m.Settle}} {
		t := getenv(d.name)
		if t == "" {
			continue
		}
		v, err := time.ParseDuration(t)
		if err != nil || v <= 0 {
			return m, fmt.Errorf("%s=%q: want a positive duration such as 90s or 10m", d.name, t)
		}
		*d.to = v
	}
	if v := getenv("MARATHON_MAX_INSTANCES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return m, fmt.Errorf("MARATHON_MAX_INSTANCES=%q: want a whole number of instances from 1 to 1000000", v)
		}
		m.MaxInstances = n
	}
	if m.Timeout > 0 && m.Settle > m.Timeout {
		return m, fmt.Errorf("MARATHON_SETTLE=%s is longer than MARATHON_TIMEOUT=%s", m.Settle, m.Timeout)
	}
	if m.User == "" && m.Password != "" {
		return m, errors.New("MARATHON_PASSWORD is set without MARATHON_USER")
	}
	return m, nil
}

// CI is what the CI targets read.
type CI struct {
	// Login is what ci:login writes: REGISTRY, REGISTRY_USER,
	// REGISTRY_PASSWORD, or GitLab's CI_REGISTRY* where those are unset.
	Login RegistryLogin
	// DockerConfig is the Docker config directory ($DOCKER_CONFIG, else
	// ~/.docker): where registry credentials are written and read.
	DockerConfig string
	HotfixDeploy bool // LHCBDIRAC_HOTFIX_DEPLOY=1: a hotfix build may deploy
	DryRun       bool // LHCBDIRAC_CI_DRY_RUN=1: print the mage call instead
}

// RegistryLogin is a registry and its credentials.
type RegistryLogin struct{ Registry, User, Password string }

// Empty is true when nothing was set.
func (l RegistryLogin) Empty() bool { return l.Registry == "" && l.User == "" && l.Password == "" }

func readCI(getenv Getenv) (CI, error) {
	get := func(a, b string) string { return cmp.Or(getenv(a), getenv(b)) }
	c := CI{
		Login:        RegistryLogin{Registry: get("REGISTRY", "CI_REGISTRY"), User: get("REGISTRY_USER", "CI_REGISTRY_USER"), Password: get("REGISTRY_PASSWORD", "CI_REGISTRY_PASSWORD")},
		DockerConfig: getenv("DOCKER_CONFIG"),
	}
	if c.DockerConfig == "" {
		if home := getenv("HOME"); home != "" {
			c.DockerConfig = home + "/.docker"
		} else if home, err := os.UserHomeDir(); err == nil {
			c.DockerConfig = home + "/.docker"
		}
	}
	var err error
	if c.HotfixDeploy, err = flag(getenv, "LHCBDIRAC_HOTFIX_DEPLOY"); err != nil {
		return c, err
	}
	if c.DryRun, err = flag(getenv, "LHCBDIRAC_CI_DRY_RUN"); err != nil {
		return c, err
	}
	return c, nil
}

// Host is the machine's set-up, the engine and the registry.
type Host struct {
	NoSetup bool   // LHCBDIRAC_NO_HOST_SETUP=1: only check and explain
	Cache   string // LHCBDIRAC_PIPELINE_CACHE; "" = ~/.cache/lhcbdirac-pipeline

	EngineMode         string   // LHCBDIRAC_ENGINE: local, dagger or "" (detect)
	RunnerHost         string   // _EXPERIMENTAL_DAGGER_RUNNER_HOST
	CLIBin             string   // _EXPERIMENTAL_DAGGER_CLI_BIN
	EngineContainer    string   // LHCBDIRAC_ENGINE_CONTAINER
	EngineCacheMax     string   // LHCBDIRAC_ENGINE_CACHE_MAX
	EngineMinFree      string   // LHCBDIRAC_ENGINE_MIN_FREE
	InsecureRegistries []string // LHCBDIRAC_INSECURE_REGISTRIES

	Registry             string // LHCBDIRAC_REGISTRY: push there; "" = the embedded one
	EmbeddedRegistryAddr string // LHCBDIRAC_EMBEDDED_REGISTRY_ADDR
	DebianMirror         string // LHCBDIRAC_DEBIAN_MIRROR
	Testdata             string // LHCBDIRAC_TESTDATA
}

func readHost(getenv Getenv) (Host, error) {
	h := Host{
		Cache:                getenv("LHCBDIRAC_PIPELINE_CACHE"),
		EngineMode:           getenv("LHCBDIRAC_ENGINE"),
		RunnerHost:           getenv("_EXPERIMENTAL_DAGGER_RUNNER_HOST"),
		CLIBin:               getenv("_EXPERIMENTAL_DAGGER_CLI_BIN"),
		EngineContainer:      getenv("LHCBDIRAC_ENGINE_CONTAINER"),
		EngineCacheMax:       strings.TrimSpace(getenv("LHCBDIRAC_ENGINE_CACHE_MAX")),
		EngineMinFree:        strings.TrimSpace(getenv("LHCBDIRAC_ENGINE_MIN_FREE")),
		Registry:             strings.TrimSuffix(getenv("LHCBDIRAC_REGISTRY"), "/"),
		EmbeddedRegistryAddr: getenv("LHCBDIRAC_EMBEDDED_REGISTRY_ADDR"),
		DebianMirror:         getenv("LHCBDIRAC_DEBIAN_MIRROR"),
		Testdata:             getenv("LHCBDIRAC_TESTDATA"),
	}
	for _, a := range strings.Split(getenv("LHCBDIRAC_INSECURE_REGISTRIES"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			h.InsecureRegistries = append(h.InsecureRegistries, a)
		}
	}
	sort.Strings(h.InsecureRegistries)
	var err error
	if h.NoSetup, err = flag(getenv, "LHCBDIRAC_NO_HOST_SETUP"); err != nil {
		return h, err
	}
	switch h.EngineMode {
	case "", "local", "dagger":
	default:
		return h, fmt.Errorf("LHCBDIRAC_ENGINE=%q: expected local or dagger", h.EngineMode)
	}
	return h, nil
}

// Evidence is the release key: what signs the evidence attached to every
// image, and what a deploy checks it with.
type Evidence struct {
	// SigningKey is LHCBDIRAC_SIGNING_KEY: a PEM private key, or the path
	// of a file holding one. Never shown.
	SigningKey string
	// VerifyKey is LHCBDIRAC_VERIFY_KEY: a PEM public key or its path.
	VerifyKey string
}

func readEvidence(getenv Getenv) (Evidence, error) {
	return Evidence{SigningKey: getenv("LHCBDIRAC_SIGNING_KEY"), VerifyKey: getenv("LHCBDIRAC_VERIFY_KEY")}, nil
}

var benchTagRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,39}$`)

// IsURL tells a URL from a path on this machine.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func flag(getenv Getenv, name string) (bool, error) {
	switch v := getenv(name); v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: want 1 or unset", name, v)
	}
}

func nonEmpty(vs ...string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Read reads one variable now, for what is no setting of the pipeline's:
// the PATH a test hands the programs it starts, a test's own knobs
// (LHCBDIRAC_TESTDATA's siblings), CI's marker. Everything a target
// honours is read into Settings by FromEnv.
func Read(key string) string { return os.Getenv(key) }
