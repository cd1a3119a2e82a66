//go:build integration

package registry_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
)

// TestIntegrationRegistryKeepsImagesAcrossRestart runs a second instance of
// the embedded registry (same image, same code path, its own port and volume,
// so the shared one is not disturbed), pushes an image, restarts the
// container and reads the image back.
func TestIntegrationRegistryKeepsImagesAcrossRestart(t *testing.T) {
	ctx := t.Context()
	p := testenv.Reporter(t)
	image, err := hostimages.RegistryImage(ctx, p)
	if err != nil {
		t.Fatalf("INTEGRATION TEST CANNOT RUN: %v", err)
	}
	in := registry.Instance{Name: "lhcbdirac-registry-test", Addr: freeLoopbackAddr(t), Volume: "lhcbdirac-registry-test-data", Ephemeral: true}
	_ = registry.Down(ctx, in, true)
	// (Not t.Context(): it is cancelled before the cleanups run, and the
	// registry would stay.)
	t.Cleanup(func() {
		if err := registry.Down(context.Background(), in, true); err != nil {
			t.Errorf("removing the test registry: %v", err)
		}
	})
	if err := registry.Start(ctx, p, in, image); err != nil {
		t.Fatal(err)
	}

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(in.Addr + "/persist/test:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	if err := registry.Restart(ctx, in); err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("image lost across a registry restart: %v", err)
	}
	if desc.Digest != want {
		t.Fatalf("after restart the tag points at %s, want %s", desc.Digest, want)
	}
	got, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed() // the blobs themselves, not just the manifest
		if err != nil {
			t.Fatalf("blob lost across restart: %v", err)
		}
		rc.Close()
	}

	// Starting again with everything as it is leaves the container alone.
	if err := registry.Start(ctx, p, in, image); err != nil {
		t.Fatal(err)
	}
	steps := p.Steps()
	if last := steps[len(steps)-1]; !last.Cached {
		t.Fatalf("second Start of an unchanged registry recreated it: %+v", last)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testproc.Ports(t, 1)[0])
}
