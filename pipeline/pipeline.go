// Package pipeline is the release of the LHCbDIRAC service images, read top
// to bottom as its stages run (one file each):
//
//	inputs  (inputs.go)  the version, the services file, the sources (a
//	                     hotfix's git commits, the FIXTURE repositories), the
//	                     bases pinned by digest: everything that can be wrong
//	                     is checked before anything is built
//	build   (build.go)   the images of images/<name>/ — lhcbdirac, pinger,
//	                     mesos-slave, registrator — built concurrently in the
//	                     Dagger engine
//	smoke   (smoke.go)   every service run as Marathon would run it from its
//	                     rendered app: its COMMAND health check, then a DIPS
//	                     ping through the pinger; the mesos-slave image under
//	                     each ENVIRONMENT preset; the registrator, from its
//	                     rendered app, against a STAND-IN Marathon and etcd
//	push    (push.go)    every image by digest, then the tags moved
//	render  (render.go)  the Marathon app definitions into dist/<version>/
//	deploy  (deploy.go)  to Marathon, health-gated with rollback, or a dry run
//
// A stage with nothing to do returns a typed skip (Skip), reported as
// such and never mistaken for a failure; the first failure stops the
// release, and the summary (summary.go) says how far each image got.
// config.go reads the release's configuration from the environment;
// bench.go measures the whole.
package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
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
