package registrator

import (
	"context"
	"errors"
	"fmt"
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
	log   func(format string, args ...any)
}

func newConsulSink(addr, token string, log func(string, ...any)) (*consulSink, error) {
	cfg := consul.DefaultConfig()
	cfg.Address = addr
	cfg.Token = token
	c, err := consul.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul %s: %w", addr, err)
	}
	return &consulSink{agent: c.Agent(), log: log}, nil
}

func (s *consulSink) Name() string { return "consul" }

// ServiceName is the Consul service of an app: its id's path joined by
// "-" ("/datamanagement/filecatalog" → "datamanagement-filecatalog"),
// a valid DNS label as Consul's DNS interface wants.
func ServiceName(appID string) string {
	return strings.ReplaceAll(strings.Trim(appID, "/"), "/", "-")
}

// Apply makes the registrator's service instances of the apps in scope
// (every app when all) exactly want.
func (s *consulSink) Apply(ctx context.Context, scope []string, all bool, want []Want) error {
	have, err := s.agent.ServicesWithFilterOpts(fmt.Sprintf("Meta.%s == %q", metaOwner, ownerValue), (&consul.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("consul: listing services: %w", err)
	}
	inScope := map[string]bool{}
	for _, a := range scope {
		inScope[a] = true
	}
	wanted := map[string]Want{}
	for _, w := range want {
		if w.CheckErr != "" {
			// Registered without its check, Consul would call the task
			// healthy: leave it out until the labels are fixed.
			s.log("app %s: task %s not registered in Consul: %v", w.App, w.Task, w.CheckErr)
			continue
		}
		wanted[w.Task] = w
	}
	// Registrations and deregistrations are independent calls to the
	// agent: a few at a time.
	var calls []func() error
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
		calls = append(calls, func() error {
			if err := s.agent.ServiceDeregisterOpts(id, (&consul.QueryOptions{}).WithContext(ctx)); err != nil {
				return fmt.Errorf("consul: deregistering %s: %w", id, err)
			}
			return nil
		})
	}
	for _, w := range wanted {
		reg := registration(w)
		calls = append(calls, func() error {
			if err := s.agent.ServiceRegisterOpts(reg, consul.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
				return fmt.Errorf("consul: registering %s (app %s): %w", w.Task, w.App, err)
			}
			return nil
		})
	}
	return parallel(consulCalls, calls)
}

// consulCalls bounds the calls to the agent in flight.
const consulCalls = 8

// parallel runs calls, at most n at once, and joins their errors.
func parallel(n int, calls []func() error) error {
	sem := make(chan struct{}, n)
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = call()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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
		reg.Check = &consul.AgentServiceCheck{Name: "pinger", HTTP: w.CheckHTTP, Interval: w.CheckInterval, Timeout: "10s"}
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
