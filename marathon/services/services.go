// Package services reads the list of DIRAC services to deploy: a strictly
// decoded YAML file (services.yaml), or the seed's certification_services.json
// as it is, so existing lists keep working. Every error names the file and
// the line or field.
package services

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// HealthCheck overrides the COMMAND health check's timing.
type HealthCheck struct {
	GracePeriodSeconds     *int `yaml:"gracePeriodSeconds,omitempty" json:"gracePeriodSeconds,omitempty"`
	IntervalSeconds        *int `yaml:"intervalSeconds,omitempty" json:"intervalSeconds,omitempty"`
	TimeoutSeconds         *int `yaml:"timeoutSeconds,omitempty" json:"timeoutSeconds,omitempty"`
	MaxConsecutiveFailures *int `yaml:"maxConsecutiveFailures,omitempty" json:"maxConsecutiveFailures,omitempty"`
}

// Settings can be given at every level: defaults, environment, service,
// service-in-environment; the more specific wins, maps are merged.
type Settings struct {
	CPUs        *float64          `yaml:"cpus,omitempty"`
	Mem         *float64          `yaml:"mem,omitempty"`
	Instances   *int              `yaml:"instances,omitempty"`
	Env         map[string]string `yaml:"env,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Constraints [][]string        `yaml:"constraints,omitempty"`
	HealthCheck *HealthCheck      `yaml:"healthCheck,omitempty"`
}

// Environment is where a release goes: its dirac.cfg and grid-security on
// the agents, and settings for all its services.
type Environment struct {
	DiracCfg     string `yaml:"diracCfg"`         // host path mounted at /opt/dirac/etc/dirac.cfg
	GridSecurity string `yaml:"gridSecurity"`     // host path mounted at /opt/dirac/etc/grid-security
	System       string `yaml:"system,omitempty"` // the "system" label (prod, cert…)
	Settings     `yaml:",inline"`
}

// Service is one DIRAC service.
type Service struct {
	Name string `yaml:"name"` // System/Service
	Port int    `yaml:"port"` // the service's port inside the container
	// Protocol is how the service is spoken to: ProtocolDIPS (the default)
	// or ProtocolHTTPS (DIRAC's Tornado services).
	Protocol string `yaml:"protocol,omitempty"`
	// CannotRun, when set, says why the service cannot run on a build
	// machine ("cannot run here: <what is missing>"): the smoke test lists
	// it with that reason instead of starting it. Rendering and deploying
	// are not affected.
	CannotRun string `yaml:"cannotRun,omitempty"`
	// Canary marks the services promote tries on one instance first
	// (none marked: every service is a canary).
	Canary       bool `yaml:"canary,omitempty"`
	Settings     `yaml:",inline"`
	Environments map[string]Settings `yaml:"environments,omitempty"`
	line         int
}

// Protocols a service can speak.
const (
	ProtocolDIPS  = "dips"
	ProtocolHTTPS = "https"
)

// File is a services file.
type File struct {
	Path         string                 `yaml:"-"`
	Image        string                 `yaml:"image"`               // repository, without tag
	PingerURL    string                 `yaml:"pingerURL,omitempty"` // base URL of the pinger Consul calls
	Defaults     Settings               `yaml:"defaults,omitempty"`
	Environments map[string]Environment `yaml:"environments"`
	Services     []Service              `yaml:"services"`
	Discovery    *Discovery             `yaml:"discovery,omitempty"`
}

// Resolved is one service's effective settings in one environment.
type Resolved struct {
	System, Service string // the two halves of Name
	Name            string
	Port            int
	Protocol        string // ProtocolDIPS or ProtocolHTTPS
	CannotRun       string // why it cannot run on a build machine, or ""
	CPUs, Mem       float64
	Instances       int
	Env             map[string]string
	Labels          map[string]string
	Constraints     [][]string
	HealthCheck     HealthCheck
	DiracCfg        string
	GridSecurity    string
	SystemLabel     string
	Image           string
	PingerURL       string
	Canary          bool
}

// Seed defaults: what generate-marathon-config.py and its template used.
const (
	SeedImage        = "gitlab-registry.cern.ch/lhcb-dirac/lhcbdirac"
	SeedPingerURL    = "http://lbdiracgw:1234"
	SeedEnvironment  = "certification"
	SeedDiracCfg     = "/etc/dirac/LHCb-Certification.cfg"
	SeedGridSecurity = "/etc/grid-security"
)

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*/[A-Za-z][A-Za-z0-9_]*$`)

// Load reads a services file: YAML, or the seed's JSON format.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse decodes and validates a services file's content.
func Parse(path string, b []byte) (*File, error) {
	var f *File
	var err error
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		f, err = parseSeedJSON(path, b)
	} else {
		f, err = parseYAML(path, b)
	}
	if err != nil {
		return nil, err
	}
	f.Path = path
	return f, f.validate()
}

func parseYAML(path string, b []byte) (*File, error) {
	// The node tree first: it tells an empty file from a bad one, finds a
	// second document, and gives the lines later errors name.
	var docs []*yaml.Node
	nodes := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var n yaml.Node
		err := nodes.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		docs = append(docs, &n)
	}
	switch {
	case len(docs) == 0 || len(docs[0].Content) == 0 || docs[0].Content[0].Tag == "!!null":
		return nil, fmt.Errorf("%s: the file has no services (it is empty or holds only comments)", path)
	case len(docs) > 1:
		return nil, fmt.Errorf("%s:%d: a second YAML document (after ---): a services file is one document; merge them or remove the separator", path, docs[1].Line)
	}
	svcs := mapValue(docs[0].Content[0], "services")
	if svcs != nil && svcs.Kind == yaml.SequenceNode {
		for i, n := range svcs.Content {
			if n.Tag == "!!null" {
				return nil, fmt.Errorf("%s:%d: services[%d] is empty (a '-' with nothing after it)", path, n.Line, i)
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // an unknown key is an error, not silently ignored
	var f File
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) { // one line per problem, each with the file
			lines := make([]string, len(te.Errors))
			for i, e := range te.Errors {
				lines[i] = path + ": " + strings.ReplaceAll(e, " in type services.", " in ")
			}
			return nil, errors.New(strings.Join(lines, "\n"))
		}
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if svcs != nil {
		for i, n := range svcs.Content {
			if i < len(f.Services) {
				f.Services[i].line = n.Line
			}
		}
	}
	return &f, nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// seedService is one entry of certification_services.json; the seed wrote
// ports as strings.
type seedService struct {
	Port      json.RawMessage `json:"port"`
	CPU       *float64        `json:"cpu"`
	Mem       *float64        `json:"mem"`
	Instances *int            `json:"instances"`
}

func parseSeedJSON(path string, b []byte) (*File, error) {
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: not a seed services file ({System: {Service: {port: …}}}): %v", path, err)
	}
	f := &File{
		Image:     SeedImage,
		PingerURL: SeedPingerURL,
		Environments: map[string]Environment{
			SeedEnvironment: {DiracCfg: SeedDiracCfg, GridSecurity: SeedGridSecurity, System: "prod"},
		},
	}
	systems := slices.Sorted(maps.Keys(raw))
	for _, sys := range systems {
		for _, name := range slices.Sorted(maps.Keys(raw[sys])) {
			field := sys + "." + name
			dec := json.NewDecoder(bytes.NewReader(raw[sys][name]))
			dec.DisallowUnknownFields()
			var s seedService
			if err := dec.Decode(&s); err != nil {
				return nil, fmt.Errorf("%s: %s: %v", path, field, err)
			}
			port, err := seedPort(s.Port)
			if err != nil {
				return nil, fmt.Errorf("%s: %s.port: %v", path, field, err)
			}
			svc := Service{Name: sys + "/" + name, Port: port}
			// The seed treated 0 like "not given" (Python falsiness).
			if s.CPU != nil && *s.CPU != 0 {
				svc.CPUs = s.CPU
			}
			if s.Mem != nil && *s.Mem != 0 {
				svc.Mem = s.Mem
			}
			if s.Instances != nil && *s.Instances != 0 {
				svc.Instances = s.Instances
			}
			f.Services = append(f.Services, svc)
		}
	}
	return f, nil
}

func seedPort(raw json.RawMessage) (int, error) {
	if len(raw) == 0 {
		return 0, errors.New("missing (the only required key)")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strconv.Atoi(strings.TrimSpace(s))
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("%s is not a port number", raw)
	}
	return n, nil
}

func (f *File) where(s Service, i int) string {
	if s.line > 0 {
		return fmt.Sprintf("%s:%d: services[%d] (%s)", f.Path, s.line, i, s.Name)
	}
	return fmt.Sprintf("%s: services[%d] (%s)", f.Path, i, s.Name)
}

func (f *File) validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if f.Image == "" {
		add("%s: image: required (the repository the lhcbdirac image is pushed to)", f.Path)
	} else if strings.ContainsAny(f.Image, "@ ") || strings.Contains(f.Image[strings.LastIndex(f.Image, "/")+1:], ":") {
		add("%s: image %q: give the repository without tag or digest; the release version is the tag", f.Path, f.Image)
	}
	if len(f.Environments) == 0 {
		add("%s: environments: at least one is required (e.g. certification, production)", f.Path)
	}
	for name, e := range f.Environments {
		if e.DiracCfg == "" || !strings.HasPrefix(e.DiracCfg, "/") {
			add("%s: environments.%s.diracCfg: an absolute host path is required, got %q", f.Path, name, e.DiracCfg)
		}
		if e.GridSecurity == "" || !strings.HasPrefix(e.GridSecurity, "/") {
			add("%s: environments.%s.gridSecurity: an absolute host path is required, got %q", f.Path, name, e.GridSecurity)
		}
		checkSettings(&errs, fmt.Sprintf("%s: environments.%s", f.Path, name), e.Settings)
	}
	checkSettings(&errs, f.Path+": defaults", f.Defaults)
	if f.Discovery != nil {
		f.Discovery.validate(f.Path, add)
	}
	if len(f.Services) == 0 {
		add("%s: services: the list is empty", f.Path)
	}
	names, ports := map[string]int{}, map[int]string{}
	for i, s := range f.Services {
		w := f.where(s, i)
		if !nameRE.MatchString(s.Name) {
			add("%s: name %q: want System/Service (letters and digits)", w, s.Name)
		} else if err := checkAppID(s.Name); err != nil {
			add("%s: name %q: %v", w, s.Name, err)
		}
		if j, dup := names[strings.ToLower(s.Name)]; dup {
			add("%s: duplicate service %q (also services[%d]); Marathon app ids are case-insensitive", w, s.Name, j)
		}
		names[strings.ToLower(s.Name)] = i
		if s.Port < 1 || s.Port > 65535 {
			add("%s: port %d: out of range 1-65535", w, s.Port)
		} else if other, dup := ports[s.Port]; dup {
			add("%s: port %d: already used by %s", w, s.Port, other)
		}
		ports[s.Port] = s.Name
		switch s.Protocol {
		case "", ProtocolDIPS, ProtocolHTTPS:
		default:
			add("%s: protocol %q: want %s (the default) or %s", w, s.Protocol, ProtocolDIPS, ProtocolHTTPS)
		}
		if s.CannotRun != "" {
			if strings.TrimSpace(s.CannotRun) != s.CannotRun || strings.ContainsAny(s.CannotRun, "\r\n") {
				add("%s: cannotRun: one line without leading or trailing space, got %q", w, s.CannotRun)
			} else if !strings.HasPrefix(s.CannotRun, CannotRunPrefix) {
				add("%s: cannotRun %q: say what is missing as %q…", w, s.CannotRun, CannotRunPrefix)
			}
		}
		checkSettings(&errs, w, s.Settings)
		for env, st := range s.Environments {
			if _, ok := f.Environments[env]; !ok {
				add("%s: environments.%s: no such environment (have %s)", w, env, strings.Join(slices.Sorted(maps.Keys(f.Environments)), ", "))
			}
			checkSettings(&errs, w+".environments."+env, st)
		}
	}
	return errors.Join(errs...)
}

func checkSettings(errs *[]error, where string, s Settings) {
	add := func(format string, a ...any) { *errs = append(*errs, fmt.Errorf(where+": "+format, a...)) }
	if s.CPUs != nil && *s.CPUs <= 0 {
		add("cpus %v: must be positive", *s.CPUs)
	}
	if s.Mem != nil && *s.Mem <= 0 {
		add("mem %v: must be positive (MB)", *s.Mem)
	}
	if s.Instances != nil && *s.Instances <= 0 {
		add("instances %d: must be positive", *s.Instances)
	}
	for k := range s.Env {
		if !envRE.MatchString(k) {
			add("env %q: not a valid variable name", k)
		}
	}
	seen := map[string]bool{}
	for _, c := range s.Constraints {
		if err := CheckConstraint(c); err != nil {
			add("constraint %q: %v", c, err)
		}
		// Marathon keeps constraints as a set: a duplicate would vanish
		// there and make every plan of the app an update.
		key := strings.Join(c, "\x00")
		if seen[key] {
			add("constraint %q is given twice", c)
		}
		seen[key] = true
	}
	if h := s.HealthCheck; h != nil {
		for name, v := range map[string]*int{"gracePeriodSeconds": h.GracePeriodSeconds, "intervalSeconds": h.IntervalSeconds, "timeoutSeconds": h.TimeoutSeconds, "maxConsecutiveFailures": h.MaxConsecutiveFailures} {
			if v != nil && *v < 0 {
				add("healthCheck.%s %d: must not be negative", name, *v)
			}
		}
		if h.IntervalSeconds != nil && h.TimeoutSeconds != nil && *h.TimeoutSeconds > *h.IntervalSeconds {
			add("healthCheck.timeoutSeconds %d exceeds intervalSeconds %d", *h.TimeoutSeconds, *h.IntervalSeconds)
		}
	}
}

var envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CannotRunPrefix starts every cannotRun reason.
const CannotRunPrefix = "cannot run here: "

// protocol is the service's protocol, ProtocolDIPS when not given.
func (s Service) protocol() string {
	if s.Protocol == "" {
		return ProtocolDIPS
	}
	return s.Protocol
}

// EnvironmentNames lists the environments, sorted.
func (f *File) EnvironmentNames() []string { return slices.Sorted(maps.Keys(f.Environments)) }

// Find returns a service by name.
func (f *File) Find(name string) (Service, bool) {
	for _, s := range f.Services {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return Service{}, false
}

// Resolve computes every service's settings in one environment.
func (f *File) Resolve(env string) ([]Resolved, error) {
	e, ok := f.Environments[env]
	if !ok {
		return nil, fmt.Errorf("%s: no environment %q (have %s)", f.Path, env, strings.Join(f.EnvironmentNames(), ", "))
	}
	out := make([]Resolved, 0, len(f.Services))
	for _, s := range f.Services {
		st := merge(merge(merge(seedDefaults(), f.Defaults), e.Settings), s.Settings)
		if o, ok := s.Environments[env]; ok {
			st = merge(st, o)
		}
		sys, svc, _ := strings.Cut(s.Name, "/")
		r := Resolved{
			System: sys, Service: svc, Name: s.Name, Port: s.Port, Protocol: s.protocol(), CannotRun: s.CannotRun,
			CPUs: *st.CPUs, Mem: *st.Mem, Instances: *st.Instances,
			Env: st.Env, Labels: st.Labels, Constraints: st.Constraints,
			DiracCfg: e.DiracCfg, GridSecurity: e.GridSecurity, SystemLabel: e.System,
			Image: f.Image, PingerURL: f.PingerURL, Canary: s.Canary,
		}
		if st.HealthCheck != nil {
			r.HealthCheck = *st.HealthCheck
		}
		out = append(out, r)
	}
	return out, nil
}

// seedDefaults are generate-marathon-config's defaults and the template's
// constraint and health-check timing.
func seedDefaults() Settings {
	cpus, mem, inst := 0.1, 200.0, 1
	g, i, t, m := 300, 60, 20, 3
	return Settings{CPUs: &cpus, Mem: &mem, Instances: &inst,
		Constraints: [][]string{{"hostname", "UNIQUE"}},
		HealthCheck: &HealthCheck{GracePeriodSeconds: &g, IntervalSeconds: &i, TimeoutSeconds: &t, MaxConsecutiveFailures: &m}}
}

// merge lays over on top of base: set values win, maps merge key by key.
func merge(base, over Settings) Settings {
	out := Settings{
		CPUs:        pick(base.CPUs, over.CPUs),
		Mem:         pick(base.Mem, over.Mem),
		Instances:   pick(base.Instances, over.Instances),
		Constraints: base.Constraints,
		Env:         mergeMap(base.Env, over.Env),
		Labels:      mergeMap(base.Labels, over.Labels),
		HealthCheck: base.HealthCheck,
	}
	if over.Constraints != nil {
		out.Constraints = over.Constraints
	}
	if o := over.HealthCheck; o != nil {
		var b HealthCheck
		if base.HealthCheck != nil {
			b = *base.HealthCheck
		}
		out.HealthCheck = &HealthCheck{
			GracePeriodSeconds:     pick(b.GracePeriodSeconds, o.GracePeriodSeconds),
			IntervalSeconds:        pick(b.IntervalSeconds, o.IntervalSeconds),
			TimeoutSeconds:         pick(b.TimeoutSeconds, o.TimeoutSeconds),
			MaxConsecutiveFailures: pick(b.MaxConsecutiveFailures, o.MaxConsecutiveFailures),
		}
	}
	return out
}

// pick returns over when it is set, else base.
func pick[T any](base, over *T) *T {
	if over != nil {
		return over
	}
	return base
}

func mergeMap(a, b map[string]string) map[string]string {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
