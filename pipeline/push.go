package pipeline

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/push"
)

// The push stage: by digest, then tags once every image passed.

type pushStage struct{ r *Release }

func (pushStage) String() string { return "push" }

func (s pushStage) Run(ctx context.Context) error {
	r := s.r
	if !r.Config.Push {
		return Skip("not pushing (testService)")
	}
	work, err := cachedir.Sub("push")
	if err != nil {
		return err
	}
	var pushed []push.Pushed
	for _, n := range ImageNames {
		step := r.P.Start("push %s by digest", n)
		p, err := push.ByDigest(ctx, r.Images[n].Container, n, r.Config.ImageRepo(n), filepath.Join(work, n))
		if err != nil {
			return step.Fail(err)
		}
		step.Done()
		r.Images[n].Pushed = p
		pushed = append(pushed, p)
	}
	step := r.P.Start("tag %s", strings.Join(push.Tags(r.Config.Version), ", "))
	if err := push.MoveTags(ctx, pushed, r.Config.Version); err != nil {
		return step.Fail(err)
	}
	step.Done()
	r.Pushed = true
	return nil
}
