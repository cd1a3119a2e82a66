// Package releaseimage gives integration tests the real lhcbdirac image of
// one release in the local registry. It builds the image itself, through
// the pipeline's own build of the lock the index gives, and pushes it by
// digest: no test depends on another test (or on a user's `mage release`)
// having pushed it first, and on a fresh machine every test that reads it
// still runs. After the first build Dagger's cache makes every later call a
// matter of seconds; concurrent calls from several test packages share the
// engine's work.
package releaseimage

import (
	"path/filepath"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// Version is the release the tests read: a release the index has.
const Version = "v12.0.21"

// Repository is where the tests' copy is pushed (by digest; no tag moves).
const Repository = "itest-release-image/lhcbdirac"

// Ref returns the pushed image as registry/repository@sha256:….
func Ref(t testing.TB) string {
	t.Helper()
	f := testengine.Foundation(t)
	dist := t.TempDir()
	cfg, err := pipeline.ConfigFor(Version, settings.FromEnv(func(k string) string {
		if k == "LHCBDIRAC_DIST" {
			return dist
		}
		return ""
	}), f.Registry)
	if err != nil {
		t.Fatalf("the %s release image: %v", Version, err)
	}
	s := &pipeline.Session{Client: f.Client, Registry: f.Registry, P: testenv.Reporter(t)}
	built, err := pipeline.Build(t.Context(), s, cfg, pipeline.BuildKnobs{}, images.All[0])
	if err != nil {
		t.Fatalf("building the %s release image: %v", Version, err)
	}
	p, err := push.ByDigest(t.Context(), built.Container(images.LHCbDIRAC), images.LHCbDIRAC, f.Registry+"/"+Repository, filepath.Join(t.TempDir(), "lhcbdirac"))
	if err != nil {
		t.Fatalf("pushing the %s release image: %v", Version, err)
	}
	return p.Ref()
}
