package evidence_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
)

func TestAttachThenVerifyBothForms(t *testing.T) {
	for _, tc := range []struct {
		referrersAPI bool
		want         evidence.Mode
	}{{false, evidence.Tags}, {true, evidence.Referrers}} {
		t.Run(string(tc.want), func(t *testing.T) {
			ctx := context.Background()
			addr := inProcessRegistry(t, tc.referrersAPI)
			img, _ := pushRandom(t, addr, "lhcbdirac/lhcbdirac", "v12.0.21")
			s := newSigner(t)
			got, err := s.Attach(ctx, img, attestations(t, img, true), evidence.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != tc.want {
				t.Fatalf("mode %s on a registry with referrers API %v, want %s", got.Mode, tc.referrersAPI, tc.want)
			}
			if len(got.Pieces) != 4 {
				t.Fatalf("pieces %+v, want a signature and three attestations", got.Pieces)
			}
			res, err := s.Verifier().Verify(ctx, img, evidence.Policy{}, evidence.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Signatures != 1 || res.SBOM == nil || res.Provenance == nil || res.Smoke == nil {
				t.Fatalf("result %+v", res)
			}
			if res.Provenance.Commit() != commit || res.Provenance.Version() != "v12.0.21" {
				t.Fatalf("provenance %+v", res.Provenance)
			}
			if s, ok := res.Smoke.Service("Framework/SystemAdministrator"); !ok || s.Result != "passed" {
				t.Fatalf("smoke %+v", res.Smoke)
			}
			if len(res.Rejected) != 0 {
				t.Fatalf("rejected %v", res.Rejected)
			}
		})
	}
}

func TestReattachKeepsWhatIsThere(t *testing.T) {
	ctx := context.Background()
	addr := inProcessRegistry(t, false)
	img, _ := pushRandom(t, addr, "lhcbdirac/pinger", "v1")
	s := newSigner(t)
	atts := attestations(t, img, true)
	if _, err := s.Attach(ctx, img, atts, evidence.Options{Mode: evidence.Tags}); err != nil {
		t.Fatal(err)
	}
	again, err := s.Attach(ctx, img, atts, evidence.Options{Mode: evidence.Tags})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range again.Pieces {
		if !p.Kept {
			t.Fatalf("the same statements attached again were pushed again: %+v", again.Pieces)
		}
	}
	att, err := remote.Image(evidence.AttTag(img))
	if err != nil {
		t.Fatal(err)
	}
	if ls, _ := att.Layers(); len(ls) != 3 {
		t.Fatalf(".att has %d layers, want 3", len(ls))
	}
}

func TestVerifyRefusesASmokeFailure(t *testing.T) {
	ctx := context.Background()
	addr := inProcessRegistry(t, false)
	img, _ := pushRandom(t, addr, "lhcbdirac/lhcbdirac", "v1")
	s := newSigner(t)
	if _, err := s.Attach(ctx, img, attestations(t, img, false), evidence.Options{}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Verifier().Verify(ctx, img, evidence.Policy{}, evidence.Options{})
	if !errors.Is(err, evidence.ErrSmokeFailed) || !strings.Contains(err.Error(), "dips-ping failed") || !strings.Contains(err.Error(), img.DigestStr()) {
		t.Fatalf("a failed smoke attestation should be refused naming the digest and the failed check: %v", err)
	}
	// A later passing run of the same digest decides.
	if _, err := s.Attach(ctx, img, []evidence.Attestation{smokeAttestation(t, true, t0.Add(3*60*60*1e9))}, evidence.Options{}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Verifier().Verify(ctx, img, evidence.Policy{}, evidence.Options{})
	if err != nil {
		t.Fatalf("the newest smoke attestation passed: %v", err)
	}
	if len(res.SmokeAll) != 2 || res.Smoke.Result != "passed" {
		t.Fatalf("smoke %+v", res.SmokeAll)
	}
}

func TestReferrersFormRefusesAnotherKeyAndAnotherSubject(t *testing.T) {
	ctx := context.Background()
	addr := inProcessRegistry(t, true)
	img, _ := pushRandom(t, addr, "lhcbdirac/lhcbdirac", "a")
	other, _ := pushRandom(t, addr, "lhcbdirac/lhcbdirac", "b")
	s := newSigner(t)
	if _, err := newSigner(t).Attach(ctx, img, attestations(t, img, true), evidence.Options{}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Verifier().Verify(ctx, img, evidence.Policy{}, evidence.Options{})
	if !errors.Is(err, evidence.ErrNoSignature) || !errors.Is(err, evidence.ErrOtherKey) || !strings.Contains(err.Error(), "referrer sha256:") {
		t.Fatalf("bundles signed by another key must be refused, naming the referrer: %v", err)
	}
	// Evidence about one digest counts for no other.
	if _, err := s.Attach(ctx, other, attestations(t, other, true), evidence.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verifier().Verify(ctx, other, evidence.Policy{}, evidence.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verifier().Verify(ctx, img, evidence.Policy{}, evidence.Options{}); !errors.Is(err, evidence.ErrNoSmoke) {
		t.Fatalf("%s has no evidence by this key: %v", img, err)
	}
}
