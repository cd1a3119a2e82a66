package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/provenance"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/sbom"
	smokeattest "github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
)

// The attest stage: what every pushed image carries, signed with the
// release key — an SBOM (what is in it), SLSA provenance (what it was
// made from, by this pipeline) and a smoke attestation (which checks it
// passed, against which rendered app) — so a deploy can tell the image
// that was tested from any other (docs/evidence.md).

// Attested is the evidence attached to every pushed image.
type Attested struct {
	Pushed *Pushed
	KeyID  string // the release key's fingerprint
	Key    string // where the key came from (never the key)
	Pieces map[string][]evidence.Piece
	Took   time.Duration
}

func attest(ctx context.Context, s *Session, p *Pushed) (*Attested, error) {
	start := time.Now()
	signer, from, err := SigningKey(s.Settings.Evidence)
	if err != nil {
		return nil, err
	}
	s.P.Infof("signing with %s (key %s)", from, signer.KeyID())
	out := &Attested{Pushed: p, KeyID: signer.KeyID(), Key: from, Pieces: map[string][]evidence.Piece{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, im := range p.List() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := s.P.Start("attest %s (SBOM, provenance, smoke; signed)", im.Name)
			atts, err := attestations(ctx, p, im.Name)
			var att *evidence.Attached
			if err == nil {
				var ref name.Digest
				if ref, err = name.NewDigest(im.Ref()); err == nil {
					att, err = signer.Attach(ctx, ref, atts, evidence.Options{Remote: registryAuth()})
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, step.Fail(fmt.Errorf("evidence of %s: %w", im.Name, err)))
				return
			}
			step.Done()
			out.Pieces[im.Name] = att.Pieces
		}()
	}
	wg.Wait()
	out.Took = time.Since(start)
	return out, errors.Join(errs...)
}

func registryAuth() []remote.Option {
	return []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

// attestations are one image's SBOM, provenance and smoke statements.
func attestations(ctx context.Context, p *Pushed, imageName string) ([]evidence.Attestation, error) {
	e := p.Exported
	in := e.Built.Inputs
	local := e.Images[imageName]
	pushed := p.Images[imageName]

	// The SBOM: what the image holds (its Debian packages, every Go
	// binary's modules) and, for lhcbdirac, every distribution of the lock.
	img, err := local.Image(ctx)
	if err != nil {
		return nil, err
	}
	layers, err := cachedir.Sub("sbom-layers")
	if err != nil {
		return nil, err
	}
	contents, err := sbom.Scanner{Dir: layers}.Scan(img)
	if err != nil {
		return nil, fmt.Errorf("reading the image for its SBOM: %w", err)
	}
	c := sbom.Contents{Debian: contents.Debian, Go: contents.Go}
	if imageName == images.LHCbDIRAC {
		c.Python = lockDistributions(in)
	}
	bom, err := sbom.Build(sbom.Subject{Name: pushed.Repo, Version: in.Config.Version.Raw, Digest: pushed.Digest},
		sbom.Tool{Name: "lhcbdirac-pipeline", Version: in.Commit}, c, time.Now())
	if err != nil {
		return nil, err
	}
	sbomAtt, err := evidence.SBOM(bom)
	if err != nil {
		return nil, err
	}

	provAtt, err := evidence.Provenance(provenanceOf(e, imageName))
	if err != nil {
		return nil, err
	}

	if attestedBefore := smokeAttested(p.Smoked, imageName); attestedBefore {
		// Its smoke attestation from the run that tested this digest stands.
		return []evidence.Attestation{sbomAtt, provAtt}, nil
	}
	if why := smokeNotRun(p.Smoked, imageName); why != "" {
		// Nothing was tested (the registrator without discovery in the
		// services file): no smoke attestation, so nothing deploys it.
		return []evidence.Attestation{sbomAtt, provAtt}, nil
	}
	pred, err := smokeOf(p.Smoked, imageName, in.Commit)
	if err != nil {
		return nil, err
	}
	smokeAtt, err := evidence.Smoke(pred)
	if err != nil {
		return nil, err
	}
	return []evidence.Attestation{sbomAtt, provAtt, smokeAtt}, nil
}

// lockDistributions are what the lhcbdirac image installed from its lock
// (a hotfixed distribution is built from its commit instead: provenance
// names it).
func lockDistributions(in *Inputs) []sbom.PythonDist {
	if in.Lock == nil {
		return nil
	}
	hot := map[string]bool{}
	for _, src := range in.Sources {
		hot[normalizeName(src.Name)] = true
	}
	var out []sbom.PythonDist
	for _, pin := range in.Lock.Runtime {
		if !hot[pin.Key()] {
			out = append(out, sbom.PythonDist{Name: pin.Key(), Version: pin.Version, SHA256: pin.Hashes})
		}
	}
	return out
}

func normalizeName(n string) string {
	b := []byte(n)
	for i := range b {
		if b[i] >= 'A' && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// provenanceOf is one image's SLSA provenance: this pipeline at its
// commit, every input by digest.
func provenanceOf(e *Exported, imageName string) provenance.Input {
	in := e.Built.Inputs
	c := in.Config
	var built BuiltImage
	for _, b := range e.Built.Images {
		if b.Image.Name == imageName {
			built = b
		}
	}
	pi := provenance.Input{
		Commit:       in.Commit,
		Fixture:      c.Fixture(),
		BuilderDeps:  map[string]string{"dagger": hostimages.DaggerVersion, "go": in.Go.GoVersion()},
		InvocationID: in.RunID,
		Image:        imageName,
		Version:      c.Version.Raw,
		StartedOn:    built.Start,
		FinishedOn:   built.Start.Add(built.Took),
		InputsDigest: in.Digest,
		Recipe:       map[string]string{"environment": c.Environment},
	}
	if len(e.Tags) > 0 {
		pi.Tag = e.Tags[0]
	}
	if in.Dirty {
		pi.BuilderDeps["worktree"] = "modified"
	}
	for _, src := range in.Sources {
		pi.Hotfixes = append(pi.Hotfixes, provenance.Hotfix{Name: src.Name, Repo: src.Repo, Branch: src.Branch, Commit: src.Commit})
		pi.Dependencies = append(pi.Dependencies, provenance.Dependency{Name: "source:" + src.Name, URI: src.Repo, Digest: "gitCommit:" + src.Commit})
	}
	for role, ref := range basesOf(in, imageName) {
		if _, d, ok := cutDigest(ref); ok {
			pi.Dependencies = append(pi.Dependencies, provenance.Dependency{Name: "base:" + role, URI: ref, Digest: d})
		}
	}
	if imageName == images.LHCbDIRAC && in.Lock != nil {
		pi.Dependencies = append(pi.Dependencies, provenance.Dependency{Name: "lock", URI: "lhcbdirac.lock", Digest: in.Lock.Digest()})
		for _, d := range lockDistributions(in) {
			if len(d.SHA256) > 0 {
				pi.Dependencies = append(pi.Dependencies, provenance.Dependency{Name: "pypi:" + d.Name, URI: "pkg:pypi/" + d.Name + "@" + d.Version, Digest: "sha256:" + d.SHA256[0]})
			}
		}
		// The project's patches to source-built distributions (their
		// sdists are the pypi: entries above, as downloaded).
		if in.installer == "" {
			var skip []string
			for _, src := range in.Sources {
				skip = append(skip, src.Name)
			}
			for _, p := range lhcbdirac.AppliedPatches(in.Lock, skip...) {
				pi.Dependencies = append(pi.Dependencies, provenance.Dependency{Name: "patch:" + p.Name, URI: "images/lhcbdirac/patches/" + p.Name, Digest: "sha256:" + p.SHA256})
			}
		}
	}
	return pi
}

// basesOf are the bases an image was built on, by role.
func basesOf(in *Inputs, imageName string) map[string]string {
	b := in.Bases
	out := map[string]string{"go-builder": b.Tools}
	switch imageName {
	case images.LHCbDIRAC:
		out["runtime"], out["builder"] = b.LHCbDIRAC, b.Builder
	case images.MesosSlave:
		out["runtime"] = b.MesosSlave
	}
	return out
}

func cutDigest(ref string) (string, string, bool) {
	for i := 0; i+1 < len(ref); i++ {
		if ref[i] == '@' {
			return ref[:i], ref[i+1:], true
		}
	}
	return "", "", false
}

// smokeNotRun is why an image's smoke test (or its tester's) did not run;
// "" when it ran.
func smokeNotRun(sm *Smoked, imageName string) string {
	if sm == nil {
		return ""
	}
	res := sm.Images[imageName]
	if tb := testedBy(imageName); tb != "" {
		res = sm.Images[tb]
	}
	return res.NotRun
}

// smokeOf is one image's smoke attestation: the checks it passed, each
// against the app (or the test spec) it ran from.
func smokeOf(sm *Smoked, imageName, commit string) (*smokeattest.Predicate, error) {
	res := sm.Images[imageName]
	if tb := testedBy(imageName); tb != "" {
		res = sm.Images[tb]
	}
	var services []smokeattest.Service
	start, end := time.Now(), time.Time{}
	for _, sv := range res.Services {
		if sv.CannotRun != "" {
			continue // not run: nothing to attest
		}
		ss := smokeattest.Service{Name: sv.Service, App: smokeattest.App{ID: sv.App.ID, SHA256: sha(sv.App.JSON), Run: runSHA(sv.App.JSON)}}
		for _, ch := range sv.Checks {
			kind := map[string]string{images.CheckHealth: smokeattest.CheckCommandHealth, images.CheckPing: smokeattest.CheckDIPSPing, images.CheckHTTPSPing: smokeattest.CheckHTTPSPing}[ch.Name]
			ping := kind == smokeattest.CheckDIPSPing || kind == smokeattest.CheckHTTPSPing
			if kind == "" || imageName == images.Pinger && !ping {
				continue // the pinger is vouched for by the pings that went through it
			}
			ss.Checks = append(ss.Checks, smokeattest.Check{Kind: kind, Passed: ch.Passed, At: ch.At, Detail: detail(ch)})
			start, end = minTime(start, ch.At.Add(-ch.Took)), maxTime(end, ch.At)
		}
		services = append(services, ss)
	}
	if len(res.Services) == 0 {
		// An image without DIRAC services: its own checks, against the
		// test's own specification.
		for _, ch := range res.Checks {
			services = append(services, smokeattest.Service{Name: ch.Name, App: smokeattest.App{ID: imageName + " smoke: " + ch.Name, SHA256: sha([]byte(ch.Spec))},
				Checks: []smokeattest.Check{{Kind: ch.Kind, Passed: ch.Passed, At: ch.At, Detail: detail(ch)}}})
			start, end = minTime(start, ch.At.Add(-ch.Took)), maxTime(end, ch.At)
		}
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	if end.IsZero() {
		return nil, fmt.Errorf("smoke attestation of %s: no check ran", imageName)
	}
	return smokeattest.New(commit, start, end, services)
}

func testedBy(imageName string) string {
	for _, im := range images.All {
		if im.Name == imageName {
			return im.TestedBy
		}
	}
	return ""
}

func detail(ch images.Check) string {
	if ch.Passed {
		return ""
	}
	return "failed"
}

// runSHA is the sha256 of app as its task runs: the JSON with its image,
// when pinned by digest, named by the digest alone ("repo:tag@sha256:…"
// becomes "repo@sha256:…"; Docker runs the digest and ignores the tag).
// An app whose image is not pinned, or that does not parse, keeps its
// own bytes: nothing is reused for it that would not be for sha.
func runSHA(app []byte) string {
	var doc struct {
		Container struct {
			Docker struct {
				Image string `json:"image"`
			} `json:"docker"`
		} `json:"container"`
	}
	if json.Unmarshal(app, &doc) != nil {
		return sha(app)
	}
	img := doc.Container.Docker.Image
	d, err := nameDigest(img)
	if err != nil {
		return sha(app)
	}
	quoted := func(s string) []byte { b, _ := json.Marshal(s); return b }
	return sha(bytes.ReplaceAll(app, quoted(img), quoted(d.Context().Name()+"@"+d.DigestStr())))
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// smokeAttested is true when none of the image's checks ran in this run:
// an earlier run's smoke attestation of this digest covers them all.
func smokeAttested(sm *Smoked, imageName string) bool {
	res := sm.Images[imageName]
	if tb := testedBy(imageName); tb != "" {
		res = sm.Images[tb]
	}
	if res.Attested {
		return true
	}
	if len(res.Services) == 0 {
		return false
	}
	for _, sv := range res.Services {
		if !sv.Attested {
			return false
		}
	}
	return true
}
