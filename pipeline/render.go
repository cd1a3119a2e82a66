package pipeline

import (
	"context"
	"path/filepath"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// The render stage: the Marathon app definitions into dist/<version>/marathon.

type renderStage struct{ r *Release }

func (renderStage) String() string { return "render" }

func (s renderStage) Run(ctx context.Context) error {
	r := s.r
	dir := filepath.Join(r.Config.Dist, "marathon")
	if err := render.ReplaceDir(r.Apps, dir); err != nil {
		return err
	}
	for _, a := range r.Apps {
		r.Written = append(r.Written, filepath.Join(dir, a.FileName()))
	}
	r.P.Infof("%d app definitions in %s", len(r.Apps), dir)
	return nil
}
