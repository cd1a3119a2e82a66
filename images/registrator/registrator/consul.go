package registrator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	consul "github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

// Meta keys on every service instance the registrator registers: it
// touches no other.
const (
	metaOwner   = "registered_by"
	ownerValue  = "lhcbdirac-registrator"
	metaApp     = "marathon_app"
	metaTask    = "marathon_task"
	metaVersion = "marathon_version"
	metaCheck   = "check"
)

// consulSink registers one service instance per task with the Consul
// agent (the agent runs the HTTP check the app's labels describe) and
// deregisters it when the task goes.
type consulSink struct {
	agent *consul.Agent
}

func newConsulSink(addr, token string) (*consulSink, error) {
	cfg := consul.DefaultConfig()
	cfg.Address = addr
	cfg.Token = token
	c, err := consul.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul %s: %w", addr, err)
	}
	return &consulSink{agent: c.Agent()}, nil
}

func (s *consulSink) Name() string { return "consul" }

// ServiceName is the Consul service of an app: its id's path joined by
// "-" ("/datamanagement/filecatalog" → "datamanagement-filecatalog"),
// a valid DNS label as Consul's DNS interface wants.
func ServiceName(appID string) string {
	return strings.ReplaceAll(strings.Trim(appID, "/"), "/", "-")
}

// Apply makes the registrator's service instances of the apps in scope
// (every app when all) exactly want. A registration the agent refuses
// (400: a meta value over its limit, a check it cannot run) is a Refusal,
// and the rest is written.
func (s *consulSink) Apply(ctx context.Context, scope []string, all bool, want []Want) ([]Refusal, error) {
	have, err := s.agent.ServicesWithFilterOpts(fmt.Sprintf("Meta.%s == %q", metaOwner, ownerValue), (&consul.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("consul: listing services: %w", err)
	}
	inScope := map[string]bool{}
	for _, a := range scope {
		inScope[a] = true
	}
	wanted := map[string]Want{}
	for _, w := range want {
		if w.Refused != "" || w.CheckErr != "" {
			// Registered without its check, Consul would call the task
			// healthy: left out (and counted) until the labels are fixed.
			continue
		}
		wanted[w.Task] = w
	}
	deregister := func(id string) error {
		err := s.agent.ServiceDeregisterOpts(id, (&consul.QueryOptions{}).WithContext(ctx))
		var se consul.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil // gone already
		}
		if err != nil {
			return fmt.Errorf("consul: deregistering %s: %w", id, err)
		}
		return nil
	}
	// Registrations and deregistrations are independent calls to the
	// agent: a few at a time.
	var calls []func() (*Refusal, error)
	for id, svc := range have {
		if !all && !inScope[svc.Meta[metaApp]] {
			continue
		}
		if w, ok := wanted[id]; ok && same(svc, w) {
			delete(wanted, id)
			continue
		}
		if _, ok := wanted[id]; ok {
			continue // re-registered below
		}
		calls = append(calls, func() (*Refusal, error) { return nil, deregister(id) })
	}
	for _, w := range wanted {
		reg := registration(w)
		_, registered := have[w.Task]
		calls = append(calls, func() (*Refusal, error) {
			err := s.agent.ServiceRegisterOpts(reg, consul.ServiceRegisterOpts{}.WithContext(ctx))
			var se consul.StatusError
			if errors.As(err, &se) && se.Code == http.StatusBadRequest {
				// This one task: its older instance (now wrong) goes too.
				if registered {
					if err := deregister(w.Task); err != nil {
						return nil, err
					}
				}
				return &Refusal{Sink: s.Name(), App: w.App, Task: w.Task, Reason: ReasonRefused, Detail: "Consul answered 400: " + shorten(se.Body, 300)}, nil
			}
			if err != nil {
				return nil, fmt.Errorf("consul: registering %s (app %s): %w", w.Task, w.App, err)
			}
			return nil, nil
		})
	}
	return parallel(consulCalls, calls)
}

// consulCalls bounds the calls to the agent in flight.
const consulCalls = 8

// parallel runs calls, at most n at once, and gathers their refusals and
// joins their errors.
func parallel(n int, calls []func() (*Refusal, error)) ([]Refusal, error) {
	sem := make(chan struct{}, n)
	errs := make([]error, len(calls))
	refused := make([]*Refusal, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			refused[i], errs[i] = call()
		}()
	}
	wg.Wait()
	var out []Refusal
	for _, r := range refused {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, errors.Join(errs...)
}

// registration is a task's service instance.
func registration(w Want) *consul.AgentServiceRegistration {
	reg := &consul.AgentServiceRegistration{
		ID:      w.Task,
		Name:    ServiceName(w.App),
		Address: w.Host,
		Tags:    []string{"marathon"},
		Meta: map[string]string{
			metaOwner: ownerValue, metaApp: w.App, metaTask: w.Task, metaVersion: w.Version, metaCheck: w.CheckHTTP + " " + w.CheckInterval,
		},
	}
	if w.Component != "" {
		reg.Tags = append(reg.Tags, "dirac")
		reg.Meta["dirac_component"] = w.Component
	}
	if len(w.Ports) > 0 {
		reg.Port = w.Ports[0].Host
	}
	if w.CheckHTTP != "" {
		reg.Check = &consul.AgentServiceCheck{Name: "pinger", HTTP: w.CheckHTTP, Interval: w.CheckInterval, Timeout: w.CheckTimeout}
	}
	return reg
}

// same tells a registered instance that needs no new registration (which
// would reset its check).
func same(svc *consul.AgentService, w Want) bool {
	port := 0
	if len(w.Ports) > 0 {
		port = w.Ports[0].Host
	}
	return svc.Address == w.Host && svc.Port == port && svc.Service == ServiceName(w.App) &&
		svc.Meta[metaVersion] == w.Version && svc.Meta[metaCheck] == w.CheckHTTP+" "+w.CheckInterval &&
		svc.Meta["dirac_component"] == w.Component
}

func quietZap() *zap.Logger { return zap.NewNop() }
