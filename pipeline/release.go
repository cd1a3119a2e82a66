package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/report"
)

// Release is one run of the release: its configuration, what it stands on,
// and the record of what each stage handed to the next (read by the
// summary, the report and the benchmark; no stage reads it).
type Release struct {
	Config Config
	S      *Session
	Deploy *Deployer // nil: a dry run
	Knobs  BuildKnobs

	Stages   []StageResult
	Inputs   *Inputs
	Found    *Found
	Built    *Built
	Exported *Exported
	Rendered *Rendered
	Smoked   *Smoked
	Pushed   *Pushed
	Attested *Attested
	Tagged   *Tagged
	Deployed *Deployed

	oneService bool // testService's short list: nothing written to dist/
}

// Run is the release, top to bottom: inputs → build → export → render →
// smoke → push → attest → tag → deploy. The summary is printed and saved
// also on failure: it says how far each image got.
func (r *Release) Run(ctx context.Context) error {
	err := r.release(ctx)
	err = r.finish(ctx, err)
	r.Exported.Close()
	return err
}

func (r *Release) release(ctx context.Context) (err error) {
	if r.Inputs, err = stage(r, "inputs", func() (*Inputs, error) { return inputs(ctx, r.S, r.Config, r.Knobs) }); err != nil {
		return err
	}
	if r.Found, err = stage(r, "find", func() (*Found, error) { return find(ctx, r.S, r.Inputs) }); err != nil {
		return err
	}
	if r.Found.Complete {
		return r.released(ctx)
	}
	if r.Built, err = stage(r, "build", func() (*Built, error) { return build(ctx, r.S, r.Inputs, images.All) }); err != nil {
		return err
	}
	if r.Exported, err = stage(r, "export", func() (*Exported, error) { return export(ctx, r.S, r.Built) }); err != nil {
		return err
	}
	if r.Rendered, err = stage(r, "render", func() (*Rendered, error) {
		return renderStage(ctx, r.S, r.Inputs, pinsOf(r.Exported.Tags[0], r.Exported.Digests()))
	}); err != nil {
		return err
	}
	if r.Smoked, err = stage(r, "smoke", func() (*Smoked, error) { return smoke(ctx, r.S, r.Built, r.Rendered.Apps, false, r.Exported) }); err != nil {
		return err
	}
	if r.Pushed, err = stage(r, "push", func() (*Pushed, error) { return pushImages(ctx, r.S, r.Smoked, r.Exported) }); err != nil {
		return err
	}
	if r.Attested, err = stage(r, "attest", func() (*Attested, error) { return attest(ctx, r.S, r.Pushed) }); err != nil {
		return err
	}
	if r.Tagged, err = stage(r, "tag", func() (*Tagged, error) { return tagImages(ctx, r.S, r.Attested) }); err != nil {
		return err
	}
	r.Deployed, err = stage(r, "deploy", func() (*Deployed, error) { return deployStage(ctx, r.S, r.Config, r.Rendered.Apps, r.Deploy) })
	return err
}

// released is the rest of a release whose images exist already (find):
// the stages that would make them again are shown skipped, with why; the
// apps are rendered naming those digests, and deployed.
func (r *Release) released(ctx context.Context) (err error) {
	why := "already made: every image of " + r.Config.Version.Raw + " was built from these same inputs (" + r.Found.Inputs[:19] + "), smoke-tested and signed"
	for _, n := range []string{"build", "export", "smoke", "push", "attest", "tag"} {
		r.skipStage(n, why)
	}
	r.Pushed = &Pushed{Images: r.Found.Images}
	r.Tagged = &Tagged{Tags: r.Found.Tags}
	digests := map[string]string{}
	for _, p := range r.Found.Images {
		digests[p.Repo] = p.Digest
	}
	if r.Rendered, err = stage(r, "render", func() (*Rendered, error) {
		return renderStage(ctx, r.S, r.Inputs, pinsOf(r.Found.Tags[0], digests))
	}); err != nil {
		return err
	}
	r.Deployed, err = stage(r, "deploy", func() (*Deployed, error) { return deployStage(ctx, r.S, r.Config, r.Rendered.Apps, r.Deploy) })
	return err
}

// skipStage records a stage that had nothing to do.
func (r *Release) skipStage(name, why string) {
	r.S.P.Start("%s", name).Skip(why)
	r.Stages = append(r.Stages, StageResult{Name: name, Outcome: Skipped, Reason: why, Start: time.Now()})
}

// TestService is testService's short list: inputs → build (the images one
// service needs) → smoke (that service, afresh). Nothing is pushed,
// rendered into dist/ or deployed.
func (r *Release) TestService(ctx context.Context, service string) error {
	c, err := r.Config.WithOnly(service)
	if err != nil {
		return err
	}
	r.Config, r.Config.FreshSmoke, r.oneService = c, true, true
	err = r.finish(ctx, r.testService(ctx))
	for _, s := range r.Smoked.Services() {
		fmt.Fprintf(r.S.Out, "\n%s health check:\n%s\n%s log:\n%s\nping through the pinger:\n%s\n",
			s.Service, s.Output(images.CheckHealth), s.Service, s.Log, s.Output(images.PingCheck(s.App.Service.Protocol)))
	}
	return err
}

func (r *Release) testService(ctx context.Context) (err error) {
	if r.Inputs, err = stage(r, "inputs", func() (*Inputs, error) { return inputs(ctx, r.S, r.Config, r.Knobs) }); err != nil {
		return err
	}
	if r.Built, err = stage(r, "build", func() (*Built, error) { return build(ctx, r.S, r.Inputs, images.ForService()) }); err != nil {
		return err
	}
	r.Smoked, err = stage(r, "smoke", func() (*Smoked, error) { return smoke(ctx, r.S, r.Built, r.Inputs.Apps, true, nil) })
	return err
}

// finish writes the summary, and for a release saves it with the lock,
// the report and the release notes in dist/<version>/ — also when the
// release failed: they show how far it got.
func (r *Release) finish(ctx context.Context, err error) error {
	r.WriteSummary(r.S.Out)
	if werr := r.saveSummary(); werr != nil && err == nil {
		err = werr
	}
	if !r.oneService {
		w, werr := (&report.Renderer{}).Write(r.Config.Dist, r.Report(ctx))
		if werr != nil && err == nil {
			err = werr
		}
		if werr == nil {
			fmt.Fprintf(r.S.Out, "Report: %s\nRelease notes: %s\n", w.HTML, w.Notes)
		}
	}
	return err
}

// Build runs the inputs and build stages alone: the reproducibility tests
// and the benchmark build again without releasing.
func Build(ctx context.Context, s *Session, c Config, knobs BuildKnobs, imgs ...images.Image) (*Built, error) {
	if len(imgs) == 0 {
		imgs = images.All
	}
	in, err := inputs(ctx, s, c, knobs)
	if err != nil {
		return nil, err
	}
	return build(ctx, s, in, imgs)
}
