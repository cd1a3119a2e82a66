package pipeline

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/catalog"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// The smoke stage at scale: the release with the first N services the
// image ships (services:all's list, N = 6, 12, 24 and all), each once cold
// (every service started and pinged again, Dagger's cache of the smoke
// test bypassed) and once warm (the same release again: the cold run's
// smoke attestations answer for the same digests and apps). Growth is
// read from the time per service, not from absolute speeds.

// SmokeSizes are the list sizes measured; 0 is every service.
var SmokeSizes = []int{6, 12, 24, 0}

// SmokeScale is one size's figures.
type SmokeScale struct {
	N                  int // services in the file (runnable ones; the cannot-run ones are not listed)
	Passed, CannotRun  int
	Cold, Warm         time.Duration // the smoke stage
	ColdPeak, WarmPeak float64       // the engine's peak memory during the release, MiB
	Err                error
}

// BenchSmoke measures the smoke stage at each of sizes. The full list is
// services:all's, read from the image a first release of cfg's services
// pushed into cfg's repository.
func BenchSmoke(ctx context.Context, s *Session, cfg Config, sizes []int, out io.Writer) ([]SmokeScale, error) {
	tag := "bench-smoke-" + stamp()
	prep := &Release{Config: cfg, S: s}
	prep.Config.BenchTag = tag
	if err := prep.Run(ctx); err != nil {
		return nil, fmt.Errorf("the release that pushes the image to list: %w", err)
	}
	ref := cfg.ImageRepo("lhcbdirac") + ":" + releaseTags(&Inputs{Config: prep.Config})[0]
	cat, err := ReleaseImageCatalog(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("the catalog of %s: %w", ref, err)
	}
	base, err := LoadServices(cfg.Release) // as services:all reads it
	if err != nil {
		return nil, err
	}
	y, err := catalog.ServicesFile(cat, base)
	if err != nil {
		return nil, err
	}
	all, err := services.Parse(ref+" (services:all)", y)
	if err != nil {
		return nil, err
	}
	all.Image, all.Discovery = cfg.Services.Image, cfg.Services.Discovery
	var runnable []services.Service
	for _, sv := range all.Services {
		if sv.CannotRun == "" {
			runnable = append(runnable, sv)
		}
	}
	var figs []SmokeScale
	for _, n := range sizes {
		if n <= 0 || n > len(runnable) {
			n = len(runnable)
		}
		f := *all
		f.Path = fmt.Sprintf("%s, first %d runnable", all.Path, n)
		f.Services = runnable[:n]
		c := cfg
		c.Services = &f
		c.BenchTag = tag + "-" + strconv.Itoa(n)
		fig := SmokeScale{N: n}
		run := func(fresh bool) (time.Duration, float64, *Release, error) {
			r := &Release{Config: c, S: s}
			r.Config.FreshSmoke = fresh
			stop := engine.MemoryPeak(ctx, 2*time.Second)
			err := r.Run(ctx)
			peak := stop()
			for _, st := range r.Stages {
				if st.Name == "smoke" {
					return st.Took, peak, r, err
				}
			}
			return 0, peak, r, err
		}
		var cold *Release
		fig.Cold, fig.ColdPeak, cold, fig.Err = run(true)
		if fig.Err == nil {
			fig.Warm, fig.WarmPeak, _, fig.Err = run(false)
		}
		for _, sv := range cold.Smoked.Services() {
			switch {
			case sv.CannotRun != "":
				fig.CannotRun++
			case sv.Passed():
				fig.Passed++
			}
		}
		fmt.Fprintf(out, "  N=%d: cold %s, warm %s\n", n, fig.Cold.Round(time.Second), fig.Warm.Round(100*time.Millisecond))
		figs = append(figs, fig)
		if fig.Err != nil {
			return figs, fmt.Errorf("%d services: %w", n, fig.Err)
		}
	}
	PrintSmokeScale(out, figs)
	return figs, nil
}

// PrintSmokeScale writes the figures as a table.
func PrintSmokeScale(out io.Writer, figs []SmokeScale) {
	fmt.Fprintf(out, "\nThe smoke stage at scale (engine memory: its peak during the release)\n")
	fmt.Fprintf(out, "| services | passed | cannot run here | cold | cold per service | warm | peak memory cold / warm |\n|---|---|---|---|---|---|---|\n")
	for _, f := range figs {
		per := time.Duration(0)
		if f.N > 0 {
			per = f.Cold / time.Duration(f.N)
		}
		fmt.Fprintf(out, "| %d | %d | %d | %s | %s | %s | %.1f / %.1f GiB |\n", f.N, f.Passed, f.CannotRun,
			f.Cold.Round(time.Second), per.Round(100*time.Millisecond), f.Warm.Round(100*time.Millisecond), f.ColdPeak/1024, f.WarmPeak/1024)
	}
}

// RunBenchSmoke is `mage benchSmoke`: the smoke stage at scale, for
// LHCBDIRAC_VERSION (else the newest LHCbDIRAC), in the benchmark's
// repository under tags of its own.
func RunBenchSmoke(ctx context.Context, st settings.Settings, out io.Writer) error {
	return withBenchSession(ctx, st, func(s *Session, cfg Config) error {
		_, err := BenchSmoke(ctx, s, cfg, SmokeSizes, out)
		return err
	})
}
