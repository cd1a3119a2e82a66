package baseimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// DefaultPath is the PATH of Debian images.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Image assembles layers and a runtime config into a linux/amd64 image with a
// fixed creation time, so identical inputs give an identical digest.
func Image(cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	if len(cfg.Env) == 0 {
		cfg.Env = []string{"PATH=" + DefaultPath}
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: Epoch},
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(base, layers...)
}

// Push writes img to ref and returns the pushed reference pinned by digest
// (repo@sha256:…). Credentials come from the Docker config file, the way every
// registry client finds them; nothing is passed on a command line.
func Push(ctx context.Context, img v1.Image, ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("push %s: %w (is the registry running? go run mage.go registry:up)", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return r.Context().Digest(d.String()).String(), nil
}

// Build makes the Debian base for spec, pushes it to ref (a tag) and returns
// repo@digest. The layer is cached next to the tree, so a second call costs a
// digest check and a no-op push.
func Build(ctx context.Context, p *progress.Reporter, spec Spec, ref string) (string, error) {
	dir, err := Rootfs(ctx, p, spec)
	if err != nil {
		return "", err
	}
	// The digest pushed last time, if the registry still serves it: reading
	// the layer back to compute the digest costs seconds on every release.
	memo := dir + ".pushed-" + strings.NewReplacer("/", "_", ":", "_").Replace(ref)
	if b, err := os.ReadFile(memo); err == nil {
		if r, err := name.ParseReference(string(b)); err == nil {
			if _, err := remote.Head(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err == nil {
				p.Start("base %s", ref).Cached()
				return string(b), nil
			}
		}
	}
	step := p.Start("image layer from %s", filepath.Base(dir))
	layer, err := DirLayer(dir, dir+".layer.tar.gz")
	if err != nil {
		return "", step.Fail(err)
	}
	step.Done()
	spec = spec.normalized()
	img, err := Image(v1.Config{
		Cmd: []string{"/bin/bash"},
		Labels: map[string]string{
			"org.lhcbdirac.pipeline.debian.suite":    spec.Suite,
			"org.lhcbdirac.pipeline.debian.variant":  spec.Variant,
			"org.lhcbdirac.pipeline.debian.packages": strings.Join(spec.Packages, ","),
		},
	}, layer)
	if err != nil {
		return "", err
	}
	step = p.Start("push %s", ref)
	pinned, err := Push(ctx, img, ref)
	if err != nil {
		return "", step.Fail(err)
	}
	step.Done()
	return pinned, os.WriteFile(memo, []byte(pinned), 0o644)
}

// BuildAll makes several bases at once, as Build does each, and returns
// their pinned references in the order of specs (refs[i] is specs[i]'s
// tag). The debootstrap they share is made first (once); the trees are
// then made concurrently, as many at a time as the machine has cores
// (apt, dpkg and gzip use one each). Safe to call beside the engine build
// and other Build calls: every cache entry has its lock.
func BuildAll(ctx context.Context, p *progress.Reporter, specs []Spec, refs []string) ([]string, error) {
	if len(specs) != len(refs) {
		return nil, fmt.Errorf("BuildAll: %d specs but %d references", len(specs), len(refs))
	}
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, err
		}
	}
	out := make([]string, len(specs))
	errs := make([]error, len(specs))
	sem := make(chan struct{}, max(2, runtime.NumCPU()))
	var wg sync.WaitGroup
	for i := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = Build(ctx, p, specs[i], refs[i])
			if errs[i] != nil {
				errs[i] = fmt.Errorf("base %s: %w", refs[i], errs[i])
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// StandardPath is the PATH every image starts with (the bases set none).
const StandardPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// tagRE is the OCI distribution spec's tag.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// CheckTag refuses a name that is not a valid image tag (".hidden", "-rm",
// "..", "a#b", "a/b").
func CheckTag(name string) error {
	if !tagRE.MatchString(name) {
		return fmt.Errorf("%q is not a valid image tag: 1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or - (e.g. bookworm-git)", name)
	}
	return nil
}
