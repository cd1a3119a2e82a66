package pipeline

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// The first release on a fresh machine, measured without a new machine:
// every cache of the project's own new — the pipeline cache (the engine's
// binaries and image, the bases, the tools, the locks), an engine of its
// own (its state, Dagger's cache, empty), a registry of its own, Go's
// build cache for the host's builds — the Go module cache aside (Go's
// own, shared by every Go program, and what a newcomer's `go run
// mage.go` fills before anything of the project runs).

// FreshFigures are the first release's times.
type FreshFigures struct {
	Total  time.Duration
	Stages []StageResult
	Setup  time.Duration // the host, the registry, the engine: before the inputs
	Steps  []progress.Step
}

// BenchFresh releases v from nothing cached, then removes what it made.
func BenchFresh(ctx context.Context, st settings.Settings, v version.Version, out io.Writer) (FreshFigures, error) {
	var fig FreshFigures
	root, err := os.MkdirTemp("", "lhcbdirac-fresh-")
	if err != nil {
		return fig, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fig, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	over := map[string]string{
		"LHCBDIRAC_PIPELINE_CACHE":         filepath.Join(root, "cache"),
		"LHCBDIRAC_ENGINE_CONTAINER":       "lhcbdirac-fresh-engine",
		"LHCBDIRAC_ENGINE":                 "local",
		"_EXPERIMENTAL_DAGGER_RUNNER_HOST": "",
		"_EXPERIMENTAL_DAGGER_CLI_BIN":     "",
		"LHCBDIRAC_EMBEDDED_REGISTRY_ADDR": "127.0.0.1:" + strconv.Itoa(port),
		"LHCBDIRAC_REGISTRY":               "",
		"LHCBDIRAC_REPOSITORY":             "",
		"LHCBDIRAC_DIST":                   filepath.Join(root, "dist"),
	}
	fresh := settings.FromEnv(func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return st.Env(k)
	})
	// Two engines cannot run on the host's network at once (their DNS
	// servers both want port 53): the user's engine is stopped while the
	// fresh one runs, and started again after (its cache is kept).
	st.Host.Apply()
	userEngine := engine.ContainerName()
	if c, err := dockercli.InspectContainer(ctx, userEngine); err == nil && c.Running {
		if _, err := dockercli.Run(ctx, "stop", userEngine); err != nil {
			return fig, fmt.Errorf("stopping the engine %s for the fresh one: %w", userEngine, err)
		}
		defer dockercli.Run(context.WithoutCancel(ctx), "start", userEngine)
	}
	oldGOCACHE := st.Env("GOCACHE")
	os.Setenv("GOCACHE", filepath.Join(root, "gocache")) // for the go builds this process starts
	defer func() {
		if oldGOCACHE != "" {
			os.Setenv("GOCACHE", oldGOCACHE)
		} else {
			os.Unsetenv("GOCACHE")
		}
		cleanupFresh(ctx, fresh)
		st.Host.Apply()
		os.RemoveAll(root)
	}()

	p := progress.New(io.Discard)
	start := time.Now()
	s, err := Open(ctx, fresh, p, Needs{Engine: true, LazyEngine: true})
	if err != nil {
		return fig, err
	}
	defer s.Close()
	s.Out = io.Discard
	c, err := NewConfig(v, fresh.Release, s.Registry)
	if err != nil {
		return fig, err
	}
	r := &Release{Config: c, S: s}
	err = r.Run(ctx)
	fig.Total, fig.Stages, fig.Steps = time.Since(start), r.Stages, p.Steps()
	if len(r.Stages) > 0 {
		fig.Setup = r.Stages[0].Start.Sub(start)
	}
	fig.Print(out)
	return fig, err
}

// cleanupFresh removes the fresh engine and registry and their volumes.
func cleanupFresh(ctx context.Context, fresh settings.Settings) {
	fresh.Host.Apply()
	in := registry.Embedded()
	for _, args := range [][]string{
		{"rm", "-f", engine.ContainerName()}, {"volume", "rm", "-f", engine.StateVolume()},
		{"rm", "-f", in.Name}, {"volume", "rm", "-f", in.Volume},
	} {
		exec.CommandContext(ctx, "docker", args...).Run()
	}
}

// Print writes the first release's figures: each stage's share, and the
// longest steps (the levers).
func (fig FreshFigures) Print(out io.Writer) {
	share := func(d time.Duration) string { return fmt.Sprintf("%4.0f%%", 100*d.Seconds()/fig.Total.Seconds()) }
	fmt.Fprintf(out, "\nThe first release, nothing cached: %s\n", fig.Total.Round(time.Second))
	fmt.Fprintf(out, "  %-28s %9s %s\n", "setup (host, registry)", fig.Setup.Round(100*time.Millisecond), share(fig.Setup))
	for _, s := range fig.Stages {
		fmt.Fprintf(out, "  %-28s %9s %s\n", s.Name, s.Took.Round(100*time.Millisecond), share(s.Took))
	}
	steps := append([]progress.Step(nil), fig.Steps...)
	sort.Slice(steps, func(i, j int) bool { return steps[i].Duration > steps[j].Duration })
	fmt.Fprintf(out, "  longest steps (they overlap):\n")
	for i, s := range steps {
		if i == 12 {
			break
		}
		fmt.Fprintf(out, "    %-60s %9s %s\n", s.Name, s.Duration.Round(100*time.Millisecond), share(s.Duration))
	}
}

// RunBenchFresh is `mage benchFresh`: the first release of the newest
// LHCbDIRAC (LHCBDIRAC_VERSION for another) from nothing cached.
func RunBenchFresh(ctx context.Context, st settings.Settings, out io.Writer) error {
	if err := st.Need(settings.AreaRelease, settings.AreaHost); err != nil {
		return err
	}
	ver, err := DefaultVersion(ctx, progress.New(io.Discard), st.Release)
	if err != nil {
		return err
	}
	v, err := version.Parse(ver)
	if err != nil {
		return err
	}
	_, err = BenchFresh(ctx, st, v, out)
	return err
}
