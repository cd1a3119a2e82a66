//go:build integration

package evidence_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/provenance"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/sbom"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"
)

// realisticImage is an image with what the SBOM reads in a real one: this
// machine's Debian dpkg status (a real install), two real Go binaries (the
// pipeline's pinger, built here, and gofmt), and a lock-sized list of
// Python distributions (250, two hashes each; the LHCbDIRAC lock has a
// few hundred).
func realisticImage(t testing.TB) (v1.Image, []sbom.PythonDist) {
	t.Helper()
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		t.Fatalf("this machine's dpkg status: %v", err)
	}
	pinger := filepath.Join(t.TempDir(), "pinger")
	cmd := exec.Command("go", "build", "-o", pinger, "github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/cmd/pinger")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the pinger: %v\n%s", err, out)
	}
	files := map[string]string{"var/lib/dpkg/status": "", "usr/local/bin/pinger": pinger, "usr/bin/gofmt": filepath.Join(runtime.GOROOT(), "bin", "gofmt")}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, src := range files {
		b := status
		if src != "" {
			if b, err = os.ReadFile(src); err != nil {
				t.Fatal(err)
			}
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	var py []sbom.PythonDist
	for i := range 250 {
		h1, h2 := sha256.Sum256([]byte(fmt.Sprint("wheel", i))), sha256.Sum256([]byte(fmt.Sprint("sdist", i)))
		py = append(py, sbom.PythonDist{Name: fmt.Sprintf("distribution-%03d", i), Version: fmt.Sprintf("%d.%d.%d", i%7, i%13, i%5), SHA256: []string{hex.EncodeToString(h1[:]), hex.EncodeToString(h2[:])}})
	}
	return img, py
}

// realisticEvidence makes the three attestations the release would:
// the SBOM from a scan of img, provenance with the inputs a release has,
// a smoke attestation of the six services.
func realisticEvidence(t testing.TB, img v1.Image, ref name.Digest, py []sbom.PythonDist) []evidence.Attestation {
	t.Helper()
	found, err := sbom.ScanImage(img)
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbom.Build(sbom.Subject{Name: ref.Context().RepositoryStr(), Version: "v12.0.21", Digest: ref.DigestStr()}, sbom.Tool{Name: "lhcbdirac-pipeline", Version: commit},
		sbom.Contents{Python: py, Debian: found.Debian, Go: found.Go}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a1, err := evidence.SBOM(bom)
	if err != nil {
		t.Fatal(err)
	}
	in := provenanceInput()
	for i, n := range []string{"base:python", "base:mariadb", "source:DIRAC", "source:LHCbDIRAC", "recipe", "constraints"} {
		in.Dependencies = append(in.Dependencies, provenance.Dependency{Name: n, URI: "https://example.org/" + n, Digest: "sha256:" + hexOf(byte('0'+i))})
	}
	a2, err := evidence.Provenance(in)
	if err != nil {
		t.Fatal(err)
	}
	var services []smoke.Service
	for i, s := range []string{"Framework/SystemAdministrator", "Configuration/Server", "WorkloadManagement/JobManager", "DataManagement/FileCatalog", "RequestManagement/ReqManager", "Bookkeeping/BookkeepingManager"} {
		services = append(services, smoke.Service{Name: s, App: smoke.App{ID: "/certification/" + strings.ToLower(strings.ReplaceAll(s, "/", "-")), SHA256: hexOf(byte('a' + i))},
			Checks: []smoke.Check{{Kind: smoke.CheckCommandHealth, Passed: true, At: t0}, {Kind: smoke.CheckDIPSPing, Passed: true, At: t0}}})
	}
	p, err := smoke.New(commit, t0, t0.Add(8*time.Minute), services)
	if err != nil {
		t.Fatal(err)
	}
	a3, err := evidence.Smoke(p)
	if err != nil {
		t.Fatal(err)
	}
	return []evidence.Attestation{a1, a2, a3}
}

// fourImages pushes four realistic images (each with a layer of its own)
// with their evidence attached.
func fourImages(t testing.TB, addr string, s *evidence.Signer) []name.Digest {
	t.Helper()
	base, py := realisticImage(t)
	var out []name.Digest
	for _, n := range []string{"lhcbdirac", "pinger", "mesos-slave", "registrator"} {
		own, _ := random.Layer(256, types.DockerLayer)
		img, err := mutate.AppendLayers(base, own)
		if err != nil {
			t.Fatal(err)
		}
		ref := push(t, addr, repoName(t, n), "v12.0.21", img)
		if _, err := s.Attach(context.Background(), ref, realisticEvidence(t, img, ref, py), evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		out = append(out, ref)
	}
	return out
}

// TestIntegrationFigures logs the figures of the closing note: the size of
// each piece of evidence for a realistic image, the time to make and push
// it, the time to verify four images. It asserts only what does not
// depend on the machine's speed.
func TestIntegrationFigures(t *testing.T) {
	ctx := context.Background()
	addr := realRegistry(t)
	s := newSigner(t)
	img, py := realisticImage(t)
	own, _ := random.Layer(256, types.DockerLayer)
	img, _ = mutate.AppendLayers(img, own)
	ref := push(t, addr, repoName(t, "lhcbdirac"), "v12.0.21", img)

	start := time.Now()
	found, err := sbom.ScanImage(img)
	if err != nil {
		t.Fatal(err)
	}
	scan := time.Since(start)
	start = time.Now()
	atts := realisticEvidence(t, img, ref, py)
	made := time.Since(start)
	start = time.Now()
	got, err := s.Attach(ctx, ref, atts, evidence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pushed := time.Since(start)
	modules := 0
	for _, b := range found.Go {
		modules += len(b.Deps) + 1
	}
	t.Logf("realistic image: %d Debian packages, %d Go binaries (%d modules), %d Python distributions", len(found.Debian), len(found.Go), modules, len(py))
	for _, p := range got.Pieces {
		t.Logf("piece %-55s %7d bytes  (%s)", p.Type, p.Bytes, p.Where[strings.LastIndex(p.Where, ":")+1:])
	}
	t.Logf("scan of the image's filesystem (dpkg status, Go build info): %s", scan.Round(time.Millisecond))
	t.Logf("make the three attestations (scan included): %s; sign and push them with the image signature (%s form): %s", made.Round(time.Millisecond), got.Mode, pushed.Round(time.Millisecond))

	imgs := fourImages(t, addr, s)
	v := s.Verifier()
	if _, err := v.VerifyAll(ctx, imgs, evidence.Policy{}, evidence.Options{}); err != nil { // warm
		t.Fatal(err)
	}
	const rounds = 10
	start = time.Now()
	for range rounds {
		if _, err := v.VerifyAll(ctx, imgs, evidence.Policy{}, evidence.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("verify four images on docker-registry: %s each time (mean of %d)", (time.Since(start) / rounds).Round(time.Millisecond), rounds)
}

// BenchmarkVerifyFour verifies the four images of a release on the real
// docker-registry: fetch, check every signature, decode the SBOM,
// provenance and smoke attestations.
func BenchmarkVerifyFour(b *testing.B) {
	ctx := context.Background()
	addr := realRegistry(b)
	s := newSigner(b)
	imgs := fourImages(b, addr, s)
	v := s.Verifier()
	for b.Loop() {
		if _, err := v.VerifyAll(ctx, imgs, evidence.Policy{}, evidence.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttach signs and pushes the evidence of one realistic image
// (the attestations made beforehand), each time to a new digest.
func BenchmarkAttach(b *testing.B) {
	ctx := context.Background()
	addr := realRegistry(b)
	s := newSigner(b)
	base, py := realisticImage(b)
	ref := push(b, addr, repoName(b, "lhcbdirac"), "v12.0.21", base)
	atts := realisticEvidence(b, base, ref, py)
	for b.Loop() {
		b.StopTimer()
		own, _ := random.Layer(256, types.DockerLayer)
		img, _ := mutate.AppendLayers(base, own)
		ref := push(b, addr, repoName(b, "lhcbdirac"), "v12.0.21", img)
		b.StartTimer()
		if _, err := s.Attach(ctx, ref, atts, evidence.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIntegrationNoKeyInRegistryOrErrors plants the release key and looks
// for it, in every form it could leak in, in every manifest and blob of
// the repositories evidence was pushed to (both forms) and in the errors
// the key's paths produce.
func TestIntegrationNoKeyInRegistryOrErrors(t *testing.T) {
	ctx := context.Background()
	priv, _, err := evidence.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	s, err := evidence.LoadSigner("planted key", priv)
	if err != nil {
		t.Fatal(err)
	}
	needles := keyForms(t, priv)
	needles["the hotfix repository's credential"] = []byte("s3cr3t-token") // provenanceInput's DIRAC hotfix URL

	real := realRegistry(t)
	inproc := inProcessRegistry(t, true)
	var repos []name.Repository
	for _, addr := range []string{real, inproc} {
		img, _ := pushRandom(t, addr, repoName(t, "lhcbdirac"), "v12.0.21")
		atts := attestations(t, img, true)
		for range 2 { // the second time takes the keep-what-is-there path
			if _, err := s.Attach(ctx, img, atts, evidence.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Verifier().Verify(ctx, img, evidence.Policy{}, evidence.Options{}); err != nil {
			t.Fatal(err)
		}
		repos = append(repos, img.Context())
	}
	blobs := 0
	for _, repo := range repos {
		for what, b := range everyBlob(t, repo) {
			blobs++
			for n, needle := range needles {
				if bytes.Contains(b, needle) {
					t.Errorf("%s holds the signing key (%s)", what, n)
				}
			}
		}
	}
	if blobs < 10 {
		t.Fatalf("walked only %d manifests and blobs: the walk is broken", blobs)
	}
	t.Logf("no form of the key in %d manifests and blobs", blobs)

	// Errors along the key's paths.
	var errs []error
	_, err = evidence.LoadSigner("LHCBDIRAC_SIGNING_KEY", priv[:len(priv)-40]) // truncated
	errs = append(errs, err)
	_, err = evidence.LoadSigner("LHCBDIRAC_SIGNING_KEY", bytes.Replace(priv, []byte("PRIVATE KEY"), []byte("RSA PRIVATE KEY"), 2))
	errs = append(errs, err)
	blk, _ := pem.Decode(priv)
	_, err = evidence.LoadSigner("LHCBDIRAC_SIGNING_KEY", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: blk.Bytes[:len(blk.Bytes)-3]}))
	errs = append(errs, err)
	_, err = evidence.LoadVerifier("LHCBDIRAC_VERIFY_KEY", priv) // the private half given as the verify key
	errs = append(errs, err)
	_, err = evidence.LoadSigner("x", []byte(base64.StdEncoding.EncodeToString(priv)+"!"))
	errs = append(errs, err)
	gone, _ := name.NewDigest("127.0.0.1:9/lhcbdirac/lhcbdirac@sha256:" + hexOf('0'))
	_, err = s.Attach(ctx, gone, nil, evidence.Options{Mode: evidence.Tags})
	errs = append(errs, err)
	img, _ := pushRandom(t, real, repoName(t, "unsigned"), "v1")
	_, err = s.Verifier().Verify(ctx, img, evidence.Policy{}, evidence.Options{})
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("error path %d did not fail", i+1)
		}
		for n, needle := range needles {
			if strings.Contains(err.Error(), string(needle)) {
				t.Errorf("error %d quotes the key (%s): %v", i+1, n, err)
			}
		}
	}
}

// keyForms are the ways a PKCS#8 PEM could leak: the PEM, its base64,
// its body (the DER in base64) and each line of it, the DER, and the
// private scalar in hex and base64.
func keyForms(t *testing.T, priv []byte) map[string][]byte {
	blk, _ := pem.Decode(priv)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	d := k.(*ecdsa.PrivateKey).D.Bytes()
	out := map[string][]byte{
		"PEM":                []byte(strings.TrimSpace(string(priv))),
		"PEM in base64":      []byte(base64.StdEncoding.EncodeToString(priv)),
		"DER in base64":      []byte(base64.StdEncoding.EncodeToString(blk.Bytes)),
		"DER":                blk.Bytes,
		"private scalar hex": []byte(hex.EncodeToString(d)),
		"private scalar b64": []byte(base64.StdEncoding.EncodeToString(d)),
	}
	for i, line := range strings.Split(string(priv), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			out[fmt.Sprintf("PEM line %d", i+1)] = []byte(line)
		}
	}
	return out
}

// everyBlob reads every manifest and blob reachable from the
// repository's tags and from the referrers of its images.
func everyBlob(t *testing.T, repo name.Repository) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(ref name.Reference)
	walk = func(ref name.Reference) {
		desc, err := remote.Get(ref)
		if err != nil {
			t.Fatal(err)
		}
		key := "manifest " + ref.String()
		if _, seen := out[key]; seen {
			return
		}
		out[key] = desc.Manifest
		if desc.MediaType.IsIndex() {
			idx, _ := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
			for _, m := range idx.Manifests {
				walk(repo.Digest(m.Digest.String()))
			}
			return
		}
		m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			l, err := remote.Layer(repo.Digest(d.Digest.String()))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			out["blob "+d.Digest.String()+" of "+ref.String()] = b
		}
		if d, err := name.NewDigest(repo.String() + "@" + desc.Digest.String()); err == nil {
			if idx, err := remote.Referrers(d); err == nil {
				im, _ := idx.IndexManifest()
				for _, r := range im.Manifests {
					walk(repo.Digest(r.Digest.String()))
				}
			}
		}
	}
	for _, tag := range tags {
		walk(repo.Tag(tag))
	}
	return out
}
