package evidence

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	"google.golang.org/protobuf/encoding/protojson"
)

// Media types and annotations of the two forms (the names cosign uses).
const (
	// Tag form.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType          = "application/vnd.dsse.envelope.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	PredicateAnnotation    = "predicateType"
	// Referrers form.
	BundleMediaType                 = "application/vnd.dev.sigstore.bundle.v0.3+json"
	BundlePredicateAnnotation       = "dev.sigstore.bundle.predicateType"
	BundleContentAnnotation         = "dev.sigstore.bundle.content"
	emptyConfigMediaType            = "application/vnd.oci.empty.v1+json"
	createdAnnotation               = "org.opencontainers.image.created"
	maxEvidenceBlob           int64 = 32 << 20
)

// Mode is where evidence goes in a registry.
type Mode string

const (
	// Auto picks Referrers where the registry answers the OCI 1.1
	// referrers API, Tags elsewhere.
	Auto Mode = ""
	// Tags is cosign's tag scheme: the image signature as layers of the
	// image <repo>:sha256-<hex>.sig, attestations as layers of
	// <repo>:sha256-<hex>.att. Every registry takes it; every cosign
	// since 1.x reads it.
	Tags Mode = "tags"
	// Referrers is the OCI 1.1 scheme: each piece an artifact manifest
	// whose subject is the image, its one layer a Sigstore bundle v0.3
	// (what cosign v3 writes by default).
	Referrers Mode = "referrers"
)

// Options configure registry access.
type Options struct {
	Mode   Mode
	Remote []remote.Option // authentication, transport; the context is the call's
}

// Piece is one signed object attached.
type Piece struct {
	Type  string // TypeCosignSign for the image signature, else the predicate type
	Bytes int    // size of what is stored: the DSSE envelope (tags), the bundle (referrers), the simple-signing payload
	Where string // the tag or manifest holding it
	Kept  bool   // an identical signed statement was there already; nothing was pushed
}

// Attached reports one Attach.
type Attached struct {
	Image  name.Digest
	Mode   Mode
	Pieces []Piece
}

// Attach signs the image (a cosign image signature) and each attestation
// (a DSSE envelope of an in-toto statement about img) and stores them in
// img's repository, in opt.Mode. It can be called again for the same
// image (a later smoke run): in the tag form, a statement already there
// with a valid signature by this key is kept rather than duplicated.
func (s *Signer) Attach(ctx context.Context, img name.Digest, atts []Attestation, opt Options) (*Attached, error) {
	ropts := append([]remote.Option{remote.WithContext(ctx)}, opt.Remote...)
	mode := opt.Mode
	if mode == Auto {
		var err error
		if mode, err = DetectMode(ctx, img, opt.Remote...); err != nil {
			return nil, err
		}
	}
	desc, err := remote.Head(img, ropts...)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: the image is not in the registry: %w", img, err)
	}
	out := &Attached{Image: img, Mode: mode}
	statements := make([][]byte, 0, len(atts)+1)
	types := make([]string, 0, len(atts)+1)
	for _, a := range atts {
		st, err := Statement(img, a)
		if err != nil {
			return nil, err
		}
		statements, types = append(statements, st), append(types, a.PredicateType)
	}
	switch mode {
	case Tags:
		if err := s.attachTags(ctx, img, statements, types, ropts, out); err != nil {
			return nil, fmt.Errorf("attach to %s: %w", img, err)
		}
	case Referrers:
		sig, err := Statement(img, Attestation{PredicateType: TypeCosignSign, Predicate: []byte("{}")})
		if err != nil {
			return nil, err
		}
		statements, types = append([][]byte{sig}, statements...), append([]string{TypeCosignSign}, types...)
		for i, st := range statements {
			p, err := s.attachReferrer(ctx, img, desc, st, types[i], ropts)
			if err != nil {
				return nil, fmt.Errorf("attach %s to %s: %w", types[i], img, err)
			}
			out.Pieces = append(out.Pieces, p)
		}
	default:
		return nil, fmt.Errorf("attach to %s: unknown mode %q", img, mode)
	}
	return out, nil
}

// DetectMode asks the registry whether it answers the referrers API.
func DetectMode(ctx context.Context, img name.Digest, opts ...remote.Option) (Mode, error) {
	ropts := append([]remote.Option{remote.WithContext(ctx), remote.WithReferrersTagFallback(false)}, opts...)
	_, err := remote.Referrers(img, ropts...)
	if err == nil {
		return Referrers, nil
	}
	if strings.Contains(err.Error(), "does not support the Referrers API") {
		return Tags, nil
	}
	return "", fmt.Errorf("asking %s for its referrers API: %w", img.RegistryStr(), err)
}

// SigTag and AttTag are cosign's tags for img's signatures and
// attestations.
func SigTag(img name.Digest) name.Tag { return suffixTag(img, "sig") }
func AttTag(img name.Digest) name.Tag { return suffixTag(img, "att") }

func suffixTag(img name.Digest, suffix string) name.Tag {
	return img.Context().Tag(strings.Replace(img.DigestStr(), ":", "-", 1) + "." + suffix)
}

func (s *Signer) attachTags(ctx context.Context, img name.Digest, statements [][]byte, ptypes []string, ropts []remote.Option, out *Attached) error {
	me := s.Verifier()
	// The image signature: cosign's simple-signing payload.
	simple, err := payload.Cosign{Image: img}.MarshalJSON()
	if err != nil {
		return err
	}
	sigTag := SigTag(img)
	have, base, err := existing(ctx, sigTag, ropts)
	if err != nil {
		return err
	}
	kept := false
	for _, f := range have {
		if f.simple != nil && bytes.Equal(f.simple, simple) && me.verifySig(f.simple, f.sig) == nil {
			kept = true
		}
	}
	p := Piece{Type: TypeCosignSign, Bytes: len(simple), Where: sigTag.String(), Kept: kept}
	if !kept {
		sig, err := s.sign(simple)
		if err != nil {
			return fmt.Errorf("signing the image: %w", err)
		}
		l := static.NewLayer(simple, SimpleSigningMediaType)
		base, err = mutate.Append(base, mutate.Addendum{Layer: l, Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}})
		if err != nil {
			return err
		}
		if err := remote.Write(sigTag, base, ropts...); err != nil {
			return fmt.Errorf("pushing %s: %w", sigTag, err)
		}
	}
	out.Pieces = append(out.Pieces, p)

	// The attestations: DSSE envelopes, one layer each.
	attTag := AttTag(img)
	have, base, err = existing(ctx, attTag, ropts)
	if err != nil {
		return err
	}
	changed := false
	for i, st := range statements {
		kept := false
		for _, f := range have {
			if f.env != nil && f.env.PayloadType == PayloadType && f.env.Payload == base64.StdEncoding.EncodeToString(st) && verifyEnvelope(ctx, me, f.env) == nil {
				kept = true
				p := Piece{Type: ptypes[i], Bytes: f.size, Where: attTag.String(), Kept: true}
				out.Pieces = append(out.Pieces, p)
				break
			}
		}
		if kept {
			continue
		}
		env, err := s.Seal(ctx, PayloadType, st)
		if err != nil {
			return err
		}
		b, err := json.Marshal(env)
		if err != nil {
			return err
		}
		l := static.NewLayer(b, DSSEMediaType)
		base, err = mutate.Append(base, mutate.Addendum{Layer: l, Annotations: map[string]string{SignatureAnnotation: "", PredicateAnnotation: ptypes[i]}})
		if err != nil {
			return err
		}
		changed = true
		out.Pieces = append(out.Pieces, Piece{Type: ptypes[i], Bytes: len(b), Where: attTag.String()})
	}
	if changed {
		if err := remote.Write(attTag, base, ropts...); err != nil {
			return fmt.Errorf("pushing %s: %w", attTag, err)
		}
	}
	return nil
}

// emptySignatures is the base of a .sig or .att image, as cosign makes
// it: an OCI manifest with no layer yet.
func emptySignatures() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// existing reads the image a .sig or .att tag holds (an empty one when
// the tag is absent) and its signed objects.
func existing(ctx context.Context, tag name.Tag, ropts []remote.Option) ([]found, v1.Image, error) {
	img, err := remote.Image(tag, ropts...)
	if isNotFound(err) {
		return nil, emptySignatures(), nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	f, err := readTagLayers(ctx, tag, m, ropts)
	return f, img, err
}

func (s *Signer) attachReferrer(ctx context.Context, img name.Digest, subject *v1.Descriptor, statement []byte, ptype string, ropts []remote.Option) (Piece, error) {
	env, err := s.Seal(ctx, PayloadType, statement)
	if err != nil {
		return Piece{}, err
	}
	b, err := bundleJSON(env, s.keyID)
	if err != nil {
		return Piece{}, err
	}
	repo := img.Context()
	config := static.NewLayer([]byte("{}"), emptyConfigMediaType)
	layer := static.NewLayer(b, BundleMediaType)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l, ropts...); err != nil {
			return Piece{}, fmt.Errorf("uploading a blob: %w", err)
		}
	}
	cd, _ := config.Digest()
	ld, _ := layer.Digest()
	m := artifactManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  BundleMediaType,
		Config:        v1.Descriptor{MediaType: emptyConfigMediaType, Digest: cd, Size: 2},
		Layers:        []v1.Descriptor{{MediaType: BundleMediaType, Digest: ld, Size: int64(len(b))}},
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{
			createdAnnotation:         time.Now().UTC().Format(time.RFC3339),
			BundleContentAnnotation:   "dsse-envelope",
			BundlePredicateAnnotation: ptype,
		},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return Piece{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return Piece{}, err
	}
	ref := repo.Digest(h.String())
	if err := remote.Put(ref, rawManifest{raw: raw, mt: types.OCIManifestSchema1}, ropts...); err != nil {
		return Piece{}, fmt.Errorf("pushing the artifact manifest: %w", err)
	}
	return Piece{Type: ptype, Bytes: len(b), Where: ref.String()}, nil
}

// artifactManifest is an OCI 1.1 image manifest with the artifactType
// field go-containerregistry's v1.Manifest lacks.
type artifactManifest struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// bundleJSON wraps a DSSE envelope in a Sigstore bundle v0.3 whose
// verification material is the public key's hint: no certificate, no
// transparency-log entry, no timestamp (a key-signed, offline bundle, as
// `cosign attest --key … --tlog-upload=false` makes).
func bundleJSON(env *dsse.Envelope, keyID string) ([]byte, error) {
	body, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, err
	}
	var sigs []*protodsse.Signature
	for _, s := range env.Signatures {
		raw, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, &protodsse.Signature{Sig: raw, Keyid: s.KeyID})
	}
	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: keyID}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{Payload: body, PayloadType: env.PayloadType, Signatures: sigs}},
	}
	return protojson.Marshal(b)
}

// envelopeFromBundle reads a bundle back into a DSSE envelope.
func envelopeFromBundle(b []byte) (*dsse.Envelope, error) {
	var pb protobundle.Bundle
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("not a Sigstore bundle: %w", err)
	}
	if !strings.HasPrefix(pb.GetMediaType(), "application/vnd.dev.sigstore.bundle") {
		return nil, fmt.Errorf("bundle media type %q", pb.GetMediaType())
	}
	d := pb.GetDsseEnvelope()
	if d == nil {
		return nil, errors.New("the bundle holds no DSSE envelope")
	}
	env := &dsse.Envelope{PayloadType: d.GetPayloadType(), Payload: base64.StdEncoding.EncodeToString(d.GetPayload())}
	for _, s := range d.GetSignatures() {
		env.Signatures = append(env.Signatures, dsse.Signature{KeyID: s.GetKeyid(), Sig: base64.StdEncoding.EncodeToString(s.GetSig())})
	}
	return env, nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}
