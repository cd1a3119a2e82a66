package settings

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// documented are the variables docs/configuration.md lists for the
// pipeline's own targets (the images' and the daemons' own variables are
// read by their programs, not here).
func documented(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "## ") {
			section = strings.TrimPrefix(line, "## ")
			continue
		}
		if section == "In the images" || section == "Discovery and monitoring" || !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([A-Z_][A-Z0-9_]+)`").FindAllStringSubmatch(first, -1) {
			vars = append(vars, m[1])
		}
	}
	return vars
}

// TestEveryDocumentedVariableIsReadAtTheBoundary: every variable the
// configuration page documents for the targets is read here — the one
// place that reads the environment — so no target can miss one.
func TestEveryDocumentedVariableIsReadAtTheBoundary(t *testing.T) {
	vars := documented(t)
	if len(vars) < 30 {
		t.Fatalf("found %d documented variables: %v", len(vars), vars)
	}
	var read []string
	FromEnv(func(k string) string { read = append(read, k); return "" })
	// Read by the test helpers, at the same boundary (Host.Testdata).
	for _, v := range vars {
		if !slices.Contains(read, v) {
			t.Errorf("%s is documented but never read by settings.FromEnv", v)
		}
	}
}

// TestBadValuesNameTheirVariable: each area's error names the variable
// and the value, and only the areas a target needs stop it.
func TestBadValuesNameTheirVariable(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		area Area
		want string
	}{
		{map[string]string{"MARATHON_TIMEOUT": "soon"}, AreaMarathon, `MARATHON_TIMEOUT="soon"`},
		{map[string]string{"MARATHON_FORCE": "yes"}, AreaMarathon, `MARATHON_FORCE="yes"`},
		{map[string]string{"MARATHON_MAX_INSTANCES": "1e9"}, AreaMarathon, `MARATHON_MAX_INSTANCES="1e9"`},
		{map[string]string{"MARATHON_MAX_INSTANCES": "0"}, AreaMarathon, `MARATHON_MAX_INSTANCES="0"`},
		{map[string]string{"MARATHON_MAX_INSTANCES": "-5"}, AreaMarathon, `MARATHON_MAX_INSTANCES="-5"`},
		{map[string]string{"MARATHON_MAX_INSTANCES": "2000000"}, AreaMarathon, `MARATHON_MAX_INSTANCES="2000000"`},
		{map[string]string{"MARATHON_SETTLE": "-1s"}, AreaMarathon, `MARATHON_SETTLE="-1s"`},
		{map[string]string{"MARATHON_TIMEOUT": "10"}, AreaMarathon, `MARATHON_TIMEOUT="10"`},
		{map[string]string{"MARATHON_TIMEOUT": "10s", "MARATHON_SETTLE": "1m"}, AreaMarathon, "MARATHON_SETTLE=1m0s is longer than MARATHON_TIMEOUT=10s"},
		{map[string]string{"MARATHON_PASSWORD": "x"}, AreaMarathon, "MARATHON_PASSWORD is set without MARATHON_USER"},
		{map[string]string{"LHCBDIRAC_SOURCES": "git"}, AreaRelease, `LHCBDIRAC_SOURCES="git"`},
		{map[string]string{"LHCBDIRAC_ENGINE": "cloud"}, AreaHost, `LHCBDIRAC_ENGINE="cloud"`},
		{map[string]string{"LHCBDIRAC_NO_HOST_SETUP": "yes"}, AreaHost, `LHCBDIRAC_NO_HOST_SETUP="yes"`},
		{map[string]string{"LHCBDIRAC_CI_DRY_RUN": "true"}, AreaCI, `LHCBDIRAC_CI_DRY_RUN="true"`},
	} {
		st := FromEnv(func(k string) string { return tc.env[k] })
		err := st.Need(tc.area)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.env, err, tc.want)
		}
		for _, other := range []Area{AreaRelease, AreaMarathon, AreaCI, AreaHost, AreaEvidence} {
			if other != tc.area && st.Need(other) != nil {
				t.Errorf("%v stops the %s area too: %v", tc.env, other, st.Need(other))
			}
		}
		if strings.Contains(err.Error(), "x") && tc.env["MARATHON_PASSWORD"] == "x" && strings.Contains(err.Error(), `"x"`) {
			t.Errorf("the password's value is in the error: %v", err)
		}
	}
}

func TestCIRegistryFallsBackToGitLabs(t *testing.T) {
	st := FromEnv(func(k string) string {
		return map[string]string{"CI_REGISTRY": "gitlab.example:5050", "CI_REGISTRY_USER": "gitlab-ci-token", "REGISTRY_PASSWORD": "pw", "DOCKER_CONFIG": "/cfg"}[k]
	})
	if l := st.CI.Login; l.Registry != "gitlab.example:5050" || l.User != "gitlab-ci-token" || l.Password != "pw" || st.CI.DockerConfig != "/cfg" {
		t.Fatalf("%+v", st.CI)
	}
}
