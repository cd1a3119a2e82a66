package pipeline

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

type stage struct {
	name string
	err  error
	ran  *[]string
}

func (s stage) String() string { return s.name }
func (s stage) Run(context.Context) error {
	*s.ran = append(*s.ran, s.name)
	return s.err
}

func TestStagesRunInOrderSkipIsNotFailure(t *testing.T) {
	var ran []string
	var out bytes.Buffer
	boom := errors.New("boom")
	err := Run(context.Background(), progress.New(&out),
		stage{"build", nil, &ran},
		stage{"deploy", Skip("no Marathon URL: dry run"), &ran},
		stage{"smoke", boom, &ran},
		stage{"push", nil, &ran},
	)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "smoke: boom") {
		t.Fatalf("err %v", err)
	}
	if strings.Join(ran, ",") != "build,deploy,smoke" {
		t.Fatalf("stages after a failure must not run: %v", ran)
	}
	if !strings.Contains(out.String(), "deploy: skipped: no Marathon URL: dry run") {
		t.Fatalf("a skip is reported with its reason:\n%s", out.String())
	}
	if !errors.Is(Skip("x"), ErrSkip) || errors.Is(boom, ErrSkip) {
		t.Fatal("ErrSkip identifies skips, and only skips")
	}
}
