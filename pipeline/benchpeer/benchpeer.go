// Package benchpeer is the benchmark's peer: the same lock built by a plain
// multi-stage Dockerfile (Dockerfile, beside this file) through `docker
// build` on the host's Docker daemon, the one the pipeline installs, from
// the same bases. What it measures is what a release manager without the
// pipeline would wait for: a cold build, a rebuild with nothing changed, a
// one-line change to the entrypoint (build and push), and the image's size
// as pushed. The bench prints the project's figures against these.
package benchpeer

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// Dockerfile is the peer's recipe.
//
//go:embed Dockerfile
var Dockerfile string

//go:embed dockerEntrypoint.sh
var entrypoint string

//go:embed bashrc
var bashrc string

// Inputs are what the peer builds from: the project's own lock and bases.
type Inputs struct {
	Lock *lhcbdirac.Lock
	// BuilderBase and Base are the project's builder and runtime bases,
	// pinned by digest in a registry Docker can pull from (the local one
	// on 127.0.0.1, which Docker trusts over plain HTTP).
	BuilderBase, Base string
	// Repo is where the peer's image is pushed (registry/repository).
	Repo string
	// WorkDir holds the build context and the build logs.
	WorkDir string
}

// Figures are the peer's measurements.
type Figures struct {
	Pull time.Duration // the two bases into Docker (apart from the builds)
	Cold time.Duration // docker build --no-cache: every step, every download
	Push time.Duration // the first push of the image
	Warm time.Duration // the same build again, nothing changed
	// EntrypointBuild and EntrypointPush are a one-line change to the
	// entrypoint: its build, then its push.
	EntrypointBuild, EntrypointPush time.Duration
	Size                            int64  // as pushed: config plus compressed layers
	Layers                          int    // how many
	Digest                          string // of the image as pushed after the change
}

// EntrypointChange is the total of the one-line change.
func (f Figures) EntrypointChange() time.Duration { return f.EntrypointBuild + f.EntrypointPush }

// Context writes the build context for lock into dir: the Dockerfile, the
// entrypoint and bashrc, the lock's build section (build.txt) and its
// runtime tree (requirements.txt, LHCbDIRAC last, so its console scripts
// replace DIRAC's of the same names as in the project's image), both
// written by the lock's own requirement writer, and this machine's extra
// CA certificates (ca/).
func Context(dir string, lock *lhcbdirac.Lock) error {
	if lock == nil {
		return errors.New("benchpeer: no lock (the peer builds the real route's lock)")
	}
	var req bytes.Buffer
	req.Write(lock.RuntimeRequirements("LHCbDIRAC"))
	req.Write(lock.SourceRequirements())
	req.Write(lock.ExtraTools())
	last := lock.RequirementOf("LHCbDIRAC")
	if len(last) == 0 {
		return errors.New("benchpeer: the lock has no LHCbDIRAC wheel to install")
	}
	req.Write(last)
	files := map[string]string{
		"Dockerfile":          Dockerfile,
		"dockerEntrypoint.sh": entrypoint,
		"bashrc":              bashrc,
		"build.txt":           string(lock.BuildRequirements()),
		"requirements.txt":    req.String(),
	}
	if err := os.MkdirAll(filepath.Join(dir, "ca"), 0o755); err != nil {
		return err
	}
	for n, text := range files {
		mode := os.FileMode(0o644)
		if n == "dockerEntrypoint.sh" {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, n), []byte(text), mode); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(dir, n), mode); err != nil {
			return err
		}
	}
	cas, _ := filepath.Glob("/usr/local/share/ca-certificates/*.crt")
	for _, ca := range cas {
		b, err := os.ReadFile(ca)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "ca", filepath.Base(ca)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Run builds the peer: pulls the bases, builds cold and pushes, builds
// again unchanged, then changes one line of the entrypoint and builds and
// pushes once more. The images it tagged are removed from Docker at the
// end (the bases stay).
func Run(ctx context.Context, p *progress.Reporter, in Inputs) (Figures, error) {
	var fig Figures
	if in.BuilderBase == "" || in.Base == "" || in.Repo == "" || in.WorkDir == "" {
		return fig, errors.New("benchpeer: BuilderBase, Base, Repo and WorkDir are all needed")
	}
	if err := dockercli.Check(ctx); err != nil {
		return fig, err
	}
	dir := filepath.Join(in.WorkDir, "context")
	if err := os.RemoveAll(dir); err != nil {
		return fig, err
	}
	if err := Context(dir, in.Lock); err != nil {
		return fig, err
	}
	repo, err := name.NewRepository(in.Repo)
	if err != nil {
		return fig, fmt.Errorf("benchpeer: repository %q: %w", in.Repo, err)
	}
	tag := repo.Tag("peer").String()
	var logs []string
	defer func() { removeBuilt(context.WithoutCancel(ctx), tag, logs, in.BuilderBase, in.Base) }()

	timed := func(d *time.Duration, what string, f func() error) error {
		step := p.Start("peer: %s", what)
		start := time.Now()
		err := f()
		*d = time.Since(start)
		return step.End(err)
	}
	if err := timed(&fig.Pull, "pull the bases", func() error {
		for _, b := range []string{in.BuilderBase, in.Base} {
			if _, err := dockercli.Run(ctx, "pull", "--quiet", b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fig, err
	}
	build := func(log string, extra ...string) error {
		logs = append(logs, filepath.Join(in.WorkDir, log))
		args := append([]string{"build", "--network", "host", "--build-arg", "BUILDER_BASE=" + in.BuilderBase, "--build-arg", "BASE=" + in.Base, "-t", tag}, extra...)
		return docker(ctx, filepath.Join(in.WorkDir, log), append(args, dir)...)
	}
	pushImage := func(log string) error {
		return docker(ctx, filepath.Join(in.WorkDir, log), "push", tag)
	}
	if err := timed(&fig.Cold, "docker build, cold (--no-cache)", func() error { return build("cold.log", "--no-cache") }); err != nil {
		return fig, err
	}
	if err := timed(&fig.Push, "docker push", func() error { return pushImage("push.log") }); err != nil {
		return fig, err
	}
	if err := timed(&fig.Warm, "docker build, nothing changed", func() error { return build("warm.log") }); err != nil {
		return fig, err
	}
	ep := filepath.Join(dir, "dockerEntrypoint.sh")
	changed := strings.Replace(entrypoint, "set -e\n", fmt.Sprintf("set -e\n: changed %d\n", time.Now().UnixNano()), 1)
	if err := os.WriteFile(ep, []byte(changed), 0o755); err != nil {
		return fig, err
	}
	if err := timed(&fig.EntrypointBuild, "docker build, one line of the entrypoint changed", func() error { return build("entrypoint.log") }); err != nil {
		return fig, err
	}
	if err := timed(&fig.EntrypointPush, "docker push, one line of the entrypoint changed", func() error { return pushImage("entrypoint-push.log") }); err != nil {
		return fig, err
	}
	img, err := remote.Image(repo.Tag("peer"), remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return fig, fmt.Errorf("reading the peer's image back: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return fig, err
	}
	fig.Size = m.Config.Size
	for _, l := range m.Layers {
		fig.Size += l.Size
	}
	fig.Layers = len(m.Layers)
	d, err := img.Digest()
	fig.Digest = d.String()
	return fig, err
}

// removeBuilt removes the peer's image and every image its builds made
// (the build stage's steps too, which no tag holds), read from the build
// logs: the bases and what others built stay.
func removeBuilt(ctx context.Context, tag string, logs []string, bases ...string) {
	dockercli.Run(ctx, "image", "rm", tag)
	keep := map[string]bool{}
	for _, b := range bases {
		if id, err := dockercli.Inspect(ctx, "image", b, "{{.Id}}"); err == nil {
			keep[strings.TrimPrefix(id, "sha256:")[:12]] = true
		}
	}
	var ids []string
	for _, log := range logs {
		b, _ := os.ReadFile(log)
		for _, line := range strings.Split(string(b), "\n") {
			if id, ok := strings.CutPrefix(strings.TrimSpace(line), "---> "); ok && len(id) >= 12 && strings.Trim(id, "0123456789abcdef") == "" && !keep[id[:12]] {
				ids = append(ids, id)
			}
		}
	}
	for i := len(ids) - 1; i >= 0; i-- { // the last steps first: a parent goes once its children are gone
		dockercli.Run(ctx, "image", "rm", ids[i])
	}
}

// docker runs one docker command with its output in log, which an error
// quotes the end of.
func docker(ctx context.Context, log string, args ...string) error {
	f, err := os.Create(log)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		return fmt.Errorf("docker %s: %v (log %s):\n%s", args[0], err, log, strings.Join(lines, "\n"))
	}
	return nil
}
