package pipeline

import (
	"context"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
)

// The tag stage: once every image is pushed and carries its evidence, the
// release's tags are moved to the digests (the version; devel for a
// pre-release; a hotfix build's own tag).

// Tagged are the tags moved.
type Tagged struct {
	Attested *Attested
	Tags     []string
}

func tagImages(ctx context.Context, s *Session, a *Attested) (*Tagged, error) {
	tags := a.Pushed.Exported.Tags
	if err := push.MoveTags(ctx, a.Pushed.List(), tags); err != nil {
		return nil, err
	}
	return &Tagged{Attested: a, Tags: tags}, nil
}
