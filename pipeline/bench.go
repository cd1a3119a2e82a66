package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// Figures are what the benchmark measures.
type Figures struct {
	Cold, Warm time.Duration // whole release: empty caches / nothing changed
	// The lhcbdirac build from empty caches (Dagger's and uv's), the
	// phases of its install, and the share of it spent downloading (the
	// install phase's cold time less its time from a full uv cache, plus
	// the source archives' download).
	LHCbDIRACCold             time.Duration
	InstallCold, InstallWarm  map[string]float64
	DownloadShare             float64
	BumpVersion               string        // the version built after a bump
	Bump                      time.Duration // its lhcbdirac build, caches warm
	Sizes                     map[string]int64
	LHCbDIRACUncompressed     int64
	SingleStage, SingleStageU int64 // a naive one-stage image: compressed, uncompressed
	Smoke                     map[string]time.Duration
	Concurrent                time.Duration // the builds at once, cache bypassed
	Alone                     map[string]time.Duration
	SlowestAloneImage         string
	ConcurrentVsAlone         float64 // Concurrent / slowest Alone
	WarmTarget                time.Duration
}

func stamp() string { return strconv.FormatInt(time.Now().UnixNano(), 10) }

// Bench runs the release from empty caches ("cold": Dagger's cache
// bypassed for every build, smoke test and push, uv's download cache new;
// the debootstrap bases and Go modules on the host stay), then unchanged
// ("warm no-op"); builds the lhcbdirac image again from a full download
// cache and for another version (a bump); measures a naive single-stage
// image; and times the builds together against each alone.
func Bench(ctx context.Context, s *Session, cfg Config, bump version.Version, out io.Writer) (Figures, error) {
	fig := Figures{Alone: map[string]time.Duration{}, Sizes: map[string]int64{}, Smoke: map[string]time.Duration{}, WarmTarget: 15 * time.Second}
	coldStamp := stamp()
	run := func(knobs BuildKnobs) (time.Duration, *Release, error) {
		r := &Release{Config: cfg, S: s, Knobs: knobs}
		r.Config.FreshSmoke = knobs.Rerun != ""
		start := time.Now()
		err := r.Run(ctx)
		return time.Since(start), r, err
	}
	var err error
	var r *Release
	if fig.Cold, r, err = run(BuildKnobs{Rerun: coldStamp, UVCache: "bench-uv-" + coldStamp}); err != nil {
		return fig, fmt.Errorf("cold release: %w", err)
	}
	for n, p := range r.Pushed.Images {
		fig.Sizes[n] = p.Size
	}
	for _, b := range r.Built.Images {
		if b.Image.Name == images.LHCbDIRAC {
			fig.LHCbDIRACCold = b.Took
		}
	}
	for _, sv := range r.Smoked.Services() {
		fig.Smoke[sv.Service] = sv.Took
	}
	// The first unchanged run fills the cache for these exact inputs (the
	// cold run's were unique); the second is the warm no-op measured.
	for range 2 {
		if fig.Warm, _, err = run(BuildKnobs{}); err != nil {
			return fig, fmt.Errorf("warm release: %w", err)
		}
	}

	if r.Inputs.Lock != nil {
		in := r.Inputs.LHCbDIRAC()
		in.Rerun, in.UVCache = coldStamp, "bench-uv-"+coldStamp
		if fig.InstallCold, err = lhcbdirac.InstallTimes(ctx, s.Client, r.Inputs.Go, in); err != nil {
			return fig, err
		}
		// The same build again, Dagger's cache bypassed, uv's cache full.
		in.Rerun = stamp()
		if fig.InstallWarm, err = lhcbdirac.InstallTimes(ctx, s.Client, r.Inputs.Go, in); err != nil {
			return fig, err
		}
		download := fig.InstallCold["download-sources"] + fig.InstallCold["install"] - fig.InstallWarm["install"]
		fig.DownloadShare = download / fig.LHCbDIRACCold.Seconds()
		// A naive single-stage image of the same packages.
		ss := lhcbdirac.SingleStage(s.Client, r.Inputs.Go, in)
		work, err := cachedir.Sub("push")
		if err != nil {
			return fig, err
		}
		p, err := push.ByDigest(ctx, ss, "single-stage", cfg.ImageRepo("bench-single-stage"), filepath.Join(work, "bench-single-stage"))
		if err != nil {
			return fig, err
		}
		fig.SingleStage = p.Size
		if fig.SingleStageU, err = uncompressed(ctx, p.Ref()); err != nil {
			return fig, err
		}
		if fig.LHCbDIRACUncompressed, err = uncompressed(ctx, r.Pushed.Ref(images.LHCbDIRAC)); err != nil {
			return fig, err
		}

		// A version bump: another LHCbDIRAC, every cache warm.
		bumped := cfg
		bumped.Version = bump
		bumped.Dist = filepath.Join(filepath.Dir(cfg.Dist), bump.Raw)
		bin, err := inputs(ctx, s, bumped, BuildKnobs{})
		if err != nil {
			return fig, err
		}
		b, err := build(ctx, s, bin, imagesNamed(images.LHCbDIRAC))
		if err != nil {
			return fig, err
		}
		fig.BumpVersion, fig.Bump = bump.Raw, b.Images[0].Took
	}

	// Builds only: the inputs once, then the recipes with a fresh rerun key.
	buildAll := func(imgs []images.Image) (time.Duration, error) {
		in, err := inputs(ctx, s, cfg, BuildKnobs{Rerun: stamp()})
		if err != nil {
			return 0, err
		}
		start := time.Now()
		_, err = build(ctx, s, in, imgs)
		return time.Since(start), err
	}
	if fig.Concurrent, err = buildAll(images.All); err != nil {
		return fig, err
	}
	for _, n := range images.Names() {
		if fig.Alone[n], err = buildAll(imagesNamed(n)); err != nil {
			return fig, err
		}
		if fig.Alone[n] > fig.Alone[fig.SlowestAloneImage] {
			fig.SlowestAloneImage = n
		}
	}
	fig.ConcurrentVsAlone = float64(fig.Concurrent) / float64(fig.Alone[fig.SlowestAloneImage])
	fig.Print(out)
	return fig, nil
}

// imagesNamed are the named images of the release.
func imagesNamed(names ...string) []images.Image {
	var out []images.Image
	for _, im := range images.All {
		if slices.Contains(names, im.Name) {
			out = append(out, im)
		}
	}
	return out
}

// Print writes the figures.
func (fig Figures) Print(out io.Writer) {
	mb := func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
	d := func(t time.Duration) time.Duration { return t.Round(100 * time.Millisecond) }
	fmt.Fprintf(out, "\nBenchmark (this machine)\n")
	fmt.Fprintf(out, "  release from empty caches (Dagger's, uv's; bases and Go modules kept): %s\n", d(fig.Cold))
	fmt.Fprintf(out, "  release, nothing changed:                                             %s (target ≤ %s)\n", d(fig.Warm), fig.WarmTarget)
	if fig.LHCbDIRACCold > 0 {
		fmt.Fprintf(out, "  lhcbdirac build, empty caches: %s; install phases %v; downloading %.0f%% of it\n", d(fig.LHCbDIRACCold), fig.InstallCold, 100*fig.DownloadShare)
		fmt.Fprintf(out, "  lhcbdirac install phases with a full download cache: %v\n", fig.InstallWarm)
		fmt.Fprintf(out, "  lhcbdirac build after a bump to %s, caches warm: %s\n", fig.BumpVersion, d(fig.Bump))
		fmt.Fprintf(out, "  lhcbdirac image: %s compressed, %s uncompressed; a naive single-stage image: %s, %s (%.1f× / %.1f×)\n",
			mb(fig.Sizes[images.LHCbDIRAC]), mb(fig.LHCbDIRACUncompressed), mb(fig.SingleStage), mb(fig.SingleStageU),
			float64(fig.SingleStage)/float64(fig.Sizes[images.LHCbDIRAC]), float64(fig.SingleStageU)/float64(fig.LHCbDIRACUncompressed))
	}
	services := make([]string, 0, len(fig.Smoke))
	for s := range fig.Smoke {
		services = append(services, s)
	}
	slices.Sort(services)
	for _, s := range services {
		fmt.Fprintf(out, "  smoke %-32s %s\n", s, d(fig.Smoke[s]))
	}
	fmt.Fprintf(out, "  all builds concurrently: %s\n", d(fig.Concurrent))
	for _, n := range images.Names() {
		fmt.Fprintf(out, "  %-12s alone: %-8s size: %s\n", n, d(fig.Alone[n]), mb(fig.Sizes[n]))
	}
	fmt.Fprintf(out, "  concurrent / slowest alone (%s): %.2f×\n", fig.SlowestAloneImage, fig.ConcurrentVsAlone)
}

// uncompressed is the size of an image's config and uncompressed layers.
func uncompressed(ctx context.Context, ref string) (int64, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return 0, err
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	total := m.Config.Size
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// BenchVersions are the versions the benchmark releases: the newest final
// LHCbDIRAC on the index, and the one before it (the version bump); on
// the FIXTURE route, two pre-releases.
func BenchVersions(ctx context.Context, p *progress.Reporter, rel settings.Release) (version.Version, version.Version, error) {
	if rel.Fixture() {
		a, _ := version.Parse("v0.1-pre1")
		b, _ := version.Parse("v0.0-pre1")
		return a, b, nil
	}
	tools, err := pytools.Ensure(ctx, p, rel.PipIndexURL)
	if err != nil {
		return version.Version{}, version.Version{}, err
	}
	have, err := tools.Versions(ctx, "LHCbDIRAC")
	if err != nil {
		return version.Version{}, version.Version{}, err
	}
	var finals []version.Version
	for _, h := range have { // newest first
		if v, err := version.Parse("v" + h); err == nil && !v.Pre {
			finals = append(finals, v)
		}
		if len(finals) == 2 {
			return finals[0], finals[1], nil
		}
	}
	return version.Version{}, version.Version{}, fmt.Errorf("the index has fewer than two final LHCbDIRAC releases")
}
