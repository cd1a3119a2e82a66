package marathontest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/build"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
)

// The STAND-IN against Marathon's documentation, over plain HTTP: what
// ../shared/reference/marathon-api.md (§n below) and the documented bodies
// say Marathon answers.

const module = "github.com/lhcbdirac/lhcbdirac-pipeline/"

// The stand-in encodes Marathon's rules, not the project's reading of
// them: it imports none of the project's packages but marathon/app (its
// client side, for tests), which imports none itself.
func TestTheStandInImportsNoProjectRules(t *testing.T) {
	for dir, allowed := range map[string][]string{".": {module + "marathon/app"}, "../app": nil} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, module) && !slices.Contains(allowed, imp) {
				t.Errorf("%s imports %s", pkg.ImportPath, imp)
			}
		}
	}
}

type stand struct {
	t   *testing.T
	srv *marathontest.Server
}

func newStand(t *testing.T) *stand {
	srv := marathontest.New()
	t.Cleanup(srv.Close)
	return &stand{t, srv}
}

// call sends a JSON request and decodes the JSON answer.
func (s *stand) call(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out
}

// put is a PUT that must start a deployment; it waits for the deployment
// to end and returns the version answered.
func (s *stand) put(path string, body any) string {
	s.t.Helper()
	status, out := s.call(http.MethodPut, path, body)
	if status != http.StatusOK && status != http.StatusCreated || out["deploymentId"] == "" {
		s.t.Fatalf("PUT %s: %d %v", path, status, out)
	}
	s.settle()
	return out["version"].(string)
}

func (s *stand) settle() {
	s.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(s.srv.Deployments()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.t.Fatalf("deployments still running: %v", s.srv.Deployments())
		}
	}
}

func (s *stand) versions(id string) []string {
	s.t.Helper()
	status, out := s.call(http.MethodGet, "/v2/apps"+id+"/versions", nil)
	if status != http.StatusOK {
		s.t.Fatalf("versions of %s: %d %v", id, status, out)
	}
	var vs []string
	for _, v := range out["versions"].([]any) {
		vs = append(vs, v.(string))
	}
	return vs
}

func (s *stand) taskIDs(id string) []string {
	var ids []string
	for _, t := range s.srv.Definition(id).Tasks {
		ids = append(ids, t.ID)
	}
	slices.Sort(ids)
	return ids
}

func sleepApp(image string, instances int) map[string]any {
	return map[string]any{"id": "/test/sleep", "instances": instances, "cpus": 0.1, "mem": 32,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": image}}}
}

// §1.5 and §1.3: every change, scale and identical PUT is a version, listed
// newest first; an identical PUT restarts nothing; versionInfo tells a
// scale from a configuration change; a version reads as the full
// definition of its time.
func TestVersionsAsMarathonKeepsThem(t *testing.T) {
	s := newStand(t)
	v1 := s.put("/v2/apps/test/sleep", sleepApp("sleep:1", 1))
	tasks := s.taskIDs("/test/sleep")
	v2 := s.put("/v2/apps/test/sleep", sleepApp("sleep:1", 1))
	if v2 == v1 || !slices.Equal(s.taskIDs("/test/sleep"), tasks) {
		t.Fatalf("an identical PUT: version %s after %s, tasks %v after %v", v2, v1, s.taskIDs("/test/sleep"), tasks)
	}
	v3 := s.put("/v2/apps/test/sleep", sleepApp("sleep:1", 2))
	if got := s.versions("/test/sleep"); !slices.Equal(got, []string{v3, v2, v1}) {
		t.Fatalf("versions %v, want newest first %v", got, []string{v3, v2, v1})
	}
	_, app := s.call(http.MethodGet, "/v2/apps/test/sleep", nil)
	vi := app["app"].(map[string]any)["versionInfo"].(map[string]any)
	if app["app"].(map[string]any)["version"] != v3 || vi["lastScalingAt"] != v3 || vi["lastConfigChangeAt"] != v1 {
		t.Errorf("versionInfo %v at version %v; the configuration last changed at %s", vi, app["app"].(map[string]any)["version"], v1)
	}
	v4 := s.put("/v2/apps/test/sleep", sleepApp("sleep:2", 2))
	status, old := s.call(http.MethodGet, "/v2/apps/test/sleep/versions/"+v1, nil)
	if status != http.StatusOK || old["version"] != v1 || old["instances"] != 1.0 || old["killSelection"] != "YOUNGEST_FIRST" || old["upgradeStrategy"] == nil ||
		old["container"].(map[string]any)["docker"].(map[string]any)["image"] != "sleep:1" {
		t.Errorf("version %s reads %d %v", v1, status, old)
	}
	if _, now := s.call(http.MethodGet, "/v2/apps/test/sleep/versions/"+v4, nil); now["versionInfo"].(map[string]any)["lastConfigChangeAt"] != v4 {
		t.Errorf("version %s's versionInfo: %v", v4, now["versionInfo"])
	}
	if status, out := s.call(http.MethodGet, "/v2/apps/test/sleep/versions/2001-01-01T00:00:00.000Z", nil); status != http.StatusNotFound || !strings.Contains(fmt.Sprint(out["message"]), "does not exist") {
		t.Errorf("an unknown version: %d %v", status, out)
	}
	// §1.3: {"version": v} deploys v's definition again, as a new version.
	v5 := s.put("/v2/apps/test/sleep", map[string]any{"version": v1})
	if s.srv.Definition("/test/sleep").Image() != "sleep:1" || v5 == v1 || s.versions("/test/sleep")[0] != v5 {
		t.Errorf("after PUT {version: %s}: %s at %s", v1, s.srv.Definition("/test/sleep").Image(), v5)
	}
	// §1.5: "Versions are dropped when the app is deleted".
	if status, _ := s.call(http.MethodDelete, "/v2/apps/test/sleep", nil); status != http.StatusOK {
		t.Fatalf("DELETE: %d", status)
	}
	s.settle()
	if status, _ := s.call(http.MethodGet, "/v2/apps/test/sleep/versions", nil); status != http.StatusNotFound {
		t.Errorf("the versions of a deleted app: %d", status)
	}
	if status, _ := s.call(http.MethodPut, "/v2/apps/test/sleep", map[string]any{"version": v1}); status != http.StatusNotFound {
		t.Errorf("a rollback of a deleted app: %d", status)
	}
}

// §1.5: "Retention is bounded by the zk_max_versions setting" (50 in
// examples/info.json): the oldest versions go, and cannot be deployed again.
func TestVersionsAreBounded(t *testing.T) {
	s := newStand(t)
	if _, info := s.call(http.MethodGet, "/v2/info", nil); info["zookeeper_config"].(map[string]any)["zk_max_versions"] != float64(marathontest.DefaultMaxVersions) {
		t.Errorf("/v2/info: %v", info["zookeeper_config"])
	}
	s.srv.MaxVersions = 3
	var made []string
	for i := range 5 {
		made = append(made, s.put("/v2/apps/test/sleep", sleepApp(fmt.Sprintf("sleep:%d", i), 1)))
	}
	if got := s.versions("/test/sleep"); !slices.Equal(got, []string{made[4], made[3], made[2]}) {
		t.Fatalf("versions %v of %v", got, made)
	}
	if status, _ := s.call(http.MethodPut, "/v2/apps/test/sleep", map[string]any{"version": made[0]}); status != http.StatusNotFound {
		t.Errorf("a dropped version deployed again: %d", status)
	}
}

// Marathon stores definitions normalized and answers the stored form:
// legacy fields moved (§1.8 "responses only contain canonical fields"),
// service ports 0 chosen (§1.8), defaults filled in (§1.6, §1.7, §1.8,
// examples/app_list.json) — so sending an answer back changes nothing.
func TestDefinitionsAreStoredNormalized(t *testing.T) {
	s := newStand(t)
	legacy := map[string]any{"id": "/test/bridge", "instances": 1, "cpus": 0.1, "mem": 32,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "web:1", "network": "BRIDGE",
			"portMappings": []any{map[string]any{"containerPort": 80, "hostPort": 0, "servicePort": 0, "protocol": "tcp"}}}},
		"healthChecks": []any{map[string]any{"protocol": "MESOS_HTTP"}}}
	s.put("/v2/apps/test/bridge", legacy)
	host := sleepApp("sleep:1", 1)
	host["id"] = "/test/host"
	s.put("/v2/apps/test/host", host)
	_, got := s.call(http.MethodGet, "/v2/apps/test/bridge", nil)
	a := got["app"].(map[string]any)
	c := a["container"].(map[string]any)
	pm, _ := c["portMappings"].([]any)
	if a["networks"].([]any)[0].(map[string]any)["mode"] != "container/bridge" || c["docker"].(map[string]any)["network"] != nil ||
		c["docker"].(map[string]any)["portMappings"] != nil || len(pm) != 1 || pm[0].(map[string]any)["servicePort"] != 10000.0 {
		t.Errorf("the legacy app reads %v", a)
	}
	if hc := a["healthChecks"].([]any)[0].(map[string]any); hc["gracePeriodSeconds"] != 300.0 || hc["intervalSeconds"] != 60.0 || hc["timeoutSeconds"] != 20.0 ||
		hc["maxConsecutiveFailures"] != 3.0 || hc["delaySeconds"] != 15.0 || hc["path"] != "/" || hc["portIndex"] != 0.0 {
		t.Errorf("health check defaults (§1.6): %v", hc)
	}
	if up := a["upgradeStrategy"].(map[string]any); up["minimumHealthCapacity"] != 1.0 || up["maximumOverCapacity"] != 1.0 || a["portDefinitions"] == nil || len(a["portDefinitions"].([]any)) != 0 {
		t.Errorf("upgradeStrategy (§1.7) %v, portDefinitions %v", up, a["portDefinitions"])
	}
	h := s.srv.Definition("/test/host")
	if h.Networks[0].Mode != "host" || h.PortDefinitions == nil || len(*h.PortDefinitions) != 1 || (*h.PortDefinitions)[0].Name != "default" || (*h.PortDefinitions)[0].Port != 10001 ||
		h.Doc["ports"].([]any)[0].(json.Number).String() != "10001" || h.Doc["backoffFactor"].(json.Number).String() != "1.15" {
		t.Errorf("the host app reads %+v %v", h, h.Doc)
	}
	// An answer sent back is the same definition: a new version, no restart.
	tasks := s.taskIDs("/test/bridge")
	v := s.put("/v2/apps/test/bridge?partialUpdate=false", a)
	if !slices.Equal(s.taskIDs("/test/bridge"), tasks) || s.srv.Definition("/test/bridge").VersionInfo.LastConfigChangeAt == v {
		t.Errorf("PUT of the answer restarted the app")
	}
}

// §1.3: 400 for bad JSON, 422 with details for what Marathon's validation
// refuses — constraints the schema (properties.constraints) and Marathon's
// operators refuse, reserved and malformed ids, cmd with args (the
// schema's "not": {"allOf": [cmd, args]}).
func TestValidation(t *testing.T) {
	s := newStand(t)
	req, _ := http.NewRequest(http.MethodPut, s.srv.URL+"/v2/apps/test/x", strings.NewReader("{not json"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad JSON: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	for what, c := range map[string]struct {
		edit func(map[string]any)
		path string
		want string
	}{
		"UNIQUE with a value":   {func(d map[string]any) { d["constraints"] = []any{[]any{"hostname", "UNIQUE", "x"}} }, "/constraints(0)", "UNIQUE does not accept a value"},
		"MAX_PER without int":   {func(d map[string]any) { d["constraints"] = []any{[]any{"rack", "MAX_PER", "two"}} }, "/constraints(0)", "MAX_PER requires an integer value"},
		"an unknown operator":   {func(d map[string]any) { d["constraints"] = []any{[]any{"rack", "NEAR"}} }, "/constraints(0)", "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS"},
		"one field":             {func(d map[string]any) { d["constraints"] = []any{[]any{"rack"}} }, "/constraints(0)", "2 or 3 fields"},
		"a bad regex":           {func(d map[string]any) { d["constraints"] = []any{[]any{"hostname", "LIKE", "("}} }, "/constraints(0)", "not a valid regular expression"},
		"a reserved id":         {func(d map[string]any) { d["id"] = "/test/versions" }, "/id", "reserved keywords"},
		"a segment ending in -": {func(d map[string]any) { d["id"] = "/test/x-" }, "/id", "path id pattern"},
		"cmd and args":          {func(d map[string]any) { d["cmd"], d["args"] = "sleep 1", []any{"sleep"} }, "/", "either contain one of 'cmd' or 'args'"},
	} {
		d := sleepApp("sleep:1", 1)
		c.edit(d)
		status, out := s.call(http.MethodPost, "/v2/apps", d)
		details, _ := json.Marshal(out["details"])
		if status != http.StatusUnprocessableEntity || out["message"] != "Object is not valid" || !strings.Contains(string(details), `"path":"`+c.path+`"`) || !strings.Contains(string(details), c.want) {
			t.Errorf("%s: %d %v", what, status, out)
		}
	}
	// An empty UNIQUE value is no value (examples/app_list.json answers one).
	ok := sleepApp("sleep:1", 1)
	ok["constraints"] = []any{[]any{"hostname", "UNIQUE", ""}, []any{"rack", "GROUP_BY", "3"}, []any{"hostname", "LIKE", "lbvobox.*"}}
	s.put("/v2/apps/test/sleep", ok)
	if got := s.srv.Definition("/test/sleep").Constraints; len(got) != 3 {
		t.Errorf("constraints stored: %v", got)
	}
}
