package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

func testdata(t *testing.T) string { return filepath.Join(testenv.Testdata(t), "marathon") }

// Image references: tag after the last slash only (a registry port is no
// tag), a digest after '@', either or both.
func TestImageReferences(t *testing.T) {
	for ref, want := range map[string]ImageRef{
		"repo":                                 {Repo: "repo"},
		"repo:v1":                              {Repo: "repo", Tag: "v1"},
		"host:5000/lhcb/repo":                  {Repo: "host:5000/lhcb/repo"},
		"host:5000/lhcb/repo:v12.0.21":         {Repo: "host:5000/lhcb/repo", Tag: "v12.0.21"},
		"repo@sha256:ab12":                     {Repo: "repo", Digest: "sha256:ab12"},
		"host:5000/repo:v1@sha256:ab12":        {Repo: "host:5000/repo", Tag: "v1", Digest: "sha256:ab12"},
		"gitlab-registry.cern.ch/a/b:pinger_1": {Repo: "gitlab-registry.cern.ch/a/b", Tag: "pinger_1"},
	} {
		got := ParseImage(ref)
		if got != want || got.String() != ref {
			t.Errorf("ParseImage(%q) = %+v (%q), want %+v", ref, got, got.String(), want)
		}
		d := Definition{Container: &Container{Docker: &Docker{Image: ref}}}
		if d.Image() != ref || d.ImageRepo() != want.Repo || d.ImageTag() != want.Tag || d.ImageDigest() != want.Digest {
			t.Errorf("%q: repo %q tag %q digest %q", ref, d.ImageRepo(), d.ImageTag(), d.ImageDigest())
		}
	}
	if got := ParseImage("host:5000/repo:v1@sha256:ab12").WithTag("v2").String(); got != "host:5000/repo:v2" {
		t.Errorf("retagged: %s", got)
	}
	if (Definition{}).Image() != "" {
		t.Error("an app without a container has an image")
	}
}

// Marathon's documented answers and request bodies read as they are: the
// kitchen-sink app (legacy fields, secrets in env), the app list, an app
// with its tasks; every system-test app of Marathon's.
func TestMarathonsDocumentedAppsParse(t *testing.T) {
	dir := testdata(t)
	b, err := os.ReadFile(filepath.Join(dir, "examples", "app.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "/foo" || a.Instances != 2 || a.Image() != "mesosphere:marathon/latest" || a.Env["XPS1"].Value != "Test" ||
		a.Env["PASSWORD"].Secret != "/db/password" || a.Env["PASSWORD"].Value != "" || a.Labels["owner"] != "zeus" ||
		len(a.Constraints) != 1 || a.Constraints[0][1] != "LIKE" || len(a.HealthChecks) != 1 || *a.HealthChecks[0].PortIndex != 0 ||
		a.Container.Docker.PortMappings[0].ContainerPort != 80 || a.DockerLabels()["name"] != "" || a.UpgradeStrategy.MinimumHealthCapacity != 1 {
		t.Errorf("examples/app.json reads as %+v", a)
	}
	if a.Doc["ipAddress"] == nil || a.Doc["cpus"].(json.Number).String() != "0.1" {
		t.Errorf("the document is not kept as sent: %v", a.Doc)
	}

	b, err = os.ReadFile(filepath.Join(dir, "examples", "app_list.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Apps []json.RawMessage }
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	l, err := Parse(list.Apps[0])
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != "2015-09-25T15:13:48.343Z" || l.VersionInfo.LastConfigChangeAt != "2015-09-25T15:13:48.343Z" || l.Cmd == nil || *l.Cmd != "env && sleep 60" ||
		l.Args != nil || l.Container != nil || len(l.Deployments) != 1 || l.Tasks != nil || l.TasksRunning != 0 {
		t.Errorf("examples/app_list.json reads as %+v", l)
	}

	apps, _ := filepath.Glob(filepath.Join(dir, "system-test-apps", "*.json"))
	if len(apps) == 0 {
		t.Fatal("no system-test apps")
	}
	for _, p := range apps {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(b); err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}
}

// Absent fields read as Marathon takes them: instances 1, no port
// definitions (nil, not none), health check numbers unset.
func TestAbsentFields(t *testing.T) {
	a, err := Parse([]byte(`{"id": "/a", "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}, "maxConsecutiveFailures": 0}]}`))
	if err != nil {
		t.Fatal(err)
	}
	h := a.HealthChecks[0]
	if a.Instances != 1 || a.PortDefinitions != nil || h.GracePeriodSeconds != nil || h.MaxConsecutiveFailures == nil || *h.MaxConsecutiveFailures != 0 || h.Command.Value != "true" {
		t.Errorf("read as %+v, %+v", a, h)
	}
	b, err := Parse([]byte(`{"id": "/b", "instances": 0, "portDefinitions": []}`))
	if err != nil || b.Instances != 0 || b.PortDefinitions == nil || len(*b.PortDefinitions) != 0 {
		t.Errorf("read as %+v %v", b, err)
	}
}

// A bad definition is refused naming the app and the field, and never
// quoting an env value (which could be a credential put there by mistake).
func TestBadDefinitionsNameTheField(t *testing.T) {
	for doc, want := range map[string]string{
		`{"id": "/a", "instances": "two"}`:                                             "app /a: field instances",
		`{"id": "/a", "container": {"docker": {"portMappings": [{"hostPort": "x"}]}}}`: "container.docker.portMappings.hostPort",
		`{"id": "/a", "env": {"DB_PASSWORD": 12345678}}`:                               "app /a: field env",
		`[1, 2]`:  "app definition",
		`null`:    "not a JSON object",
		`{"id": `: "app definition",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "12345678") {
			t.Errorf("%s: %v, want an error with %q", doc, err, want)
		}
	}
}

// The image of a partial update: the container as the document holds it,
// untyped fields too, with the image alone changed, the document itself
// left as it was.
func TestContainerWithImage(t *testing.T) {
	a, err := Parse([]byte(`{"id": "/a", "container": {"type": "DOCKER", "volumes": [], "docker": {"image": "r:1", "pullConfig": {"secret": "s"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.ContainerWithImage("r:2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	if string(b) != `{"docker":{"image":"r:2","pullConfig":{"secret":"s"}},"type":"DOCKER","volumes":[]}` || a.Image() != "r:1" || a.Doc["container"].(map[string]any)["docker"].(map[string]any)["image"] != "r:1" {
		t.Errorf("%s; the app now %s", b, a.Image())
	}
	if _, err := (&Definition{ID: "/b", Doc: map[string]any{}}).ContainerWithImage("x"); err == nil || !strings.Contains(err.Error(), "app /b: no container") {
		t.Errorf("no container: %v", err)
	}
}

// A health check's defaults are Marathon's (reference §1.6); what it sets,
// a 0 included, stays.
func TestHealthCheckDefaults(t *testing.T) {
	zero := 0
	h := HealthCheck{Protocol: "MESOS_HTTP", MaxConsecutiveFailures: &zero}.WithDefaults()
	if h.Path != "/" || *h.GracePeriodSeconds != 300 || *h.IntervalSeconds != 60 || *h.TimeoutSeconds != 20 || *h.MaxConsecutiveFailures != 0 || *h.DelaySeconds != 15 || *h.PortIndex != 0 {
		t.Errorf("%+v", h)
	}
	c := HealthCheck{Command: &Command{Value: "true"}, Protocol: "COMMAND"}.WithDefaults()
	if c.Path != "" || c.PortIndex != nil || *c.MaxConsecutiveFailures != 3 {
		t.Errorf("%+v", c)
	}
	if d := (HealthCheck{}).WithDefaults(); d.Protocol != "HTTP" || d.Path != "/" {
		t.Errorf("%+v", d)
	}
}
