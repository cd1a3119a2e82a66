//go:build integration

package pipeline_test

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dagger.io/dagger"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/cosigntest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// configFor is the release's configuration for the variables in env (and
// nothing from this process's environment).
func configFor(ver, registry string, env map[string]string) (pipeline.Config, error) {
	return pipeline.ConfigFor(ver, settingsOf(env), registry)
}

func settingsOf(env map[string]string) settings.Settings {
	return settings.FromEnv(func(k string) string { return env[k] })
}

// planted is a credential that must never reach output, files or layers.
const planted = "PLANTED-s3cr3t-7f1d"

// plantCredentials sets the credentials in the environment the release
// reads (t.Setenv), so the tests that call it cannot run beside others of
// their process: they are named TestIntegrationAlone…, and the test
// command runs them in a go test process of their own, beside the rest
// (pipeline.RunTest). The other release tests run in parallel (t.Parallel:
// two at a time, one per core): each has its own repository, dist
// directory and Dagger session, and the engine does the builds they share
// once. They spend most of their time waiting on containers, so the
// package's 15 minutes in series were mostly idle cores.
func plantCredentials(t *testing.T, registry string) {
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("robot:" + planted))
	cfg := fmt.Sprintf(`{"auths":{"%s":{"auth":"%s"},"registry.invalid:5000":{"auth":"%s"}}}`, registry, auth, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("MARATHON_PASSWORD", planted)
}

// TestIntegrationAloneReleaseWithFixtureSources runs the whole release on the
// offline defaults — FIXTURE DIRAC/LHCbDIRAC sources from local git
// repositories, debootstrap bases, the local registry — for a -pre version:
// three images built, six services smoke-tested as Marathon would run them,
// pushed by digest, tagged v…-pre1 and devel, apps rendered, deploy skipped.
// Then it rebuilds every image without Dagger's cache and requires the same
// digests, and scans output, files and layers for a planted credential.
func TestIntegrationAloneReleaseWithFixtureSources(t *testing.T) {
	f := testengine.Foundation(t)
	ctx := t.Context()
	plantCredentials(t, f.Registry)
	dist := t.TempDir()
	repo := f.Registry + "/itest-release-" + fmt.Sprint(time.Now().UnixNano())
	cfg, err := configFor("v0.9-pre1", f.Registry, map[string]string{"LHCBDIRAC_SOURCES": "fixture", "LHCBDIRAC_REPOSITORY": repo, "LHCBDIRAC_DIST": dist})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var progressLog bytes.Buffer
	r := &pipeline.Release{Config: cfg, S: &pipeline.Session{Client: f.Client, Registry: f.Registry, P: progress.New(&progressLog), Out: io.MultiWriter(&out, &progressLog)}}
	err = r.Run(ctx)
	t.Log(progressLog.String())
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	if !strings.Contains(out.String(), "Deploy: not deployed: v0.9-pre1 is a pre-release: pushed and tagged devel, not deployed") {
		t.Errorf("a -pre release must not deploy:\n%s", out.String())
	}
	if len(r.Smoked.Services()) != 6 {
		t.Fatalf("smoke results: %d", len(r.Smoked.Services()))
	}
	for _, s := range r.Smoked.Services() {
		if !strings.Contains(s.Output(images.CheckPing), `"name":"`+s.Service+`"`) || !strings.Contains(s.Output(images.CheckHealth), "healthy after") {
			t.Errorf("%s: health %q ping %q", s.Service, s.Output(images.CheckHealth), s.Output(images.CheckPing))
		}
	}
	// Tags point at the pushed digests.
	for _, n := range images.Names() {
		p := r.Pushed.Images[n]
		if p.Digest == "" {
			t.Fatalf("%s was not pushed", n)
		}
		for _, tag := range []string{"v0.9-pre1", "devel"} {
			ref, _ := name.ParseReference(p.Repo + ":" + tag)
			d, err := remote.Head(ref)
			if err != nil || d.Digest.String() != p.Digest {
				t.Errorf("%s:%s: %v %v, want %s", p.Repo, tag, d, err, p.Digest)
			}
		}
	}
	// The hotfix/fixture commits are recorded as labels.
	lbl, err := r.Built.Container(images.LHCbDIRAC).Label(ctx, "org.lhcbdirac.dirac.commit")
	if err != nil || lbl != r.Inputs.Sources[0].Commit {
		t.Errorf("dirac commit label %q (%v), want %s", lbl, err, r.Inputs.Sources[0].Commit)
	}
	// Rendered apps name the pushed images by digest; the registrator's
	// app is among them, and its image passed its smoke test.
	app, err := os.ReadFile(filepath.Join(dist, "v0.9-pre1", "marathon", "DataManagement_FileCatalog.json"))
	if err != nil || !strings.Contains(string(app), `"image": "`+repo+`/lhcbdirac:v0.9-pre1@`+r.Pushed.Images[images.LHCbDIRAC].Digest+`"`) {
		t.Errorf("rendered app: %v\n%s", err, app)
	}
	reg, err := os.ReadFile(filepath.Join(dist, "v0.9-pre1", "marathon", "lhcbdirac_registrator.json"))
	if err != nil || !strings.Contains(string(reg), `"image": "`+repo+`/registrator:v0.9-pre1@`+r.Pushed.Images[images.Registrator].Digest+`"`) {
		t.Errorf("registrator app: %v\n%s", err, reg)
	}
	// Every image carries its evidence; the apps' images verify, and the
	// smoke attestation names the very apps the smoke test ran.
	verified, err := pipeline.VerifyApps(ctx, settings.Evidence{}, r.Rendered.Apps, "certification")
	if err != nil || len(verified) != 2 {
		t.Fatalf("verifying the release's apps: %v (%d images)", err, len(verified))
	}
	for _, v := range verified {
		for _, svc := range v.Result.Smoke.Services {
			if len(svc.Checks) == 0 || svc.Result != "passed" {
				t.Errorf("%s: smoke %+v", v.Ref, svc)
			}
		}
	}
	// The real cosign accepts what the release attached, with the
	// release's public key (the local pair: no LHCBDIRAC_SIGNING_KEY here).
	_, keyFrom, err := pipeline.VerifyKey(settings.Evidence{})
	if err != nil {
		t.Fatal(err)
	}
	pub := strings.TrimSuffix(strings.TrimPrefix(keyFrom, "the local key pair's "), " (LHCBDIRAC_VERIFY_KEY is not set)")
	cosign := cosigntest.New(t)
	for _, n := range images.Names() {
		ref := r.Pushed.Images[n].Ref()
		if out, err := cosign.Run("verify", "--key", pub, "--insecure-ignore-tlog", "--allow-http-registry", ref); err != nil {
			t.Errorf("cosign verify %s: %v\n%s", ref, err, out)
		}
		for _, typ := range []string{"slsaprovenance1", "cyclonedx", evidence.TypeSmoke} {
			if out, err := cosign.Run("verify-attestation", "--key", pub, "--insecure-ignore-tlog", "--allow-http-registry", "--type", typ, ref); err != nil {
				t.Errorf("cosign verify-attestation --type %s %s: %v\n%s", typ, ref, err, out)
			}
		}
	}
	// The report, in a real browser: the verdict, every image by digest,
	// every service's checks, the evidence verified, the FIXTURE marked.
	text := reportInBrowser(t, filepath.Join(dist, "v0.9-pre1"))
	wants := []string{"PASSED", "v0.9-pre1", "FIXTURE", "STAND-IN", "0 failed"}
	for _, n := range images.Names() {
		wants = append(wants, r.Pushed.Images[n].Digest[:19])
	}
	for _, s := range r.Smoked.Services() {
		wants = append(wants, s.Service)
	}
	wantInReport(t, text, wants...)
	// A FIXTURE build never goes to production.
	if _, err := pipeline.VerifyApps(ctx, settings.Evidence{}, r.Rendered.Apps, "production"); err == nil || !strings.Contains(err.Error(), "FIXTURE build") {
		t.Errorf("a FIXTURE build verified for production: %v", err)
	}
	if s := r.Smoked.Images[images.Registrator].Summary; s != "passed (3 tasks into etcd)" {
		t.Errorf("registrator smoke: %s", s)
	}
	summary, err := os.ReadFile(filepath.Join(dist, "v0.9-pre1", "summary.txt"))
	if err != nil || !strings.Contains(string(summary), r.Pushed.Images[images.Pinger].Digest) {
		t.Errorf("summary: %v\n%s", err, summary)
	}

	// Same inputs, Dagger's cache bypassed: same digests.
	again, err := pipeline.Build(ctx, &pipeline.Session{Client: f.Client, Registry: f.Registry, P: testenv.Reporter(t)}, cfg, pipeline.BuildKnobs{Rerun: time.Now().String()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range images.Names() {
		p, err := push.ByDigest(ctx, again.Container(n), n, f.Registry+"/itest-rerun/"+n, filepath.Join(t.TempDir(), n))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s (%.1f MB), rebuilt %s", n, r.Pushed.Images[n].Digest, float64(p.Size)/1e6, p.Digest)
		if p.Digest != r.Pushed.Images[n].Digest {
			t.Errorf("%s is not reproducible: %s then %s", n, r.Pushed.Images[n].Digest, p.Digest)
		}
	}

	// The planted credential is nowhere.
	if strings.Contains(progressLog.String(), planted) {
		t.Error("the credential is in the output")
	}
	filepath.Walk(dist, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(planted)) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString([]byte("robot:"+planted)))) {
				t.Errorf("the credential is in %s", p)
			}
		}
		return nil
	})
	for _, n := range images.Names() {
		assertNotInImage(t, r.Pushed.Images[n].Ref(), planted)
	}
}

// assertNotInImage reads every file of every layer and the config.
func assertNotInImage(t *testing.T, ref, secret string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.RawConfigFile()
	if bytes.Contains(cfg, []byte(secret)) {
		t.Errorf("%s: the credential is in the image config", ref)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(tr)
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s: the credential is in %s", ref, h.Name)
			}
		}
		rc.Close()
	}
}

// brokenDIRAC makes a DIRAC repository with a branch whose service exits at
// once, and a branch whose version differs (a working hotfix).
func hotfixRepos(t *testing.T) fixture.Repos {
	t.Helper()
	ctx := t.Context()
	repos, err := fixture.Create(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	if err := fixture.Git(ctx, "", "clone", "--quiet", repos.DIRAC, work); err != nil {
		t.Fatal(err)
	}
	edit := func(branch, file, old, new string) {
		if err := fixture.Git(ctx, work, "checkout", "--quiet", "-B", branch, "origin/"+fixture.Branch); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(work, file)
		b, _ := os.ReadFile(p)
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%s lacks %q", file, old)
		}
		os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644)
		if err := fixture.Commit(ctx, work, branch); err != nil {
			t.Fatal(err)
		}
		if err := fixture.Git(ctx, work, "push", "--quiet", "origin", branch); err != nil {
			t.Fatal(err)
		}
	}
	edit("broken", "src/DIRAC/Core/scripts/dirac_service.py", "def main():\n", "def main():\n    sys.exit(\"FIXTURE broken on purpose\")\n")
	edit("hotfix", "src/DIRAC/__init__.py", `version = "v9.1.0-fixture"`, `version = "v9.1.0-fixture-hotfix"`)
	return repos
}

// TestIntegrationHotfixBuildWhoseSmokeFailsPushesNothing builds DIRAC from
// a hotfix branch (DIRAC_REPO/DIRAC_BRANCH, resolved at build time) whose
// service dies: the smoke test fails, and nothing is pushed or tagged.
func TestIntegrationHotfixBuildWhoseSmokeFailsPushesNothing(t *testing.T) {
	t.Parallel() // (see plantCredentials)
	f := testengine.Foundation(t)
	ctx := t.Context()
	repos := hotfixRepos(t)
	repo := f.Registry + "/itest-broken"
	cfg, err := configFor("v0.9", f.Registry, map[string]string{
		"LHCBDIRAC_SOURCES": "fixture", "LHCBDIRAC_REPOSITORY": repo, "LHCBDIRAC_DIST": t.TempDir(),
		"DIRAC_REPO": repos.DIRAC, "DIRAC_BRANCH": "broken",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ = cfg.WithOnly("DataManagement/FileCatalog")
	var out bytes.Buffer
	r := &pipeline.Release{Config: cfg, S: &pipeline.Session{Client: f.Client, Registry: f.Registry, P: testenv.Reporter(t), Out: &out}}
	err = r.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "smoke") || !strings.Contains(err.Error(), "FIXTURE broken on purpose") {
		t.Fatalf("want a smoke failure naming the service's own error, got %v", err)
	}
	if b, _ := r.Built.Container(images.LHCbDIRAC).Label(ctx, "org.lhcbdirac.dirac.branch"); b != "broken" {
		t.Errorf("branch label %q", b)
	}
	if r.Pushed != nil {
		t.Errorf("images were pushed after a failed smoke test: %+v", r.Pushed.Images)
	}
	for _, n := range images.Names() {
		if l := r.Exported.Images[n]; l != nil {
			d, _ := name.NewDigest(l.Ref())
			if _, err := remote.Head(d); err == nil {
				t.Errorf("%s (%s) is in the registry after a failed smoke test", n, l.Digest)
			}
		}
		ref, _ := name.ParseReference(repo + "/" + n + ":v0.9")
		if _, err := remote.Head(ref); err == nil {
			t.Errorf("%s:v0.9 exists after a failed smoke test", n)
		}
	}
	if !strings.Contains(out.String(), "(not pushed)") {
		t.Errorf("summary:\n%s", out.String())
	}
	// The report of the failed release shows how far it got and why, the
	// service's own words shown as text.
	text := reportInBrowser(t, cfg.Dist)
	wantInReport(t, text, "FAILED", "smoke", "DataManagement/FileCatalog", "FIXTURE broken on purpose", "not reached")
}

// TestIntegrationTestServiceAndHotfixAtStart is `mage testService`: one
// service built and run as Marathon would, with its logs, nothing pushed.
// Then the image is started with DIRAC_REPO/DIRAC_BRANCH, as the seed
// allowed, and runs the hotfix's code — applied once, not per health check.
func TestIntegrationTestServiceAndHotfixAtStart(t *testing.T) {
	t.Parallel() // (see plantCredentials)
	f := testengine.Foundation(t)
	ctx := t.Context()
	cfg, err := configFor("v0.0", f.Registry, map[string]string{"LHCBDIRAC_SOURCES": "fixture", "LHCBDIRAC_REPOSITORY": f.Registry + "/itest-testservice", "LHCBDIRAC_DIST": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &pipeline.Release{Config: cfg, S: &pipeline.Session{Client: f.Client, Registry: f.Registry, P: testenv.Reporter(t), Out: &out}}
	if err := r.TestService(ctx, "RequestManagement/ReqProxy"); err != nil {
		t.Fatal(err)
	}
	if len(r.Smoked.Services()) != 1 || !strings.Contains(r.Smoked.Services()[0].Log, "FIXTURE dirac-service RequestManagement/ReqProxy listening on port 9161") {
		t.Fatalf("service log: %+v", r.Smoked.Services())
	}
	if r.Pushed != nil || r.Deployed != nil || !strings.Contains(out.String(), "(not pushed)") {
		t.Fatalf("testService pushed or deployed:\n%s", out.String())
	}
	for _, st := range r.Stages {
		if st.Name != "inputs" && st.Name != "build" && st.Name != "smoke" {
			t.Errorf("testService ran stage %s", st.Name)
		}
	}
	if len(r.Built.Images) != 2 {
		t.Errorf("testService built %d images, want lhcbdirac and the pinger", len(r.Built.Images))
	}

	repos := hotfixRepos(t)
	img := r.Built.Container(images.LHCbDIRAC).
		WithDirectory("/srv/DIRAC.git", f.Client.Host().Directory(repos.DIRAC)).
		WithEnvVariable("DIRAC_REPO", "/srv/DIRAC.git").
		WithEnvVariable("DIRAC_BRANCH", "hotfix").
		WithEnvVariable("BUST", time.Now().String())
	first := img.WithExec([]string{"python3", "-c", "import DIRAC; print(DIRAC.version)"}, dagger.ContainerWithExecOpts{UseEntrypoint: true, Expect: dagger.ReturnTypeAny})
	if code, err := first.ExitCode(ctx); err != nil || code != 0 {
		stderr, _ := first.Stderr(ctx)
		t.Fatalf("hotfix at start: exit %d %v\n%s", code, err, stderr)
	}
	v, err := first.Stdout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(v) != "v9.1.0-fixture-hotfix" {
		t.Fatalf("hotfix at start: DIRAC.version %q", v)
	}
	second, err := first.WithExec([]string{"true"}, dagger.ContainerWithExecOpts{UseEntrypoint: true, RedirectStderr: "/tmp/entry2.log"}).File("/tmp/entry2.log").Contents(ctx)
	if err != nil || !strings.Contains(second, `DIRAC hotfix from /srv/DIRAC.git (branch "hotfix") already applied`) {
		t.Fatalf("second start: %v\n%s", err, second)
	}
	bad, err := img.WithEnvVariable("DIRAC_BRANCH", "x;id").WithExec([]string{"true"}, dagger.ContainerWithExecOpts{UseEntrypoint: true, Expect: dagger.ReturnTypeAny}).Stderr(ctx)
	if err != nil || !strings.Contains(bad, `DIRAC_BRANCH="x;id"`) {
		t.Fatalf("a bad branch at start: %v %s", err, bad)
	}
}

// TestIntegrationBaseThatCannotBePulledFailsEarly: nothing is built.
func TestIntegrationBaseThatCannotBePulledFailsEarly(t *testing.T) {
	t.Parallel() // (see plantCredentials)
	f := testengine.Foundation(t)
	base := f.Registry + "/itest/nope@sha256:" + strings.Repeat("0", 64)
	cfg, err := configFor("v0.9", f.Registry, map[string]string{"LHCBDIRAC_SOURCES": "fixture", "LHCBDIRAC_BASE_LHCBDIRAC": base, "LHCBDIRAC_DIST": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r := &pipeline.Release{Config: cfg, S: &pipeline.Session{Client: f.Client, Registry: f.Registry, P: testenv.Reporter(t), Out: io.Discard}}
	err = r.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "inputs: LHCBDIRAC_BASE_LHCBDIRAC=\""+base+"\" cannot be pulled") {
		t.Fatalf("got %v", err)
	}
	if r.Built != nil {
		t.Errorf("images were built: %+v", r.Built.Images)
	}
}
