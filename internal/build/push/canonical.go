package push

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
)

// canonical is mutate.Canonical(img), layer by layer remembered: rewriting
// a layer (every time zeroed, compressed again) costs seconds per hundred
// megabytes, and most layers of a rebuilt image are the ones exported
// before — the lhcbdirac tree stays when one program changes. A layer
// whose exported digest was canonicalized before is not read: its
// canonical digests come from the memo (memo), and its content is
// rewritten only if a push needs it. Every other layer is rewritten as
// mutate.Canonical does and remembered once its digests are known
// (remember). The image is the one mutate.Canonical gives at gzip level
// Level, to the byte (a test compares them).
func canonical(img v1.Image, memo *layerMemo) (v1.Image, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("getting image layers: %w", err)
	}
	ocf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("getting original config file: %w", err)
	}
	// As mutate.Time: each layer with its history entry, empty-layer
	// entries kept in between, leftover entries at the end.
	canon, err := memo.all(layers)
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, max(len(ocf.History), len(layers)))
	var hi, ai int
	for li := 0; li < len(layers); ai, li = ai+1, li+1 {
		l := canon[li]
		for ; hi < len(ocf.History); hi++ {
			adds[ai].History = ocf.History[hi]
			if ocf.History[hi].EmptyLayer {
				ai++
				continue
			}
			hi++
			break
		}
		if ai < len(adds) {
			adds[ai].Layer = l
		}
	}
	for ; hi < len(ocf.History); hi, ai = hi+1, ai+1 {
		adds[ai].History = ocf.History[hi]
	}
	out, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, fmt.Errorf("appending layers: %w", err)
	}
	cf, err := out.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := cf.DeepCopy()
	cfg.Architecture, cfg.OS, cfg.OSVersion, cfg.Config = ocf.Architecture, ocf.OS, ocf.OSVersion, ocf.Config
	cfg.Created = v1.Time{Time: time.Time{}}
	for i, h := range cfg.History {
		h.Created = v1.Time{Time: time.Time{}}
		h.CreatedBy, h.Comment, h.EmptyLayer, h.Author = ocf.History[i].CreatedBy, ocf.History[i].Comment, ocf.History[i].EmptyLayer, ""
		cfg.History[i] = h
	}
	// As mutate.Canonical: no host-dependent fields.
	cfg.Container, cfg.Config.Hostname, cfg.DockerVersion = "", "", "" //nolint:staticcheck // DockerVersion, as upstream
	return mutate.ConfigFile(out, cfg)
}

// Level is the gzip level of the canonical layers: gzip's default, not
// go-containerregistry's fastest — 12 % smaller for the lhcbdirac image
// (280 MB instead of 318 MB, what docker push sends for the same files),
// for about 13 s more when its tree and base are new; a layer rewritten
// before costs nothing (the memo).
const Level = gzip.DefaultCompression

// timeLayer is one layer as mutate.Canonical rewrites it (read and
// rewritten here: the digests are computed on the way).
func timeLayer(l v1.Layer) (v1.Layer, error) {
	one, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, err
	}
	t, err := mutate.Time(one, time.Time{}, tarball.WithCompressionLevel(Level), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	ls, err := t.Layers()
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// layerMemo remembers, by exported layer digest, the canonical layer's
// digests. Its directory is keyed by what makes the rewrite what it is:
// the Go toolchain (its gzip) and go-containerregistry's version.
type layerMemo struct {
	dir string // "" remembers nothing
	mu  sync.Mutex
	new []pending
}

type pending struct {
	from v1.Hash
	l    v1.Layer
}

type known struct {
	digest, diffID v1.Hash
	size           int64
	mediaType      types.MediaType
}

func newLayerMemo() *layerMemo {
	dir, err := cachedir.Sub("canonical-layers", rewriteVersion())
	if err != nil {
		return &layerMemo{}
	}
	return &layerMemo{dir: dir}
}

func rewriteVersion() string {
	v := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/google/go-containerregistry" {
				v = m.Version
			}
		}
	}
	return fmt.Sprintf("%s-ggcr-%s-gzip%d", runtime.Version(), v, Level)
}

// all returns the canonical layers of layers, rewriting the new ones at
// once, as many as there are cores (each is one gzip stream).
func (m *layerMemo) all(layers []v1.Layer) ([]v1.Layer, error) {
	out := make([]v1.Layer, len(layers))
	errs := make([]error, len(layers))
	sem := make(chan struct{}, max(1, runtime.NumCPU()))
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = m.canonical(l)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// canonical returns l's canonical layer: known, or to be rewritten.
func (m *layerMemo) canonical(l v1.Layer) (v1.Layer, error) {
	from, err := l.Digest()
	if err != nil {
		return nil, err
	}
	if k, ok := m.lookup(from); ok {
		return &knownLayer{k: k, exported: l}, nil
	}
	tl, err := timeLayer(l)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.new = append(m.new, pending{from, tl})
	m.mu.Unlock()
	return tl, nil
}

func (m *layerMemo) lookup(from v1.Hash) (known, bool) {
	if m.dir == "" {
		return known{}, false
	}
	b, err := os.ReadFile(filepath.Join(m.dir, from.Hex))
	if err != nil {
		return known{}, false
	}
	var k known
	var digest, diffID, mt string
	if _, err := fmt.Sscanf(string(b), "%s %s %d %s", &digest, &diffID, &k.size, &mt); err != nil {
		return known{}, false
	}
	if k.digest, err = v1.NewHash(digest); err != nil {
		return known{}, false
	}
	if k.diffID, err = v1.NewHash(diffID); err != nil {
		return known{}, false
	}
	k.mediaType = types.MediaType(mt)
	return k, true
}

// remember records the layers rewritten since the memo was made; their
// digests are known once the image's digest has been computed.
func (m *layerMemo) remember() {
	if m.dir == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.new {
		d, err1 := p.l.Digest()
		id, err2 := p.l.DiffID()
		size, err3 := p.l.Size()
		mt, err4 := p.l.MediaType()
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		_ = cachedir.WriteFile(filepath.Join(m.dir, p.from.Hex), fmt.Appendf(nil, "%s %s %d %s\n", d, id, size, mt))
	}
	m.new = nil
}

// knownLayer is a canonical layer whose digests the memo gave; its
// content is rewritten from the exported layer only when asked for (a
// registry that lacks the blob), and must then match.
type knownLayer struct {
	k        known
	exported v1.Layer
	once     sync.Once
	content  v1.Layer
	err      error
}

func (l *knownLayer) Digest() (v1.Hash, error)            { return l.k.digest, nil }
func (l *knownLayer) DiffID() (v1.Hash, error)            { return l.k.diffID, nil }
func (l *knownLayer) Size() (int64, error)                { return l.k.size, nil }
func (l *knownLayer) MediaType() (types.MediaType, error) { return l.k.mediaType, nil }

// SameFiles is the exported layer: the same files, their times not yet
// zeroed — what reading the files (the SBOM's scan), not the layer's
// bytes, needs, without rewriting the layer.
func (l *knownLayer) SameFiles() v1.Layer { return l.exported }

func (l *knownLayer) Compressed() (io.ReadCloser, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	return l.content.Compressed()
}

func (l *knownLayer) Uncompressed() (io.ReadCloser, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	return l.content.Uncompressed()
}

func (l *knownLayer) check() error {
	l.once.Do(func() { l.content, l.err = timeLayer(l.exported) })
	if l.err != nil {
		return l.err
	}
	d, err := l.content.Digest()
	if err != nil {
		return err
	}
	if d != l.k.digest {
		return fmt.Errorf("the canonical layer remembered as %s is %s when rewritten: remove %s", l.k.digest, d, filepath.Join("canonical-layers", rewriteVersion()))
	}
	return nil
}
