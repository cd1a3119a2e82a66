package pipeline

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/catalog"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// goldenCatalog is the 12.0.21 release's catalog, as committed.
func goldenCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "images", "lhcbdirac", "catalog", "testdata", "v12.0.21.catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c catalog.Catalog
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestServicesAllWritesALoadableRenderableFile: services:all over the
// 12.0.21 catalog writes dist/<version>/services.all.yaml naming the
// image the registry would hold; the file loads as every target loads a
// services file (LoadServices), renders for every environment as the
// release renders (renderApps) and each app passes Marathon's own
// AppDefinition schema.
func TestServicesAllWritesALoadableRenderableFile(t *testing.T) {
	dist := t.TempDir()
	c, err := ConfigFor("v12.0.21", env("LHCBDIRAC_DIST", dist), "127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	var asked string
	path, cat, err := WriteServicesAll(context.Background(), c, func(_ context.Context, ref string) (*catalog.Catalog, error) {
		asked = ref
		return goldenCatalog(t), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if asked != "127.0.0.1:5000/lhcbdirac-pipeline/lhcbdirac:v12.0.21" {
		t.Errorf("read the catalog of %q", asked)
	}
	if want := filepath.Join(c.Dist, ServicesAllName); path != want || !strings.HasPrefix(path, dist) {
		t.Errorf("wrote %s, want %s", path, want)
	}
	rel := c.Release
	rel.ServicesFile = path
	f, err := LoadServices(rel)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Services) != 69 || len(f.Services) != len(cat.Services) {
		t.Fatalf("%d services in the file, %d in the catalog", len(f.Services), len(cat.Services))
	}
	cannot, https := 0, 0
	for _, s := range f.Services {
		if s.CannotRun != "" {
			cannot++
		}
		if s.Protocol == services.ProtocolHTTPS {
			https++
		}
	}
	if cannot != 12 || https != 27 {
		t.Errorf("%d cannotRun, %d HTTPS; want 12 and 27", cannot, https)
	}
	sch, err := render.CompileSchema("Marathon's AppDefinition.json", mustRead(t, filepath.Join(testenv.Testdata(t), "marathon", "AppDefinition.json")))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range f.EnvironmentNames() {
		rc := c
		rc.Release = rel
		rc.Environment = e
		rc.Services = f
		rc.Services.Image = c.ImageRepo("lhcbdirac")
		apps, err := renderApps(rc, nil)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if n := len(render.Services(apps)); n != 69 {
			t.Fatalf("%s: %d service apps", e, n)
		}
		for _, a := range apps {
			if err := sch.Validate(a.Doc); err != nil {
				t.Errorf("%s/%s: %v", e, a.FileName(), err)
			}
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServicesAllNamesTheMissingImage: a registry without the version's
// image is an error naming the image, and nothing is written.
func TestServicesAllNamesTheMissingImage(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	dist := t.TempDir()
	c, err := ConfigFor("v12.0.21", env("LHCBDIRAC_DIST", dist), reg)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = WriteServicesAll(context.Background(), c, ReleaseImageCatalog)
	ref := reg + "/lhcbdirac-pipeline/lhcbdirac:v12.0.21"
	if err == nil || !strings.Contains(err.Error(), ref+" is not in the registry") {
		t.Fatalf("err = %v, want it to name %s as missing", err, ref)
	}
	if _, err := os.Stat(filepath.Join(c.Dist, ServicesAllName)); !os.IsNotExist(err) {
		t.Errorf("a services file was written: %v", err)
	}
}
