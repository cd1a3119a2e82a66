package lint

import (
	"path/filepath"
	"strings"
	"testing"
)

func load(t *testing.T) []Package {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := Load(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 40 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

// TestImportsFlowOneWay checks the tree as it is.
func TestImportsFlowOneWay(t *testing.T) {
	if bad := Layers(load(t)); len(bad) > 0 {
		t.Fatalf("imports that run back up or sideways:\n  %s", strings.Join(bad, "\n  "))
	}
}

// TestOnlyTheBoundaryReadsTheEnvironment checks the tree as it is.
func TestOnlyTheBoundaryReadsTheEnvironment(t *testing.T) {
	bad, err := EnvReaders(load(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("the environment read outside internal/settings:\n  %s", strings.Join(bad, "\n  "))
	}
}

// TestTheRulesCatchWhatTheyMust: each rule refuses a made-up import of the
// kind it forbids, and allows the way down.
func TestTheRulesCatchWhatTheyMust(t *testing.T) {
	for _, tc := range []struct {
		from, imp string
		bad       bool
	}{
		{"images/mesos-slave/metrics/report", "images/mesos-slave/metrics", false},
		{"internal/metricsreport", "images/mesos-slave/metrics", true},
		{"images/registrator/registrator", "marathon/deploy", false},
		{"images/lhcbdirac", "images/pinger", true},
		{"images/lhcbdirac", "dips/dipstest", true},
		{"images/registrator/standin-marathon", "marathon/marathontest", false},
		{"marathon/marathontest", "marathon/services", true},
		{"marathon/deploy", "pipeline", true},
		{"pipeline", "images", false},
		{"images/pinger", "images", true},
		{"internal/host/engine", "internal/target/dev", true},
		{"internal/target/dev", "pipeline", false},
		{"internal/build/push", "marathon/render", true},
		{"dips", "internal/redact", true},
		{"ci", "pipeline", true},
		{"pipeline", "ci", false},
	} {
		got := forbidden(Package{Path: tc.from}, tc.imp) != ""
		if got != tc.bad {
			t.Errorf("%s → %s: forbidden %v, want %v", tc.from, tc.imp, got, tc.bad)
		}
	}
}
