package pipeline

import (
	"context"
	"path/filepath"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// The render stage: the Marathon app definitions, each naming its image by
// the digest the export found (repository:tag@sha256:…), into
// dist/<version>/marathon. The smoke tests run these very apps, and the
// deploy deploys them: what runs is what was tested.

// Rendered are the app definitions of the release.
type Rendered struct {
	Apps  []render.App
	Dir   string
	Files []string
}

// pinsOf names each repository's image as tag@digest.
func pinsOf(tag string, digests map[string]string) map[string]string {
	pins := map[string]string{}
	for repo, d := range digests {
		pins[repo] = tag + "@" + d
	}
	return pins
}

func renderStage(ctx context.Context, s *Session, in *Inputs, pins map[string]string) (*Rendered, error) {
	c := in.Config
	apps, err := renderApps(c, pins)
	if err != nil {
		return nil, err
	}
	out := &Rendered{Dir: filepath.Join(c.Dist, "marathon")}
	for _, a := range apps {
		if c.Only == "" || a.Service.Name == c.Only {
			out.Apps = append(out.Apps, a)
		}
	}
	if err := render.ReplaceDir(out.Apps, out.Dir); err != nil {
		return nil, err
	}
	for _, a := range out.Apps {
		out.Files = append(out.Files, filepath.Join(out.Dir, a.FileName()))
	}
	s.P.Infof("%d app definitions, each naming its image by digest, in %s", len(out.Apps), out.Dir)
	return out, nil
}
