package pipeline

import (
	"context"
	"errors"
	"sync"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
)

// The push stage: every image that passed, by digest, concurrently; no
// tag moves until its evidence is attached (tag.go).

// Pushed are the images in the registry, by digest.
type Pushed struct {
	Smoked   *Smoked
	Exported *Exported
	Images   map[string]push.Pushed
}

// Ref is the named image's repo@digest ("" when it was not pushed).
func (p *Pushed) Ref(name string) string {
	if p == nil || p.Images[name].Digest == "" {
		return ""
	}
	return p.Images[name].Ref()
}

// List is every pushed image, in the release's order.
func (p *Pushed) List() []push.Pushed {
	var out []push.Pushed
	for _, im := range images.All {
		if pushed, ok := p.Images[im.Name]; ok {
			out = append(out, pushed)
		}
	}
	return out
}

func pushImages(ctx context.Context, s *Session, sm *Smoked, e *Exported) (*Pushed, error) {
	out := &Pushed{Smoked: sm, Exported: e, Images: map[string]push.Pushed{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for n, l := range e.Images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := s.P.Start("push %s by digest", n)
			p, err := l.Push(ctx)
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
			out.Images[n] = p
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
