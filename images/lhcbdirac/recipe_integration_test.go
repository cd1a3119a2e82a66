//go:build integration

package lhcbdirac_test

import (
	"archive/tar"
	"io"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// TestIntegrationLayersGoFromLeastToMostChanged builds the real image
// (the lock of 12.0.21) and reads its layers as pushed: above the base, the
// installed tree alone, then the small configuration files, then one
// program per layer with the entrypoint last. Each layer depends only on
// what it holds and on the layers below, so a change to the entrypoint
// makes a new last layer of a megabyte or so and leaves the tree's
// hundreds of megabytes as they were.
func TestIntegrationLayersGoFromLeastToMostChanged(t *testing.T) {
	f := testengine.Foundation(t)
	p := testenv.Reporter(t)
	ctx := t.Context()
	v, _ := version.Parse("v12.0.21")
	lock, _ := lhcbdirac.RememberedLock(v, "")
	if lock == nil {
		tools, err := pytools.Ensure(ctx, p, "")
		if err != nil {
			t.Fatal(err)
		}
		if lock, err = lhcbdirac.ResolveAndRemember(ctx, p, tools, v, ""); err != nil {
			t.Fatal(err)
		}
	}
	specs := []baseimage.Spec{lhcbdirac.Base, lhcbdirac.BuilderBase, enginecheck.BaseSpec}
	refs := []string{
		f.Registry + "/lhcbdirac-pipeline/base:bookworm-" + lhcbdirac.Base.Key(),
		f.Registry + "/lhcbdirac-pipeline/base:bookworm-" + lhcbdirac.BuilderBase.Key(),
		enginecheck.BaseRef(f.Registry),
	}
	bases, err := baseimage.BuildAll(ctx, p, specs, refs)
	if err != nil {
		t.Fatal(err)
	}
	root, err := hostimages.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mods, err := gobuild.PrepareModules(ctx, p, root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := gobuild.NewBuilder(ctx, f.Client, p, bases[2], root, mods)
	if err != nil {
		t.Fatal(err)
	}
	in := lhcbdirac.Inputs{Base: bases[0], BuilderBase: bases[1], Version: v, Lock: lock}
	l, err := push.Export(ctx, lhcbdirac.Recipe(f.Client, b, in), "lhcbdirac", f.Registry+"/lhcbdirac-pipeline/layers-test", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	img, err := l.Image(ctx)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 7 {
		t.Fatalf("%d layers, want the base and six", len(layers))
	}
	files := func(l v1.Layer) []string {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var out []string
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag != tar.TypeDir {
				out = append(out, strings.TrimPrefix(h.Name, "./"))
			}
		}
	}
	size := func(l v1.Layer) int64 {
		s, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tree := files(layers[1])
	for _, want := range []string{"opt/dirac/bin/python", "opt/dirac/pyvenv.cfg"} {
		if !slices.Contains(tree, want) {
			t.Errorf("the tree layer lacks %s", want)
		}
	}
	for _, f := range tree {
		if !strings.HasPrefix(f, "opt/dirac/") || slices.Contains([]string{"opt/dirac/dockerEntrypoint.sh", "opt/dirac/bashrc", "opt/dirac/lhcbdirac.lock"}, f) || strings.Contains(f, "__pycache__") {
			t.Errorf("the tree layer holds %s", f)
		}
	}
	want := [][]string{
		{"opt/dirac/bashrc", "opt/dirac/lhcbdirac.lock"},
		{"usr/local/bin/dirac-discover"},
		{"usr/local/bin/dirac-self-ping"},
		{"usr/local/bin/dirac-tornado-service"},
		{"opt/dirac/dockerEntrypoint.sh"},
	}
	for i, w := range want {
		got := files(layers[2+i])
		slices.Sort(got)
		if !slices.Equal(got, w) {
			t.Errorf("layer %d holds %q, want %q", 2+i, got, w)
		}
	}
	if s := size(layers[6]); s > 5<<20 {
		t.Errorf("the entrypoint's layer is %d bytes", s)
	}
	if s := size(layers[1]); s < 50<<20 {
		t.Errorf("the tree's layer is only %d bytes", s)
	}
	t.Logf("layers (compressed): base %d, tree %d, config %d, dirac-discover %d, dirac-self-ping %d, dirac-tornado-service %d, entrypoint %d",
		size(layers[0]), size(layers[1]), size(layers[2]), size(layers[3]), size(layers[4]), size(layers[5]), size(layers[6]))
}
