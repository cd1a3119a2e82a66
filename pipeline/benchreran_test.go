package pipeline

import (
	"slices"
	"testing"
	"time"
)

// The benchmark's "reran" are the steps that did work, with their times,
// whatever parenthesis their names carry; cached steps and the stages are
// left out.
func TestReranReadsTheStepsThatDidWork(t *testing.T) {
	log := "==> build lhcbdirac ...\n" +
		"  ✓ build lhcbdirac (2.1s)\n" +
		"  ✓ build pinger (cached, 12ms)\n" +
		"  ✓ export lhcbdirac (its digest) (7.4s)\n" +
		"  ✓ export pinger (its digest) (cached, 403ms)\n" +
		"  ✓ smoke mesos-slave (5 ENVIRONMENT presets, watchdog) (1m2.5s)\n" +
		"  ✓ attest lhcbdirac (SBOM, provenance, smoke; signed) (858ms)\n" +
		"  ✓ export (7.5s)\n"
	got := reran(log)
	want := []string{"build lhcbdirac 2.1s", "export lhcbdirac (its digest) 7.4s",
		"smoke mesos-slave (5 ENVIRONMENT presets, watchdog) 1m2.5s", "attest lhcbdirac (SBOM, provenance, smoke; signed) 858ms"}
	if !slices.Equal(got, want) {
		t.Fatalf("reran = %q\nwant %q", got, want)
	}
	c := Change{Reran: got}
	if d := stepTime(c, "export lhcbdirac"); d != 7400*time.Millisecond {
		t.Errorf("export lhcbdirac took %s, want 7.4s", d)
	}
}
