//go:build integration

package evidence_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/cosigntest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
)

// The real registry: a test instance of the embedded one (Debian's
// docker-registry, distribution 2.8, which has no referrers API), on a
// port and volume of its own so the shared one is not touched. One per
// test binary.
var (
	realOnce sync.Once
	realAddr string
	realErr  error
	realInst registry.Instance
)

func TestMain(m *testing.M) {
	code := m.Run()
	if realAddr != "" {
		_ = registry.Down(context.Background(), realInst, true)
	}
	os.Exit(code)
}

func realRegistry(t testing.TB) string {
	t.Helper()
	realOnce.Do(func() {
		ctx := context.Background()
		p := progress.New(nil)
		image, err := hostimages.RegistryImage(ctx, p)
		if err != nil {
			realErr = err
			return
		}
		realInst = registry.Instance{Name: fmt.Sprintf("lhcbdirac-registry-evidence-%d", os.Getpid()), Addr: fmt.Sprintf("127.0.0.1:%d", testproc.Ports(t, 1)[0]),
			Volume: fmt.Sprintf("lhcbdirac-registry-evidence-%d", os.Getpid()), Ephemeral: true}
		if realErr = registry.Start(ctx, p, realInst, image); realErr == nil {
			realAddr = realInst.Addr
		}
	})
	if realErr != nil {
		t.Fatalf("INTEGRATION TEST CANNOT RUN: no docker-registry: %v", realErr)
	}
	return realAddr
}

// repoName gives each test a repository of its own on the shared test
// registry.
func repoName(t testing.TB, image string) string {
	h := sha256.Sum256([]byte(t.Name()))
	return fmt.Sprintf("t%x/%s", h[:4], image)
}

func writeKey(t testing.TB, s *evidence.Signer) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(p, s.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// cosignAccepts runs what a release manager runs, and fails the test
// unless cosign accepts every piece; each command is also run with
// another key, which cosign must refuse (so a pass means it checked).
func cosignAccepts(t *testing.T, c *cosigntest.Cosign, img name.Digest, s *evidence.Signer) {
	t.Helper()
	key, other := writeKey(t, s), writeKey(t, newSigner(t))
	ref := img.String()
	for _, args := range [][]string{
		{"verify", ref},
		{"verify-attestation", "--type", "slsaprovenance1", ref},
		{"verify-attestation", "--type", "cyclonedx", ref},
		{"verify-attestation", "--type", evidence.TypeSmoke, ref},
	} {
		full := append([]string{args[0], "--key", key, "--insecure-ignore-tlog", "--allow-http-registry"}, args[1:]...)
		out, err := c.Run(full...)
		if err != nil {
			t.Errorf("cosign %s refused what Attach made: %v\n%s", strings.Join(full, " "), err, out)
			continue
		}
		if !strings.Contains(out, "verified against the specified public key") {
			t.Errorf("cosign %s passed without saying it checked the key:\n%s", strings.Join(full, " "), out)
		}
		t.Logf("cosign %s: accepted", strings.Join(args, " "))
		full[2] = other
		out, err = c.Run(full...)
		if err == nil {
			t.Errorf("cosign %s with another key accepted: the check proves nothing\n%s", args[0], out)
		} else {
			t.Logf("  with another key: refused: %s", lastLine(out))
		}
	}
}

func TestIntegrationCosignVerifiesTheTagFormOnDockerRegistry(t *testing.T) {
	ctx := context.Background()
	addr := realRegistry(t)
	c := cosigntest.New(t)
	img, _ := pushRandom(t, addr, repoName(t, "lhcbdirac"), "v12.0.21")
	s := newSigner(t)
	got, err := s.Attach(ctx, img, attestations(t, img, true), evidence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != evidence.Tags {
		t.Fatalf("docker-registry 2.8 has no referrers API: mode %s, want tags", got.Mode)
	}
	cosignAccepts(t, c, img, s)
	if _, err := s.Verifier().Verify(ctx, img, evidence.Policy{}, evidence.Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationCosignVerifiesTheReferrersForm(t *testing.T) {
	ctx := context.Background()
	// docker-registry has no referrers API: the referrers form is proven
	// on go-containerregistry's registry, which has one.
	addr := inProcessRegistry(t, true)
	c := cosigntest.New(t)
	img, _ := pushRandom(t, addr, "lhcbdirac/lhcbdirac", "v12.0.21")
	s := newSigner(t)
	got, err := s.Attach(ctx, img, attestations(t, img, true), evidence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != evidence.Referrers {
		t.Fatalf("mode %s, want referrers", got.Mode)
	}
	cosignAccepts(t, c, img, s)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// rewriteAtt replaces img's .att image by one whose layers edit returns
// (nil drops a layer), keeping each layer's annotations: what someone
// with write access to the registry, but not the key, can do.
func rewriteAtt(t *testing.T, img name.Digest, edit func(ptype string, body []byte) []byte) {
	t.Helper()
	att, err := remote.Image(evidence.AttTag(img))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := att.Manifest()
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, d := range m.Layers {
		l, err := att.LayerByDigest(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := l.Compressed()
		body, _ := io.ReadAll(rc)
		rc.Close()
		nb := edit(d.Annotations[evidence.PredicateAnnotation], body)
		if nb == nil {
			continue
		}
		base, err = mutate.Append(base, mutate.Addendum{Layer: static.NewLayer(nb, d.MediaType), Annotations: d.Annotations})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(evidence.AttTag(img), base); err != nil {
		t.Fatal(err)
	}
}

func layerOf(t *testing.T, img name.Digest, ptype string) []byte {
	t.Helper()
	var out []byte
	rewriteAtt(t, img, func(pt string, body []byte) []byte {
		if pt == ptype {
			out = body
		}
		return body
	})
	if out == nil {
		t.Fatalf("no %s layer in %s", ptype, evidence.AttTag(img))
	}
	return out
}

func byType(atts []evidence.Attestation, keep ...string) []evidence.Attestation {
	var out []evidence.Attestation
	for _, a := range atts {
		for _, k := range keep {
			if a.PredicateType == k {
				out = append(out, a)
			}
		}
	}
	return out
}

// TestIntegrationVerifyRefusesTampering attaches evidence on the real
// registry, tampers with it as the issue lists, and checks Verify refuses
// each case naming the image, the digest and what is wrong.
func TestIntegrationVerifyRefusesTampering(t *testing.T) {
	ctx := context.Background()
	addr := realRegistry(t)
	c := cosigntest.New(t)
	s := newSigner(t)
	key := writeKey(t, s)
	v := s.Verifier()
	repo := repoName(t, "lhcbdirac")

	refused := func(t *testing.T, img name.Digest, want ...error) error {
		t.Helper()
		res, err := v.Verify(ctx, img, evidence.Policy{}, evidence.Options{})
		if err == nil {
			t.Fatalf("Verify accepted tampered evidence: %+v", res)
		}
		for _, w := range want {
			if !errors.Is(err, w) {
				t.Errorf("error does not say %q: %v", w, err)
			}
		}
		if !strings.Contains(err.Error(), img.Context().Name()) || !strings.Contains(err.Error(), img.DigestStr()) {
			t.Errorf("error does not name the image and digest: %v", err)
		}
		t.Logf("refused: %v", err)
		return err
	}

	t.Run("signature by another key", func(t *testing.T) {
		img, _ := pushRandom(t, addr, repo, "other-key")
		if _, err := newSigner(t).Attach(ctx, img, attestations(t, img, true), evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		refused(t, img, evidence.ErrNoSignature, evidence.ErrNoSBOM, evidence.ErrNoProvenance, evidence.ErrNoSmoke, evidence.ErrOtherKey)
		if out, err := c.Run("verify", "--key", key, "--insecure-ignore-tlog", "--allow-http-registry", img.String()); err == nil {
			t.Errorf("cosign accepted a signature by another key:\n%s", out)
		}
	})

	t.Run("envelope edited after signing", func(t *testing.T) {
		img, _ := pushRandom(t, addr, repo, "edited")
		if _, err := s.Attach(ctx, img, attestations(t, img, true), evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		rewriteAtt(t, img, func(pt string, body []byte) []byte {
			if pt != evidence.TypeProvenance {
				return body
			}
			var env dsse.Envelope
			json.Unmarshal(body, &env)
			st, _ := base64.StdEncoding.DecodeString(env.Payload)
			st = []byte(strings.Replace(string(st), commit, strings.Repeat("9", 40), 1)) // another pipeline commit
			env.Payload = base64.StdEncoding.EncodeToString(st)
			b, _ := json.Marshal(env)
			return b
		})
		err := refused(t, img, evidence.ErrNoProvenance, evidence.ErrBadSignature)
		if !strings.Contains(err.Error(), evidence.TypeProvenance) {
			t.Errorf("the error should name the edited piece: %v", err)
		}
		if out, err := c.Run("verify-attestation", "--key", key, "--insecure-ignore-tlog", "--allow-http-registry", "--type", "slsaprovenance1", img.String()); err == nil {
			t.Errorf("cosign accepted an edited provenance:\n%s", out)
		}
	})

	t.Run("smoke attestation about another digest", func(t *testing.T) {
		other, _ := pushRandom(t, addr, repo, "smoke-tested")
		img, _ := pushRandom(t, addr, repo, "never-tested")
		if _, err := s.Attach(ctx, other, attestations(t, other, true), evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		all := attestations(t, img, true)
		if _, err := s.Attach(ctx, img, byType(all, evidence.TypeSBOM, evidence.TypeProvenance), evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		// Someone with registry access adds the other image's (validly
		// signed) smoke attestation to this image's .att.
		stolen := layerOf(t, other, evidence.TypeSmoke)
		att, err := remote.Image(evidence.AttTag(img))
		if err != nil {
			t.Fatal(err)
		}
		att, err = mutate.Append(att, mutate.Addendum{Layer: static.NewLayer(stolen, evidence.DSSEMediaType),
			Annotations: map[string]string{evidence.SignatureAnnotation: "", evidence.PredicateAnnotation: evidence.TypeSmoke}})
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(evidence.AttTag(img), att); err != nil {
			t.Fatal(err)
		}
		err = refused(t, img, evidence.ErrNoSmoke, evidence.ErrOtherSubject)
		if !strings.Contains(err.Error(), other.DigestStr()) {
			t.Errorf("the error should name the digest the smoke attestation is about (%s): %v", other.DigestStr(), err)
		}
	})

	t.Run("no smoke attestation", func(t *testing.T) {
		img, _ := pushRandom(t, addr, repo, "no-smoke")
		if _, err := s.Attach(ctx, img, byType(attestations(t, img, true), evidence.TypeSBOM, evidence.TypeProvenance), evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		err := refused(t, img, evidence.ErrNoSmoke)
		if errors.Is(err, evidence.ErrNoSBOM) || errors.Is(err, evidence.ErrNoSignature) {
			t.Errorf("only the smoke attestation is missing: %v", err)
		}
	})

	t.Run("no SBOM attestation", func(t *testing.T) {
		img, _ := pushRandom(t, addr, repo, "no-sbom")
		if _, err := s.Attach(ctx, img, byType(attestations(t, img, true), evidence.TypeSmoke, evidence.TypeProvenance), evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		refused(t, img, evidence.ErrNoSBOM)
		if out, err := c.Run("verify-attestation", "--key", key, "--insecure-ignore-tlog", "--allow-http-registry", "--type", "cyclonedx", img.String()); err == nil {
			t.Errorf("cosign found a CycloneDX attestation where none was attached:\n%s", out)
		}
	})

	t.Run("tag moved to an image with a changed layer", func(t *testing.T) {
		img, orig := pushRandom(t, addr, repo, "v12.0.21")
		if _, err := s.Attach(ctx, img, attestations(t, img, true), evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		tag := img.Context().Tag("v12.0.21")
		before, err := evidence.Resolve(ctx, tag, evidence.Options{})
		if err != nil || before != img {
			t.Fatalf("the tag names %v (%v), want %s", before, err, img)
		}
		if _, err := v.Verify(ctx, before, evidence.Policy{}, evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		ls, _ := orig.Layers()
		changed, err := random.Layer(512, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		moved, err := mutate.Append(empty.Image, mutate.Addendum{Layer: ls[0]}, mutate.Addendum{Layer: changed})
		if err != nil {
			t.Fatal(err)
		}
		push(t, addr, repo, "v12.0.21", moved)
		now, err := evidence.Resolve(ctx, tag, evidence.Options{})
		if err != nil || now == img {
			t.Fatalf("the tag did not move: %v %v", now, err)
		}
		refused(t, now, evidence.ErrNoSignature, evidence.ErrNoSBOM, evidence.ErrNoProvenance, evidence.ErrNoSmoke)
		if out, err := c.Run("verify", "--key", key, "--insecure-ignore-tlog", "--allow-http-registry", tag.String()); err == nil {
			t.Errorf("cosign accepted the moved tag:\n%s", out)
		}
	})

	t.Run("provenance of another builder", func(t *testing.T) {
		img, _ := pushRandom(t, addr, repo, "builder")
		if _, err := s.Attach(ctx, img, attestations(t, img, true), evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(ctx, img, evidence.Policy{BuilderPrefix: "https://example.org/another-pipeline@"}, evidence.Options{})
		if !errors.Is(err, evidence.ErrBuilder) {
			t.Fatalf("a policy naming another builder must refuse: %v", err)
		}
	})
}
