//go:build integration

package enginecheck_test

import (
	"archive/tar"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

// TestIntegrationEngineExecPublishAndServiceBinding runs against the real
// Dagger engine and registry: a command in a container from a base pinned by
// digest, a publish whose digest is read back with go-containerregistry, and a
// service reached by its alias.
func TestIntegrationEngineExecPublishAndServiceBinding(t *testing.T) {
	f := testengine.Foundation(t)
	p := testenv.Reporter(t)
	ctx := t.Context()

	base, err := baseimage.Build(ctx, p, enginecheck.BaseSpec, enginecheck.BaseRef(f.Registry))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(base, "@sha256:") {
		t.Fatalf("base %q is not pinned by digest", base)
	}
	r, err := enginecheck.Run(ctx, f.Client, p, f.Registry, base)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Exec, "debian 12.") || !strings.HasSuffix(r.Exec, "token="+r.Token) {
		t.Errorf("command output %q: want the Debian version and the token", r.Exec)
	}
	if r.ServiceReply != r.Token {
		t.Errorf("service replied %q, want %q", r.ServiceReply, r.Token)
	}

	// Read the published image back independently of enginecheck: the tag must
	// resolve to the digest Dagger reported, and the image must hold the file
	// the check wrote.
	ref, err := name.ParseReference(r.PublishedRef)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(r.Published, "@"+d.String()) {
		t.Fatalf("Dagger reported %s, registry serves %s", r.Published, d)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if got := fileInLayer(t, layers[len(layers)-1], "smoke-token"); got != r.Token {
		t.Fatalf("/smoke-token in the published image = %q, want %q", got, r.Token)
	}
}

func fileInLayer(t *testing.T, l interface {
	Uncompressed() (io.ReadCloser, error)
}, path string) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s not in the layer", path)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == path {
			b, _ := io.ReadAll(tr)
			return string(b)
		}
	}
}
