package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
)

// The find stage: a release whose inputs did not change has nothing to
// build, test or push. Builds are reproducible, and every image's
// provenance records the digest of the inputs it was made from; when each
// image the release's tags name carries valid evidence — signed, its
// provenance recording this very inputs digest, its smoke attestation
// passed — the release is already made: it says so and goes on to render
// and deploy, without connecting to the engine, exporting an image or
// running a smoke test again.

// Found are the images of an earlier run of the same release.
type Found struct {
	Images   map[string]push.Pushed
	Smoked   map[string]time.Time // when each image's smoke attestation says it passed
	Tags     []string
	Inputs   string // the inputs digest they were made from
	Complete bool   // every image of the release is there, with its evidence
	Why      string // why not, when not
}

// SkipReason is "" when the release must be made.
func (f *Found) SkipReason() string { return "" }

func find(ctx context.Context, s *Session, in *Inputs) (*Found, error) {
	c := in.Config
	f := &Found{Images: map[string]push.Pushed{}, Smoked: map[string]time.Time{}, Inputs: in.Digest, Tags: releaseTags(in)}
	if in.Build.Rerun != "" {
		f.Why = "a rebuild was asked for"
		return f, nil
	}
	v, from, err := VerifyKey(s.Settings.Evidence)
	if err != nil {
		f.Why = "no key to verify earlier evidence with"
		return f, nil
	}
	_ = from
	var mu sync.Mutex
	var wg sync.WaitGroup
	why := map[string]string{}
	for _, im := range images.All {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, when, reason := foundImage(ctx, v, c.ImageRepo(im.Name), f.Tags[0], in.Digest)
			mu.Lock()
			defer mu.Unlock()
			if reason != "" {
				why[im.Name] = reason
				return
			}
			p.Name = im.Name
			f.Images[im.Name], f.Smoked[im.Name] = p, when
		}()
	}
	wg.Wait()
	for _, im := range images.All {
		if r, ok := why[im.Name]; ok {
			f.Why = im.Name + ": " + r
			s.P.Infof("%s is to be made: %s %s", c.Version.Raw, f.Tags[0], f.Why)
			return f, nil
		}
	}
	f.Complete = true
	s.P.Infof("%s: every image already built from these inputs (%s), smoke-tested and signed: nothing to build, test or push", c.Version.Raw, in.Digest[:19])
	return f, nil
}

// foundImage is repo:tag when its evidence holds and its provenance
// records inputs; else why not.
func foundImage(ctx context.Context, v *evidence.Verifier, repo, tag, inputs string) (push.Pushed, time.Time, string) {
	ref, err := name.NewTag(repo + ":" + tag)
	if err != nil {
		return push.Pushed{}, time.Time{}, err.Error()
	}
	ropts := append(registryAuth(), remote.WithContext(ctx))
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return push.Pushed{}, time.Time{}, "not in the registry"
	}
	d := ref.Context().Digest(desc.Digest.String())
	res, err := v.Verify(ctx, d, evidence.Policy{}, evidence.Options{Remote: registryAuth()})
	if err != nil {
		return push.Pushed{}, time.Time{}, "its evidence does not hold"
	}
	if got := res.Provenance.InputsDigest(); got != inputs {
		return push.Pushed{}, time.Time{}, fmt.Sprintf("made from other inputs (%s)", shortDigest(got))
	}
	img, err := desc.Image()
	if err != nil {
		return push.Pushed{}, time.Time{}, err.Error()
	}
	m, err := img.Manifest()
	if err != nil {
		return push.Pushed{}, time.Time{}, err.Error()
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return push.Pushed{Repo: ref.Context().Name(), Digest: desc.Digest.String(), Size: size}, res.Smoke.FinishedOn, ""
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	if d == "" {
		return "none recorded"
	}
	return d
}
