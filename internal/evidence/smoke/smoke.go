// Package smoke is the pipeline's own attestation predicate: which smoke
// checks each service passed, run exactly as Marathon would run it from
// its rendered app (named by the app JSON's sha256), and when.
//
// The result is derived, never given: a service passes when it has checks
// and every one passed; the attestation passes when it has services and
// every one passed.
package smoke

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// PredicateType is the smoke predicate's type (a URI of this project's; it
// names no registry).
const PredicateType = "https://github.com/lhcbdirac/lhcbdirac-pipeline/smoke/v1"

// Results.
const (
	Passed = "passed"
	Failed = "failed"
)

// Check kinds the pipeline runs.
const (
	CheckCommandHealth = "command-health" // the app's COMMAND health check, as Marathon runs it
	CheckDIPSPing      = "dips-ping"      // a DIPS ping (DIRAC's TLS + X.509 RPC) through the pinger
	CheckHTTPSPing     = "https-ping"     // a Tornado service's HTTPS ping (POST method=ping) through the pinger
	CheckHTTPHealth    = "http-health"
)

// Check is one check of one service.
type Check struct {
	Kind   string    `json:"kind"`
	Passed bool      `json:"passed"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"` // what failed, short; never a credential
}

// App names the rendered Marathon app the service ran from.
type App struct {
	ID     string `json:"id"`     // Marathon app id
	SHA256 string `json:"sha256"` // of the rendered app JSON
	// Run is the sha256 of the app as the task runs it: the same JSON with
	// its image named by digest alone. A tag beside a digest is not what
	// Docker runs, so a later release whose apps differ from these only in
	// that tag (another version, the same image) ran this very test.
	Run string `json:"run,omitempty"`
}

// Service is one service's checks.
type Service struct {
	Name   string  `json:"name"` // System/Service
	App    App     `json:"app"`
	Checks []Check `json:"checks"`
	Result string  `json:"result"`
}

// Predicate is the attestation's predicate.
type Predicate struct {
	Result     string    `json:"result"`
	Pipeline   string    `json:"pipeline,omitempty"` // the pipeline commit that ran the tests
	StartedOn  time.Time `json:"startedOn"`
	FinishedOn time.Time `json:"finishedOn"`
	Services   []Service `json:"services"`
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// New makes a predicate from the services' checks, deriving every result.
func New(pipelineCommit string, started, finished time.Time, services []Service) (*Predicate, error) {
	p := &Predicate{Pipeline: pipelineCommit, StartedOn: started.UTC(), FinishedOn: finished.UTC(), Services: services}
	for i := range p.Services {
		p.Services[i].Result = serviceResult(p.Services[i])
	}
	p.Result = overall(p.Services)
	return p, p.Validate()
}

func serviceResult(s Service) string {
	if len(s.Checks) == 0 {
		return Failed
	}
	for _, c := range s.Checks {
		if !c.Passed {
			return Failed
		}
	}
	return Passed
}

func overall(ss []Service) string {
	if len(ss) == 0 {
		return Failed
	}
	for _, s := range ss {
		if s.Result != Passed {
			return Failed
		}
	}
	return Passed
}

// Validate checks the predicate is well formed and its results agree with
// its checks (a "passed" over a failed check is refused, not believed).
func (p *Predicate) Validate() error {
	if p.StartedOn.IsZero() || p.FinishedOn.Before(p.StartedOn) {
		return fmt.Errorf("smoke: times %s .. %s are not a test run's", p.StartedOn.Format(time.RFC3339), p.FinishedOn.Format(time.RFC3339))
	}
	if len(p.Services) == 0 {
		return errors.New("smoke: no service")
	}
	seen := map[string]bool{}
	for _, s := range p.Services {
		if s.Name == "" {
			return errors.New("smoke: a service without a name")
		}
		if seen[s.Name] {
			return fmt.Errorf("smoke: service %s listed twice", s.Name)
		}
		seen[s.Name] = true
		if !hex64.MatchString(s.App.SHA256) {
			return fmt.Errorf("smoke: service %s: app sha256 %q is not 64 hex digits", s.Name, s.App.SHA256)
		}
		if s.App.Run != "" && !hex64.MatchString(s.App.Run) {
			return fmt.Errorf("smoke: service %s: app run %q is not 64 hex digits", s.Name, s.App.Run)
		}
		for _, c := range s.Checks {
			if c.Kind == "" || c.At.IsZero() {
				return fmt.Errorf("smoke: service %s: a check needs a kind and a time", s.Name)
			}
		}
		if want := serviceResult(s); s.Result != want {
			return fmt.Errorf("smoke: service %s says %q but its checks say %q", s.Name, s.Result, want)
		}
	}
	if want := overall(p.Services); p.Result != want {
		return fmt.Errorf("smoke: result %q but its services say %q", p.Result, want)
	}
	return nil
}

// Failures names the services that did not pass and their failed checks.
func (p *Predicate) Failures() []string {
	var out []string
	for _, s := range p.Services {
		if s.Result == Passed {
			continue
		}
		if len(s.Checks) == 0 {
			out = append(out, s.Name+": no check ran")
		}
		for _, c := range s.Checks {
			if !c.Passed {
				out = append(out, s.Name+": "+c.Kind+" failed")
			}
		}
	}
	return out
}

// Service returns the named service's entry.
func (p *Predicate) Service(name string) (Service, bool) {
	for _, s := range p.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Parse reads and validates a predicate.
func Parse(b []byte) (*Predicate, error) {
	var p Predicate
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("smoke: %w", err)
	}
	return &p, p.Validate()
}

// Marshal writes the predicate as JSON.
func (p *Predicate) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(p)
}
