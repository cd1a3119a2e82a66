package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lines"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline/benchpeer"
)

// The benchmark: the release as users wait for it — from empty caches, a
// no-op as `go run mage.go release` runs it, the cost of one change of
// each kind — and the lhcbdirac image against the peer, a plain
// multi-stage Dockerfile built by Docker from the same lock and bases
// (benchpeer/), measured in the same run. Ratios, not absolute speeds,
// are what the machine's noise leaves meaningful.

// Figures are what the benchmark measures.
type Figures struct {
	Version string
	// Cold is the whole release from empty caches (Dagger's bypassed, uv's
	// new); LHCbDIRACCold its lhcbdirac build.
	Cold, LHCbDIRACCold time.Duration
	Smoke               map[string]time.Duration // each service's, cold
	Sizes               map[string]int64         // each image as pushed
	// NoOp are five `go run mage.go release` with nothing changed (wall
	// clock, what a user waits); NoOpInProcess the same in this process.
	NoOp          []time.Duration
	NoOpInProcess time.Duration
	// Changes are one release per kind of change, each from a checkout
	// with that one change.
	Changes []Change
	Peer    *benchpeer.Figures
	// Entrypoint is the project's one-line entrypoint change (build and
	// push of the lhcbdirac image alone, as the peer's is measured). Its
	// build counts the export too: the image made, its digest known, as
	// docker build leaves the peer's.
	EntrypointBuild, EntrypointPush time.Duration
	EntrypointBytes                 int64 // what that change pushed: the new layers
}

// Change is one release after one change.
type Change struct {
	What   string
	Took   time.Duration
	Reran  []string // the steps that did work (builds, smoke tests, pushes)
	Pushed int64    // bytes of new layers pushed
	Err    error
}

func stamp() string { return strconv.FormatInt(time.Now().UnixNano(), 10) }

// Bench runs the benchmark against cfg's version; root is the checkout
// (the change-cost runs use checkouts of its HEAD).
func Bench(ctx context.Context, s *Session, cfg Config, root string, out io.Writer) (Figures, error) {
	fig := Figures{Version: cfg.Version.Raw, Smoke: map[string]time.Duration{}, Sizes: map[string]int64{}}
	tag := "bench-" + stamp()
	cfg.BenchTag = tag

	// From empty caches.
	st := stamp()
	cold := &Release{Config: cfg, S: s, Knobs: BuildKnobs{Rerun: st, UVCache: "bench-uv-" + st}}
	cold.Config.FreshSmoke = true
	start := time.Now()
	if err := cold.Run(ctx); err != nil {
		return fig, fmt.Errorf("cold release: %w", err)
	}
	fig.Cold = time.Since(start)
	for n, p := range cold.Pushed.Images {
		fig.Sizes[n] = p.Size
	}
	for _, b := range cold.Built.Images {
		if b.Image.Name == images.LHCbDIRAC {
			fig.LHCbDIRACCold = b.Took
		}
	}
	for _, sv := range cold.Smoked.Services() {
		fig.Smoke[sv.Service] = sv.Took
	}

	// A no-op, as users run it: the first unchanged run makes the release
	// without the cold run's knobs; the five after it have nothing to do.
	env := benchEnv(s.Settings, map[string]string{"LHCBDIRAC_BENCH_TAG": tag + "-noop", "LHCBDIRAC_REPOSITORY": cfg.Repository})
	if _, _, err := mageRelease(ctx, root, env, cfg.Version.Raw); err != nil {
		return fig, fmt.Errorf("warm release: %w", err)
	}
	for range 5 {
		d, _, err := mageRelease(ctx, root, env, cfg.Version.Raw)
		if err != nil {
			return fig, fmt.Errorf("no-op release: %w", err)
		}
		fig.NoOp = append(fig.NoOp, d)
	}
	noop := &Release{Config: cfg, S: s}
	noop.Config.BenchTag = tag + "-noop"
	start = time.Now()
	if err := noop.Run(ctx); err != nil {
		return fig, err
	}
	fig.NoOpInProcess = time.Since(start)

	// One change of each kind, each from a checkout of HEAD with that one
	// change, released after the no-op's tag (its digests in the registry).
	for i, ch := range benchChanges {
		c := Change{What: ch.what}
		dir, cleanup, err := checkout(ctx, root)
		if err != nil {
			return fig, err
		}
		e := benchEnv(s.Settings, map[string]string{"LHCBDIRAC_BENCH_TAG": fmt.Sprintf("%s-change%d", tag, i), "LHCBDIRAC_REPOSITORY": cfg.Repository})
		if err := ch.apply(dir, st); err == nil {
			mageCompile(ctx, dir, e) // not part of the release's time
			var log string
			c.Took, log, c.Err = mageRelease(ctx, dir, e, cfg.Version.Raw)
			c.Reran = reran(log)
			c.Pushed = newBytes(ctx, cfg, tag+"-noop", fmt.Sprintf("%s-change%d", tag, i))
		} else {
			c.Err = err
		}
		cleanup()
		fig.Changes = append(fig.Changes, c)
	}

	// The peer, and the project's own one-line entrypoint change measured
	// as the peer's is: the lhcbdirac image's build and push alone.
	if cold.Inputs.Lock != nil {
		work, err := os.MkdirTemp("", "lhcbdirac-peer-")
		if err != nil {
			return fig, err
		}
		defer os.RemoveAll(work)
		pf, err := benchpeer.Run(ctx, progress.Discard(), benchpeer.Inputs{Lock: cold.Inputs.Lock,
			BuilderBase: cold.Inputs.Bases.Builder, Base: cold.Inputs.Bases.LHCbDIRAC,
			Repo: cfg.Repository + "/bench-peer", WorkDir: work})
		if err != nil {
			return fig, fmt.Errorf("the peer: %w", err)
		}
		fig.Peer = &pf
		for _, c := range fig.Changes {
			if c.What == benchChanges[0].what {
				fig.EntrypointBuild = stepTime(c, "build lhcbdirac") + stepTime(c, "export lhcbdirac")
				fig.EntrypointPush = stepTime(c, "push lhcbdirac")
				fig.EntrypointBytes = c.Pushed
			}
		}
	}
	fig.Print(out)
	return fig, nil
}

// benchChanges are the kinds of change the benchmark prices. Each change
// is new to this run (its text and port come from the run's stamp): one
// seen by an earlier run would be answered by Dagger's cache and that
// run's smoke attestations, and cost nothing.
var benchChanges = []struct {
	what  string
	apply func(dir, stamp string) error
}{
	{"one-line change to the lhcbdirac entrypoint", func(dir, stamp string) error {
		return insertAfter(filepath.Join(dir, "images/lhcbdirac/entrypoint/main.go"), "func main() {", "\tos.Setenv(\"LHCBDIRAC_ENTRYPOINT_BENCH\", \""+stamp+"\")")
	}},
	{"one Go program changed (the registrator)", func(dir, stamp string) error {
		return insertAfter(filepath.Join(dir, "images/registrator/cmd/registrator/main.go"), "func main() {", "\tos.Setenv(\"LHCBDIRAC_REGISTRATOR_BENCH\", \""+stamp+"\")")
	}},
	{"one port changed in the services file (DataManagement/DataUsage)", func(dir, stamp string) error {
		p := filepath.Join(dir, "pipeline/services.yaml")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n, _ := strconv.ParseInt(stamp, 10, 64)
		port := fmt.Sprintf("port: %d", 20000+n/1000%20000) // a port no service has
		nb := strings.Replace(string(b), "port: 9164", port, 1)
		if nb == string(b) {
			return fmt.Errorf("%s: no port 9164 to change", p)
		}
		return os.WriteFile(p, []byte(nb), 0o644)
	}},
}

func insertAfter(path, anchor, line string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.Index(s, anchor)
	if i < 0 {
		return fmt.Errorf("%s: no %q", path, anchor)
	}
	i += len(anchor)
	return os.WriteFile(path, []byte(s[:i]+"\n"+line+s[i:]), 0o644)
}

// checkout is a checkout of root's HEAD beside it (git worktree).
func checkout(ctx context.Context, root string) (string, func(), error) {
	dir, err := os.MkdirTemp(filepath.Dir(root), ".bench-")
	if err != nil {
		return "", nil, err
	}
	os.Remove(dir)
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "worktree", "add", "--detach", dir, "HEAD").CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("git worktree add: %v: %s", err, out)
	}
	return dir, func() {
		exec.Command("git", "-C", root, "worktree", "remove", "--force", dir).Run()
		os.RemoveAll(dir)
	}, nil
}

// benchEnv is this process's environment with the settings' overrides.
func benchEnv(st settings.Settings, over map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := over[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range over {
		env = append(env, k+"="+v)
	}
	return env
}

// mageCompile builds the checkout's magefile binary by running a target
// that does nothing much (a listing builds nothing): the release timed
// after it is the release, not the compile of the pipeline.
func mageCompile(ctx context.Context, dir string, env []string) {
	cmd := exec.CommandContext(ctx, "go", "run", "mage.go", "engine:status")
	cmd.Dir, cmd.Env = dir, env
	cmd.Run()
}

// mageRelease runs `go run mage.go release v` in dir, as a user would.
func mageRelease(ctx context.Context, dir string, env []string, v string) (time.Duration, string, error) {
	cmd := exec.CommandContext(ctx, "go", "run", "mage.go", "release", v)
	cmd.Dir, cmd.Env = dir, env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return d, string(out), fmt.Errorf("%v: %s", err, lines.Tail(string(out), 15))
	}
	return d, string(out), nil
}

// doneStep is a step line that did work: its name (which may end in a
// parenthesis of its own, "export lhcbdirac (its digest)") and its time.
var doneStep = regexp.MustCompile(`(?m)^  ✓ ((?:build|smoke|push|export|attest) .+?) \(([0-9][0-9.hmsµn]*)\)$`)

// reran are the build, export, smoke, push and attest steps that did
// work in a release's output (cached and skipped ones are left out).
func reran(log string) []string {
	var out []string
	for _, m := range doneStep.FindAllStringSubmatch(log, -1) {
		name := strings.TrimSpace(m[1])
		if name == "build" || name == "smoke" || name == "push" || name == "export" || name == "attest" {
			continue // the stages themselves
		}
		out = append(out, name+" "+m[2])
	}
	return out
}

// stepTime is the time a change's release gave a step ("" when it did not run).
func stepTime(c Change, prefix string) time.Duration {
	for _, r := range c.Reran {
		if strings.HasPrefix(r, prefix) {
			d, err := time.ParseDuration(r[strings.LastIndex(r, " ")+1:])
			if err == nil {
				return d
			}
		}
	}
	return 0
}

// newBytes are the compressed bytes of the layers the change's images
// have that the base run's lack: what the change made the release push.
func newBytes(ctx context.Context, c Config, base, changed string) int64 {
	var total int64
	for _, n := range images.Names() {
		layersOf := func(tag string) map[string]int64 {
			ref, err := name.NewTag(c.ImageRepo(n) + ":" + c.Version.Raw + "-" + tag)
			if err != nil {
				return nil
			}
			img, err := remote.Image(ref, append(registryAuth(), remote.WithContext(ctx))...)
			if err != nil {
				return nil
			}
			m, err := img.Manifest()
			if err != nil {
				return nil
			}
			out := map[string]int64{}
			for _, l := range m.Layers {
				out[l.Digest.String()] = l.Size
			}
			return out
		}
		old, now := layersOf(base), layersOf(changed)
		for d, size := range now {
			if _, ok := old[d]; !ok {
				total += size
			}
		}
	}
	return total
}

// Print writes the figures.
func (fig Figures) Print(out io.Writer) {
	mb := func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
	d := func(t time.Duration) time.Duration {
		if t < time.Second {
			return t.Round(time.Millisecond)
		}
		return t.Round(100 * time.Millisecond)
	}
	fmt.Fprintf(out, "\nBenchmark of %s (this machine; ratios measured in the same run)\n", fig.Version)
	fmt.Fprintf(out, "  release from empty caches (Dagger's, uv's):        %s; its lhcbdirac build %s\n", d(fig.Cold), d(fig.LHCbDIRACCold))
	noop := slices.Clone(fig.NoOp)
	slices.Sort(noop)
	if len(noop) > 0 {
		fmt.Fprintf(out, "  no-op release, go run mage.go release (5 runs):     median %s (%s … %s; target ≤ 3s); in process %s\n", d(noop[len(noop)/2]), d(noop[0]), d(noop[len(noop)-1]), d(fig.NoOpInProcess))
	}
	for _, c := range fig.Changes {
		if c.Err != nil {
			fmt.Fprintf(out, "  %s: FAILED: %v\n", c.What, c.Err)
			continue
		}
		fmt.Fprintf(out, "  %s: %s, %s of new layers pushed; reran: %s\n", c.What, d(c.Took), mb(c.Pushed), strings.Join(c.Reran, ", "))
	}
	if p := fig.Peer; p != nil {
		ratio := func(a, b time.Duration) string { return fmt.Sprintf("%.2f×", a.Seconds()/b.Seconds()) }
		fmt.Fprintf(out, "  against the peer (docker build of the same lock, multi-stage):\n")
		fmt.Fprintf(out, "    cold build:            project %s, peer %s: %s (goal ≤ 0.8×)\n", d(fig.LHCbDIRACCold), d(p.Cold), ratio(fig.LHCbDIRACCold, p.Cold))
		fmt.Fprintf(out, "    warm rebuild:          project (no-op release) %s, peer %s\n", d(fig.NoOpInProcess), d(p.Warm))
		fmt.Fprintf(out, "    entrypoint change:     project build+export %s + push %s, peer build %s + push %s: %s (goal ≤ 1×)\n",
			d(fig.EntrypointBuild), d(fig.EntrypointPush), d(p.EntrypointBuild), d(p.EntrypointPush), ratio(fig.EntrypointBuild+fig.EntrypointPush, p.EntrypointChange()))
		fmt.Fprintf(out, "    pushed size:           project %s, peer %s: %.2f× (goal ≤ 1×)\n", mb(fig.Sizes[images.LHCbDIRAC]), mb(p.Size), float64(fig.Sizes[images.LHCbDIRAC])/float64(p.Size))
	}
	for _, n := range images.Names() {
		fmt.Fprintf(out, "  %-12s %s as pushed\n", n, mb(fig.Sizes[n]))
	}
	services := make([]string, 0, len(fig.Smoke))
	for s := range fig.Smoke {
		services = append(services, s)
	}
	slices.Sort(services)
	for _, s := range services {
		fmt.Fprintf(out, "  smoke %-40s %s\n", s, d(fig.Smoke[s]))
	}
}

// BenchVersion is the version the benchmark releases: LHCBDIRAC_VERSION's,
// else the newest final LHCbDIRAC on the index (v0.1-pre1 on the FIXTURE
// route).
func BenchVersion(ctx context.Context, p *progress.Reporter, rel settings.Release) (version.Version, error) {
	if rel.Fixture() && rel.Version == "" {
		return version.Parse("v0.1-pre1")
	}
	v, err := DefaultVersion(ctx, p, rel)
	if err != nil {
		return version.Version{}, err
	}
	return version.Parse(v)
}

// repoRoot is the checkout the benchmark's changes are made from.
func repoRoot() (string, error) { return hostimages.RepoRoot() }
