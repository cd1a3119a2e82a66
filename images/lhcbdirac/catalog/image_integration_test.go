//go:build integration

package catalog_test

import (
	"context"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/releaseimage"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/catalog"
)

// releaseImage is the 12.0.21 image, built and pushed by the test itself
// (LHCBDIRAC_CATALOG_IMAGE names another instead).
func releaseImage(t *testing.T) string {
	if r := settings.Read("LHCBDIRAC_CATALOG_IMAGE"); r != "" {
		return r
	}
	return releaseimage.Ref(t)
}

// TestReleaseImageGolden reads the real image from the registry and
// regenerates testdata/v12.0.21.catalog.json and v12.0.21.services.yaml:
// they must be what is committed. A missing image is a failure.
func TestReleaseImageGolden(t *testing.T) {
	c, err := catalog.FromImage(context.Background(), releaseImage(t), catalog.Options{})
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
