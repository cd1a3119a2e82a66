package evidence_test

import (
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/provenance"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/sbom"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

// inProcessRegistry is go-containerregistry's registry on loopback, with
// or without the OCI 1.1 referrers API (unit tests; the integration tests
// use Debian's docker-registry and the real cosign).
func inProcessRegistry(t testing.TB, referrers bool) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(referrers)))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// pushRandom pushes a small random image as repo:tag and returns its digest.
func pushRandom(t testing.TB, addr, repo, tag string) (name.Digest, v1.Image) {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return push(t, addr, repo, tag, img), img
}

func push(t testing.TB, addr, repo, tag string, img v1.Image) name.Digest {
	t.Helper()
	ref, err := name.NewTag(fmt.Sprintf("%s/%s:%s", addr, repo, tag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.Context().Digest(d.String())
}

func newSigner(t testing.TB) *evidence.Signer {
	t.Helper()
	priv, _, err := evidence.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	s, err := evidence.LoadSigner("test key", priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func hexOf(c byte) string { return strings.Repeat(string(c), 64) }

// attestations are the three pieces for img: an SBOM, provenance of this
// pipeline, and a smoke attestation with the given result.
func attestations(t testing.TB, img name.Digest, smokePassed bool) []evidence.Attestation {
	t.Helper()
	bom, err := sbom.Build(sbom.Subject{Name: img.Context().RepositoryStr(), Version: "v12.0.21", Digest: img.DigestStr()},
		sbom.Tool{Name: "lhcbdirac-pipeline", Version: commit},
		sbom.Contents{
			Python: []sbom.PythonDist{{Name: "LHCbDIRAC", Version: "12.0.21", SHA256: []string{hexOf('a')}}, {Name: "DIRAC", Version: "9.0.10", SHA256: []string{hexOf('b'), hexOf('c')}}},
			Debian: []sbom.DebPackage{{Name: "libc6", Version: "2.36-9+deb12u10", Architecture: "amd64", Source: "glibc"}},
			Go:     []sbom.GoBinary{{File: "usr/bin/pinger", GoVersion: "go1.26.0", Main: sbom.GoModule{Path: "github.com/lhcbdirac/lhcbdirac-pipeline", Version: "(devel)"}, Deps: []sbom.GoModule{{Path: "golang.org/x/net", Version: "v0.61.0"}}}},
		}, t0)
	if err != nil {
		t.Fatal(err)
	}
	a1, err := evidence.SBOM(bom)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := evidence.Provenance(provenanceInput())
	if err != nil {
		t.Fatal(err)
	}
	return []evidence.Attestation{a1, a2, smokeAttestation(t, smokePassed, t0.Add(time.Hour))}
}

func provenanceInput() provenance.Input {
	return provenance.Input{
		Commit: commit, BuilderDeps: map[string]string{"dagger": "v0.19.7"},
		Image: "lhcbdirac", Version: "v12.0.21", Tag: "v12.0.21",
		Hotfixes:     []provenance.Hotfix{{Name: "DIRAC", Repo: "https://builder:s3cr3t-token@git.example.org/dirac.git", Branch: "fix", Commit: strings.Repeat("d", 40)}},
		Recipe:       map[string]string{"python": "3.11"},
		Dependencies: []provenance.Dependency{{Name: "lock", Digest: "sha256:" + hexOf('e')}, {Name: "base:debian", URI: "docker://debian:bookworm", Digest: "sha256:" + hexOf('f')}},
		StartedOn:    t0, FinishedOn: t0.Add(20 * time.Minute),
	}
}

func smokeAttestation(t testing.TB, passed bool, at time.Time) evidence.Attestation {
	t.Helper()
	p, err := smoke.New(commit, at, at.Add(5*time.Minute), []smoke.Service{
		{Name: "Framework/SystemAdministrator", App: smoke.App{ID: "/certification/framework-systemadministrator", SHA256: hexOf('1')},
			Checks: []smoke.Check{{Kind: smoke.CheckCommandHealth, Passed: true, At: at}, {Kind: smoke.CheckDIPSPing, Passed: passed, At: at}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := evidence.Smoke(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
