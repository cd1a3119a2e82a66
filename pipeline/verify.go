package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/sbom"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// Verification before anything runs: every image an app names must be
// named by digest and carry valid evidence — signed with the release key,
// provenance naming this pipeline, a smoke attestation that says passed
// for that very digest, an SBOM that lists what the provenance says was
// installed — and a FIXTURE build never reaches production. The release's
// deploy stage, marathon:deploy, scale, ci:release and promote all come
// through here before their first request to Marathon.

// Verified is one image's checked evidence.
type Verified struct {
	Ref    string // repository@digest
	Apps   []string
	Result *evidence.Result
}

// pinned is the repository@digest of an image reference pinned by
// digest (repository:tag@sha256:… or repository@sha256:…).
func pinned(ref string) (name.Digest, error) {
	r := app.ParseImage(ref)
	if r.Digest == "" {
		return name.Digest{}, fmt.Errorf("%s is named by tag only: an app must name its image by digest (repository:tag@sha256:…), so what runs is what was tested", ref)
	}
	return name.NewDigest(r.Repo + "@" + r.Digest)
}

// VerifyRefs checks the evidence of images named by digest.
func VerifyRefs(ctx context.Context, ev settings.Evidence, refs []string, environment string) ([]Verified, error) {
	var apps []render.App
	for _, r := range refs {
		doc := map[string]any{"id": r, "container": map[string]any{"docker": map[string]any{"image": r}}}
		b, _ := json.Marshal(doc)
		apps = append(apps, render.App{ID: r, Doc: doc, JSON: b})
	}
	return VerifyApps(ctx, ev, apps, environment)
}

// VerifyApps checks the evidence of every image the apps name; environment
// is where they are going (a FIXTURE build is refused for production).
func VerifyApps(ctx context.Context, ev settings.Evidence, apps []render.App, environment string) ([]Verified, error) {
	byRef := map[string]*Verified{}
	var order []string
	var errs []error
	for _, a := range apps {
		d, err := pinned(a.Definition().Image())
		if err != nil {
			errs = append(errs, fmt.Errorf("app %s: %w", a.ID, err))
			continue
		}
		if byRef[d.String()] == nil {
			byRef[d.String()] = &Verified{Ref: d.String()}
			order = append(order, d.String())
		}
		byRef[d.String()].Apps = append(byRef[d.String()].Apps, a.ID)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	v, from, err := VerifyKey(ev)
	if err != nil {
		return nil, err
	}
	digests := make([]name.Digest, len(order))
	for i, r := range order {
		digests[i], _ = name.NewDigest(r)
	}
	results, err := v.VerifyAll(ctx, digests, evidence.Policy{}, evidence.Options{Remote: registryAuth()})
	if err != nil {
		return nil, fmt.Errorf("the evidence does not hold (verified with %s):\n%w", from, err)
	}
	var out []Verified
	for i, r := range order {
		vr := byRef[r]
		vr.Result = results[i]
		if err := checkEvidence(*vr, environment); err != nil {
			errs = append(errs, err)
		}
		out = append(out, *vr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("the evidence does not hold:\n%w", err)
	}
	return out, nil
}

// checkEvidence is what the release demands beyond valid signatures.
func checkEvidence(v Verified, environment string) error {
	res := v.Result
	if environment == "production" && res.Provenance.Fixture() {
		return fmt.Errorf("%s (apps %s): its provenance says it is a FIXTURE build (the test double, not the real DIRAC): never deployed to production", v.Ref, strings.Join(v.Apps, ", "))
	}
	// Every distribution the provenance says was installed from the lock
	// must be in the SBOM, at that version and hash.
	var want []sbom.PythonDist
	for _, d := range res.Provenance.Dependencies {
		name, ok := strings.CutPrefix(d.Name, "pypi:")
		if !ok {
			continue
		}
		version := d.URI[strings.LastIndex(d.URI, "@")+1:]
		want = append(want, sbom.PythonDist{Name: name, Version: version, SHA256: []string{strings.TrimPrefix(d.Digest, "sha256:")}})
	}
	if missing := sbom.MissingPython(res.SBOM, want); len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("%s (apps %s): its SBOM does not list %d distributions its provenance installed from the lock: %s", v.Ref, strings.Join(v.Apps, ", "), len(missing), strings.Join(first(missing, 5), ", "))
	}
	return nil
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… (%d more)", len(s)-n))
	}
	return s
}
