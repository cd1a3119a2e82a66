package pipeline

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Figures are what the benchmark measures.
type Figures struct {
	Cold, Warm        time.Duration // whole release: engine cache bypassed / nothing changed
	Concurrent        time.Duration // the three builds at once, cache bypassed
	Alone             map[string]time.Duration
	Sizes             map[string]int64
	ConcurrentVsAlone float64 // Concurrent / slowest Alone (target ≤ 1.3)
	WarmTarget        time.Duration
	SlowestAloneImage string
	ConcurrencyTarget float64
}

// Bench runs the release twice — first with Dagger's cache bypassed for
// every build, smoke test and push ("cold": the debootstrap bases and Go
// modules on the host stay cached), then unchanged ("warm no-op") — and
// times the three builds together against each alone, cache bypassed.
func Bench(ctx context.Context, base *Release, out io.Writer) (Figures, error) {
	fig := Figures{Alone: map[string]time.Duration{}, Sizes: map[string]int64{}, WarmTarget: 15 * time.Second, ConcurrencyTarget: 1.3}
	run := func(rerun string) (time.Duration, *Release, error) {
		r := *base
		r.Rerun = rerun
		r.Config.FreshSmoke = rerun != ""
		start := time.Now()
		err := r.Run(ctx)
		return time.Since(start), &r, err
	}
	var err error
	var r *Release
	if fig.Cold, r, err = run(strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
		return fig, fmt.Errorf("cold release: %w", err)
	}
	for n, im := range r.Images {
		fig.Sizes[n] = im.Pushed.Size
	}
	// The first unchanged run fills the cache for these exact inputs (the
	// cold run's were unique); the second is the warm no-op measured.
	for range 2 {
		if fig.Warm, _, err = run(""); err != nil {
			return fig, fmt.Errorf("warm release: %w", err)
		}
	}

	// Builds only: the inputs once, then the recipes with a fresh rerun key.
	r = &Release{Config: base.Config, F: base.F, P: base.P, Images: map[string]*Image{}}
	if err := (inputsStage{r}).Run(ctx); err != nil {
		return fig, err
	}
	for _, n := range ImageNames {
		r.Images[n] = &Image{Name: n}
	}
	build := func(names ...string) (time.Duration, error) {
		r.Rerun = strconv.FormatInt(time.Now().UnixNano(), 10)
		start := time.Now()
		err := r.build(ctx, names...)
		return time.Since(start), err
	}
	if fig.Concurrent, err = build(ImageNames...); err != nil {
		return fig, err
	}
	for _, n := range ImageNames {
		if fig.Alone[n], err = build(n); err != nil {
			return fig, err
		}
		if fig.Alone[n] > fig.Alone[fig.SlowestAloneImage] {
			fig.SlowestAloneImage = n
		}
	}
	fig.ConcurrentVsAlone = float64(fig.Concurrent) / float64(fig.Alone[fig.SlowestAloneImage])
	fmt.Fprintf(out, "\nBenchmark (this machine)\n")
	fmt.Fprintf(out, "  cold release (Dagger cache bypassed; bases and Go modules cached): %s\n", fig.Cold.Round(100*time.Millisecond))
	fmt.Fprintf(out, "  warm no-op release:                                                %s (target ≤ %s)\n", fig.Warm.Round(100*time.Millisecond), fig.WarmTarget)
	fmt.Fprintf(out, "  three builds concurrently:                                         %s\n", fig.Concurrent.Round(100*time.Millisecond))
	for _, n := range ImageNames {
		fmt.Fprintf(out, "  %-12s alone: %-8s size: %.1f MB\n", n, fig.Alone[n].Round(100*time.Millisecond), float64(fig.Sizes[n])/1e6)
	}
	fmt.Fprintf(out, "  concurrent / slowest alone (%s): %.2f× (target ≤ %.1f×)\n", fig.SlowestAloneImage, fig.ConcurrentVsAlone, fig.ConcurrencyTarget)
	return fig, nil
}
