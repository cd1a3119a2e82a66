//go:build integration

package catalog_test

import (
	"context"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/catalog"
)

// releaseImage is the 12.0.21 image the release pushed to the local
// registry (LHCBDIRAC_CATALOG_IMAGE overrides it).
func releaseImage() string {
	if r := settings.Read("LHCBDIRAC_CATALOG_IMAGE"); r != "" {
		return r
	}
	return "127.0.0.1:5000/lhcbdirac-pipeline/lhcbdirac:v12.0.21"
}

// TestReleaseImageGolden reads the real image from the registry and
// regenerates testdata/v12.0.21.catalog.json and v12.0.21.services.yaml:
// they must be what is committed. A missing image is a failure.
func TestReleaseImageGolden(t *testing.T) {
	c, err := catalog.FromImage(context.Background(), releaseImage(), catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "v12.0.21.catalog.json", catalogJSON(t, c))
	y, err := catalog.ServicesFile(c, base(t))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "v12.0.21.services.yaml", y)
	checkRenders(t, y)
}
