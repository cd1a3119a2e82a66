package progress

import (
	"bytes"
	"errors"
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
