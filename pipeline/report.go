package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	purl "github.com/package-url/packageurl-go"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lines"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep440"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/report"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/deploy"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// The release report: dist/<version>/report.html and release-notes.md,
// written by every release (a failed one too: they show how far it got)
// from the stages' typed results, and by `mage report VERSION` from what
// the registry holds (internal/report renders them; docs/report.md).

// stageNames are the release's stages in order, for "not reached".
var stageNames = []string{"inputs", "find", "build", "export", "render", "smoke", "push", "attest", "tag", "deploy"}

// Report is the report's input for this run.
func (r *Release) Report(ctx context.Context) report.Release {
	c := r.Config
	rr := report.Release{Version: c.Version.Raw, Started: r.S.P.Began(), Finished: time.Now()}
	if r.Inputs != nil {
		rr.PipelineCommit = r.Inputs.Commit
		if l := r.Inputs.Lock; l != nil {
			rr.LHCbDIRAC, rr.DIRAC, rr.LockDigest = l.LHCbDIRACVersion(), l.DIRACVersion(), l.Digest()
			for _, p := range l.Runtime {
				rr.Lock.Current = append(rr.Lock.Current, report.Distribution{Name: p.Key(), Version: p.Version, Hashes: p.Hashes})
			}
		}
		if !c.Fixture() {
			for _, s := range r.Inputs.Sources {
				rr.Hotfixes = append(rr.Hotfixes, report.Hotfix{Component: s.Name, Repository: s.Repo, Branch: s.Branch, Commit: s.Commit})
			}
		}
		if c.MesosSlaveBase == "" {
			rr.Flags = append(rr.Flags, report.Flag{Name: report.STANDIN, StandsFor: "the Mesos agent in the mesos-slave image (Mesos cannot be installed here)"})
		}
	}
	if c.Fixture() {
		rr.Flags = append(rr.Flags, report.Flag{Name: report.FIXTURE, StandsFor: "DIRAC and LHCbDIRAC (LHCBDIRAC_SOURCES=fixture): not the real releases"})
	}
	if r.Smoked != nil && r.Smoked.Images[images.Registrator].NotRun == "" && len(r.Smoked.Images[images.Registrator].Checks) > 0 {
		rr.Flags = append(rr.Flags, report.Flag{Name: report.STANDIN, StandsFor: "Marathon in the registrator's smoke test (standin-marathon)"})
	}

	// Stages and the timeline.
	rr.Result.Outcome = report.Passed
	seen := map[string]bool{}
	for _, s := range r.Stages {
		seen[s.Name] = true
		st := report.Stage{Name: s.Name, Outcome: outcome(string(s.Outcome)), Reason: s.Reason}
		if s.Err != nil {
			rr.Result = report.Result{Outcome: report.Failed, Stage: s.Name, Error: s.Err.Error()}
		}
		rr.Stages = append(rr.Stages, st)
	}
	names := stageNames
	if r.oneService {
		names = []string{"inputs", "build", "smoke"}
	}
	for _, n := range names {
		if !seen[n] {
			rr.Stages = append(rr.Stages, report.Stage{Name: n})
		}
	}
	for _, st := range r.S.P.Steps() {
		step := report.Step{Name: st.Name, Stage: stageOf(r.Stages, st), Start: st.Start, End: st.End(), Outcome: outcome(st.State()), Reason: st.Skipped}
		rr.Steps = append(rr.Steps, step)
	}

	// Images: what was pushed (or built), their layers, the previous
	// release's for comparison.
	prev := previousVersion(ctx, c)
	for _, row := range r.Rows() {
		im := report.Image{Name: row.Name, Ref: row.Ref, Compressed: row.Size}
		if img := r.reportImage(ctx, row.Name); img != nil {
			im.Layers, im.Uncompressed = layers(img)
		}
		if prev != "" {
			im.Previous = previousImage(ctx, c.ImageRepo(row.Name), prev)
		}
		rr.Images = append(rr.Images, im)
	}

	// The lock diff against the previous release, read from its evidence.
	if len(rr.Lock.Current) > 0 {
		rr.Lock.PreviousRelease = prev
		rr.Lock.Previous, rr.Lock.PreviousMissing = previousLock(ctx, r.S.Settings.Evidence, c, prev)
	}

	// Smoke tests.
	if r.Smoked != nil {
		for _, sv := range r.Smoked.Services() {
			rs := report.Service{Name: sv.Service, Log: lines.Last(sv.Log, 20)}
			if sv.CannotRun != "" {
				rs.Checks = []report.Check{{Name: images.CheckHealth + " & " + images.PingCheck(sv.App.Service.Protocol), Outcome: report.CannotRunHere,
					Reason: strings.TrimPrefix(sv.CannotRun, services.CannotRunPrefix)}}
			}
			for _, ch := range sv.Checks {
				rs.Checks = append(rs.Checks, report.Check{Name: ch.Name, Outcome: passFail(ch.Passed), Duration: ch.Took})
			}
			rr.Smoke = append(rr.Smoke, rs)
		}
		for _, n := range []string{images.MesosSlave, images.Registrator} {
			res, ok := r.Smoked.Images[n]
			if !ok || res.NotRun != "" {
				continue
			}
			rs := report.Service{Name: n + " (image)"}
			for _, ch := range res.Checks {
				rs.Checks = append(rs.Checks, report.Check{Name: ch.Name, Outcome: passFail(ch.Passed), Duration: ch.Took})
			}
			rr.Smoke = append(rr.Smoke, rs)
		}
	}

	// Evidence: what was attached, and whether it verifies now.
	if r.Attested != nil {
		for _, p := range r.Pushed.List() {
			for _, piece := range r.Attested.Pieces[p.Name] {
				rr.Evidence = append(rr.Evidence, report.Evidence{Image: p.Name, Kind: pieceKind(piece.Type), Verified: true, Reason: fmt.Sprintf("%d bytes, %s", piece.Bytes, piece.Where)})
			}
			if _, err := VerifyRefs(ctx, r.S.Settings.Evidence, []string{p.Ref()}, c.Environment); err != nil {
				rr.Evidence = append(rr.Evidence, report.Evidence{Image: p.Name, Kind: "verification", Verified: false, Reason: err.Error()})
			} else {
				rr.Evidence = append(rr.Evidence, report.Evidence{Image: p.Name, Kind: "verification", Verified: true, Reason: "signature, SBOM, provenance and smoke verified with the release key"})
			}
		}
	}

	// The deploy: the plan field by field, or the dry run.
	if d := r.Deployed; d != nil {
		rr.Deploy = deployReport(d, r.Deploy != nil)
		if d.Skipped != "" {
			rr.Deploy.Message = d.Skipped
		}
	}
	for _, s := range r.Stages {
		if s.Name == "deploy" && s.Err != nil {
			rr.Deploy.Outcome, rr.Deploy.Message = report.DeployFailed, s.Err.Error()
		}
	}
	return rr
}

func deployReport(d *Deployed, live bool) report.Deploy {
	out := report.Deploy{DryRun: !live}
	switch {
	case d.Skipped != "" && live:
		out.Outcome = report.DeploySkip
	case d.Skipped != "":
		for _, a := range d.DryRun {
			out.Apps = append(out.Apps, report.AppPlan{ID: a.ID, Action: report.Create, Changes: []report.FieldChange{{Path: "container.docker.image", New: a.Image}, {Path: "instances", New: fmt.Sprint(a.Instances)}}})
		}
	default:
		out.Outcome = report.Deployed
		for _, ch := range d.Plan {
			ap := report.AppPlan{ID: ch.ID, Action: report.Action(ch.Action)}
			for _, f := range ch.Fields {
				ap.Changes = append(ap.Changes, report.FieldChange{Path: f.Path, Old: f.Old, New: f.New})
			}
			for _, res := range d.Results {
				if res.ID == ch.ID {
					ap.Outcome, ap.Message = appOutcome(res)
				}
			}
			out.Apps = append(out.Apps, ap)
		}
	}
	return out
}

func appOutcome(r deploy.Result) (report.DeployOutcome, string) {
	switch {
	case r.RolledBack:
		return report.RolledBack, errString(r.Err)
	case r.Err != nil:
		return report.DeployFailed, r.Err.Error()
	}
	return report.Deployed, ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// stageOf is the stage a step ran in: the one whose span holds its start.
func stageOf(stages []StageResult, st progress.Step) string {
	for _, s := range stages {
		if s.Name == st.Name {
			return s.Name
		}
	}
	for _, s := range stages {
		if !st.Start.Before(s.Start) && !st.Start.After(s.Start.Add(s.Took)) {
			return s.Name
		}
	}
	return "setup"
}

func outcome(s string) report.Outcome {
	switch s {
	case "passed", "done":
		return report.Passed
	case "failed", "FAILED":
		return report.Failed
	case "cached":
		return report.Cached
	case "skipped":
		return report.Skipped
	}
	return report.NotReached
}

func passFail(ok bool) report.Outcome {
	if ok {
		return report.Passed
	}
	return report.Failed
}

func pieceKind(t string) string {
	switch t {
	case evidence.TypeSBOM:
		return "SBOM (CycloneDX)"
	case evidence.TypeProvenance:
		return "provenance (SLSA v1)"
	case evidence.TypeSmoke:
		return "smoke attestation"
	}
	return "signature"
}

// reportImage is the named image to read layers from: as pushed when it
// was (its layers read from the registry as they are), else as exported
// (a layer remembered from an earlier export would be rewritten to be
// read: seconds per hundred megabytes).
func (r *Release) reportImage(ctx context.Context, imageName string) v1.Image {
	if ref := r.Pushed.Ref(imageName); ref != "" {
		if d, err := name.NewDigest(ref); err == nil {
			if img, err := remote.Image(d, append(registryAuth(), remote.WithContext(ctx))...); err == nil {
				return img
			}
		}
	}
	if r.Exported != nil && r.Exported.Images[imageName] != nil {
		if img, err := r.Exported.Images[imageName].Image(ctx); err == nil {
			return img
		}
	}
	return nil
}

// layers are an image's layers (with what made each, from its history)
// and its uncompressed size (each layer's remembered by its diffID: it is
// the layer read whole once).
func layers(img v1.Image) ([]report.Layer, int64) {
	m, err := img.Manifest()
	if err != nil {
		return nil, 0
	}
	cfg, _ := img.ConfigFile()
	var hist []string
	if cfg != nil {
		for _, h := range cfg.History {
			if !h.EmptyLayer {
				hist = append(hist, h.CreatedBy)
			}
		}
	}
	var out []report.Layer
	var total int64
	ls, _ := img.Layers()
	for i, l := range m.Layers {
		rl := report.Layer{Digest: l.Digest.String(), Size: l.Size}
		if i < len(hist) {
			rl.CreatedBy = hist[i]
		}
		out = append(out, rl)
		if i < len(ls) {
			total += uncompressedSize(ls[i])
		}
	}
	return out, total
}

// previousVersion is the nearest lower final version the lhcbdirac
// repository holds ("" for none).
func previousVersion(ctx context.Context, c Config) string {
	repo, err := name.NewRepository(c.ImageRepo(images.LHCbDIRAC))
	if err != nil {
		return ""
	}
	tags, err := remote.List(repo, append(registryAuth(), remote.WithContext(ctx))...)
	if err != nil {
		return ""
	}
	var best version.Version
	for _, t := range tags {
		v, err := version.Parse(t)
		if err != nil || v.Pre || pep440.Compare(v.PEP440(), c.Version.PEP440()) >= 0 {
			continue
		}
		if best.Raw == "" || pep440.Compare(v.PEP440(), best.PEP440()) > 0 {
			best = v
		}
	}
	return best.Raw
}

func previousImage(ctx context.Context, repo, ver string) *report.PreviousImage {
	ref, err := name.NewTag(repo + ":" + ver)
	if err != nil {
		return nil
	}
	img, err := remote.Image(ref, append(registryAuth(), remote.WithContext(ctx))...)
	if err != nil {
		return nil
	}
	d, _ := img.Digest()
	m, err := img.Manifest()
	if err != nil {
		return nil
	}
	p := &report.PreviousImage{Release: ver, Ref: repo + "@" + d.String(), Compressed: m.Config.Size}
	for _, l := range m.Layers {
		p.Compressed += l.Size
		p.Layers = append(p.Layers, l.Digest.String())
	}
	return p
}

// previousLock is the previous release's lock as its evidence records it
// (the SBOM's Python distributions, verified with the release key).
func previousLock(ctx context.Context, ev settings.Evidence, c Config, prev string) ([]report.Distribution, string) {
	if prev == "" {
		return nil, "no earlier release in " + c.ImageRepo(images.LHCbDIRAC)
	}
	ref, err := name.NewTag(c.ImageRepo(images.LHCbDIRAC) + ":" + prev)
	if err != nil {
		return nil, err.Error()
	}
	desc, err := remote.Head(ref, append(registryAuth(), remote.WithContext(ctx))...)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", ref, err)
	}
	vs, err := VerifyRefs(ctx, ev, []string{ref.Context().Name() + "@" + desc.Digest.String()}, "")
	if err != nil {
		return nil, fmt.Sprintf("%s's evidence does not verify: %v", prev, err)
	}
	return sbomDistributions(vs[0].Result.SBOM), ""
}

// sbomDistributions are the Python distributions an SBOM lists.
func sbomDistributions(bom *cdx.BOM) []report.Distribution {
	var out []report.Distribution
	if bom == nil || bom.Components == nil {
		return nil
	}
	for _, c := range *bom.Components {
		p, err := purl.FromString(c.PackageURL)
		if err != nil || p.Type != purl.TypePyPi {
			continue
		}
		d := report.Distribution{Name: p.Name, Version: p.Version}
		if c.Hashes != nil {
			for _, h := range *c.Hashes {
				if h.Algorithm == cdx.HashAlgoSHA256 {
					d.Hashes = append(d.Hashes, h.Value)
				}
			}
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// uncompressedSize is l's uncompressed size, remembered by its diffID
// (0 when it cannot be read).
func uncompressedSize(l v1.Layer) int64 {
	id, err := l.DiffID()
	if err != nil {
		return 0
	}
	dir, err := cachedir.Sub("layer-sizes")
	if err != nil {
		return 0
	}
	memo := filepath.Join(dir, id.Algorithm+"-"+id.Hex)
	if b, err := os.ReadFile(memo); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			return n
		}
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return 0
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return 0
	}
	_ = cachedir.WriteFile(memo, []byte(strconv.FormatInt(n, 10)))
	return n
}
