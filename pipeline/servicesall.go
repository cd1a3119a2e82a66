package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/catalog"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// services:all: every service a released image ships, as a services file
// (images/lhcbdirac/catalog reads the installed release; docs/services.md).

// ServicesAllName is the file services:all writes in dist/<version>/.
const ServicesAllName = "services.all.yaml"

// CatalogReader reads the catalog of the release an image installs
// (catalog.FromImage against the registry; tests give their own).
type CatalogReader func(ctx context.Context, ref string) (*catalog.Catalog, error)

// ReleaseImageCatalog is catalog.FromImage with the registry's credentials.
func ReleaseImageCatalog(ctx context.Context, ref string) (*catalog.Catalog, error) {
	return catalog.FromImage(ctx, ref, catalog.Options{}, registryAuth()...)
}

// RunServicesAll is `mage services:all VERSION`.
func RunServicesAll(ctx context.Context, st settings.Settings, ver string, out io.Writer) error {
	c, err := ConfigFor(ver, st, RegistryAddress(st))
	if err != nil {
		return err
	}
	path, cat, err := WriteServicesAll(ctx, c, ReleaseImageCatalog)
	if err != nil {
		return err
	}
	cannot := 0
	for _, s := range cat.Services {
		if s.CannotRun != "" {
			cannot++
		}
	}
	fmt.Fprintf(out, "%d services (%d cannot run here) written to %s\n", len(cat.Services), cannot, path)
	if cat.HTTPSProblem != "" {
		fmt.Fprintf(out, "no HTTPS service can start in this image: %s\n", cat.HTTPSProblem)
	}
	return nil
}

// WriteServicesAll reads the catalog of c's lhcbdirac image
// (<registry>/<repository>/lhcbdirac:<version>) and writes every service
// it ships to <dist>/<version>/services.all.yaml, over the services file
// the settings name (its image, environments, defaults, and the settings
// of the services it lists, are kept).
func WriteServicesAll(ctx context.Context, c Config, read CatalogReader) (string, *catalog.Catalog, error) {
	ref := c.ImageRepo("lhcbdirac") + ":" + c.Version.Raw
	cat, err := read(ctx, ref)
	if err != nil {
		if isNotFound(err) {
			return "", nil, fmt.Errorf("services:all %s: the release image %s is not in the registry (release %s first, or set LHCBDIRAC_REGISTRY / LHCBDIRAC_REPOSITORY to where it is): %w", c.Version.Raw, ref, c.Version.Raw, err)
		}
		return "", nil, fmt.Errorf("services:all %s: reading the catalog of %s: %w", c.Version.Raw, ref, err)
	}
	base, err := LoadServices(c.Release) // as written, not with c's image filled in
	if err != nil {
		return "", nil, err
	}
	y, err := catalog.ServicesFile(cat, base)
	if err != nil {
		return "", nil, fmt.Errorf("services:all %s (%s): %w", c.Version.Raw, ref, err)
	}
	if err := os.MkdirAll(c.Dist, 0o755); err != nil {
		return "", nil, err
	}
	path := filepath.Join(c.Dist, ServicesAllName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, y, 0o644); err != nil {
		return "", nil, err
	}
	return path, cat, os.Rename(tmp, path)
}

// isNotFound: the registry has no such repository or tag.
func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == 404 {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}
