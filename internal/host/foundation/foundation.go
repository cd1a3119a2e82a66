// Package foundation is what every stage and integration test stands on: a
// connection to the Dagger engine and the address of the registry, both
// provisioned on demand.
package foundation

import (
	"context"
	"io"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// Foundation is an engine connection and the registry address.
type Foundation struct {
	Client   *dagger.Client
	Registry string
}

// Close disconnects from the engine.
func (f *Foundation) Close() error {
	if f.Client == nil {
		return nil
	}
	return f.Client.Close()
}

// Connect provisions the engine and the registry and connects. Dagger's own
// log goes to daggerLog when not nil.
func Connect(ctx context.Context, p *progress.Reporter, daggerLog io.Writer) (*Foundation, error) {
	addr, err := registry.Up(ctx, p)
	if err != nil {
		return nil, err
	}
	var opts []dagger.ClientOpt
	if daggerLog != nil {
		opts = append(opts, dagger.WithLogOutput(daggerLog))
	}
	c, err := engine.Connect(ctx, p, opts...)
	if err != nil {
		return nil, err
	}
	return &Foundation{Client: c, Registry: addr}, nil
}
