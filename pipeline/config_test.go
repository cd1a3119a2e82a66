package pipeline

import (
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

func env(kv ...string) settings.Settings {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return settings.FromEnv(func(k string) string { return m[k] })
}

func TestConfigDefaultsAreTheRealIndex(t *testing.T) {
	c, err := ConfigFor("v9.1", env(), "127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	if c.Fixture() || c.Sources != settings.SourcesIndex || c.Environment != "certification" || c.ImageRepo("pinger") != "127.0.0.1:5000/lhcbdirac-pipeline/pinger" || c.Services.Image != "127.0.0.1:5000/lhcbdirac-pipeline/lhcbdirac" {
		t.Fatalf("%+v", c)
	}
	if len(c.Services.Services) != 6 || c.Dist != "dist/v9.1" {
		t.Fatalf("embedded services: %d, dist %s", len(c.Services.Services), c.Dist)
	}
}

func TestConfigBadInputNamesValueAndFix(t *testing.T) {
	for _, tc := range []struct {
		ver  string
		env  settings.Settings
		want string
	}{
		{"9.1", env(), `version "9.1": want vX.Y[.Z]`},
		{"v9.1; rm -rf /", env(), "want vX.Y"},
		{"v9.1", env("DIRAC_BRANCH", "rel-v9r1"), `DIRAC_BRANCH="rel-v9r1" is set without DIRAC_REPO`},
		{"v9." + strings.Repeat("1", 140), env(), "at most 9 digits"},
		{"v9.1", env("DIRAC_REPO", "fd::3"), `DIRAC_REPO="fd::3": git remote helpers`},
		{"v9.1", env("LHCB_DIRAC_REPO", "https://git.example/LHCbDIRAC.git", "LHCB_DIRAC_BRANCH", "bad branch"), `LHCB_DIRAC_BRANCH="bad branch" is not a valid branch name`},
		{"v9.1", env("LHCBDIRAC_BASE_LHCBDIRAC", "debian:bookworm"), `LHCBDIRAC_BASE_LHCBDIRAC="debian:bookworm": pin the base by digest`},
		{"v9.1", env("LHCBDIRAC_SOURCES", "git"), `LHCBDIRAC_SOURCES="git": want index (the real releases, the default) or fixture`},
		{"v9.1", env("LHCBDIRAC_SOURCES", "fixture", "LHCBDIRAC_LOCK", "/x.lock"), "LHCBDIRAC_LOCK is set, but LHCBDIRAC_SOURCES=fixture installs the FIXTURE"},
		{"v9.1", env("LHCBDIRAC_PIP_INDEX_URL", "pypi.example/simple"), `LHCBDIRAC_PIP_INDEX_URL="pypi.example/simple": want an http(s) URL`},
		{"v9.1", env("LHCBDIRAC_ENVIRONMENT", "prod"), `LHCBDIRAC_ENVIRONMENT="prod" is not an environment of pipeline/services.yaml (embedded) (have certification, production)`},
		{"v9.1", env("LHCBDIRAC_SERVICES", "/nonexistent/services.yaml"), "/nonexistent/services.yaml"},
	} {
		_, err := ConfigFor(tc.ver, tc.env, "127.0.0.1:5000")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.ver, err, tc.want)
		}
	}
	c, err := ConfigFor("v9.1", env(), "127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WithOnly("DataManagement/NoSuch"); err == nil || !strings.Contains(err.Error(), `service "DataManagement/NoSuch" is not in pipeline/services.yaml (embedded) (have DataManagement/DataIntegrity,`) {
		t.Fatal(err)
	}
	if _, err := c.WithOnly(""); err == nil || !strings.Contains(err.Error(), "no service named: give System/Service, one of DataManagement/DataIntegrity,") {
		t.Fatalf("testService '': %v", err)
	}
	if c2, err := c.WithOnly("DataManagement/FileCatalog"); err != nil || c2.Only != "DataManagement/FileCatalog" {
		t.Fatal(c2.Only, err)
	}
}

// TestMarathonSettingsReachTheReleaseAndMarathonTargets: the release's
// render and marathon:render/plan/deploy read the same settings — the
// schema and the template a release manager sets are honoured by both (the
// release once ignored LHCBDIRAC_MARATHON_SCHEMA).
func TestMarathonSettingsReachTheReleaseAndMarathonTargets(t *testing.T) {
	for _, v := range []struct{ name, want string }{
		{"LHCBDIRAC_MARATHON_SCHEMA", "/nonexistent/AppDefinition.json"},
		{"LHCBDIRAC_MARATHON_TEMPLATE", "/nonexistent/app.json.tmpl"},
	} {
		st := env(v.name, v.want)
		c, err := ConfigFor("v9.1", st, "127.0.0.1:5000")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := renderApps(c, nil); err == nil || !strings.Contains(err.Error(), v.want) {
			t.Errorf("release with %s: %v", v.name, err)
		}
		mc, err := marathonConfig(st, "services.yaml", "certification", "v9.1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := renderApps(mc, nil); err == nil || !strings.Contains(err.Error(), v.want) {
			t.Errorf("marathon:* with %s: %v", v.name, err)
		}
	}
	// Unset, both render the same apps.
	st := env()
	c, _ := ConfigFor("v9.1", st, "127.0.0.1:5000")
	rel, err := renderApps(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := marathonConfig(st, "services.yaml", "certification", "v9.1")
	if err != nil {
		t.Fatal(err)
	}
	mar, err := renderApps(mc, nil)
	if err != nil || len(mar) != len(rel) || string(mar[0].JSON) != string(rel[0].JSON) {
		t.Fatalf("%d apps from marathon:render, %d from the release: %v", len(mar), len(rel), err)
	}
}
