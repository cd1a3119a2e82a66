package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
)

// The build stage: the images, concurrently.

// Built are the images, built.
type Built struct {
	Inputs *Inputs
	Images []BuiltImage // in the order of images.All
}

// BuiltImage is one built image.
type BuiltImage struct {
	Image     images.Image
	Container *dagger.Container
	Start     time.Time
	Took      time.Duration
	Err       error
}

// Container is the named image's container (nil when it was not built).
func (b *Built) Container(name string) *dagger.Container {
	if b == nil {
		return nil
	}
	for _, im := range b.Images {
		if im.Image.Name == name {
			return im.Container
		}
	}
	return nil
}

// Containers are the built images by name.
func (b *Built) Containers() map[string]*dagger.Container {
	out := map[string]*dagger.Container{}
	for _, im := range b.Images {
		if im.Container != nil {
			out[im.Image.Name] = im.Container
		}
	}
	return out
}

// build evaluates the recipes of imgs concurrently, recording each image's
// container and build time; every image is tried, the failures joined.
func build(ctx context.Context, s *Session, in *Inputs, imgs []images.Image) (*Built, error) {
	if err := in.prepare(ctx, s); err != nil {
		return nil, err
	}
	b := &Built{Inputs: in, Images: make([]BuiltImage, len(imgs))}
	recipe := in.Recipe(s)
	var wg sync.WaitGroup
	for i, im := range imgs {
		b.Images[i].Image = im
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := &b.Images[i]
			step := s.P.Start("build %s", im.Name)
			start := time.Now()
			out.Start = start
			ctr, err := im.Recipe(recipe).Sync(ctx)
			out.Took = time.Since(start)
			if err != nil {
				out.Err = step.Fail(fmt.Errorf("building %s: %w", im.Name, err))
				return
			}
			out.Container = ctr
			step.Done()
		}()
	}
	wg.Wait()
	var errs []error
	for _, im := range b.Images {
		errs = append(errs, im.Err)
	}
	return b, errors.Join(errs...)
}
