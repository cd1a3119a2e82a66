package sbom_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/sbom"
)

type entry struct {
	name string
	typ  byte
	data []byte
}

func tarLayer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o755, Typeflag: e.typ, Size: int64(len(e.data))}
		if e.typ == tar.TypeDir {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// trickyImage removes, replaces and hides Go binaries in every way
// mutate.Extract knows: a whiteout, an opaque directory (with a new file
// under it in the same layer), a file replacing a directory, a script
// replacing a binary, a "./"-prefixed name replaced by its clean twin.
func trickyImage(t *testing.T, bin []byte) (v1.Image, []v1.Layer) {
	layers := []v1.Layer{
		tarLayer(t,
			entry{"var/lib/dpkg/status", tar.TypeReg, []byte(status)},
			entry{"usr/bin/a", tar.TypeReg, bin}, entry{"usr/bin/b", tar.TypeReg, bin},
			entry{"opt/x/", tar.TypeDir, nil}, entry{"opt/x/c", tar.TypeReg, bin},
			entry{"opt/y/", tar.TypeDir, nil}, entry{"opt/y/d", tar.TypeReg, bin},
			entry{"./srv/e", tar.TypeReg, bin}, entry{"usr/bin/kept", tar.TypeReg, bin},
			entry{"usr/lib/fake.so", tar.TypeReg, append([]byte("\x7fELF"), bytes.Repeat([]byte{0}, 200)...)}),
		tarLayer(t,
			entry{"usr/bin/.wh.b", tar.TypeReg, nil},
			entry{"opt/x/.wh..wh..opq", tar.TypeReg, nil}, entry{"opt/x/c2", tar.TypeReg, bin},
			entry{"opt/y", tar.TypeReg, []byte("now a file\n")},
			entry{"usr/bin/a", tar.TypeReg, []byte("#!/bin/sh\necho a script now, long enough to be read past its head\n")}),
		tarLayer(t, entry{"srv/e", tar.TypeReg, bin}, entry{"usr/local/bin/new", tar.TypeReg, bin}),
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img, layers
}

// extracted are the Go binaries (files with bin's bytes) of img's
// filesystem as mutate.Extract flattens it: the oracle.
func extracted(t *testing.T, img v1.Image, bin []byte) []string {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Typeflag == tar.TypeReg && bytes.Equal(b, bin) {
			out = append(out, h.Name)
		}
	}
	slices.Sort(out)
	return out
}

func goFiles(c *sbom.ImageContents) []string {
	var out []string
	for _, g := range c.Go {
		out = append(out, g.File)
	}
	return out
}

// TestScanFlattensAsExtractDoes: the layer-by-layer scan finds exactly the
// Go binaries mutate.Extract's flattened filesystem holds.
func TestScanFlattensAsExtractDoes(t *testing.T) {
	bin, _ := goBinary(t)
	img, _ := trickyImage(t, bin)
	want := extracted(t, img, bin)
	if !slices.Equal(want, []string{"opt/x/c2", "srv/e", "usr/bin/kept", "usr/local/bin/new"}) {
		t.Fatalf("the oracle changed: mutate.Extract keeps %q", want)
	}
	got, err := sbom.ScanImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(goFiles(got), want) {
		t.Errorf("scan finds Go binaries %q, the flattened image holds %q", goFiles(got), want)
	}
	if len(got.Debian) != 3 {
		t.Errorf("debian: %+v", got.Debian)
	}
}

// unreadable is a layer whose bytes cannot be read: only its digest.
type unreadable struct{ v1.Layer }

func (unreadable) Uncompressed() (io.ReadCloser, error) { return nil, errors.New("read") }
func (unreadable) Compressed() (io.ReadCloser, error)   { return nil, errors.New("read") }

// sameFiles is unreadable but names a layer with its files.
type sameFiles struct {
	unreadable
	files v1.Layer
}

func (s sameFiles) SameFiles() v1.Layer { return s.files }

// TestScannerRemembersLayersByDigest: a second scan reads no layer (each
// is remembered by its digest) and finds the same; a layer that names
// another with the same files is read through it.
func TestScannerRemembersLayersByDigest(t *testing.T) {
	bin, _ := goBinary(t)
	img, layers := trickyImage(t, bin)
	s := sbom.Scanner{Dir: t.TempDir()}
	first, err := s.Scan(img)
	if err != nil {
		t.Fatal(err)
	}
	var blind []v1.Layer
	for _, l := range layers {
		blind = append(blind, unreadable{l})
	}
	again, err := mutate.AppendLayers(empty.Image, blind...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (sbom.Scanner{}).Scan(again); err == nil {
		t.Fatal("an unreadable layer was scanned without a memo: the test proves nothing")
	}
	second, err := s.Scan(again)
	if err != nil {
		t.Fatalf("the remembered scan read a layer: %v", err)
	}
	if !slices.Equal(goFiles(first), goFiles(second)) || len(first.Debian) != len(second.Debian) || len(second.Go) == 0 {
		t.Errorf("remembered %q %d, first %q %d", goFiles(second), len(second.Debian), goFiles(first), len(first.Debian))
	}

	var through []v1.Layer
	for _, l := range layers {
		through = append(through, sameFiles{unreadable{l}, l})
	}
	viaSame, err := mutate.AppendLayers(empty.Image, through...)
	if err != nil {
		t.Fatal(err)
	}
	third, err := (sbom.Scanner{}).Scan(viaSame)
	if err != nil {
		t.Fatalf("not read through SameFiles: %v", err)
	}
	if !slices.Equal(goFiles(first), goFiles(third)) {
		t.Errorf("through SameFiles %q, first %q", goFiles(third), goFiles(first))
	}
}

// failingTail is a layer whose reader fails after the tar's end, as a
// registry layer's verifying reader does when the blob does not match its
// digest (it can only tell once the stream is read to its end).
type failingTail struct{ v1.Layer }

func (f failingTail) Uncompressed() (io.ReadCloser, error) {
	rc, err := f.Layer.Uncompressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(rc, errReader{}), rc}, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("digest mismatch") }

// TestALayerIsReadToItsEndSoItsDigestIsChecked: the scan reads past the
// tar's end, so a layer that fails its check is refused, not remembered.
func TestALayerIsReadToItsEndSoItsDigestIsChecked(t *testing.T) {
	l := tarLayer(t, entry{"var/lib/dpkg/status", tar.TypeReg, []byte(status)})
	img, err := mutate.AppendLayers(empty.Image, failingTail{l})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := (sbom.Scanner{Dir: dir}).Scan(img); err == nil {
		t.Fatal("a layer failing its check after the tar's end was scanned")
	}
	good, _ := mutate.AppendLayers(empty.Image, unreadable{l})
	if _, err := (sbom.Scanner{Dir: dir}).Scan(good); err == nil {
		t.Fatal("the refused layer was remembered")
	}
}
