package evidence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	"golang.org/x/sync/errgroup"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/provenance"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/sbom"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"
)

// What Verify refuses, for errors.Is on an *Error.
var (
	ErrNoSignature  = errors.New("no image signature by the verify key")
	ErrNoSBOM       = errors.New("no SBOM attestation")
	ErrNoProvenance = errors.New("no provenance attestation")
	ErrNoSmoke      = errors.New("no smoke attestation")
	ErrSmokeFailed  = errors.New("the smoke attestation says failed")
	ErrBuilder      = errors.New("the provenance names another builder")
	// Reasons a piece of evidence found was not counted.
	ErrOtherKey     = errors.New("signed by another key")
	ErrBadSignature = errors.New("signature does not verify (edited after signing)")
	ErrOtherSubject = errors.New("about another image")
	ErrMalformed    = errors.New("malformed")
)

// Problem is one reason, with what it concerns.
type Problem struct {
	Err    error  // one of the Err… values
	Where  string // the piece concerned ("sha256-….att layer 2 (https://slsa.dev/provenance/v1)"), or ""
	Detail string
}

func (p Problem) String() string {
	s := p.Err.Error()
	if p.Where != "" {
		s = p.Where + ": " + s
	}
	if p.Detail != "" {
		s += " (" + p.Detail + ")"
	}
	return s
}

// Error is Verify's refusal: the image, its digest and every problem.
type Error struct {
	Image    string // repository
	Digest   string
	KeyID    string
	Missing  []Problem // what the deploy needs and did not get
	Rejected []Problem // evidence found but not counted, and why
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "evidence of %s@%s does not hold (verify key %s): ", e.Image, e.Digest, e.KeyID)
	for i, p := range e.Missing {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	if len(e.Rejected) > 0 {
		b.WriteString("; not counted: ")
		for i, p := range e.Rejected {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p.String())
		}
	}
	return b.String()
}

// Unwrap lets errors.Is find every reason.
func (e *Error) Unwrap() []error {
	var out []error
	for _, p := range append(append([]Problem(nil), e.Missing...), e.Rejected...) {
		out = append(out, p.Err)
	}
	return out
}

// Result is the verified evidence of one image.
type Result struct {
	Image      name.Digest
	Signatures int // valid image signatures by the key
	SBOM       *cdx.BOM
	Provenance *provenance.Parsed
	Smoke      *smoke.Predicate   // the newest smoke attestation: it decides
	SmokeAll   []*smoke.Predicate // every valid one, oldest first
	// Rejected lists evidence found and not counted (another key's, …)
	// that did not stop the verification.
	Rejected []Problem
}

// Policy is what Verify requires beyond valid signatures.
type Policy struct {
	// BuilderPrefix is what the provenance's builder id must start with;
	// "" means this pipeline (provenance.Pipeline + "@").
	BuilderPrefix string
}

// Verify fetches the evidence attached to img (both forms: cosign's .sig
// and .att tags, and the referrers), checks every signature against the
// key and every statement's subject against img's digest, and requires a
// valid image signature, SBOM, provenance (of this pipeline) and smoke
// attestation whose newest says "passed". Anything else is an *Error
// naming the image, the digest and what is missing or invalid.
func (v *Verifier) Verify(ctx context.Context, img name.Digest, pol Policy, opt Options) (*Result, error) {
	ropts, err := reuse(ctx, opt)
	if err != nil {
		return nil, err
	}
	return v.verify(ctx, img, pol, ropts)
}

// VerifyAll verifies images in parallel over one registry client; the
// results are in the order of imgs. The error joins every image's.
func (v *Verifier) VerifyAll(ctx context.Context, imgs []name.Digest, pol Policy, opt Options) ([]*Result, error) {
	ropts, err := reuse(ctx, opt)
	if err != nil {
		return nil, err
	}
	out := make([]*Result, len(imgs))
	errs := make([]error, len(imgs))
	var wg sync.WaitGroup
	for i, img := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = v.verify(ctx, img, pol, ropts)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// reuse makes one puller for every request of a verification, so the
// registry's /v2/ handshake (and token) is done once per repository.
func reuse(ctx context.Context, opt Options) ([]remote.Option, error) {
	ropts := append([]remote.Option{remote.WithContext(ctx)}, opt.Remote...)
	p, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}
	return append(ropts, remote.Reuse(p)), nil
}

func (v *Verifier) verify(ctx context.Context, img name.Digest, pol Policy, ropts []remote.Option) (*Result, error) {
	pieces, err := collect(ctx, img, ropts)
	if err != nil {
		return nil, fmt.Errorf("evidence of %s: %w", img, err)
	}
	res := &Result{Image: img}
	verr := &Error{Image: img.Context().Name(), Digest: img.DigestStr(), KeyID: v.keyID}
	var sboms []*cdx.BOM
	var provs []*provenance.Parsed
	for _, f := range pieces {
		st, perr := v.check(ctx, img, f)
		if perr != nil {
			res.Rejected = append(res.Rejected, *perr)
			continue
		}
		if st == nil { // a valid simple-signing image signature
			res.Signatures++
			continue
		}
		reject := func(err error, detail string) {
			res.Rejected = append(res.Rejected, Problem{Err: err, Where: f.where, Detail: detail})
		}
		switch st.PredicateType {
		case TypeCosignSign:
			res.Signatures++
		case TypeSBOM:
			bom, err := sbom.Decode(st.Predicate)
			if err != nil {
				reject(ErrMalformed, err.Error())
				continue
			}
			sboms = append(sboms, bom)
		case TypeProvenance:
			p, err := provenance.Parse(st.Predicate)
			if err != nil {
				reject(ErrMalformed, err.Error())
				continue
			}
			provs = append(provs, p)
		case TypeSmoke:
			p, err := smoke.Parse(st.Predicate)
			if err != nil {
				reject(ErrMalformed, err.Error())
				continue
			}
			res.SmokeAll = append(res.SmokeAll, p)
		}
	}
	if res.Signatures == 0 {
		verr.Missing = append(verr.Missing, Problem{Err: ErrNoSignature})
	}
	if len(sboms) == 0 {
		verr.Missing = append(verr.Missing, Problem{Err: ErrNoSBOM})
	} else {
		sort.SliceStable(sboms, func(i, j int) bool { return bomTime(sboms[i]).Before(bomTime(sboms[j])) })
		res.SBOM = sboms[len(sboms)-1]
	}
	if len(provs) == 0 {
		verr.Missing = append(verr.Missing, Problem{Err: ErrNoProvenance})
	} else {
		sort.SliceStable(provs, func(i, j int) bool { return provs[i].FinishedOn.Before(provs[j].FinishedOn) })
		res.Provenance = provs[len(provs)-1]
		prefix := pol.BuilderPrefix
		if prefix == "" {
			prefix = provenance.Pipeline + "@"
		}
		if !strings.HasPrefix(res.Provenance.BuilderID, prefix) {
			verr.Missing = append(verr.Missing, Problem{Err: ErrBuilder, Detail: fmt.Sprintf("builder %q, want %s…", res.Provenance.BuilderID, prefix)})
		}
	}
	if len(res.SmokeAll) == 0 {
		verr.Missing = append(verr.Missing, Problem{Err: ErrNoSmoke})
	} else {
		sort.SliceStable(res.SmokeAll, func(i, j int) bool { return res.SmokeAll[i].FinishedOn.Before(res.SmokeAll[j].FinishedOn) })
		res.Smoke = res.SmokeAll[len(res.SmokeAll)-1]
		if res.Smoke.Result != smoke.Passed {
			verr.Missing = append(verr.Missing, Problem{Err: ErrSmokeFailed, Detail: strings.Join(res.Smoke.Failures(), ", ")})
		}
	}
	if len(verr.Missing) > 0 {
		verr.Rejected = res.Rejected
		return nil, verr
	}
	return res, nil
}

func bomTime(b *cdx.BOM) time.Time {
	if b.Metadata == nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339, b.Metadata.Timestamp)
	return t
}

// check verifies one piece's signature and subject. It returns the
// statement of an envelope, nil for a valid simple-signing signature, or
// why the piece does not count.
func (v *Verifier) check(ctx context.Context, img name.Digest, f found) (*statementJSON, *Problem) {
	bad := func(err error, detail string) *Problem { return &Problem{Err: err, Where: f.where, Detail: detail} }
	if f.problem != "" {
		return nil, bad(ErrMalformed, f.problem)
	}
	if f.simple != nil {
		if err := v.verifySig(f.simple, f.sig); err != nil {
			return nil, bad(ErrOtherKey, "or the payload was edited after signing")
		}
		var p payload.SimpleContainerImage
		if err := json.Unmarshal(f.simple, &p); err != nil {
			return nil, bad(ErrMalformed, "simple-signing payload: "+err.Error())
		}
		if got := p.Critical.Image.DockerManifestDigest; got != img.DigestStr() {
			return nil, bad(ErrOtherSubject, "signs "+got)
		}
		return nil, nil
	}
	if f.env.PayloadType != PayloadType {
		return nil, bad(ErrMalformed, fmt.Sprintf("payload type %q", f.env.PayloadType))
	}
	if len(f.env.Signatures) == 0 {
		return nil, bad(ErrMalformed, "the envelope has no signature")
	}
	if err := verifyEnvelope(ctx, v, f.env); err != nil {
		ours := false
		var ids []string
		for _, s := range f.env.Signatures {
			ours = ours || s.KeyID == v.keyID
			if s.KeyID != "" {
				ids = append(ids, s.KeyID)
			}
		}
		if ours {
			return nil, bad(ErrBadSignature, "")
		}
		if len(ids) == 0 {
			return nil, bad(ErrOtherKey, "or edited after signing: the envelope names no key")
		}
		return nil, bad(ErrOtherKey, "key "+strings.Join(ids, ", "))
	}
	body, err := base64.StdEncoding.DecodeString(f.env.Payload)
	if err != nil {
		return nil, bad(ErrMalformed, "payload is not base64")
	}
	var st statementJSON
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, bad(ErrMalformed, "statement: "+err.Error())
	}
	if st.Type != "https://in-toto.io/Statement/v1" {
		return nil, bad(ErrMalformed, fmt.Sprintf("statement type %q", st.Type))
	}
	if f.ptype != "" && f.ptype != st.PredicateType {
		return nil, bad(ErrMalformed, fmt.Sprintf("annotated %s but the statement is %s", f.ptype, st.PredicateType))
	}
	want := strings.TrimPrefix(img.DigestStr(), "sha256:")
	var subjects []string
	for _, s := range st.Subject {
		if s.Digest["sha256"] == want {
			return &st, nil
		}
		for alg, d := range s.Digest {
			subjects = append(subjects, alg+":"+d)
		}
	}
	return nil, bad(ErrOtherSubject, "statement "+st.PredicateType+" is about "+strings.Join(subjects, ", "))
}

func verifyEnvelope(ctx context.Context, v *Verifier, env *dsse.Envelope) error {
	ev, err := dsse.NewEnvelopeVerifier(dsseVerifier{v})
	if err != nil {
		return err
	}
	_, err = ev.Verify(ctx, env)
	return err
}

// found is one signed object read from the registry.
type found struct {
	where   string
	size    int
	simple  []byte // simple-signing payload (a .sig layer)
	sig     []byte // its signature
	env     *dsse.Envelope
	ptype   string // the predicate type its annotation claims, if any
	problem string // why it could not even be read
}

// collect reads img's .sig and .att tags and its referrers, concurrently.
func collect(ctx context.Context, img name.Digest, ropts []remote.Option) ([]found, error) {
	var mu sync.Mutex
	var all []found
	add := func(f []found) { mu.Lock(); all = append(all, f...); mu.Unlock() }
	g, gctx := errgroup.WithContext(ctx)
	for _, tag := range []name.Tag{SigTag(img), AttTag(img)} {
		g.Go(func() error {
			desc, err := remote.Get(tag, append(ropts, remote.WithContext(gctx))...)
			if isNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", tag, err)
			}
			m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
			if err != nil {
				add([]found{{where: tag.TagStr(), problem: "not an image manifest: " + err.Error()}})
				return nil
			}
			f, err := readTagLayers(gctx, tag, m, ropts)
			add(f)
			return err
		})
	}
	g.Go(func() error {
		f, err := readReferrers(gctx, img, ropts)
		add(f)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].where < all[j].where })
	return all, nil
}

func readTagLayers(ctx context.Context, tag name.Tag, m *v1.Manifest, ropts []remote.Option) ([]found, error) {
	out := make([]found, len(m.Layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, l := range m.Layers {
		where := fmt.Sprintf("%s layer %d", tag.TagStr(), i+1)
		if pt := l.Annotations[PredicateAnnotation]; pt != "" {
			where += " (" + pt + ")"
		}
		out[i] = found{where: where, ptype: l.Annotations[PredicateAnnotation], size: int(l.Size)}
		g.Go(func() error {
			f := &out[i]
			b, err := readBlob(gctx, tag.Context(), l, ropts)
			if err != nil {
				return err
			}
			if b == nil {
				f.problem = fmt.Sprintf("blob of %d bytes is over the %d MiB bound", l.Size, maxEvidenceBlob>>20)
				return nil
			}
			switch string(l.MediaType) {
			case SimpleSigningMediaType:
				sig, err := base64.StdEncoding.DecodeString(l.Annotations[SignatureAnnotation])
				if err != nil || len(sig) == 0 {
					f.problem = "no signature annotation"
					return nil
				}
				f.simple, f.sig = b, sig
			case DSSEMediaType:
				var env dsse.Envelope
				if err := json.Unmarshal(b, &env); err != nil {
					f.problem = "not a DSSE envelope: " + err.Error()
					return nil
				}
				f.env = &env
			default:
				f.problem = fmt.Sprintf("layer media type %q", l.MediaType)
			}
			return nil
		})
	}
	return out, g.Wait()
}

func readReferrers(ctx context.Context, img name.Digest, ropts []remote.Option) ([]found, error) {
	idx, err := remote.Referrers(img, append(ropts, remote.WithContext(ctx))...)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing the referrers of %s: %w", img, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", img, err)
	}
	var mu sync.Mutex
	var out []found
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, d := range im.Manifests {
		if d.ArtifactType == "application/vnd.dev.cosign.artifact.sig.v1+json" {
			continue // cosign v2's experimental OCI 1.1 signature: not a form the pipeline writes
		}
		// Registries report artifactType differently (go-containerregistry's
		// gives the config media type), so every other referrer is read and
		// one that is not a Sigstore bundle is passed over.
		g.Go(func() error {
			ref := img.Context().Digest(d.Digest.String())
			where := "referrer " + d.Digest.String()
			if pt := d.Annotations[BundlePredicateAnnotation]; pt != "" {
				where += " (" + pt + ")"
			}
			f := found{where: where}
			defer func() {
				if f.where != "" {
					mu.Lock()
					out = append(out, f)
					mu.Unlock()
				}
			}()
			desc, err := remote.Get(ref, append(ropts, remote.WithContext(gctx))...)
			if err != nil {
				return fmt.Errorf("reading %s: %w", ref, err)
			}
			m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
			if err != nil || len(m.Layers) != 1 || !strings.HasPrefix(string(m.Layers[0].MediaType), "application/vnd.dev.sigstore.bundle") {
				f = found{} // another tool's artifact
				return nil
			}
			f.size = int(m.Layers[0].Size)
			b, err := readBlob(gctx, img.Context(), m.Layers[0], ropts)
			if err != nil {
				return err
			}
			if b == nil {
				f.problem = "bundle over the size bound"
				return nil
			}
			env, err := envelopeFromBundle(b)
			if err != nil {
				f.problem = err.Error()
				return nil
			}
			f.env = env
			f.ptype = m.Annotations[BundlePredicateAnnotation]
			return nil
		})
	}
	return out, g.Wait()
}

// readBlob reads one evidence blob whose digest the registry client
// verifies; nil when it is over the bound.
func readBlob(ctx context.Context, repo name.Repository, d v1.Descriptor, ropts []remote.Option) ([]byte, error) {
	if d.Size > maxEvidenceBlob {
		return nil, nil
	}
	l, err := remote.Layer(repo.Digest(d.Digest.String()), append(ropts, remote.WithContext(ctx))...)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxEvidenceBlob+1))
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d.Digest, err)
	}
	if int64(len(b)) > maxEvidenceBlob {
		return nil, nil
	}
	return b, nil
}

// Resolve is the digest a tag names now, the one to verify.
func Resolve(ctx context.Context, ref name.Reference, opt Options) (name.Digest, error) {
	desc, err := remote.Head(ref, append([]remote.Option{remote.WithContext(ctx)}, opt.Remote...)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolving %s: %w", ref, err)
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}
