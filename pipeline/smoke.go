package pipeline

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"

	"errors"
	"sync"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	smokeattest "github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"

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

func smoke(ctx context.Context, s *Session, b *Built, apps []render.App, oneService bool, e *Exported) (*Smoked, error) {
	in := b.Inputs
	run := images.Smoke{Client: s.Client, Built: b.Containers(), Apps: apps, Bases: in.Bases, Go: in.Go, P: s.P,
		Fixture: in.Config.Fixture(), Fresh: in.Config.FreshSmoke, OneService: oneService}
	if e != nil && !in.Config.FreshSmoke && in.Build.Rerun == "" {
		run.Attested, run.AttestedImage = attestedBefore(ctx, s, e, apps)
	}
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

// attestedBefore finds what an earlier run smoke-tested on the images
// this run built, for the services whose app is the same: an image whose
// digest did not change is not tested again, and a changed app re-runs
// only its own service.
func attestedBefore(ctx context.Context, s *Session, e *Exported, apps []render.App) (map[string][]images.Check, map[string][]images.Check) {
	services, own := map[string][]images.Check{}, map[string][]images.Check{}
	v, _, err := VerifyKey(s.Settings.Evidence)
	if err != nil {
		return services, own
	}
	// An attested service ran from the same app when its app as it runs
	// (the image by digest alone) is this one's, or, for attestations made
	// before that was recorded, its whole app JSON is.
	type appIDs struct{ sha, run string }
	same := func(a smokeattest.App, ids appIDs) bool {
		return ids.sha != "" && (a.SHA256 == ids.sha || a.Run != "" && a.Run == ids.run)
	}
	appOf := map[string]appIDs{}
	var registratorApp appIDs
	for _, a := range apps {
		ids := appIDs{sha(a.JSON), runSHA(a.JSON)}
		appOf[a.Service.Name] = ids
		if a.Kind == render.KindRegistrator {
			registratorApp = ids
		}
	}
	for name, l := range e.Images {
		if !l.InRegistry {
			continue // new content: never tested
		}
		if name == images.LHCbDIRAC && (e.Images[images.Pinger] == nil || !e.Images[images.Pinger].InRegistry) {
			continue // the pings went through another pinger: ping again
		}
		d, err := nameDigest(l.Ref())
		if err != nil {
			continue
		}
		res, err := v.Verify(ctx, d, evidence.Policy{}, evidence.Options{Remote: registryAuth()})
		if err != nil || res.Smoke == nil || res.Smoke.Result != smokeattest.Passed {
			continue
		}
		switch name {
		case images.LHCbDIRAC:
			for _, sv := range res.Smoke.Services {
				if sv.Result == smokeattest.Passed && same(sv.App, appOf[sv.Name]) {
					services[sv.Name] = checksOf(sv)
				}
			}
		case images.MesosSlave:
			var checks []images.Check
			for _, sv := range res.Smoke.Services {
				checks = append(checks, checksOf(sv)...)
			}
			own[name] = checks
		case images.Registrator:
			for _, sv := range res.Smoke.Services {
				if same(sv.App, registratorApp) {
					own[name] = checksOf(sv)
				}
			}
		}
	}
	return services, own
}

// checksOf are an attested service's checks, as the smoke test records them.
func checksOf(sv smokeattest.Service) []images.Check {
	var out []images.Check
	for _, c := range sv.Checks {
		ch := images.Check{Name: sv.Name, Kind: c.Kind, Passed: c.Passed, At: c.At, Output: "attested before, " + c.At.UTC().Format("2006-01-02 15:04:05 UTC")}
		switch c.Kind {
		case smokeattest.CheckCommandHealth:
			ch.Name = images.CheckHealth
		case smokeattest.CheckDIPSPing:
			ch.Name = images.CheckPing
		case smokeattest.CheckHTTPSPing:
			ch.Name = images.CheckHTTPSPing
		}
		out = append(out, ch)
	}
	return out
}

func nameDigest(ref string) (name.Digest, error) { return name.NewDigest(ref) }
