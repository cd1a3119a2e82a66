//go:build integration

package pipeline_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/server"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/provenance"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/sbom"
	smokeattest "github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// promoteWorld is a registry (the real one), a STAND-IN Marathon whose
// tasks land on 127.0.0.1 with host ports from a range this test serves
// with real DIPS test servers, and a real pinger in front of them.
type promoteWorld struct {
	t        *testing.T
	ctx      context.Context
	repo     string
	srv      *marathontest.Server
	dipsSrvs []*dipstest.Server
	signer   *evidence.Signer
	other    *evidence.Signer
	env      map[string]string
	services []string
}

const promoteCommit = "0123456789abcdef0123456789abcdef01234567"

var promoteDists = []sbom.PythonDist{
	{Name: "lhcbdirac", Version: "12.0.21", SHA256: []string{strings.Repeat("a", 64)}},
	{Name: "dirac", Version: "9.1.22", SHA256: []string{strings.Repeat("b", 64)}},
	{Name: "m2crypto", Version: "0.45.1", SHA256: []string{strings.Repeat("c", 64)}},
}

func newPromoteWorld(t *testing.T) *promoteWorld {
	ctx := t.Context()
	s, err := pipeline.Open(ctx, settings.Load(), testenv.Reporter(t), pipeline.Needs{Registry: true})
	if err != nil {
		t.Fatalf("INTEGRATION TEST CANNOT RUN: no registry: %v", err)
	}
	w := &promoteWorld{t: t, ctx: ctx, repo: s.Registry + "/itest-promote-" + fmt.Sprint(time.Now().UnixNano()),
		services: []string{"DataManagement/FileCatalog", "RequestManagement/ReqManager"}}
	dir := t.TempDir()

	// The release key, and another one.
	files, err := evidence.WriteKeyPair(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(files.Private)
	if w.signer, err = evidence.LoadSigner("test key", b); err != nil {
		t.Fatal(err)
	}
	otherPriv, _, _ := evidence.GenerateKeyPair()
	w.other, _ = evidence.LoadSigner("another key", otherPriv)

	// DIPS servers on a block of consecutive loopback ports (the stand-in's
	// tasks get their host ports from it), each answering every service.
	pki, err := dipstest.NewPKI(filepath.Join(dir, "pki"), "Test CA")
	if err != nil {
		t.Fatal(err)
	}
	host, err := pki.Host("host", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	base := consecutivePorts(t, 40)
	var allow []string
	for p := base; p < base+40; p++ {
		d, err := dipstest.Start(dipstest.Options{Addr: fmt.Sprintf("127.0.0.1:%d", p), HostCert: host.CertFile, HostKey: host.KeyFile, CADir: pki.CADir(), Services: w.services})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		w.dipsSrvs = append(w.dipsSrvs, d)
		allow = append(allow, fmt.Sprintf("127.0.0.1:%d", p))
	}
	// The real pinger's handler, allowed exactly those addresses.
	cert, err := dips.LoadCertificate(host.CertFile, host.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := dips.LoadCADir(pki.CADir())
	if err != nil {
		t.Fatal(err)
	}
	al, err := server.ParseAllowList(strings.Join(allow, ","))
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.NewHandler(server.Config{Client: &dips.Client{Certificate: &cert, RootCAs: roots, HostCredentials: true}, Allow: al})
	if err != nil {
		t.Fatal(err)
	}
	pinger := httptest.NewServer(h)
	t.Cleanup(pinger.Close)

	// STAND-IN Marathon (marathon/marathontest follows Marathon's
	// documented behaviour; Marathon cannot be installed here).
	w.srv = marathontest.New()
	w.srv.Hosts, w.srv.FirstHostPort = []string{"127.0.0.1"}, base
	t.Cleanup(w.srv.Close)

	servicesFile := filepath.Join(dir, "services.yaml")
	os.WriteFile(servicesFile, []byte(fmt.Sprintf(`image: %s/lhcbdirac
pingerURL: %s
environments:
  certification:
    diracCfg: /etc/dirac/LHCb-Certification.cfg
    gridSecurity: /etc/grid-security
    system: cert
  production:
    diracCfg: /etc/dirac/LHCb-Production.cfg
    gridSecurity: /etc/grid-security
    system: prod
services:
  - name: DataManagement/FileCatalog
    port: 9197
    instances: 2
  - name: RequestManagement/ReqManager
    port: 9140
`, w.repo, pinger.URL)), 0o644)
	w.env = map[string]string{
		"LHCBDIRAC_SERVICES": servicesFile, "LHCBDIRAC_REPOSITORY": w.repo,
		"MARATHON_URL": w.srv.URL, "MARATHON_TIMEOUT": "60s", "MARATHON_SETTLE": "500ms",
		"LHCBDIRAC_SIGNING_KEY": files.Private, "LHCBDIRAC_VERIFY_KEY": files.Public,
	}
	return w
}

// consecutivePorts finds n free consecutive loopback ports below the
// kernel's ephemeral range.
func consecutivePorts(t *testing.T, n int) int {
	for range 50 {
		base := 20000 + rand.IntN(8000)
		var ls []net.Listener
		ok := true
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no block of free loopback ports")
	return 0
}

func (w *promoteWorld) settings() settings.Settings {
	return settings.FromEnv(func(k string) string { return w.env[k] })
}

// push pushes a small image of its own as repo/lhcbdirac:tag and returns
// its digest.
func (w *promoteWorld) push(tag, content string) name.Digest {
	w.t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "release", Mode: 0o644, Size: int64(len(content))})
	tw.Write([]byte(content))
	tw.Close()
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		w.t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		w.t.Fatal(err)
	}
	ref, _ := name.NewTag(w.repo + "/lhcbdirac:" + tag)
	if err := remote.Write(ref, img); err != nil {
		w.t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.Context().Digest(d.String())
}

type releaseEvidence struct {
	signer                  *evidence.Signer
	sbom, provenance, smoke bool
	fixture                 bool
	sbomDists               []sbom.PythonDist
	smokeFor                *name.Digest // attach the smoke attestation made for another image
}

// attestations are what the release would attach to img.
func (w *promoteWorld) attestations(img name.Digest, ev releaseEvidence) []evidence.Attestation {
	w.t.Helper()
	var out []evidence.Attestation
	now := time.Now()
	if ev.sbom {
		dists := promoteDists
		if ev.sbomDists != nil {
			dists = ev.sbomDists
		}
		bom, err := sbom.Build(sbom.Subject{Name: img.Context().Name(), Version: "v", Digest: img.DigestStr()}, sbom.Tool{Name: "lhcbdirac-pipeline", Version: promoteCommit}, sbom.Contents{Python: dists}, now)
		if err != nil {
			w.t.Fatal(err)
		}
		a, err := evidence.SBOM(bom)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, a)
	}
	if ev.provenance {
		in := provenance.Input{Commit: promoteCommit, Fixture: ev.fixture, Image: "lhcbdirac", Version: "v", StartedOn: now.Add(-time.Minute), FinishedOn: now}
		for _, d := range promoteDists {
			in.Dependencies = append(in.Dependencies, provenance.Dependency{Name: "pypi:" + d.Name, URI: "pkg:pypi/" + d.Name + "@" + d.Version, Digest: "sha256:" + d.SHA256[0]})
		}
		a, err := evidence.Provenance(in)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, a)
	}
	if ev.smoke {
		var svcs []smokeattest.Service
		for _, s := range w.services {
			svcs = append(svcs, smokeattest.Service{Name: s, App: smokeattest.App{ID: s, SHA256: strings.Repeat("d", 64)},
				Checks: []smokeattest.Check{{Kind: smokeattest.CheckCommandHealth, Passed: true, At: now}, {Kind: smokeattest.CheckDIPSPing, Passed: true, At: now}}})
		}
		p, err := smokeattest.New(promoteCommit, now.Add(-time.Minute), now, svcs)
		if err != nil {
			w.t.Fatal(err)
		}
		a, err := evidence.Smoke(p)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// release pushes version's image with the evidence ev describes.
func (w *promoteWorld) release(version string, ev releaseEvidence) name.Digest {
	w.t.Helper()
	img := w.push(version, version+" "+fmt.Sprint(time.Now().UnixNano()))
	signer := ev.signer
	if signer == nil {
		signer = w.signer
	}
	stolenSmoke := ev.smokeFor != nil
	if stolenSmoke {
		ev.smoke = false
	}
	if _, err := signer.Attach(w.ctx, img, w.attestations(img, ev), evidence.Options{}); err != nil {
		w.t.Fatal(err)
	}
	if stolenSmoke {
		// Someone with registry access copies another image's (validly
		// signed) smoke attestation into this image's .att.
		other := *ev.smokeFor
		if _, err := w.signer.Attach(w.ctx, other, w.attestations(other, releaseEvidence{smoke: true}), evidence.Options{}); err != nil {
			w.t.Fatal(err)
		}
		src, err := remote.Image(evidence.AttTag(other))
		if err != nil {
			w.t.Fatal(err)
		}
		layers, _ := src.Layers()
		body, _ := layers[len(layers)-1].Uncompressed()
		b, _ := io.ReadAll(body)
		att, err := remote.Image(evidence.AttTag(img))
		if err != nil {
			w.t.Fatal(err)
		}
		att, _ = mutate.Append(att, mutate.Addendum{Layer: static.NewLayer(b, evidence.DSSEMediaType),
			Annotations: map[string]string{evidence.SignatureAnnotation: "", evidence.PredicateAnnotation: evidence.TypeSmoke}})
		if err := remote.Write(evidence.AttTag(img), att); err != nil {
			w.t.Fatal(err)
		}
	}
	return img
}

var fullEvidence = releaseEvidence{sbom: true, provenance: true, smoke: true}

func (w *promoteWorld) promote(version string) (*pipeline.Promoted, string, error) {
	var out, log bytes.Buffer
	p, err := pipeline.RunPromote(w.ctx, w.settings(), version, "production", &out, &log)
	w.t.Logf("promote %s:\n%s%s", version, out.String(), log.String())
	return p, out.String(), err
}

// running are the digests Marathon's apps run now, by app.
func (w *promoteWorld) running() map[string]string {
	out := map[string]string{}
	for _, s := range w.services {
		id := "/" + strings.ToLower(s)
		if d := w.srv.Definition(id); d != nil {
			out[id] = d.ImageDigest()
		}
	}
	return out
}

func (w *promoteWorld) allRun(d name.Digest) bool {
	r := w.running()
	if len(r) != len(w.services) {
		return false
	}
	for _, got := range r {
		if got != d.DigestStr() {
			return false
		}
	}
	return true
}

// TestIntegrationPromoteCanaryRollbackAndTampering: a release promoted to
// production runs exactly the digests that were smoke-tested, after a
// canary (one instance first, pinged through the real pinger); rollback
// restores the previous release; a canary that cannot be pinged rolls
// every app back; and every kind of tampered evidence is refused before
// any request reaches Marathon. Marathon is the STAND-IN marathontest.
func TestIntegrationPromoteCanaryRollbackAndTampering(t *testing.T) {
	t.Parallel() // (see plantCredentials)
	w := newPromoteWorld(t)
	v1 := w.release("v12.0.20", fullEvidence)
	v2 := w.release("v12.0.21", fullEvidence)

	// Promote v12.0.20, then v12.0.21: the digests, after a canary.
	if _, _, err := w.promote("v12.0.20"); err != nil {
		t.Fatal(err)
	}
	if !w.allRun(v1) {
		t.Fatalf("after promoting v12.0.20 Marathon runs %v, want %s everywhere", w.running(), v1.DigestStr())
	}
	p, out, err := w.promote("v12.0.21")
	if err != nil {
		t.Fatal(err)
	}
	if !w.allRun(v2) {
		t.Fatalf("after promoting v12.0.21 Marathon runs %v, want %s", w.running(), v2.DigestStr())
	}
	if !strings.Contains(out, "container.docker.image") || len(p.Result.Canaries) != 2 {
		t.Errorf("the plan field by field and two canaries: %d canaries\n%s", len(p.Result.Canaries), out)
	}
	// The canary: the file catalog's versions on Marathon went through one
	// instance of v12.0.21 before its two.
	c, _ := client.New(client.Config{URLs: w.srv.URL})
	vers, err := c.AppVersions(w.ctx, "/datamanagement/filecatalog")
	if err != nil {
		t.Fatal(err)
	}
	var counts []string
	for _, v := range vers { // newest first
		d, _ := c.AppVersion(w.ctx, "/datamanagement/filecatalog", v)
		if d.ImageDigest() == v2.DigestStr() {
			counts = append(counts, fmt.Sprint(d.Instances))
		}
	}
	if strings.Join(counts, ",") != "2,1" {
		t.Errorf("v12.0.21's versions of the file catalog had instances %v (newest first), want 2 after the canary's 1", counts)
	}

	// Rollback: the previous release, at once, said.
	var rout bytes.Buffer
	restored, err := pipeline.RunRollback(w.ctx, w.settings(), "production", &rout, io.Discard)
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, rout.String())
	}
	if !w.allRun(v1) || len(restored) != 2 || !strings.Contains(rout.String(), "v12.0.21@"+v2.DigestStr()+" → ") {
		t.Fatalf("rollback restored %+v, Marathon runs %v:\n%s", restored, w.running(), rout.String())
	}

	// A canary that fails its gate (its DIPS service does not answer):
	// every app goes back to what it ran.
	for _, d := range w.dipsSrvs {
		d.SetFailure(dipstest.ServiceError)
	}
	if _, _, err := w.promote("v12.0.21"); err == nil || !strings.Contains(err.Error(), "gate") {
		t.Fatalf("a canary that cannot be pinged: %v", err)
	}
	if !w.allRun(v1) {
		t.Fatalf("after a failed canary Marathon runs %v, want v12.0.20 (%s) back everywhere", w.running(), v1.DigestStr())
	}
	for _, d := range w.dipsSrvs {
		d.SetFailure(dipstest.Healthy)
	}

	// Tampering: each refused before any request reaches Marathon.
	tagMoved := w.release("v12.0.30", fullEvidence)
	w.push("v12.0.30", "a changed layer") // the tag now names content nobody tested
	_ = tagMoved
	for _, tc := range []struct {
		name    string
		version string
		make    func(string)
		want    string
	}{
		{"a layer changed and the tag moved", "v12.0.30", func(string) {}, "no image signature"},
		{"a signature by another key", "v12.0.31", func(v string) {
			w.release(v, releaseEvidence{signer: w.other, sbom: true, provenance: true, smoke: true})
		}, "another key"},
		{"a smoke attestation for another digest", "v12.0.32", func(v string) {
			other := w.push("v12.0.32-other", "other")
			w.release(v, releaseEvidence{sbom: true, provenance: true, smokeFor: &other})
		}, "smoke"},
		{"no smoke attestation", "v12.0.33", func(v string) { w.release(v, releaseEvidence{sbom: true, provenance: true}) }, "no smoke attestation"},
		{"a FIXTURE build to production", "v12.0.34", func(v string) {
			w.release(v, releaseEvidence{sbom: true, provenance: true, smoke: true, fixture: true})
		}, "FIXTURE build"},
		{"an SBOM that does not list the lock's distributions", "v12.0.35", func(v string) {
			w.release(v, releaseEvidence{sbom: true, provenance: true, smoke: true, sbomDists: promoteDists[:1]})
		}, "its SBOM does not list 2 distributions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.make(tc.version)
			before := len(w.srv.Requests())
			_, _, err := w.promote(tc.version)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Fatalf("promote %s: %v, want an error saying %q", tc.version, err, tc.want)
			}
			if got := w.srv.Requests()[before:]; len(got) != 0 {
				t.Errorf("Marathon was asked %v before the evidence was refused", got)
			}
			if !w.allRun(v1) {
				t.Errorf("Marathon runs %v, want v12.0.20 still", w.running())
			}
		})
	}
}
