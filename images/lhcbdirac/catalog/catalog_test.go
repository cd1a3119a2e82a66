package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/catalog"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// base is the services file whose header and settings the written file
// keeps: the pipeline's default list.
func base(t *testing.T) *services.File {
	t.Helper()
	f, err := services.Load(filepath.Join("..", "..", "..", "pipeline", "services.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func catalogJSON(t *testing.T, c *catalog.Catalog) []byte {
	t.Helper()
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: difflib.SplitLines(string(want)), B: difflib.SplitLines(string(got)), FromFile: p, ToFile: "regenerated", Context: 2})
		t.Fatalf("%s differs from what the catalog makes now:\n%s", p, d)
	}
}

// TestFixtureGolden: the catalog and the services file of a small
// DIRAC-shaped tree (testdata/site-packages: an extension overriding a
// handler and merging a template, a Tornado twin, an OpenSearch and an
// Oracle database, a composite DB class, a loader fed by a default
// option, a HandlerPath, DISET's Gateway, a section with no handler, a
// port clash) are what the golden files hold.
func TestFixtureGolden(t *testing.T) {
	c, err := catalog.LoadDir(context.Background(), filepath.Join("testdata", "site-packages"), catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "fixture.catalog.json", catalogJSON(t, c))
	y, err := catalog.ServicesFile(c, base(t))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "fixture.services.yaml", y)
	checkRenders(t, y)
}

// checkRenders: the written file loads and renders for every environment.
func checkRenders(t *testing.T, y []byte) {
	t.Helper()
	f, err := services.Parse("written", y)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range f.EnvironmentNames() {
		apps, err := r.Render(f, env, "v12.0.21")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(render.Services(apps)); n != len(f.Services) {
			t.Fatalf("%d service apps rendered for %d services", n, len(f.Services))
		}
	}
}

// TestFSAndDirAgree: Load over an fs.FS that is not a directory (copied to
// a temporary one for the analyser) gives the same catalog as LoadDir.
func TestFSAndDirAgree(t *testing.T) {
	dir := filepath.Join("testdata", "site-packages")
	want, err := catalog.LoadDir(context.Background(), dir, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := fstest.MapFS{}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := catalog.Load(context.Background(), m, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := catalogJSON(t, want), catalogJSON(t, got); !bytes.Equal(a, b) {
		t.Fatalf("Load(fs.FS) and LoadDir differ:\n%s\n---\n%s", a, b)
	}
}

func TestNoDIRACIsAnError(t *testing.T) {
	_, err := catalog.Load(context.Background(), fstest.MapFS{"x-1.0.dist-info/entry_points.txt": {Data: []byte("[console_scripts]\nx = x:main\n")}}, catalog.Options{})
	if err == nil || !strings.Contains(err.Error(), "no DIRAC installation") {
		t.Fatalf("error %v", err)
	}
}

func TestAnalyserFailureNamesIt(t *testing.T) {
	_, err := catalog.LoadDir(context.Background(), filepath.Join("testdata", "site-packages"), catalog.Options{Python: "no-such-python3"})
	if err == nil || !strings.Contains(err.Error(), "no-such-python3") {
		t.Fatalf("error %v", err)
	}
}
