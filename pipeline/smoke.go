package pipeline

import (
	"context"
	"errors"
	"sync"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// The smoke stage: every image's own smoke test, concurrently — each
// service run as Marathon would run it (lhcbdirac, through the pinger),
// the mesos-slave image under each ENVIRONMENT preset, the registrator
// from its rendered app.

// Smoked are the smoke tests' results.
type Smoked struct {
	Built  *Built
	Images map[string]images.SmokeResult
}

// Services are the DIRAC services' results.
func (s *Smoked) Services() []images.ServiceResult {
	if s == nil {
		return nil
	}
	return s.Images[images.LHCbDIRAC].Services
}

// Passed is true when every test that ran passed.
func (s *Smoked) Passed() bool {
	if s == nil {
		return false
	}
	for _, r := range s.Images {
		if r.NotRun == "" && !r.Passed {
			return false
		}
	}
	return true
}

func smoke(ctx context.Context, s *Session, b *Built, apps []render.App, oneService bool) (*Smoked, error) {
	in := b.Inputs
	run := images.Smoke{Client: s.Client, Built: b.Containers(), Apps: apps, Bases: in.Bases, Go: in.Go, P: s.P,
		Fixture: in.Config.Fixture(), Fresh: in.Config.FreshSmoke, OneService: oneService}
	out := &Smoked{Built: b, Images: map[string]images.SmokeResult{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, im := range b.Images {
		if im.Image.Smoke == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := im.Image.Smoke(ctx, run)
			mu.Lock()
			defer mu.Unlock()
			out.Images[im.Image.Name] = res
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	// An image another image's test exercises passes with it.
	for _, im := range b.Images {
		if im.Image.TestedBy != "" {
			by := out.Images[im.Image.TestedBy]
			out.Images[im.Image.Name] = images.SmokeResult{Passed: by.Passed, Summary: images.PingerSummary(by), NotRun: by.NotRun}
		}
	}
	return out, errors.Join(errs...)
}
