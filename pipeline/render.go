package pipeline

import (
	"context"
	"path/filepath"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// The render stage: the Marathon app definitions into dist/<version>/marathon.

// Rendered are the app definitions written for the release.
type Rendered struct {
	Pushed *Pushed
	Apps   []render.App
	Dir    string
	Files  []string
}

func renderStage(ctx context.Context, s *Session, p *Pushed) (*Rendered, error) {
	in := p.Smoked.Built.Inputs
	out := &Rendered{Pushed: p, Apps: in.Apps, Dir: filepath.Join(in.Config.Dist, "marathon")}
	if err := render.ReplaceDir(out.Apps, out.Dir); err != nil {
		return nil, err
	}
	for _, a := range out.Apps {
		out.Files = append(out.Files, filepath.Join(out.Dir, a.FileName()))
	}
	s.P.Infof("%d app definitions in %s", len(out.Apps), out.Dir)
	return out, nil
}
