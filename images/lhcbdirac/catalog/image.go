package catalog

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// sitePackagesRE finds an image's site-packages: the venv's
// (/opt/dirac/lib/python3.X) or DIRACOS2's (/opt/dirac/diracos/lib/…).
var sitePackagesRE = regexp.MustCompile(`^(opt/dirac/(?:diracos/)?lib/python3\.[0-9]+/site-packages)/`)

// FromImage reads the catalog of the release an image installs: its
// flattened filesystem is read twice with go-containerregistry (the
// "dirac" entry points first, then those extensions' sources), copied to
// a temporary directory and analysed there. ref is a reference as
// name.ParseReference takes it (name.Insecure allows a plain-HTTP
// registry such as the local one).
func FromImage(ctx context.Context, ref string, o Options, opts ...remote.Option) (*Catalog, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", ref, err)
	}
	dir, err := os.MkdirTemp("", "lhcbdirac-catalog-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := ExtractSitePackages(img, dir); err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return LoadDir(ctx, dir, o)
}

// ExtractSitePackages writes what the catalog reads of an image's
// site-packages to dir: every dist-info's entry_points.txt, and the
// sources, schemas and templates of the DIRAC extensions they declare.
func ExtractSitePackages(img v1.Image, dir string) error {
	root := ""
	// pass 1: the entry points
	err := walkImage(img, func(h *tar.Header, r io.Reader) error {
		m := sitePackagesRE.FindStringSubmatch(strings.TrimPrefix(h.Name, "/"))
		if m == nil {
			return nil
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(h.Name, "/"), m[0])
		if path.Base(rel) != "entry_points.txt" || !strings.HasSuffix(path.Dir(rel), ".dist-info") || strings.Contains(path.Dir(rel), "/") {
			return nil
		}
		if root != "" && root != m[1] {
			return fmt.Errorf("two site-packages: /%s and /%s", root, m[1])
		}
		root = m[1]
		return write(dir, rel, r)
	})
	if err != nil {
		return err
	}
	if root == "" {
		return errors.New("no site-packages with installed distributions under /opt/dirac")
	}
	exts, err := findExtensions(os.DirFS(dir))
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, e := range exts {
		keep[e.Name] = true
	}
	// pass 2: the extensions' files
	return walkImage(img, func(h *tar.Header, r io.Reader) error {
		name := strings.TrimPrefix(h.Name, "/")
		if !strings.HasPrefix(name, root+"/") {
			return nil
		}
		rel := strings.TrimPrefix(name, root+"/")
		top, _, _ := strings.Cut(rel, "/")
		switch rel { // what tornadoProblem reads
		case "tornado/iostream.py", "tornado/httputil.py", "tornado/tcpserver.py":
			return write(dir, rel, r)
		}
		if strings.HasPrefix(top, "tornado-") && strings.HasSuffix(top, ".dist-info") && path.Base(rel) == "METADATA" {
			return write(dir, rel, r)
		}
		if !keep[top] || strings.Contains(rel, "/__pycache__/") {
			return nil
		}
		switch {
		case strings.HasSuffix(rel, ".py"), strings.HasSuffix(rel, ".sql"), path.Base(rel) == "ConfigTemplate.cfg":
			return write(dir, rel, r)
		}
		return nil
	})
}

func walkImage(img v1.Image, fn func(*tar.Header, io.Reader) error) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the image's filesystem: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// write stores one file under dir; rel comes from the image and is
// checked to stay inside dir.
func write(dir, rel string, r io.Reader) error {
	clean := path.Clean("/" + rel)[1:]
	if clean == "" || clean != rel {
		return fmt.Errorf("image path %q is not a plain relative path", rel)
	}
	out := filepath.Join(dir, filepath.FromSlash(clean))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	// A source file is small; a bound keeps a hostile image from filling the disk.
	if _, err := io.Copy(f, io.LimitReader(r, 64<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Extensions are the DIRAC extensions a site-packages tree declares (its
// dist-infos' "dirac" entry points), by name: what ExtractSitePackages
// keeps of a tree, for a reader that copies it another way (the smoke
// test, from a built image).
func Extensions(fsys fs.FS) ([]Extension, error) { return findExtensions(fsys) }

// SitePackagesFiles are the patterns (relative to site-packages, as
// Dagger's Include takes them) of what the catalog reads of the given
// extensions: their sources, schemas and templates, and tornado's files
// HTTPSProblem reads.
func SitePackagesFiles(exts []Extension) []string {
	out := append([]string{"*.dist-info/entry_points.txt"}, tornadoFiles...)
	for _, e := range exts {
		out = append(out, e.Name+"/**/*.py", e.Name+"/**/*.sql", e.Name+"/**/ConfigTemplate.cfg")
	}
	return out
}
