// Package pipeline is the release of the LHCbDIRAC service images, read top
// to bottom as its stages run (release.go lists them; one file each):
//
//	inputs  (inputs.go)  the version, the services file, the sources (a
//	                     hotfix's git commits, the FIXTURE repositories), the
//	                     lock, the bases pinned by digest: everything that can
//	                     be wrong is checked before anything is built
//	build   (build.go)   the images of images/ — lhcbdirac, pinger,
//	                     mesos-slave, registrator — built concurrently in the
//	                     Dagger engine
//	smoke   (smoke.go)   every image's smoke test: each service run as
//	                     Marathon would run it from its rendered app (COMMAND
//	                     health check, DIPS ping through the pinger); the
//	                     mesos-slave image under each ENVIRONMENT preset; the
//	                     registrator against a STAND-IN Marathon and etcd
//	push    (push.go)    every image by digest, then the tags moved
//	render  (render.go)  the Marathon app definitions into dist/<version>/
//	deploy  (deploy.go)  to Marathon, health-gated with rollback, or a dry run
//
// Each stage is a function from the previous stage's typed result to its
// own; none reads or writes anything else. A stage with nothing to do
// returns a result that says why (Skipper), shown as skipped — never as a
// failure, never as cached. The first failure stops the release; the
// summary (summary.go) says how far each image got. open.go sets the
// machine up, config.go makes a release's configuration from the settings,
// bench.go measures the whole.
package pipeline

import (
	"fmt"
	"time"
)

// Outcome is how a stage ended.
type Outcome string

const (
	Passed     Outcome = "passed"
	Skipped    Outcome = "skipped"
	Failed     Outcome = "failed"
	NotReached Outcome = "not reached"
)

// StageResult is one stage of a run.
type StageResult struct {
	Name    string
	Outcome Outcome
	Reason  string // why it was skipped
	Err     error
	Start   time.Time
	Took    time.Duration
}

// Skipper is a stage result that may say the stage had nothing to do.
type Skipper interface {
	// SkipReason is why the stage did nothing ("" when it did its work).
	SkipReason() string
}

// stage runs one stage, reports it and records it in r.
func stage[T any](r *Release, name string, run func() (T, error)) (T, error) {
	step := r.S.P.Start("%s", name)
	res := StageResult{Name: name, Start: time.Now()}
	out, err := run()
	res.Took = time.Since(res.Start)
	switch {
	case err != nil:
		err = fmt.Errorf("%s: %w", name, err)
		res.Outcome, res.Err = Failed, err
		step.Fail(err)
	case skipReason(out) != "":
		res.Outcome, res.Reason = Skipped, skipReason(out)
		step.Skip(res.Reason)
	default:
		res.Outcome = Passed
		step.Done()
	}
	r.Stages = append(r.Stages, res)
	return out, err
}

func skipReason(v any) string {
	if s, ok := v.(Skipper); ok && s != nil {
		return s.SkipReason()
	}
	return ""
}
