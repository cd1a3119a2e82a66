package pipeline

import (
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
)

// unreadableLayer has the digests of its layer but no bytes.
type unreadableLayer struct{ v1.Layer }

func (unreadableLayer) Uncompressed() (io.ReadCloser, error) { return nil, errors.New("not readable") }

// TestALayersUncompressedSizeIsReadOnce: the report's uncompressed size
// of a layer is its bytes, counted once and then remembered by diffID (a
// remembered canonical layer would otherwise be rewritten to be counted).
func TestALayersUncompressedSizeIsReadOnce(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	l, err := random.Layer(4096, "application/vnd.oci.image.layer.v1.tar+gzip")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := l.Uncompressed()
	want, _ := io.Copy(io.Discard, rc)
	rc.Close()
	if n := uncompressedSize(unreadableLayer{l}); n != 0 {
		t.Fatalf("an unreadable layer, not yet counted: %d, want 0 (unknown)", n)
	}
	if n := uncompressedSize(l); n != want || n < 4096 {
		t.Fatalf("size %d, its bytes %d", n, want)
	}
	if n := uncompressedSize(unreadableLayer{l}); n != want {
		t.Fatalf("the remembered size %d, want %d without reading", n, want)
	}
}
