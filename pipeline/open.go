package pipeline

import (
	"context"
	"io"
	"os"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostsetup"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// Session is what a run stands on: the engine connection, the registry,
// where progress and results are printed.
type Session struct {
	Client   *dagger.Client // nil when the run asked for no engine
	Registry string         // host:port[/prefix] pushed to
	P        *progress.Reporter
	Out      io.Writer // results: the plan, the summary, testService's logs
	Settings settings.Settings

	daggerLog io.Writer // where Connect sends Dagger's own log
	// engineUp is closed when the engine, provisioned in the background
	// while the inputs are checked (a first run builds it from Go
	// modules: minutes of CPU beside the inputs' downloads), is up.
	engineUp  chan struct{}
	engineErr error
}

// Connect connects to the engine, when the session has none yet (Open
// provisions it; the first stage that needs it connects: a release with
// nothing to build never does).
func (s *Session) Connect(ctx context.Context) error {
	if s.Client != nil {
		return nil
	}
	if s.engineUp != nil {
		select {
		case <-s.engineUp:
		case <-ctx.Done():
			return ctx.Err()
		}
		if s.engineErr != nil {
			return s.engineErr
		}
	}
	var opts []dagger.ClientOpt
	if s.daggerLog != nil {
		opts = append(opts, dagger.WithLogOutput(s.daggerLog))
	}
	c, err := engine.Connect(ctx, s.P, opts...)
	if err != nil {
		return err
	}
	s.Client = c
	return nil
}

// Close disconnects from the engine.
func (s *Session) Close() error {
	if s == nil || s.Client == nil {
		return nil
	}
	return s.Client.Close()
}

// Needs are what a target needs of the machine.
type Needs struct {
	Engine   bool // a Dagger engine (built and started when missing)
	Registry bool // the registry pushed to (the embedded one started)
	// Tests adds what the tests need (etcd, InfluxDB, Chromium).
	Tests bool
	// LazyEngine leaves the connection to the first stage that needs it.
	LazyEngine bool
	// ExportEngine provisions the engine without connecting and exports
	// where it is, for the processes this one starts (go test).
	ExportEngine bool
	// DaggerLog receives Dagger's own log (nil: none).
	DaggerLog io.Writer
}

// Open sets the machine up for a target, once: the host's settings are
// applied, missing Debian packages installed and dockerd started (unless
// LHCBDIRAC_NO_HOST_SETUP), then the registry and the engine as asked.
// Every target that needs any of it comes through here.
func Open(ctx context.Context, st settings.Settings, p *progress.Reporter, n Needs) (*Session, error) {
	if err := st.Need(settings.AreaHost); err != nil {
		return nil, err
	}
	if p == nil {
		p = progress.New(nil)
	}
	s := &Session{P: p, Out: os.Stdout, Settings: st}
	st.Host.Apply()
	host := hostsetup.Real(st.Host.NoSetup)
	if n.Tests {
		host = host.ForTests()
	}
	if err := host.Ensure(ctx, p); err != nil {
		return nil, err
	}
	if n.Registry || n.Engine || n.ExportEngine {
		addr, err := registry.Up(ctx, p)
		if err != nil {
			return nil, err
		}
		s.Registry = addr
	}
	if n.ExportEngine {
		ep, err := engine.Up(ctx, p)
		if err != nil {
			return nil, err
		}
		ep.Export()
	}
	s.daggerLog = n.DaggerLog
	if n.Engine && n.LazyEngine {
		s.engineUp = make(chan struct{})
		go func() {
			defer close(s.engineUp)
			_, s.engineErr = engine.Up(ctx, p)
		}()
	}
	if n.Engine && !n.LazyEngine {
		if err := s.Connect(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// RegistryAddress is the registry the release pushes to, without starting
// anything (the settings applied).
func RegistryAddress(st settings.Settings) string {
	st.Host.Apply()
	addr, _ := registry.Address()
	return addr
}
