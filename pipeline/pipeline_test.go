package pipeline

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

type skipped struct{ why string }

func (s *skipped) SkipReason() string {
	if s == nil {
		return ""
	}
	return s.why
}

// TestStagesRecordOutcomesSkipIsNotFailure: a stage's typed result says
// whether it was skipped and why; a skip is shown as skipped (never as
// cached, never as a failure); a failure is recorded with its stage's name.
func TestStagesRecordOutcomesSkipIsNotFailure(t *testing.T) {
	var out bytes.Buffer
	r := &Release{S: &Session{P: progress.New(&out)}}
	if _, err := stage(r, "build", func() (*skipped, error) { return &skipped{}, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := stage(r, "deploy", func() (*skipped, error) { return &skipped{"dry run: set MARATHON_URL to deploy"}, nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err := stage(r, "smoke", func() (*skipped, error) { return nil, boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "smoke: boom") {
		t.Fatalf("err %v", err)
	}
	var got []string
	for _, s := range r.Stages {
		got = append(got, s.Name+"="+string(s.Outcome)+":"+s.Reason)
	}
	if strings.Join(got, ",") != "build=passed:,deploy=skipped:dry run: set MARATHON_URL to deploy,smoke=failed:" {
		t.Fatalf("stages %v", got)
	}
	if !strings.Contains(out.String(), "- deploy skipped: dry run: set MARATHON_URL to deploy") || strings.Contains(out.String(), "cached") {
		t.Fatalf("a skip is shown as skipped with its reason:\n%s", out.String())
	}
	r.Stages[1].Outcome = Skipped
	if d := r.DeployLine(); d != "not deployed: dry run: set MARATHON_URL to deploy" {
		t.Fatalf("deploy line %q", d)
	}
}
