// Package evidence signs, attaches and verifies the evidence that travels
// with every image the pipeline pushes, so that a deploy can tell the
// image that was built and smoke-tested from any other:
//
//   - an image signature (cosign's, so `cosign verify --key` passes);
//   - an SBOM attestation: CycloneDX JSON (package sbom), predicate type
//     https://cyclonedx.org/bom;
//   - a provenance attestation: SLSA v1 (package provenance), predicate
//     type https://slsa.dev/provenance/v1;
//   - a smoke attestation (package smoke), predicate type
//     https://github.com/lhcbdirac/lhcbdirac-pipeline/smoke/v1.
//
// Each attestation is an in-toto Statement v1 whose one subject is the
// image's repository and manifest digest, in a DSSE envelope (payload
// type application/vnd.in-toto+json) signed with the release key:
// ECDSA P-256, SHA-256, the envelope's keyid the key's SHA256 fingerprint
// (the one cosign computes).
//
// # Keys
//
//	priv, pub, err := evidence.GenerateKeyPair()   // PKCS#8 and PKIX PEM
//	files, err := evidence.WriteKeyPair(dir)       // what `mage keys` calls
//	s, err := evidence.LoadSigner(what, pemBytes)   // or SignerFromSetting (LHCBDIRAC_SIGNING_KEY's value)
//	v, err := evidence.LoadVerifier(what, pemBytes) // or VerifierFromSetting (LHCBDIRAC_VERIFY_KEY's value)
//
// The public PEM is what `cosign verify --key` takes. No error or output
// quotes a key: errors say what the bytes are not and name where they
// came from.
//
// # Attaching
//
//	atts := []evidence.Attestation{sbomAtt, provAtt, smokeAtt} // evidence.SBOM, .Provenance, .Smoke
//	report, err := s.Attach(ctx, imageDigest, atts, evidence.Options{Remote: remoteOpts})
//
// Options.Mode picks the form; Auto (the default) asks the registry for
// the OCI 1.1 referrers API:
//
//   - Tags, where it has none (Debian's docker-registry, the default local
//     registry): cosign's tag scheme. <repo>:sha256-<hex>.sig is an image
//     whose layers (application/vnd.dev.cosign.simplesigning.v1+json) are
//     simple-signing payloads, each signature in the layer annotation
//     dev.cosignproject.cosign/signature; <repo>:sha256-<hex>.att is an
//     image whose layers (application/vnd.dsse.envelope.v1+json) are the
//     DSSE envelopes, annotated predicateType=<uri> and an empty
//     dev.cosignproject.cosign/signature. Attaching again keeps a
//     statement already there with a valid signature by the same key.
//   - Referrers, where it has one: each piece is an OCI artifact manifest
//     whose subject is the image, artifactType and one layer
//     application/vnd.dev.sigstore.bundle.v0.3+json holding a Sigstore
//     bundle (the DSSE envelope, the key's hint, no certificate,
//     transparency-log entry or timestamp), annotated
//     dev.sigstore.bundle.predicateType. The image signature is then a
//     statement of predicate type https://sigstore.dev/cosign/sign/v1, as
//     cosign v3 makes it.
//
// Both forms are what cosign v3 (tools/cosign pins v3.1.3) reads by default
// for `cosign verify --key K --insecure-ignore-tlog` and `cosign
// verify-attestation --key K --insecure-ignore-tlog --type
// slsaprovenance1|cyclonedx|<smoke URI>`: it looks for bundles among the
// referrers first and falls back to the .sig/.att tags when it finds
// none. The integration tests prove it with the real cosign.
//
// # Verifying
//
//	res, err := v.Verify(ctx, imageDigest, evidence.Policy{}, opts)
//	results, err := v.VerifyAll(ctx, digests, evidence.Policy{}, opts)
//
// Verify reads both forms (.sig, .att, referrers), checks every signature
// and every statement's subject against the digest, and requires an image
// signature, an SBOM, a provenance whose builder is this pipeline
// (Policy.BuilderPrefix) and a smoke attestation whose newest (by its
// finishedOn) says "passed". The Result carries the decoded SBOM, the
// provenance (builder, commit, inputs) and the smoke predicates; a refusal
// is an *Error naming the image, the digest, what is missing
// (ErrNoSignature, ErrNoSBOM, ErrNoProvenance, ErrNoSmoke, ErrSmokeFailed,
// ErrBuilder) and every piece found but not counted (ErrOtherKey,
// ErrBadSignature, ErrOtherSubject, ErrMalformed), all reachable with
// errors.Is. Verify by digest: a tag that moved names another digest,
// which has no evidence.
//
// The package imports nothing of pipeline/ or marathon/: the release,
// deploy and promote stages call it.
package evidence
