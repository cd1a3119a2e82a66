package progress

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestStepsAreTimedAndSummarised(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf)
	clock := time.Unix(0, 0)
	r.now = func() time.Time { return clock }

	s := r.Start("build %s", "cli")
	clock = clock.Add(90 * time.Second)
	s.Done()
	c := r.Start("image")
	clock = clock.Add(2 * time.Second)
	c.Cached()
	f := r.Start("container")
	wantErr := errors.New("boom")
	if got := f.Fail(wantErr); got != wantErr {
		t.Fatalf("Fail returned %v, want the error it was given", got)
	}
	r.Summary("engine")

	out := buf.String()
	for _, want := range []string{
		"==> build cli ...", "✓ build cli (1m30s)", "✓ image (cached, 2s)",
		"✗ container failed after 0s", "FAILED", "total",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	steps := r.Steps()
	if len(steps) != 3 || steps[0].Duration != 90*time.Second || !steps[1].Cached || steps[2].Err == nil {
		t.Fatalf("steps recorded wrongly: %+v", steps)
	}
}

// TestTotalIsWallClock: steps overlap (a stage holds its builds, builds run
// concurrently); the closing total is the time since the run began, not
// the sum of the steps.
func TestTotalIsWallClock(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(0, 0)
	r := newAt(&buf, func() time.Time { return clock })
	stage := r.Start("build")
	a, b := r.Start("build lhcbdirac"), r.Start("build pinger")
	clock = clock.Add(10 * time.Second)
	a.Done()
	b.Done()
	stage.Done()
	clock = clock.Add(500 * time.Millisecond) // after the last step: still the run
	r.Summary("release")
	last := strings.TrimSpace(buf.String()[strings.LastIndex(buf.String(), "total"):])
	if !strings.HasSuffix(last, " 10.5s") {
		t.Fatalf("total line %q, want the wall-clock 10.5s (the steps sum to 30s)", last)
	}
}

// TestASkipIsShownAsSkipped: a step with nothing to do says so, with its
// reason, and is never shown as cached (a dry run's deploy once printed
// "deploy  cached  0s").
func TestASkipIsShownAsSkipped(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(0, 0)
	r := newAt(&buf, func() time.Time { return clock })
	r.Start("deploy").Skip("dry run: set MARATHON_URL to deploy")
	r.Summary("release")
	out := buf.String()
	if !strings.Contains(out, "- deploy skipped: dry run: set MARATHON_URL to deploy") {
		t.Errorf("no skip line:\n%s", out)
	}
	if strings.Contains(out, "cached") || !regexpMatch(`deploy +skipped`, out) {
		t.Errorf("summary does not show the skip as skipped:\n%s", out)
	}
	st := r.Steps()[0]
	if st.State() != "skipped" || st.Skipped == "" || st.Cached || !st.Start.Equal(clock) {
		t.Errorf("step %+v", st)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
