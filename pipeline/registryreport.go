package pipeline

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	smokeattest "github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/report"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// RunReport is `mage report VERSION [--against PREVIOUS]`: the report of a
// release from what the registry holds — its images by digest, their
// evidence (verified), the lock it installed — against PREVIOUS (by default
// the nearest lower version the registry has), into dist/VERSION/.
func RunReport(ctx context.Context, st settings.Settings, ver, against string, out io.Writer) error {
	p := progress.New(nil)
	c, err := ConfigFor(ver, st, RegistryAddress(st))
	if err != nil {
		return err
	}
	rr := report.Release{Version: c.Version.Raw}
	rr.Result.Outcome = report.Passed
	var lockFrom string
	for _, n := range images.Names() {
		repo := c.ImageRepo(n)
		ref, err := name.NewTag(repo + ":" + c.Version.Raw)
		if err != nil {
			return err
		}
		img, err := remote.Image(ref, append(registryAuth(), remote.WithContext(ctx))...)
		if err != nil {
			p.Infof("%s: not in the registry (%v)", ref, err)
			continue
		}
		d, _ := img.Digest()
		pinnedRef := repo + "@" + d.String()
		im := report.Image{Name: n, Ref: pinnedRef}
		im.Layers, im.Uncompressed = layers(img)
		for _, l := range im.Layers {
			im.Compressed += l.Size
		}
		vs, verr := VerifyRefs(ctx, st.Evidence, []string{pinnedRef}, c.Environment)
		if verr != nil {
			rr.Evidence = append(rr.Evidence, report.Evidence{Image: n, Kind: "verification", Reason: verr.Error()})
			rr.Result = report.Result{Outcome: report.Failed, Stage: "evidence", Error: n + ": " + verr.Error()}
		} else {
			res := vs[0].Result
			rr.Evidence = append(rr.Evidence,
				report.Evidence{Image: n, Kind: "signature", Verified: true, Reason: fmt.Sprintf("%d valid", res.Signatures)},
				report.Evidence{Image: n, Kind: "SBOM (CycloneDX)", Verified: true},
				report.Evidence{Image: n, Kind: "provenance (SLSA v1)", Verified: true, Reason: res.Provenance.BuilderID},
				report.Evidence{Image: n, Kind: "smoke attestation", Verified: true, Reason: res.Smoke.Result})
			rr.PipelineCommit = res.Provenance.Commit()
			if n == images.LHCbDIRAC {
				rr.Lock.Current, lockFrom = sbomDistributions(res.SBOM), "its verified SBOM"
				for _, dep := range res.Provenance.Dependencies {
					if dep.Name == "lock" {
						rr.LockDigest = dep.Digest
					}
				}
				if res.Provenance.Fixture() {
					rr.Flags = append(rr.Flags, report.Flag{Name: report.FIXTURE, StandsFor: "DIRAC and LHCbDIRAC (a FIXTURE build, says its provenance)"})
				}
				rr.Smoke = smokeServices(res.Smoke)
			}
		}
		if n == images.LHCbDIRAC && len(rr.Lock.Current) == 0 {
			if l, err := lockInImage(img); err == nil {
				rr.Lock.Current, lockFrom, rr.LockDigest = reportLock(l), "the image's "+lhcbdirac.LockPath, l.Digest()
			}
		}
		if prevVer := orDefault(against, func() string { return previousVersion(ctx, c) }); prevVer != "" {
			im.Previous = previousImage(ctx, repo, prevVer)
		}
		rr.Images = append(rr.Images, im)
	}
	if len(rr.Images) == 0 {
		return fmt.Errorf("%s: no image of %s in the registry", c.Repository, c.Version.Raw)
	}
	for _, d := range rr.Lock.Current {
		switch d.Name {
		case "lhcbdirac":
			rr.LHCbDIRAC = d.Version
		case "dirac":
			rr.DIRAC = d.Version
		}
	}
	// The previous release's lock: its evidence, its image, or resolved
	// from the index when the registry never had it.
	prev := orDefault(against, func() string { return previousVersion(ctx, c) })
	rr.Lock.PreviousRelease = prev
	if prev != "" {
		rr.Lock.Previous, rr.Lock.PreviousMissing = previousLock(ctx, st.Evidence, c, prev)
		if len(rr.Lock.Previous) == 0 {
			if l, how, err := lockOf(ctx, p, c, prev); err == nil {
				rr.Lock.Previous, rr.Lock.PreviousMissing = reportLock(l), ""
				rr.Lock.PreviousRelease = prev + " (" + how + ")"
			}
		}
	} else {
		rr.Lock.PreviousMissing = "no earlier release in the registry (give --against VERSION)"
	}
	p.Infof("lock of %s read from %s", c.Version.Raw, lockFrom)
	w, err := (&report.Renderer{}).Write(c.Dist, rr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s\n%s\n", w.HTML, w.Notes)
	return nil
}

func orDefault(v string, def func() string) string {
	if v != "" {
		return v
	}
	return def()
}

// lockOf is a version's lock when no image of it is at hand: the one
// resolved before, else resolved now from the index.
func lockOf(ctx context.Context, p *progress.Reporter, c Config, ver string) (*lhcbdirac.Lock, string, error) {
	v, err := version.Parse(ver)
	if err != nil {
		return nil, "", err
	}
	pc := c
	pc.Version = v
	if l, _ := lhcbdirac.RememberedLock(v, c.PipIndexURL); l != nil {
		return l, "its lock as resolved before from the index; not released to this registry", nil
	}
	l, err := ResolveLock(ctx, p, pc)
	return l, "its lock resolved from the index; not released to this registry", err
}

func reportLock(l *lhcbdirac.Lock) []report.Distribution {
	var out []report.Distribution
	for _, p := range l.Runtime {
		out = append(out, report.Distribution{Name: p.Key(), Version: p.Version, Hashes: p.Hashes})
	}
	return out
}

// lockInImage reads the lock the lhcbdirac image keeps at LockPath.
func lockInImage(img v1.Image) (*lhcbdirac.Lock, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	want := strings.TrimPrefix(lhcbdirac.LockPath, "/")
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s not in the image: %w", lhcbdirac.LockPath, err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "/")) == want {
			b, err := io.ReadAll(io.LimitReader(tr, lhcbdirac.MaxLockSize))
			if err != nil {
				return nil, err
			}
			return lhcbdirac.ParseLock(lhcbdirac.LockPath, b)
		}
	}
}

// smokeServices are a smoke attestation's services for the report.
func smokeServices(p *smokeattest.Predicate) []report.Service {
	if p == nil {
		return nil
	}
	var out []report.Service
	for _, s := range p.Services {
		rs := report.Service{Name: s.Name}
		for _, c := range s.Checks {
			rs.Checks = append(rs.Checks, report.Check{Name: c.Kind, Outcome: passFail(c.Passed), Reason: c.Detail})
		}
		out = append(out, rs)
	}
	return out
}
