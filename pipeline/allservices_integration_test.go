//go:build integration

package pipeline_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
	"github.com/lhcbdirac/lhcbdirac-pipeline/pipeline"
)

// allServicesGolden is services:all's file for 12.0.21.
var allServicesGolden = filepath.Join("..", "images", "lhcbdirac", "catalog", "testdata", "v12.0.21.services.yaml")

// allServicesFile is the services file services:all writes for 12.0.21
// (the catalog's golden), cut to its first n runnable services, DIPS and
// HTTPS alike (LHCBDIRAC_ALLSVC_N; 0 or unset: all), the cannot-run ones
// and the Gateway (which no ping shows healthy) kept.
func allServicesFile(t *testing.T) (string, int) {
	t.Helper()
	n, _ := strconv.Atoi(settings.Read("LHCBDIRAC_ALLSVC_N"))
	f, err := services.Load(allServicesGolden)
	if err != nil {
		t.Fatal(err)
	}
	var keep []services.Service
	runnable := 0
	for _, s := range f.Services {
		if s.CannotRun != "" || s.Name == "Framework/Gateway" {
			keep = append(keep, s)
			continue
		}
		if n <= 0 || runnable < n {
			keep = append(keep, s)
			runnable++
		}
	}
	f.Services = keep
	y, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "services.yaml")
	if err := os.WriteFile(p, y, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, n
}

// TestIntegrationReleaseAllServicesRealLHCbDIRAC is the release of the
// real 12.0.21 with every service it ships (services:all's file): the
// smoke kit comes from the catalog of the image under test, every
// runnable service is started for real as Marathon would and pinged, the
// others are "cannot run here" results. It logs the smoke stage's time
// and the engine's peak memory. Then services:all, run against the image
// the release pushed, writes what the catalog's golden says.
func TestIntegrationReleaseAllServicesRealLHCbDIRAC(t *testing.T) {
	t.Parallel() // (see plantCredentials)
	f := testengine.Foundation(t)
	ctx := t.Context()
	dist := t.TempDir()
	file, n := allServicesFile(t)
	repo := f.Registry + "/itest-allsvc-" + strconv.Itoa(n) + "-" + strconv.FormatInt(time.Now().Unix(), 36)
	cfg, err := configFor(realVersion, f.Registry, map[string]string{"LHCBDIRAC_REPOSITORY": repo, "LHCBDIRAC_DIST": dist, "LHCBDIRAC_SERVICES": file})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &pipeline.Release{Config: cfg, S: &pipeline.Session{Client: f.Client, Registry: f.Registry, P: testenv.Reporter(t), Out: &out}}
	peak := engine.MemoryPeak(ctx, 2*time.Second)
	err = r.Run(ctx)
	t.Log(out.String())
	for _, st := range r.Stages {
		t.Logf("stage %s: %s", st.Name, st.Took.Round(time.Second))
	}
	t.Logf("engine peak memory during the release: %.0f MiB", peak())
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	passed, httpsPassed, cannot := 0, 0, 0
	for _, s := range r.Smoked.Services() {
		switch {
		case s.CannotRun != "":
			cannot++
			if !strings.HasPrefix(s.CannotRun, services.CannotRunPrefix) {
				t.Errorf("%s: %q", s.Service, s.CannotRun)
			}
		case s.Passed():
			passed++
			t.Logf("smoke %s (%s): %s", s.Service, s.App.Service.Protocol, s.Took.Round(100*time.Millisecond))
			if s.App.Service.Protocol == services.ProtocolHTTPS {
				// A Tornado service is vouched for by DIRAC's HTTPS ping,
				// not a DIPS one.
				httpsPassed++
				if s.Output(images.CheckHTTPSPing) == "" {
					t.Errorf("%s passed without an HTTPS ping: %+v", s.Service, s.Checks)
				}
			}
		default:
			t.Errorf("%s: %v", s.Service, s.Err)
		}
	}
	t.Logf("%d services passed (%d over HTTPS), %d cannot run here", passed, httpsPassed, cannot)
	if n == 0 && httpsPassed == 0 {
		t.Error("no HTTPS service passed: the list holds 21 that can run")
	}
	if len(r.Smoked.Services()) != len(cfg.Services.Services) {
		t.Errorf("%d results for %d services", len(r.Smoked.Services()), len(cfg.Services.Services))
	}
	for _, p := range []string{"release-notes.md", "report.html", "summary.txt"} {
		b, err := os.ReadFile(filepath.Join(cfg.Dist, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if !strings.Contains(string(b), "cannot run here") {
			t.Errorf("%s does not say which services cannot run here", p)
		}
	}
	if n == 0 {
		// services:all on the image the release pushed: the golden file.
		path, _, err := pipeline.WriteServicesAll(context.Background(), cfg, pipeline.ReleaseImageCatalog)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		want, _ := os.ReadFile(allServicesGolden)
		if !bytes.Equal(got, want) {
			t.Errorf("services:all on %s/lhcbdirac:%s differs from %s", repo, realVersion, allServicesGolden)
		}
	}
}
