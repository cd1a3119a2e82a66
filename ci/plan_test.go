package ci

import (
	"slices"
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

func TestDecideFinalPreAndHotfix(t *testing.T) {
	for _, tc := range []struct {
		tag     string
		env     settings.Settings
		kind    Kind
		tags    []string
		deploy  bool
		why     string
		version string
	}{
		{"v9.1", env("MARATHON_URL", "http://marathon:8080"), Final, []string{"v9.1"}, true, "a final release", "v9.1"},
		{"refs/tags/v8r5p3", env("MARATHON_URL", "http://marathon:8080"), Final, []string{"v8r5p3"}, true, "a final release", "v8r5p3"},
		{"v9.1", env(), Final, []string{"v9.1"}, false, "MARATHON_URL is not set", "v9.1"},
		{"v9.2.0-pre3", env("MARATHON_URL", "http://marathon:8080"), Pre, []string{"v9.2.0-pre3", "devel"}, false, "never deployed", "v9.2.0-pre3"},
		{"v9.1.1", env("MARATHON_URL", "http://m", "DIRAC_REPO", "https://git.example/DIRAC.git", "DIRAC_BRANCH", "hotfix/9.1.1"), Final, []string{"v9.1.1"}, false, "LHCBDIRAC_HOTFIX_DEPLOY=1", "v9.1.1"},
		{"v9.1.1", env("MARATHON_URL", "http://m", "LHCB_DIRAC_REPO", "https://git.example/LHCbDIRAC.git", "LHCBDIRAC_HOTFIX_DEPLOY", "1"), Final, []string{"v9.1.1"}, true, "a final release", "v9.1.1"},
	} {
		p, err := Decide(tc.tag, tc.env)
		if err != nil {
			t.Fatalf("%s: %v", tc.tag, err)
		}
		if p.Kind != tc.kind || !slices.Equal(p.Tags, tc.tags) || p.Deploy != tc.deploy || !strings.Contains(p.Why, tc.why) || p.Version.Raw != tc.version {
			t.Errorf("%s: %+v", tc.tag, p)
		}
	}
	p, _ := Decide("v9.1.1", env("DIRAC_REPO", "https://git.example/DIRAC.git", "DIRAC_BRANCH", "fix"))
	if !strings.Contains(p.String(), "hotfix DIRAC_REPO=https://git.example/DIRAC.git DIRAC_BRANCH=fix") {
		t.Errorf("plan line: %s", p)
	}
}

func TestDecideRefusesWhatIsNotARelease(t *testing.T) {
	for _, tc := range []struct {
		tag  string
		env  settings.Settings
		want string
	}{
		{"", env(), "no tag"},
		{"latest", env(), `tag "latest" is not a release version`},
		{"v9.1-rc1", env(), `tag "v9.1-rc1" is not a release version`},
		{"9.1", env(), `tag "9.1"`},
		{"v9.1;reboot", env(), "not a release version"},
		{"v9.1", env("DIRAC_BRANCH", "fix"), "DIRAC_BRANCH=\"fix\" is set without DIRAC_REPO"},
		{"v9.1", env("DIRAC_REPO", "https://git.example/DIRAC.git", "DIRAC_BRANCH", "--upload-pack=x"), "cannot start with '-'"},
	} {
		if _, err := Decide(tc.tag, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.tag, err, tc.want)
		}
	}
}
