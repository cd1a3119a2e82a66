package evidence

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/provenance"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/sbom"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"
)

// PayloadType is the DSSE payload type of an in-toto statement.
const PayloadType = "application/vnd.in-toto+json"

// Predicate types the pipeline attaches.
const (
	TypeSBOM       = "https://cyclonedx.org/bom" // what `cosign verify-attestation --type cyclonedx` looks for
	TypeProvenance = provenance.PredicateType    // --type slsaprovenance1
	TypeSmoke      = smoke.PredicateType         // --type <this URI>
	// TypeCosignSign is the predicate of the image signature in the
	// bundle form (what `cosign sign` v3 writes, and `cosign verify`
	// reads from the referrers).
	TypeCosignSign = "https://sigstore.dev/cosign/sign/v1"
)

// Attestation is one predicate about an image, before it is put in a
// statement and signed.
type Attestation struct {
	PredicateType string
	Predicate     []byte // a JSON object
}

// SBOM makes the SBOM attestation of a CycloneDX BOM.
func SBOM(bom *cdx.BOM) (Attestation, error) {
	b, err := sbom.Encode(bom)
	return Attestation{PredicateType: TypeSBOM, Predicate: b}, err
}

// Provenance makes the SLSA v1 provenance attestation.
func Provenance(in provenance.Input) (Attestation, error) {
	b, err := provenance.Predicate(in)
	return Attestation{PredicateType: TypeProvenance, Predicate: b}, err
}

// Smoke makes the smoke attestation.
func Smoke(p *smoke.Predicate) (Attestation, error) {
	b, err := p.Marshal()
	return Attestation{PredicateType: TypeSmoke, Predicate: b}, err
}

// Statement is the in-toto Statement v1 (JSON) of a about img, made and
// validated with the in-toto attestation bindings. Its one subject is the
// image's repository and manifest digest.
func Statement(img name.Digest, a Attestation) ([]byte, error) {
	alg, hex, ok := strings.Cut(img.DigestStr(), ":")
	if !ok || alg != "sha256" {
		return nil, fmt.Errorf("statement for %s: the image must be named by a sha256 digest", img)
	}
	pred := &structpb.Struct{}
	if err := protojson.Unmarshal(a.Predicate, pred); err != nil {
		return nil, fmt.Errorf("statement for %s: predicate %s is not a JSON object: %w", img, a.PredicateType, err)
	}
	st := &intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       []*intoto.ResourceDescriptor{{Name: img.Context().Name(), Digest: map[string]string{"sha256": hex}}},
		PredicateType: a.PredicateType,
		Predicate:     pred,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("statement for %s (%s): %w", img, a.PredicateType, err)
	}
	return protojson.Marshal(st)
}

// Seal signs a payload as a DSSE envelope.
func (s *Signer) Seal(ctx context.Context, payloadType string, payload []byte) (*dsse.Envelope, error) {
	es, err := dsse.NewEnvelopeSigner(dsseSigner{s})
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(ctx, payloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("signing a %s envelope: %w", payloadType, err)
	}
	return env, nil
}

// statementJSON is the part of a statement verification reads. (Decoded
// with encoding/json rather than the bindings' protojson: the SBOM
// predicate is large, and protojson's Struct is slow on it.)
type statementJSON struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}
