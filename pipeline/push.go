package pipeline

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
)

// The push stage: every image by digest, then the tags once all are there.

// Pushed are the images in the registry.
type Pushed struct {
	Smoked *Smoked
	Images map[string]push.Pushed
	Tags   []string // the tags moved to them
}

// Ref is the named image's repo@digest ("" when it was not pushed).
func (p *Pushed) Ref(name string) string {
	if p == nil || p.Images[name].Digest == "" {
		return ""
	}
	return p.Images[name].Ref()
}

func pushImages(ctx context.Context, s *Session, sm *Smoked) (*Pushed, error) {
	c := sm.Built.Inputs.Config
	work, err := cachedir.Sub("push")
	if err != nil {
		return nil, err
	}
	out := &Pushed{Smoked: sm, Images: map[string]push.Pushed{}}
	var all []push.Pushed
	for _, im := range sm.Built.Images {
		n := im.Image.Name
		step := s.P.Start("push %s by digest", n)
		p, err := push.ByDigest(ctx, im.Container, n, c.ImageRepo(n), filepath.Join(work, n))
		if err != nil {
			return out, step.Fail(err)
		}
		step.Done()
		out.Images[n] = p
		all = append(all, p)
	}
	tags := push.Tags(c.Version)
	step := s.P.Start("tag %s", strings.Join(tags, ", "))
	if err := push.MoveTags(ctx, all, c.Version); err != nil {
		return out, step.Fail(err)
	}
	step.Done()
	out.Tags = tags
	return out, nil
}
