// Package push publishes the release's images: first by digest only (no tag
// moves, so a failure leaves every tag where it was), verified by reading
// each manifest back; then, once every image has passed its smoke tests,
// the version tag (and devel for a -pre version, as the seed's CI did) is
// moved to those digests and verified again.
//
// Images leave Dagger through the project's own registry (the engine
// publishes to a staging repository there: ExportVia) or, where that
// registry does not run, as OCI layout tarballs (Export); their canonical
// form is pushed with go-containerregistry, so the digest pushed is the
// digest the release learned before its smoke tests.
// Registry credentials come from the Docker config file (docker login, or
// $DOCKER_CONFIG in CI), the way every registry client finds them: they are
// never passed to containers, written into layers or printed.
package push

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"dagger.io/dagger"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// Pushed is an image in the registry, by digest.
type Pushed struct {
	Name   string // lhcbdirac, pinger, mesos-slave
	Repo   string // registry/repository
	Digest string // sha256:…
	Size   int64  // config plus compressed layers, in bytes
}

// Ref is repo@digest.
func (p Pushed) Ref() string { return p.Repo + "@" + p.Digest }

func opts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

// ByDigest exports ctr from Dagger and pushes it to repo by digest, then
// reads the manifest back and checks the digest.
func ByDigest(ctx context.Context, ctr *dagger.Container, imageName, repo, workDir string) (Pushed, error) {
	l, err := Export(ctx, ctr, imageName, repo, workDir)
	if err != nil {
		return Pushed{}, err
	}
	defer l.Close()
	return l.Push(ctx)
}

// Local is an image exported from Dagger in its canonical form: its digest
// is known, nothing is pushed yet (a release learns what it will push, and
// renders its apps by digest, before its smoke tests; it pushes only what
// passed).
type Local struct {
	Name, Repo string
	Digest     string // sha256:…, canonical
	Size       int64  // config plus compressed layers
	// InRegistry is true when the registry already holds the digest (an
	// earlier run pushed the same content): Push then only checks it.
	InRegistry bool

	img     v1.Image // nil when InRegistry and not unpacked
	from    v1.Hash  // the digest Dagger exported
	cleanup func()
}

// Ref is repo@digest.
func (l *Local) Ref() string { return l.Repo + "@" + l.Digest }

// Close removes what the export left on disk.
func (l *Local) Close() {
	if l != nil && l.cleanup != nil {
		l.cleanup()
		l.cleanup = nil
	}
}

// Image is the image itself: the exported one, or the registry's copy of
// the same digest when nothing was unpacked.
func (l *Local) Image(ctx context.Context) (v1.Image, error) {
	if l.img != nil {
		return l.img, nil
	}
	r, err := name.NewRepository(l.Repo)
	if err != nil {
		return nil, err
	}
	return remote.Image(r.Digest(l.Digest), opts(ctx)...)
}

// Export exports ctr from Dagger and makes its canonical form. Dagger
// stamps the build time into the config and into the directories a step
// touches, so the exported digest changes whenever its cache is cold. The
// canonical form — every time zeroed, host fields dropped, by
// go-containerregistry — is what is pushed: the same inputs give the same
// digest. Rewriting layers costs seconds, so the mapping from an exported
// digest to its canonical one is remembered, for the image (read from the
// tar's index without unpacking it) and for each layer (canonical.go: an
// image rebuilt for one changed program rewrites that program's layer).
func Export(ctx context.Context, ctr *dagger.Container, imageName, repo, workDir string) (*Local, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repo, err)
	}
	tarPath, removeTar, err := exportTar(ctx, ctr, workDir)
	if err != nil {
		return nil, fmt.Errorf("exporting %s from Dagger: %w", imageName, err)
	}
	l := &Local{Name: imageName, Repo: r.String(), cleanup: removeTar}
	fail := func(err error) (*Local, error) {
		l.Close()
		return nil, fmt.Errorf("exporting %s from Dagger: %w", imageName, err)
	}
	if l.from, err = exportedDigest(tarPath); err != nil {
		return fail(err)
	}
	if l.remembered(ctx, r) {
		return l, nil
	}
	exported, cleanup, err := openLayout(tarPath, workDir)
	if err != nil {
		return fail(err)
	}
	l.cleanup = func() { cleanup(); removeTar() }
	if err := l.canonicalOf(ctx, r, exported); err != nil {
		return fail(err)
	}
	return l, nil
}

// ExportVia is Export through a registry instead of a tarball: the engine
// publishes ctr to staging (a repository of the project's own registry,
// which the engine reaches on the host's loopback), and the canonical
// form is made from there. The engine's push sends only the blobs the
// registry lacks, and the canonical step reads only the layers it has not
// rewritten before (by their digests, from the manifest), so a one-line
// change moves its one small layer, where the tarball route writes the
// whole image to the host (280 MB for lhcbdirac) and unpacks it again. The
// canonical digest is the same by either route: it depends on the files
// and the config alone (a test compares them).
func ExportVia(ctx context.Context, ctr *dagger.Container, imageName, repo, staging string) (*Local, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repo, err)
	}
	st, err := name.NewTag(staging + ":exported")
	if err != nil {
		return nil, fmt.Errorf("staging repository %q: %w", staging, err)
	}
	fail := func(err error) (*Local, error) {
		return nil, fmt.Errorf("exporting %s from Dagger through %s: %w", imageName, st.Context(), err)
	}
	ref, err := ctr.Publish(ctx, st.String(), dagger.ContainerPublishOpts{MediaTypes: dagger.ImageMediaTypesOcimediaTypes})
	if err != nil {
		return fail(err)
	}
	_, dg, _ := strings.Cut(ref, "@")
	l := &Local{Name: imageName, Repo: r.String()}
	if l.from, err = v1.NewHash(dg); err != nil {
		return fail(fmt.Errorf("the engine published %q: %w", ref, err))
	}
	if l.remembered(ctx, r) {
		return l, nil
	}
	exported, err := remote.Image(st.Context().Digest(dg), opts(ctx)...)
	if err != nil {
		return fail(err)
	}
	if err := l.canonicalOf(ctx, r, exported); err != nil {
		return fail(err)
	}
	return l, nil
}

// remembered takes l's canonical digest from the memo of its exported
// digest, when the memo knows it and r holds it: nothing need be read.
func (l *Local) remembered(ctx context.Context, r name.Repository) bool {
	p, ok := remembered(ctx, r, l.from)
	if ok {
		l.Digest, l.Size, l.InRegistry = p.Digest, p.Size, true
	}
	return ok
}

// canonicalOf makes l the canonical form of the exported image (whose
// digest must be l.from) and learns whether r holds it already.
func (l *Local) canonicalOf(ctx context.Context, r name.Repository, exported v1.Image) error {
	if d, err := exported.Digest(); err != nil || d != l.from {
		return fmt.Errorf("the exported image is %v, its index names %s (%v)", d, l.from, err)
	}
	memo := newLayerMemo()
	img, err := canonical(exported, memo)
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	memo.remember()
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	l.img, l.Digest, l.Size = img, d.String(), m.Config.Size
	for _, layer := range m.Layers {
		l.Size += layer.Size
	}
	if desc, err := remote.Head(r.Digest(l.Digest), opts(ctx)...); err == nil && desc.Digest == d {
		l.InRegistry = true
	}
	return nil
}

// Push writes the image to its repository by digest (unless the registry
// holds it already), reads the manifest back and checks the digest.
func (l *Local) Push(ctx context.Context) (Pushed, error) {
	r, err := name.NewRepository(l.Repo)
	if err != nil {
		return Pushed{}, err
	}
	ref := r.Digest(l.Digest)
	if !l.InRegistry {
		if err := remote.Write(ref, l.img, opts(ctx)...); err != nil {
			return Pushed{}, fmt.Errorf("pushing %s to %s: %w (credentials come from the Docker config: docker login %s)", l.Name, ref, err, r.RegistryStr())
		}
	}
	desc, err := remote.Head(ref, opts(ctx)...)
	if err != nil {
		return Pushed{}, fmt.Errorf("reading %s back: %w", ref, err)
	}
	if desc.Digest.String() != l.Digest {
		return Pushed{}, fmt.Errorf("%s: the registry serves %s", ref, desc.Digest)
	}
	remember(l.from, l.Digest, l.Size)
	return Pushed{Name: l.Name, Repo: l.Repo, Digest: l.Digest, Size: l.Size}, nil
}

func memoPath(from v1.Hash) string {
	dir, err := cachedir.Sub("canonical")
	if err != nil {
		return ""
	}
	return filepath.Join(dir, from.Hex)
}

// remembered returns the canonical digest of an exported image when it is
// known and the repository already holds it.
func remembered(ctx context.Context, r name.Repository, from v1.Hash) (Pushed, bool) {
	b, err := os.ReadFile(memoPath(from))
	if err != nil {
		return Pushed{}, false
	}
	var p Pushed
	if _, err := fmt.Sscanf(string(b), "%s %d", &p.Digest, &p.Size); err != nil {
		return Pushed{}, false
	}
	desc, err := remote.Head(r.Digest(p.Digest), opts(ctx)...)
	if err != nil || desc.Digest.String() != p.Digest {
		return Pushed{}, false
	}
	return p, true
}

func remember(from v1.Hash, digest string, size int64) {
	if p := memoPath(from); p != "" {
		os.WriteFile(p, []byte(fmt.Sprintf("%s %d\n", digest, size)), 0o644)
	}
}

// Tags are the tags a release moves: the version itself, and devel for a
// pre-release; a hotfix build (hotfix: its commits, short) gets a tag of
// its own, <version>-hotfix.<commits>, and leaves the version's alone.
func Tags(v version.Version, hotfix string) []string {
	switch {
	case hotfix != "":
		return []string{v.Raw + "-hotfix." + hotfix}
	case v.Pre:
		return []string{v.Raw, "devel"}
	}
	return []string{v.Raw}
}

// Moving are the tags that follow the newest release (devel); every
// other tag names one content for ever.
var Moving = map[string]bool{"devel": true}

// TagMovedError is a release that would move a tag to other content.
type TagMovedError struct {
	Tag          string // repo:tag
	Has, Release string // the digest it names, the digest this release built
}

func (e *TagMovedError) Error() string {
	return fmt.Sprintf("%s already names %s, and this release built %s: a version's tag never moves to other content (release a new version, or build a hotfix: it gets a tag of its own)", e.Tag, e.Has, e.Release)
}

// CheckTags refuses a tag (other than a moving one) that already names
// another digest than the image's; a tag that names this digest, or none,
// is fine.
func CheckTags(ctx context.Context, images []Pushed, tags []string) error {
	var errs []error
	for _, p := range images {
		r, err := name.NewRepository(p.Repo)
		if err != nil {
			return err
		}
		for _, tag := range tags {
			if Moving[tag] {
				continue
			}
			desc, err := remote.Head(r.Tag(tag), opts(ctx)...)
			var te *transport.Error
			switch {
			case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
				continue
			case err != nil:
				errs = append(errs, fmt.Errorf("reading %s: %w", r.Tag(tag), err))
			case desc.Digest.String() != p.Digest:
				errs = append(errs, &TagMovedError{Tag: r.Tag(tag).String(), Has: desc.Digest.String(), Release: p.Digest})
			}
		}
	}
	return errors.Join(errs...)
}

// MoveTags points the tags of every image at its pushed digest and
// verifies each. Call it only when every image has passed.
func MoveTags(ctx context.Context, images []Pushed, tags []string) error {
	var errs []error
	for _, p := range images {
		r, err := name.NewRepository(p.Repo)
		if err != nil {
			return err
		}
		desc, err := remote.Get(r.Digest(p.Digest), opts(ctx)...)
		if err != nil {
			return fmt.Errorf("%s is no longer in the registry: %w", p.Ref(), err)
		}
		for _, tag := range tags {
			t := r.Tag(tag)
			if err := remote.Tag(t, desc, opts(ctx)...); err != nil {
				errs = append(errs, fmt.Errorf("tagging %s as %s: %w", p.Ref(), t, err))
				continue
			}
			got, err := remote.Head(t, opts(ctx)...)
			if err != nil {
				errs = append(errs, fmt.Errorf("reading %s back: %w", t, err))
			} else if got.Digest.String() != p.Digest {
				errs = append(errs, fmt.Errorf("%s points at %s, not %s", t, got.Digest, p.Digest))
			}
		}
	}
	return errors.Join(errs...)
}

// export writes the container as an OCI layout under workDir and opens it;
// cleanup removes the layout once the image has been pushed.
// exportTar writes the container as an OCI layout tar in workDir.
func exportTar(ctx context.Context, ctr *dagger.Container, workDir string) (string, func(), error) {
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(workDir, "oci-*.tar")
	if err != nil {
		return "", nil, err
	}
	f.Close()
	remove := func() { os.Remove(f.Name()) }
	if _, err := ctr.AsTarball(dagger.ContainerAsTarballOpts{MediaTypes: dagger.ImageMediaTypesOcimediaTypes}).Export(ctx, f.Name()); err != nil {
		remove()
		return "", nil, err
	}
	return f.Name(), remove, nil
}

// exportedDigest is the digest of the one manifest an OCI layout tar's
// index.json names, read without unpacking the blobs (tar skips them).
func exportedDigest(tarPath string) (v1.Hash, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return v1.Hash{}, errors.New("the export holds no index.json")
		}
		if err != nil {
			return v1.Hash{}, err
		}
		if filepath.Clean("/"+h.Name) != "/index.json" {
			continue
		}
		im, err := v1.ParseIndexManifest(io.LimitReader(tr, 1<<20))
		if err != nil {
			return v1.Hash{}, fmt.Errorf("the export's index.json: %w", err)
		}
		if len(im.Manifests) != 1 {
			return v1.Hash{}, fmt.Errorf("the export holds %d manifests, want 1", len(im.Manifests))
		}
		return im.Manifests[0].Digest, nil
	}
}

// openLayout unpacks an OCI layout tar into a directory of workDir and
// returns its one image.
func openLayout(tarPath, workDir string) (img v1.Image, cleanup func(), err error) {
	tmp, err := os.MkdirTemp(workDir, "oci-")
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	if err = untar(tarPath, tmp); err != nil {
		return nil, nil, err
	}
	idx, err := layout.ImageIndexFromPath(tmp)
	if err != nil {
		return nil, nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	if len(im.Manifests) != 1 {
		return nil, nil, fmt.Errorf("the export holds %d manifests, want 1", len(im.Manifests))
	}
	img, err = idx.Image(im.Manifests[0].Digest)
	return img, cleanup, err
}

// untar extracts the regular files and directories of an OCI layout tar,
// refusing any path that would leave dir.
func untar(tarPath, dir string) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.Clean("/"+h.Name))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("export holds a path outside the layout: %q", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return err
			}
		}
	}
}
