package gobuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// GoRoot is where the toolchain is in the build container.
const GoRoot = "/usr/local/go"

// toolchainSkip are GOROOT's directories no build reads.
var toolchainSkip = []string{"test", "doc", "api", "misc"}

// ToolchainImage is base (a Debian image pinned by digest) with the host's
// Go toolchain at GoRoot: the image every Go build starts from, pushed
// beside base and returned pinned by digest. Handing the toolchain to
// Dagger as a host directory cost every build about 2.5 s (15 000 files
// synced and copied, whether they changed or not); an image pinned by
// digest costs nothing once the engine has it. The image is made once per
// toolchain (its version and place) and base, and remembered.
func ToolchainImage(ctx context.Context, p *progress.Reporter, base string) (string, error) {
	// The release asks in its inputs stage (beside the modules) and the
	// builder again; the answer stands for the process.
	if ref, ok := toolchainImages.Load(base); ok {
		return ref.(string), nil
	}
	ref, err := toolchainImage(ctx, p, base)
	if err == nil {
		toolchainImages.Store(base, ref)
	}
	return ref, err
}

var toolchainImages sync.Map // base → the toolchain image made on it

func toolchainImage(ctx context.Context, p *progress.Reporter, base string) (string, error) {
	goroot, err := goEnv(ctx, "GOROOT")
	if err != nil {
		return "", err
	}
	goversion, err := goEnv(ctx, "GOVERSION")
	if err != nil {
		return "", err
	}
	b, err := name.NewDigest(base)
	if err != nil {
		return "", fmt.Errorf("the Go builder's base %q is not pinned by digest: %w", base, err)
	}
	h := sha256.Sum256([]byte(goroot + "\x00" + goversion + "\x00" + b.DigestStr()))
	key := hex.EncodeToString(h[:])[:16]
	ref := b.Context().Tag(tagSafe(goversion) + "-" + key).String()
	dir, err := cachedir.Sub("gotoolchain")
	if err != nil {
		return "", err
	}
	memo := filepath.Join(dir, key+".pushed")
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if m, err := os.ReadFile(memo); err == nil {
		if r, err := name.ParseReference(string(m)); err == nil {
			if _, err := remote.Head(r, opts...); err == nil {
				p.Start("Go toolchain image %s", goversion).Cached()
				return string(m), nil
			}
		}
	}
	step := p.Start("Go toolchain image %s (%s on the builder's base)", goversion, goroot)
	layer, err := baseimage.TreeLayer(goroot, GoRoot, toolchainSkip, filepath.Join(dir, key+".layer.tar.gz"))
	if err != nil {
		return "", step.Fail(err)
	}
	img, err := remote.Image(b, opts...)
	if err != nil {
		return "", step.Fail(fmt.Errorf("reading the Go builder's base %s: %w", base, err))
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return "", step.Fail(err)
	}
	pinned, err := baseimage.Push(ctx, img, ref)
	if err != nil {
		return "", step.Fail(err)
	}
	step.Done()
	return pinned, os.WriteFile(memo, []byte(strings.TrimSpace(pinned)), 0o644)
}

// tagSafe is v as a tag may hold it: a development toolchain's version
// ("devel go1.27-abc Tue …") has spaces and colons.
func tagSafe(v string) string {
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 100)])
}
