// Package pipeline is the release as one ordered list of stages. Until the
// image, smoke, push, render and deploy stages exist, it holds the foundation
// every stage stands on: a Dagger engine, the registry, and a check that both
// work (the main job for now).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/registry"
)

// Stage is one step of the release.
type Stage interface {
	fmt.Stringer
	Run(ctx context.Context) error
}

// ErrSkip is returned (wrapped in a SkipError) by a stage that has nothing to
// do; it is reported as skipped, never as a failure.
var ErrSkip = errors.New("skipped")

// SkipError says why a stage was skipped.
type SkipError struct{ Reason string }

func (e SkipError) Error() string        { return "skipped: " + e.Reason }
func (e SkipError) Is(target error) bool { return target == ErrSkip }

// Skip returns a SkipError.
func Skip(reason string) error { return SkipError{Reason: reason} }

// Run runs the stages in order and stops at the first failure; skipped
// stages are reported and passed over.
func Run(ctx context.Context, p *progress.Reporter, stages ...Stage) error {
	for _, s := range stages {
		step := p.Start("%s", s)
		err := s.Run(ctx)
		switch {
		case errors.Is(err, ErrSkip):
			p.Infof("%s: %v", s, err)
			step.Cached()
		case err != nil:
			return step.Fail(fmt.Errorf("%s: %w", s, err))
		default:
			step.Done()
		}
	}
	return nil
}

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

// EngineSmoke is the main job until the release exists: it proves the engine
// and the registry work, end to end.
func EngineSmoke(ctx context.Context, p *progress.Reporter, daggerLog io.Writer) (enginecheck.Result, error) {
	f, err := Connect(ctx, p, daggerLog)
	if err != nil {
		return enginecheck.Result{}, err
	}
	defer f.Close()
	base, err := baseimage.Build(ctx, p, enginecheck.BaseSpec, enginecheck.BaseRef(f.Registry))
	if err != nil {
		return enginecheck.Result{}, err
	}
	return enginecheck.Run(ctx, f.Client, p, f.Registry, base)
}
