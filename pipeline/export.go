package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
)

// The export stage: every image out of Dagger in its canonical form, so
// its digest is known before anything is tested or pushed; the apps are
// then rendered naming those digests, and a version's tag that already
// names other content stops the release here.

// Exported are the images with their digests, not yet pushed.
type Exported struct {
	Built  *Built
	Images map[string]*push.Local
	Tags   []string // the tags this release will move
	Hotfix string   // the hotfix's commits, short ("" for a release)
}

// Ref is the named image's repo@digest.
func (e *Exported) Ref(name string) string {
	if e == nil || e.Images[name] == nil {
		return ""
	}
	return e.Images[name].Ref()
}

// Digests are the images' digests by repository.
func (e *Exported) Digests() map[string]string {
	out := map[string]string{}
	for _, l := range e.Images {
		out[l.Repo] = l.Digest
	}
	return out
}

// Close removes the exports from disk.
func (e *Exported) Close() {
	if e == nil {
		return
	}
	for _, l := range e.Images {
		l.Close()
	}
}

func export(ctx context.Context, s *Session, b *Built) (*Exported, error) {
	c := b.Inputs.Config
	work, err := cachedir.Sub("push")
	if err != nil {
		return nil, err
	}
	out := &Exported{Built: b, Images: map[string]*push.Local{}, Hotfix: hotfixTag(b.Inputs)}
	out.Tags = releaseTags(b.Inputs)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, im := range b.Images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := im.Image.Name
			step := s.P.Start("export %s (its digest)", n)
			var l *push.Local
			var err error
			if staging := s.staging(); staging != "" {
				l, err = push.ExportVia(ctx, im.Container, n, c.ImageRepo(n), staging+"/"+n)
			} else {
				l, err = push.Export(ctx, im.Container, n, c.ImageRepo(n), filepath.Join(work, n))
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, step.Fail(err))
				return
			}
			if l.InRegistry {
				step.Cached()
			} else {
				step.Done()
			}
			out.Images[n] = l
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		out.Close()
		return nil, err
	}
	var pushed []push.Pushed
	for _, l := range out.Images {
		pushed = append(pushed, push.Pushed{Name: l.Name, Repo: l.Repo, Digest: l.Digest, Size: l.Size})
	}
	if err := push.CheckTags(ctx, pushed, out.Tags); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// staging is where the engine publishes the images for the export stage
// to read (push.ExportVia): a repository of the project's own registry,
// which the engine reaches over plain HTTP on the host's loopback. With an
// external registry (LHCBDIRAC_REGISTRY) none runs, and the images leave
// Dagger as tarballs (""): untested images are never sent to the registry
// a release pushes to before their smoke tests.
func (s *Session) staging() string {
	if s.Registry != engine.EmbeddedRegistryAddr() {
		return ""
	}
	return s.Registry + "/lhcbdirac-pipeline-staging"
}

// releaseTags are the tags a run moves: the version's (push.Tags), or
// the benchmark's own tag for the run (LHCBDIRAC_BENCH_TAG: the change-cost
// runs rebuild one version with one change each, in one repository).
func releaseTags(in *Inputs) []string {
	if t := in.Config.BenchTag; t != "" {
		return []string{in.Config.Version.Raw + "-" + t}
	}
	return push.Tags(in.Config.Version, hotfixTag(in))
}

// hotfixTag names a hotfix build by the commits it built (12 hex each,
// DIRAC's first); "" for a release (and for the FIXTURE route, whose
// sources are the test double, not a hotfix).
func hotfixTag(in *Inputs) string {
	if in.Config.Fixture() {
		return ""
	}
	var parts []string
	for _, src := range in.Sources {
		parts = append(parts, src.Commit[:12])
	}
	return strings.Join(parts, ".")
}
