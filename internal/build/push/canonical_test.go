package push

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
)

// stamped is a layer as Dagger exports one: its entries carry the build's
// time.
func stamped(t *testing.T, files map[string]string, when time.Time) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range []string{"a", "b", "c"} {
		if text, ok := files[n]; ok {
			tw.WriteHeader(&tar.Header{Name: "opt/" + n, Mode: 0o644, Size: int64(len(text)), ModTime: when, AccessTime: when, ChangeTime: when, Format: tar.FormatPAX})
			tw.Write([]byte(text))
		}
	}
	tw.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// reads counts how often a layer's content is read.
type reads struct {
	v1.Layer
	n *atomic.Int32
}

func (r reads) Compressed() (io.ReadCloser, error)   { r.n.Add(1); return r.Layer.Compressed() }
func (r reads) Uncompressed() (io.ReadCloser, error) { r.n.Add(1); return r.Layer.Uncompressed() }

func exportedImage(t *testing.T, when time.Time, n *atomic.Int32, entrypoint string) v1.Image {
	t.Helper()
	tree := reads{stamped(t, map[string]string{"a": "the big tree", "b": "more of it"}, when), n}
	prog := stamped(t, map[string]string{"c": entrypoint}, when)
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: tree, History: v1.History{CreatedBy: "tree", Created: v1.Time{Time: when}, Author: "dagger"}},
		mutate.Addendum{History: v1.History{CreatedBy: "env", EmptyLayer: true, Created: v1.Time{Time: when}}},
		mutate.Addendum{Layer: prog, History: v1.History{CreatedBy: "entrypoint", Created: v1.Time{Time: when}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: when}
	cf.Config.Hostname, cf.Container = "buildhost", "abc"
	cf.Config.Entrypoint = []string{"/opt/c"}
	cf.Architecture, cf.OS = "amd64", "linux"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestCanonicalIsMutateCanonicalAndRemembersLayers: the image is the one
// mutate.Canonical makes, to the digest, with the memo empty and with it
// full; with it full, a layer exported before is not read again — only
// the changed one is rewritten — and the digests stay the same.
func TestCanonicalIsMutateCanonicalAndRemembersLayers(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	var n atomic.Int32
	first := exportedImage(t, time.Unix(1700000000, 0), &n, "v1")
	want, err := mutate.Canonical(first, tarball.WithCompressionLevel(Level))
	if err != nil {
		t.Fatal(err)
	}
	wantDigest, _ := want.Digest()

	memo := newLayerMemo()
	got, err := canonical(first, memo)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != wantDigest {
		t.Fatalf("canonical gave %s, mutate.Canonical %s", d, wantDigest)
	}
	memo.remember()

	// The same export again, then one whose last layer changed: the tree
	// is not read, and each digest is mutate.Canonical's.
	for _, ep := range []string{"v1", "v2"} {
		var m atomic.Int32
		again := exportedImage(t, time.Unix(1700000000, 0), &m, ep)
		want, _ := mutate.Canonical(again, tarball.WithCompressionLevel(Level))
		wantDigest, _ := want.Digest()
		m.Store(0)
		img, err := canonical(again, newLayerMemo())
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if d != wantDigest {
			t.Fatalf("entrypoint %s: canonical gave %s, mutate.Canonical %s", ep, d, wantDigest)
		}
		if m.Load() != 0 {
			t.Errorf("entrypoint %s: the remembered tree layer was read %d times", ep, m.Load())
		}
		// A registry without the blob gets the same bytes.
		ls, _ := img.Layers()
		rc, err := ls[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		wl, _ := want.Layers()
		if a, b := digestOf(t, ls[0]), digestOf(t, wl[0]); a != b {
			t.Fatalf("the remembered layer's content is %s, mutate.Canonical's %s", a, b)
		}
	}
}

func digestOf(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h, _, err := v1.SHA256(rc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestARememberedLayerNamesTheExportForItsFiles: the SBOM's scan reads a
// remembered canonical layer's files through SameFiles, the exported
// layer, without the rewrite: it holds the same names and contents.
func TestARememberedLayerNamesTheExportForItsFiles(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	var n atomic.Int32
	first := exportedImage(t, time.Unix(1700000000, 0), &n, "v1")
	memo := newLayerMemo()
	img, err := canonical(first, memo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.Digest(); err != nil {
		t.Fatal(err)
	}
	memo.remember()
	again, err := canonical(exportedImage(t, time.Unix(1700000000, 0), &n, "v1"), newLayerMemo())
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := again.Layers()
	kl, ok := ls[0].(interface{ SameFiles() v1.Layer })
	if !ok {
		t.Fatalf("the remembered layer (%T) names no layer with its files", ls[0])
	}
	files := func(l v1.Layer) map[string]string {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		out := map[string]string{}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			out[h.Name] = string(b)
		}
	}
	got, want := files(kl.SameFiles()), files(ls[0])
	if !maps.Equal(got, want) || len(want) == 0 {
		t.Errorf("SameFiles holds %v, the canonical layer %v", got, want)
	}
}
