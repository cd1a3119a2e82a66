// Package progress prints what a long-running target is doing, one step at a
// time, with the time each step took. Cold engine provisioning takes minutes;
// a user staring at a silent terminal cannot tell progress from a hang.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Reporter writes step lines to an output and remembers each step's duration
// so that a summary can be printed (and asserted on by tests).
type Reporter struct {
	mu    sync.Mutex
	out   io.Writer
	now   func() time.Time
	began time.Time // when the reporter was made: the run's start
	steps []Step
}

// Step is one finished unit of work: done, found already there (cached),
// not needed (skipped, with its reason) or failed.
type Step struct {
	Name     string
	Start    time.Time
	Duration time.Duration
	Cached   bool
	// Skipped is why the step had nothing to do ("" when it ran): a skip
	// is a state of its own, shown as "skipped", never as cached or done.
	Skipped string
	Err     error
}

// State is the step's outcome in one word: done, cached, skipped or FAILED.
func (s Step) State() string {
	switch {
	case s.Err != nil:
		return "FAILED"
	case s.Skipped != "":
		return "skipped"
	case s.Cached:
		return "cached"
	}
	return "done"
}

// End is when the step finished.
func (s Step) End() time.Time { return s.Start.Add(s.Duration) }

// Began is when the reporter was made: the run's start.
func (r *Reporter) Began() time.Time { return r.began }

// New returns a reporter writing to out; nil means standard error, so that a
// target's real output on standard output (a digest, a table) stays clean.
func New(out io.Writer) *Reporter {
	if out == nil {
		out = os.Stderr
	}
	return newAt(out, time.Now)
}

func newAt(out io.Writer, now func() time.Time) *Reporter {
	return &Reporter{out: out, now: now, began: now()}
}

// Discard is a reporter that prints nothing; useful for quiet callers.
func Discard() *Reporter { return New(io.Discard) }

// Running is a step under way.
type Running struct {
	r     *Reporter
	name  string
	start time.Time
}

// Start announces a step.
func (r *Reporter) Start(format string, args ...any) *Running {
	name := fmt.Sprintf(format, args...)
	r.mu.Lock()
	fmt.Fprintf(r.out, "==> %s ...\n", name)
	r.mu.Unlock()
	return &Running{r: r, name: name, start: r.now()}
}

// Infof prints a detail line under the current step.
func (r *Reporter) Infof(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, "    %s\n", fmt.Sprintf(format, args...))
}

// Done finishes a step that did real work.
func (s *Running) Done() { s.finish(Step{}) }

// Cached finishes a step that found its result already there.
func (s *Running) Cached() { s.finish(Step{Cached: true}) }

// Skip finishes a step that had nothing to do, saying why.
func (s *Running) Skip(reason string) {
	if reason == "" {
		reason = "nothing to do"
	}
	s.finish(Step{Skipped: reason})
}

// Fail finishes a step with an error and returns the error unchanged so the
// caller can write `return step.Fail(err)`.
func (s *Running) Fail(err error) error {
	s.finish(Step{Err: err})
	return err
}

// End finishes a step according to err: a convenience for deferred calls.
func (s *Running) End(err error) error {
	if err != nil {
		return s.Fail(err)
	}
	s.Done()
	return nil
}

func (s *Running) finish(st Step) {
	d := s.r.now().Sub(s.start)
	st.Name, st.Start, st.Duration = s.name, s.start, d
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.steps = append(s.r.steps, st)
	switch {
	case st.Err != nil:
		fmt.Fprintf(s.r.out, "  ✗ %s failed after %s\n", s.name, round(d))
	case st.Skipped != "":
		fmt.Fprintf(s.r.out, "  - %s skipped: %s\n", s.name, st.Skipped)
	case st.Cached:
		fmt.Fprintf(s.r.out, "  ✓ %s (cached, %s)\n", s.name, round(d))
	default:
		fmt.Fprintf(s.r.out, "  ✓ %s (%s)\n", s.name, round(d))
	}
}

// Steps returns the finished steps in the order they finished.
func (r *Reporter) Steps() []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Step(nil), r.steps...)
}

// Summary prints every finished step with its time, then the total: the
// wall-clock time since the reporter was made. Steps overlap (a stage holds
// its images' builds, builds run concurrently), so their sum means nothing.
func (r *Reporter) Summary(title string) {
	steps := r.Steps()
	total := r.now().Sub(r.began)
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, "%s:\n", title)
	for _, s := range steps {
		fmt.Fprintf(r.out, "  %-55s %-7s %10s\n", s.Name, s.State(), round(s.Duration))
	}
	fmt.Fprintf(r.out, "  %-55s %-7s %10s\n", "total", "", round(total))
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
