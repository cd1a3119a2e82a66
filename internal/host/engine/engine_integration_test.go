//go:build integration

package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

// TestIntegrationEngineUpIsIdempotent: a second Up with nothing changed keeps
// the same container and does no work.
func TestIntegrationEngineUpIsIdempotent(t *testing.T) {
	ctx := t.Context()
	engine.Configure(engine.Config{})
	first, err := engine.Up(ctx, testenv.Reporter(t))
	if err != nil {
		t.Fatalf("INTEGRATION TEST CANNOT RUN: %v", err)
	}
	if first.Mode != engine.ModeLocal {
		skipOutsideCI(t, "engine mode is "+string(first.Mode)+"; idempotence of local provisioning does not apply")
	}
	id1, err := dockercli.Inspect(ctx, "container", first.Container, "{{.Id}}")
	if err != nil {
		t.Fatal(err)
	}
	p := progress.Discard()
	second, err := engine.Up(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := dockercli.Inspect(ctx, "container", second.Container, "{{.Id}}")
	if id1 != id2 {
		t.Fatalf("second Up replaced the container: %s -> %s", id1, id2)
	}
	for _, s := range p.Steps() {
		if !s.Cached {
			t.Errorf("second Up did work in step %q", s.Name)
		}
	}
	status, err := engine.Status(ctx)
	if err != nil || !strings.Contains(status, "running") {
		t.Fatalf("status %q, %v: want running", status, err)
	}
}

// TestIntegrationEngineExitShowsItsLogs: when an engine container dies, the
// error carries its last log lines.
func TestIntegrationEngineExitShowsItsLogs(t *testing.T) {
	ctx := t.Context()
	engine.Configure(engine.Config{})
	ep, err := engine.Up(ctx, testenv.Reporter(t))
	if err != nil {
		t.Fatalf("INTEGRATION TEST CANNOT RUN: %v", err)
	}
	if ep.Image == "" {
		skipOutsideCI(t, "no local engine image in this mode")
	}
	name := "lhcbdirac-engine-exit-test"
	_ = dockercli.RemoveContainer(ctx, name)
	t.Cleanup(func() { _ = dockercli.RemoveContainer(context.Background(), name) })
	if _, err := dockercli.Run(ctx, "run", "-d", "--name", name, "--entrypoint", "sh", ep.Image,
		"-c", "echo engine-failure-marker >&2; exit 3"); err != nil {
		t.Fatal(err)
	}
	err = engine.WaitReady(ctx, name, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "engine-failure-marker") || !strings.Contains(err.Error(), "code 3") {
		t.Fatalf("error should say the container exited, with its code and last log lines: %v", err)
	}
}

// skipOutsideCI skips where a developer points the pipeline at an engine of
// their own; in CI the engine is always the local one, so there it fails.
func skipOutsideCI(t *testing.T, why string) {
	if settings.Read("CI") != "" {
		t.Fatalf("in CI the engine must be the local one: %s", why)
	}
	t.Skip(why)
}

// BenchmarkEngineUpWarm measures `engine:up` when everything is in place
// (target: ≤ 5 s).
func BenchmarkEngineUpWarm(b *testing.B) {
	ctx := context.Background()
	if _, err := engine.Up(ctx, progress.Discard()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := engine.Up(ctx, progress.Discard()); err != nil {
			b.Fatal(err)
		}
	}
}
