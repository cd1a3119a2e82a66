//go:build integration

package pipeline_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"dagger.io/dagger"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/gitserve"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

var daggerUseEntrypoint = dagger.ContainerWithExecOpts{UseEntrypoint: true}

// sharedFilesScript prints how many files both DIRAC's and LHCbDIRAC's
// RECORDs list, then those whose content is not LHCbDIRAC's.
const sharedFilesScript = `
import base64, hashlib, importlib.metadata as md
d, l = md.distribution("DIRAC"), md.distribution("LHCbDIRAC")
mine = {str(f): f for f in l.files}
shared = [f for f in d.files if str(f) in mine]
bad = []
for f in shared:
    h = mine[str(f)].hash
    data = open(f.locate(), "rb").read()
    if base64.urlsafe_b64encode(hashlib.new(h.mode, data).digest()).rstrip(b"=").decode() != h.value:
        bad.append(str(f))
print(len(shared), ",".join(bad))
`

// realVersion is the LHCbDIRAC release the real-route tests build: a
// release the index has.
const realVersion = "v12.0.21"

// imageFiles reads every regular file of an image's layers (the last
// layer's version wins) whose path keep accepts, and lists every path.
func imageFiles(t *testing.T, img v1.Image, keep func(string) bool) (map[string][]byte, []string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var paths []string
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
			p := strings.TrimPrefix(h.Name, "./")
			paths = append(paths, p)
			if h.Typeflag == tar.TypeReg && keep(p) {
				files[p], _ = io.ReadAll(tr)
			}
		}
		rc.Close()
	}
	return files, paths
}

func remoteImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestIntegrationReleaseRealLHCbDIRAC is the release on its defaults: the
// real LHCbDIRAC from the index through its lock, all six certification
// services started for real against MariaDB, health-checked as Marathon
// would and pinged through the pinger, pushed, rendered, dry-run
// deployed. Then the image is built again from the lock the release wrote
// — Dagger's cache bypassed, uv's download cache empty — and must have the
// same digest.
func TestIntegrationReleaseRealLHCbDIRAC(t *testing.T) {
	t.Parallel() // (see plantCredentials)
	f := testengine.Foundation(t)
	ctx := t.Context()
	dist := t.TempDir()
	// A repository of this run's own: version tags never move, and the
	// registry may hold an earlier run's 12.0.21 built by other code.
	repo := f.Registry + "/itest-real-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg, err := configFor(realVersion, f.Registry, map[string]string{"LHCBDIRAC_REPOSITORY": repo, "LHCBDIRAC_DIST": dist})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &pipeline.Release{Config: cfg, S: &pipeline.Session{Client: f.Client, Registry: f.Registry, P: testenv.Reporter(t), Out: &out}}
	err = r.Run(ctx)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	for _, want := range []string{"LHCbDIRAC 12.0.21, DIRAC 9.1.", "passed (6 services: health check + DIPS ping)", "passed (6 pings)", "Deploy: not deployed: dry run"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the summary lacks %q", want)
		}
	}
	if len(r.Smoked.Services()) != 6 {
		t.Fatalf("%d services smoke-tested, want 6", len(r.Smoked.Services()))
	}
	for _, s := range r.Smoked.Services() {
		// DIRAC's own service: its log line, DIRAC's version in the ping.
		if !strings.Contains(s.Log, "Listening at dips://") || !strings.Contains(s.Output(images.CheckPing), `"version":"9.1.`) || !strings.Contains(s.Output(images.CheckPing), `"name":"`+s.Service+`"`) {
			t.Errorf("%s did not run as real DIRAC: log %q\nping %q", s.Service, s.Log, s.Output(images.CheckPing))
		}
		t.Logf("smoke %s: %s", s.Service, s.Took.Round(100*time.Millisecond))
	}
	// The line marathon:dockerRun prints runs the service (ReqProxy reads
	// no database, so it needs nothing but the kit).
	agentDockerRunServes(t, r.Inputs.Apps, "RequestManagement/ReqProxy")

	// The lock: in dist, in the image, in the label.
	lockPath := filepath.Join(cfg.Dist, pipeline.LockFileName)
	lock, err := lhcbdirac.ReadLock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	pushed := r.Pushed.Images[images.LHCbDIRAC]
	img := remoteImage(t, pushed.Ref())
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	labels := cf.Config.Labels
	if labels["org.lhcbdirac.lock.digest"] != lock.Digest() || labels["org.lhcbdirac.lhcbdirac.version"] != "12.0.21" || !strings.HasPrefix(labels["org.lhcbdirac.dirac.version"], "9.1.") {
		t.Errorf("labels %v, lock %s", labels, lock.Digest())
	}
	files, paths := imageFiles(t, img, func(p string) bool { return p == "opt/dirac/lhcbdirac.lock" })
	if !bytes.Equal(files["opt/dirac/lhcbdirac.lock"], lock.Raw) {
		t.Error("the image's /opt/dirac/lhcbdirac.lock is not the lock in dist")
	}
	// No compiler, headers or package caches in the image.
	for _, p := range paths {
		if strings.HasPrefix(p, "usr/bin/gcc") || strings.HasPrefix(p, "usr/bin/x86_64-linux-gnu-gcc") || strings.HasPrefix(p, "usr/include/python3") ||
			strings.HasPrefix(p, "root/.cache/") || strings.HasPrefix(p, "var/cache/apt/archives/") && strings.HasSuffix(p, ".deb") || strings.HasPrefix(p, "opt/dirac/") && strings.Contains(p, "/__pycache__/") {
			t.Errorf("the image holds %s", p)
		}
	}
	t.Logf("lhcbdirac: %s, %.1f MB compressed, %d distributions", pushed.Digest, float64(pushed.Size)/1e6, len(lock.Runtime))

	// Files both DIRAC and LHCbDIRAC ship (console scripts of the same
	// names) are LHCbDIRAC's, as pip's dependency-first order leaves them.
	shared, err := r.Built.Container(images.LHCbDIRAC).WithExec([]string{"python", "-c", sharedFilesScript}, daggerUseEntrypoint).Stdout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(shared), "\n")
	if n, notLHCb, _ := strings.Cut(lines[len(lines)-1], " "); n == "0" || notLHCb != "" {
		t.Errorf("files DIRAC and LHCbDIRAC both ship: %s; not LHCbDIRAC's: %q", n, notLHCb)
	}

	// From the lock again: Dagger's cache bypassed, an empty uv cache.
	cfg2, err := configFor(realVersion, f.Registry, map[string]string{"LHCBDIRAC_LOCK": lockPath, "LHCBDIRAC_DIST": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stamp := fmt.Sprint(time.Now().UnixNano())
	again, err := pipeline.Build(ctx, &pipeline.Session{Client: f.Client, Registry: f.Registry, P: testenv.Reporter(t)}, cfg2,
		pipeline.BuildKnobs{Rerun: stamp, UVCache: "itest-uv-" + stamp}, images.All[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := push.ByDigest(ctx, again.Container(images.LHCbDIRAC), images.LHCbDIRAC, f.Registry+"/itest-real-rerun/lhcbdirac", filepath.Join(t.TempDir(), "lhcbdirac"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest != pushed.Digest {
		t.Errorf("the same lock built %s, then %s from scratch", pushed.Digest, p.Digest)
	}
}

// hotfixDIRAC makes a git repository of the real DIRAC source tree (the
// sdist the index serves for the locked version) with one change: a
// marker in DIRAC/__init__.py. It returns the repositories' directory and
// the marker.
func hotfixDIRAC(t *testing.T, lock *lhcbdirac.Lock) (string, string) {
	t.Helper()
	ctx := t.Context()
	tools, err := pytools.Ensure(ctx, testenv.Reporter(t), "")
	if err != nil {
		t.Fatal(err)
	}
	sdist, err := tools.DownloadSource(ctx, "DIRAC=="+lock.DIRACVersion(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "DIRAC")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xzf", sdist, "-C", work, "--strip-components=1").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	marker := fmt.Sprintf("hotfix-%d", time.Now().UnixNano())
	init := filepath.Join(work, "src", "DIRAC", "__init__.py")
	b, err := os.ReadFile(init)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(init, append(b, []byte("\nHOTFIX_MARKER = \""+marker+"\"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fixture.Commit(ctx, work, "DIRAC with a hotfix"); err != nil {
		t.Fatal(err)
	}
	repos := t.TempDir()
	if err := fixture.Git(ctx, "", "clone", "--quiet", "--bare", "--", work, filepath.Join(repos, "DIRAC.git")); err != nil {
		t.Fatal(err)
	}
	return repos, marker
}

// TestIntegrationAloneHotfixOnRealDIRAC builds the image with DIRAC from a git
// repository holding the real DIRAC source tree with one change, served
// over authenticated HTTP with the token in DIRAC_REPO: the rest of the
// tree from the lock, the image provably runs the hotfixed DIRAC (and a
// real service starts on it), the commit is in the labels and the summary
// — and the token is in no output, file in dist/, layer or config of the
// pushed images, nor on any command line while the release runs.
func TestIntegrationAloneHotfixOnRealDIRAC(t *testing.T) {
	f := testengine.Foundation(t)
	ctx := t.Context()
	plantCredentials(t, f.Registry)
	lockCfg, err := configFor(realVersion, f.Registry, nil)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := pipeline.ResolveLock(ctx, testenv.Reporter(t), lockCfg)
	if err != nil {
		t.Fatal(err)
	}
	lockFile := filepath.Join(t.TempDir(), "lhcbdirac.lock")
	os.WriteFile(lockFile, lock.Raw, 0o644)
	reposDir, marker := hotfixDIRAC(t, lock)
	const token = "glpat-PLANTED-hotfix-4c2e"
	srv := &gitserve.Server{Root: reposDir, User: "oauth2", Password: token}
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// Every command line of the machine, sampled while the release runs.
	stop, seen := watchCommandLines(token)

	dist := t.TempDir()
	repo := f.Registry + "/itest-hotfix"
	cfg, err := configFor(realVersion, f.Registry, map[string]string{
		"LHCBDIRAC_LOCK": lockFile, "LHCBDIRAC_REPOSITORY": repo, "LHCBDIRAC_DIST": dist,
		"DIRAC_REPO": srv.URL("DIRAC.git", "oauth2", token), "DIRAC_BRANCH": fixture.Branch,
		"LHCBDIRAC_SERVICES": "testdata/one-service.yaml",
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &pipeline.Release{Config: cfg, S: &pipeline.Session{Client: f.Client, Registry: f.Registry, P: progress.New(&out), Out: &out}}
	err = r.Run(ctx)
	stop()
	t.Log(out.String())
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	commit := r.Inputs.Sources[0].Commit
	img := r.Built.Container(images.LHCbDIRAC)
	got, err := img.WithExec([]string{"python", "-c", "import DIRAC; print(DIRAC.HOTFIX_MARKER, DIRAC.__version__)"}, daggerUseEntrypoint).Stdout(ctx)
	if err != nil || !strings.Contains(got, marker) || !strings.Contains(got, lock.DIRACVersion()+"+hotfix."+commit[:12]) {
		t.Fatalf("the image does not run the hotfixed DIRAC: %q %v", got, err)
	}
	if !strings.Contains(out.String(), "DIRAC hotfix: "+srv.URL("DIRAC.git", "", "")+" "+fixture.Branch+" @ "+commit) {
		t.Errorf("the summary does not name the hotfix")
	}
	if lbl, _ := img.Label(ctx, "org.lhcbdirac.dirac.commit"); lbl != commit {
		t.Errorf("commit label %q, want %s", lbl, commit)
	}
	if len(r.Smoked.Services()) != 1 || !strings.Contains(r.Smoked.Services()[0].Log, "Listening at dips://") {
		t.Fatalf("the service did not start on the hotfixed DIRAC: %+v", r.Smoked.Services())
	}

	// The token is nowhere.
	if strings.Contains(out.String(), token) || strings.Contains(out.String(), planted) {
		t.Error("a credential is in the output")
	}
	for _, cmd := range seen() {
		t.Errorf("the token was on a command line: %s", cmd)
	}
	assertNotInFiles(t, dist, token)
	for _, n := range images.Names() {
		assertNotInImage(t, r.Pushed.Images[n].Ref(), token)
	}
}

// TestIntegrationServiceThatDoesNotStartFailsTheRelease: a service the
// installed DIRAC does not have exits at start; the release stops before
// pushing anything, and the summary shows the last lines of its log.
func TestIntegrationServiceThatDoesNotStartFailsTheRelease(t *testing.T) {
	t.Parallel() // (see plantCredentials)
	f := testengine.Foundation(t)
	ctx := t.Context()
	dist := t.TempDir()
	repo := f.Registry + "/itest-real-broken-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg, err := configFor(realVersion, f.Registry, map[string]string{
		"LHCBDIRAC_REPOSITORY": repo, "LHCBDIRAC_DIST": dist, "LHCBDIRAC_SERVICES": "testdata/broken-service.yaml",
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &pipeline.Release{Config: cfg, S: &pipeline.Session{Client: f.Client, Registry: f.Registry, P: testenv.Reporter(t), Out: &out}}
	err = r.Run(ctx)
	t.Log(out.String())
	if err == nil {
		t.Fatal("a release whose service cannot start succeeded")
	}
	summary, _ := os.ReadFile(filepath.Join(cfg.Dist, "summary.txt"))
	for _, want := range []string{"FAILED (1 of 2 services)", "DataManagement/NoSuchService did not pass its smoke test; the last lines of its log:", "NoSuchService"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("the summary lacks %q:\n%s", want, summary)
		}
	}
	if r.Pushed != nil { // nil: the push stage never ran
		for _, n := range images.Names() {
			if r.Pushed.Images[n].Digest != "" {
				t.Errorf("%s was pushed", n)
			}
		}
	}
	ref, _ := name.ParseReference(repo + "/lhcbdirac:" + realVersion)
	if _, err := remote.Head(ref); err == nil {
		t.Error("the version tag exists")
	}
}

// TestIntegrationIndexCredentialsReachTheIndexOnly gives the release an
// index URL with a token in it (LHCBDIRAC_PIP_INDEX_URL): an index on
// loopback that requires those credentials and lists LHCbDIRAC, but has no
// files to resolve from. pip (the versions check) and uv (the resolution)
// must both present the credentials to the index, and the release must
// fail naming the index, with the token in no output, error, file in dist/
// or command line.
func TestIntegrationIndexCredentialsReachTheIndexOnly(t *testing.T) {
	t.Parallel() // (see plantCredentials)
	f := testengine.Foundation(t)
	ctx := t.Context()
	// The tools come from the default index (the fake one has none).
	if _, err := pytools.Ensure(ctx, testenv.Reporter(t), ""); err != nil {
		t.Fatal(err)
	}
	const user, token = "robot", "PLANTED-index-9b3f"
	var mu sync.Mutex
	authorised := map[string]int{} // client (pip, uv) → requests with the credentials
	index := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, _, _ := strings.Cut(r.UserAgent(), "/")
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="test index"`)
			http.Error(w, "credentials required", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		authorised[client]++
		mu.Unlock()
		if strings.TrimSuffix(r.URL.Path, "/") == "/simple/lhcbdirac" {
			fmt.Fprint(w, `<!DOCTYPE html><html><body>
<a href="/files/LHCbDIRAC-12.0.20.tar.gz#sha256=`+strings.Repeat("1", 64)+`">LHCbDIRAC-12.0.20.tar.gz</a>
<a href="/files/LHCbDIRAC-12.0.21.tar.gz#sha256=`+strings.Repeat("2", 64)+`">LHCbDIRAC-12.0.21.tar.gz</a>
</body></html>`)
			return
		}
		http.NotFound(w, r)
	}))
	defer index.Close()
	indexURL := strings.Replace(index.URL, "http://", "http://"+user+":"+token+"@", 1) + "/simple/"

	stop, seen := watchCommandLines(token)
	dist := t.TempDir()
	cfg, err := configFor(realVersion, f.Registry, map[string]string{
		"LHCBDIRAC_PIP_INDEX_URL": indexURL, "LHCBDIRAC_DIST": dist, "LHCBDIRAC_REPOSITORY": f.Registry + "/itest-index",
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &pipeline.Release{Config: cfg, S: &pipeline.Session{Client: f.Client, Registry: f.Registry, P: progress.New(&out), Out: &out}}
	err = r.Run(ctx)
	stop()
	t.Logf("%v\n%s", err, out.String())
	if err == nil {
		t.Fatal("the release resolved LHCbDIRAC from an index that has no files")
	}
	mu.Lock()
	if authorised["pip"] == 0 || authorised["uv"] == 0 {
		t.Errorf("requests with the credentials by client: %v; want pip's and uv's", authorised)
	}
	mu.Unlock()
	if !strings.Contains(err.Error(), "lhcbdirac") && !strings.Contains(err.Error(), "LHCbDIRAC") {
		t.Errorf("the error does not say what failed: %v", err)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(out.String(), token) {
		t.Error("the token is in the error or the output")
	}
	for _, cmd := range seen() {
		t.Errorf("the token was on a command line: %s", cmd)
	}
	assertNotInFiles(t, dist, token)
}

// assertNotInFiles fails the test for every file under dir holding secret.
func assertNotInFiles(t *testing.T, dir, secret string) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				t.Errorf("the secret is in %s", p)
			}
		}
		return nil
	})
}

// watchCommandLines samples every command line of the machine until stop
// is called; seen lists those that held secret.
func watchCommandLines(secret string) (stop func(), seen func() []string) {
	done := make(chan struct{})
	var mu sync.Mutex
	var found []string
	known := map[string]bool{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
					cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
					mu.Lock()
					if !known[cmd] {
						known[cmd] = true
						found = append(found, cmd)
					}
					mu.Unlock()
				}
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); wg.Wait() }, func() []string { mu.Lock(); defer mu.Unlock(); return found }
}
