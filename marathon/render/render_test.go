package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func mustRender(t *testing.T, servicesPath, env, ver string) []App {
	t.Helper()
	f, err := services.Load(servicesPath)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := r.Render(f, env, ver)
	if err != nil {
		t.Fatal(err)
	}
	return apps
}

func officialSchema(t *testing.T) *Schema {
	t.Helper()
	path := filepath.Join(testenv.Testdata(t), "marathon", "AppDefinition.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("MARATHON SCHEMA MISSING: %v", err)
	}
	s, err := CompileSchema("Marathon's AppDefinition.json", b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedView extracts what the seed's generated apps express, reading both the
// seed's legacy fields and the 1.5+ fields we render, so the comparison holds
// "except where a field was deliberately modernised" (README lists them).
func seedView(t *testing.T, doc map[string]any) map[string]any {
	t.Helper()
	get := func(path ...string) any {
		var cur any = doc
		for _, p := range path {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[p]
		}
		return cur
	}
	pm := get("container", "portMappings")
	if pm == nil {
		pm = get("container", "docker", "portMappings") // seed: inside docker
	}
	mapping := pm.([]any)[0].(map[string]any)
	network := get("container", "docker", "network")
	if network == nil {
		if get("networks").([]any)[0].(map[string]any)["mode"] == "container/bridge" {
			network = "BRIDGE"
		}
	}
	hc := get("healthChecks").([]any)[0].(map[string]any)
	cmd := hc["command"].(map[string]any)["value"].(string)
	labels := get("labels").(map[string]any)
	return map[string]any{
		"id":             strings.TrimPrefix(doc["id"].(string), "/"),
		"cpus":           num(doc["cpus"]),
		"mem":            num(doc["mem"]),
		"disk":           num(doc["disk"]),
		"instances":      num(doc["instances"]),
		"constraints":    doc["constraints"],
		"volumes":        get("container", "volumes"),
		"image":          get("container", "docker", "image"),
		"containerPort":  num(mapping["containerPort"]),
		"hostPort":       num(mapping["hostPort"]),
		"network":        network,
		"privileged":     get("container", "docker", "privileged"),
		"forcePullImage": get("container", "docker", "forcePullImage"),
		"parameters":     get("container", "docker", "parameters"),
		"check":          []any{hc["protocol"], num(hc["gracePeriodSeconds"]), num(hc["intervalSeconds"]), num(hc["timeoutSeconds"]), num(hc["maxConsecutiveFailures"])},
		// the self-ping's argument: <port>/<System>/<Service>
		"checkTarget":     cmd[strings.LastIndex(cmd, " ")+1:],
		"checkEntrypoint": strings.HasPrefix(cmd, "/opt/dirac/dockerEntrypoint.sh "),
		"check_http":      labels["check_http"],
		"check_interval":  labels["check_interval"],
		"system":          labels["system"],
		"args":            doc["args"],
		"upgrade":         []any{num(get("upgradeStrategy", "minimumHealthCapacity")), num(get("upgradeStrategy", "maximumOverCapacity"))},
	}
}

func num(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case float64:
		return x
	}
	return v
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// TestSeedServicesMatchDerivedApps renders the seed's own services file at
// v8r5 and compares each app with what generate-marathon-config produced.
func TestSeedServicesMatchDerivedApps(t *testing.T) {
	td := testenv.Testdata(t)
	apps := mustRender(t, filepath.Join(td, "seeds", "lhcbdirac", "certification_services.json"), "certification", "v8r5")
	derived := filepath.Join(td, "seeds", "derived", "generate-marathon-config_v8r5")
	entries, _ := os.ReadDir(derived)
	if len(apps) != len(entries) || len(apps) != 6 {
		t.Fatalf("rendered %d apps, the seed generated %d", len(apps), len(entries))
	}
	official := officialSchema(t)
	for _, a := range apps {
		want := seedView(t, readJSON(t, filepath.Join(derived, a.FileName())))
		got := seedView(t, a.Doc)
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s: %s = %#v, the seed had %#v", a.FileName(), k, got[k], want[k])
			}
		}
		if err := official.Validate(a.Doc); err != nil {
			t.Errorf("%s: %v", a.FileName(), err)
		}
	}
}

func TestGoldenAndDeterministic(t *testing.T) {
	official := officialSchema(t)
	// Rendering with Marathon's schema as an extra check accepts the same apps.
	withOfficial, err := New("", nil, official)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := services.Load("testdata/services.yaml")
	if _, err := withOfficial.Render(f, "production", "v9.1"); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"certification", "production"} {
		apps := mustRender(t, "testdata/services.yaml", env, "v9.1")
		again := mustRender(t, "testdata/services.yaml", env, "v9.1")
		for i, a := range apps {
			if !bytes.Equal(a.JSON, again[i].JSON) {
				t.Fatalf("%s: two renders differ", a.FileName())
			}
			if err := official.Validate(a.Doc); err != nil {
				t.Errorf("%s/%s: %v", env, a.FileName(), err)
			}
			golden := filepath.Join("testdata", "golden", env, a.FileName())
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				os.WriteFile(golden, a.JSON, 0o644)
				continue
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./marathon/render -update to create)", err)
			}
			if !bytes.Equal(a.JSON, want) {
				t.Errorf("%s differs from %s:\n%s", a.FileName(), golden, a.JSON)
			}
		}
	}
}

func TestBadTemplateAndSchemaErrorsNameTheirSource(t *testing.T) {
	f, err := services.Load("testdata/services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	cases := map[string]struct{ tmpl, want string }{
		"invalid JSON":   {"{\n  \"id\": {{ .ID | toJson }},\n  \"cpus\": ,\n}", "line 3 of the output"},
		"schema rejects": {`{"id": {{ .ID | toJson }}, "cpus": 0.1, "mem": 10, "instances": 1, "container": {"type": "DOCKER", "docker": {"image": "x"}}, "bogus": 1}`, "bogus"},
		"cmd and args":   {`{"id": {{ .ID | toJson }}, "cmd": "x", "args": ["y"], "cpus": 0.1, "mem": 10, "instances": 1, "container": {"type": "DOCKER", "docker": {"image": "x"}}}`, "rejected by"},
		"unknown field":  {`{"id": {{ .Nope }} }`, "Nope"},
		"port range":     {`{"id": {{ .ID | toJson }}, "cpus": 0.1, "mem": 10, "instances": 1, "container": {"type": "DOCKER", "docker": {"image": "x"}, "portMappings": [{"containerPort": 70000}]}}`, "/container/portMappings/0/containerPort"},
	}
	for name, c := range cases {
		path := write(strings.ReplaceAll(name, " ", "_")+".tmpl", c.tmpl)
		r, err := New(path, nil)
		if err == nil {
			_, err = r.Render(f, "certification", "v9.1")
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v should mention %q", name, err, c.want)
			continue
		}
		if name != "unknown field" && !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "/datamanagement/filecatalog") {
			t.Errorf("%s: error should name the template or the app: %v", name, err)
		}
	}
	r, _ := New("", nil)
	if _, err := r.Render(f, "certification", "9.1"); err == nil || !strings.Contains(err.Error(), `"9.1"`) {
		t.Errorf("invalid version: %v", err)
	}
	if _, err := r.Render(f, "staging", "v9.1"); err == nil || !strings.Contains(err.Error(), "staging") {
		t.Errorf("unknown environment: %v", err)
	}
}

// Both schemas refuse the same broken apps; ours is at least as strict.
func TestSchemasAgreeOnBrokenApps(t *testing.T) {
	official := officialSchema(t)
	ours, err := DefaultSchema()
	if err != nil {
		t.Fatal(err)
	}
	apps := mustRender(t, "testdata/services.yaml", "certification", "v9.1")
	base := string(apps[0].JSON)
	for name, mutate := range map[string]func(map[string]any){
		"no id":          func(d map[string]any) { delete(d, "id") },
		"bad id":         func(d map[string]any) { d["id"] = "/Data_Management" },
		"cmd and args":   func(d map[string]any) { d["cmd"] = "sleep 1" },
		"cpus as text":   func(d map[string]any) { d["cpus"] = "0.1" },
		"negative mem":   func(d map[string]any) { d["mem"] = json.Number("-1") },
		"bad constraint": func(d map[string]any) { d["constraints"] = []any{[]any{"hostname", "SOMETIMES"}} },
		"unknown key":    func(d map[string]any) { d["cpu"] = json.Number("1") },
		"bad volume mode": func(d map[string]any) {
			d["container"].(map[string]any)["volumes"].([]any)[0].(map[string]any)["mode"] = "RX"
		},
	} {
		var d map[string]any
		dec := json.NewDecoder(strings.NewReader(base))
		dec.UseNumber()
		dec.Decode(&d)
		mutate(d)
		if official.Validate(d) == nil {
			t.Errorf("%s: Marathon's schema accepts it (test case is wrong)", name)
		}
		if ours.Validate(d) == nil {
			t.Errorf("%s: our schema accepts what Marathon's refuses", name)
		}
	}
}

// One bad service fails the whole render: no app comes back, so nothing can
// be deployed, and the error names the file, the service and the template.
func TestOneBadServiceRendersNothing(t *testing.T) {
	f, err := services.Load("testdata/services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := filepath.Join(t.TempDir(), "app.json.tmpl")
	text := strings.Replace(DefaultTemplate(), `"disk": 0,`, `"disk": {{ if eq .Service "ReqManager" }}-1{{ else }}0{{ end }},`, 1)
	os.WriteFile(tmpl, []byte(text), 0o644)
	r, err := New(tmpl, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := r.Render(f, "certification", "v9.1")
	if apps != nil || err == nil {
		t.Fatalf("got %d apps, err %v", len(apps), err)
	}
	for _, want := range []string{"testdata/services.yaml", "service RequestManagement/ReqManager", "/disk"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "FileCatalog") {
		t.Errorf("the good service is blamed: %v", err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestWriteDirIsAllOrNothing: a directory in the way of the second file
// used to leave the first file and a *.tmp behind.
func TestWriteDirIsAllOrNothing(t *testing.T) {
	apps := mustRender(t, "testdata/services.yaml", "certification", "v9.1")
	if len(apps) < 2 {
		t.Fatal("need two apps")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, apps[1].FileName()), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteDir(apps, dir)
	if err == nil || !strings.Contains(err.Error(), "a directory is in the way") || !strings.Contains(err.Error(), apps[1].FileName()) {
		t.Fatalf("got %v", err)
	}
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{apps[1].FileName(), "README"}) && !reflect.DeepEqual(got, []string{"README", apps[1].FileName()}) {
		t.Fatalf("after a failed write the directory holds %v", got)
	}
	// The way cleared, everything is written, readable by all, and the
	// user's own file stays.
	os.Remove(filepath.Join(dir, apps[1].FileName()))
	if err := WriteDir(apps, dir); err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		st, err := os.Stat(filepath.Join(dir, a.FileName()))
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("%s: %v %v", a.FileName(), st.Mode(), err)
		}
	}
	if len(listDir(t, dir)) != len(apps)+1 {
		t.Fatalf("stray files: %v", listDir(t, dir))
	}
}

// TestReplaceDirHoldsExactlyTheApps: the pipeline's own directory ends up
// with this run's apps only, and stays as it was when the write fails.
func TestReplaceDirHoldsExactlyTheApps(t *testing.T) {
	apps := mustRender(t, "testdata/services.yaml", "certification", "v9.1")
	parent := t.TempDir()
	dir := filepath.Join(parent, "marathon")
	if err := ReplaceDir(apps, dir); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceDir(apps[:1], dir); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{apps[0].FileName()}) {
		t.Fatalf("after replacing with one app: %v", got)
	}
	if got := listDir(t, parent); !reflect.DeepEqual(got, []string{"marathon"}) {
		t.Fatalf("the parent holds %v", got)
	}
	// An app whose file name cannot be written (a '/' in it) fails the
	// write: the old directory stays untouched.
	bad := append([]App{}, apps...)
	bad[1].Service.Service = "no/such/dir"
	if err := ReplaceDir(bad, dir); err == nil {
		t.Fatal("a write that cannot succeed succeeded")
	}
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{apps[0].FileName()}) {
		t.Fatalf("after a failed replace: %v", got)
	}
	if got := listDir(t, parent); !reflect.DeepEqual(got, []string{"marathon"}) {
		t.Fatalf("a failed replace left %v", got)
	}
}

// The registrator's app: rendered with the services when the file has a
// discovery section, valid for Marathon's own schema, run on host
// networking with its /healthz checked, and no credential in it.
func TestRegistratorApp(t *testing.T) {
	f, r, apps := renderProduction(t, `services:
  - {name: DataManagement/FileCatalog, port: 9197}
discovery:
  marathon: http://marathon.example:8080
  etcd: [http://etcd1.example:2379, http://etcd2.example:2379]
  consul: http://localhost:8500
  envFile: /etc/lhcbdirac/registrator.env
  checkAllow: ["http://{host}:{port}/status", https://monitor.example/probe]
`, "v9.1")
	var err error
	if len(apps) != 2 || len(Services(apps)) != 1 || apps[1].Kind != KindRegistrator {
		t.Fatalf("apps %+v", apps)
	}
	reg := apps[1]
	if reg.ID != RegistratorID || reg.FileName() != "lhcbdirac_registrator.json" {
		t.Errorf("id %s, file %s", reg.ID, reg.FileName())
	}
	for _, want := range []string{`"image": "reg.example/lhcb/registrator:v9.1"`, `"ETCD_ENDPOINTS": "http://etcd1.example:2379,http://etcd2.example:2379"`,
		`"MARATHON_URL": "http://marathon.example:8080"`, `"REGISTRATOR_ENV_FILE": "/etc/registrator/env"`, `"hostPath": "/etc/lhcbdirac/registrator.env"`,
		`"mode": "host"`, `"path": "/healthz"`,
		// The registrator lets Consul call the services' pinger, and the allow-list.
		`"REGISTRATOR_PINGER_URL": "http://lbdiracgw:1234"`, `"REGISTRATOR_CHECK_ALLOW": "http://{host}:{port}/status https://monitor.example/probe"`} {
		if !strings.Contains(string(reg.JSON), want) {
			t.Errorf("registrator app lacks %s:\n%s", want, reg.JSON)
		}
	}
	// Read typed, as the dry run shows it: its image and its one instance,
	// though it is no DIRAC service (the dry run printed ":v9.1 ×0").
	if d := reg.Definition(); d.Image() != "reg.example/lhcb/registrator:v9.1" || d.ImageTag() != "v9.1" || d.Instances != 1 || d.ID != RegistratorID {
		t.Errorf("the registrator reads as %s ×%d (%s)", d.Image(), d.Instances, d.ID)
	}
	if d := apps[0].Definition(); d.Image() != "reg.example/lhcb/lhcbdirac:v9.1" || d.Instances != apps[0].Service.Instances || d.Labels["dirac_component"] != "DataManagement/FileCatalog" {
		t.Errorf("the service reads as %s ×%d, labels %v", d.Image(), d.Instances, d.Labels)
	}
	// Without discovery, no registrator; a bad discovery section names its field.
	f.Discovery = nil
	if apps, err = r.Render(f, "production", "v9.1"); err != nil || len(apps) != 1 {
		t.Fatalf("%d apps, %v", len(apps), err)
	}
	_, err = services.Parse("s.yaml", []byte("image: r/l\nenvironments: {p: {diracCfg: /a, gridSecurity: /b}}\nservices: [{name: A/B, port: 1}]\ndiscovery: {marathon: 'http://u:p@m:8080', etcd: [etcd:2379], prefix: x, checkAllow: ['http://gw/%2e%2e/', 'file:///etc']}\n"))
	for _, want := range []string{"s.yaml: discovery.marathon: credentials belong in envFile", `discovery.etcd[0] "etcd:2379": want an http(s) URL`, `discovery.prefix "x"`,
		`discovery.checkAllow[0] "http://gw/%2e%2e/"`, `discovery.checkAllow[1] "file:///etc"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestHTTPSServiceApp renders a Tornado service next to a DIPS one: the
// HTTPS one runs dirac-tornado-service, names its port "https", is
// health-checked with DIRAC's HTTPS ping and asks the pinger for one; the
// DIPS one is what it always was. Both pass Marathon's own schema.
func TestHTTPSServiceApp(t *testing.T) {
	_, _, apps := renderProduction(t, `services:
  - {name: Framework/Notification, port: 9154}
  - {name: Framework/TornadoNotification, port: 10154, protocol: https}
`, "v12.0.21")
	if len(apps) != 2 {
		t.Fatalf("%d apps", len(apps))
	}
	view := func(a App) map[string]any {
		var doc map[string]any
		if err := json.Unmarshal(a.JSON, &doc); err != nil {
			t.Fatal(err)
		}
		c := doc["container"].(map[string]any)
		return map[string]any{
			"args":   doc["args"],
			"port":   c["portMappings"].([]any)[0].(map[string]any)["name"],
			"health": doc["healthChecks"].([]any)[0].(map[string]any)["command"].(map[string]any)["value"],
			"http":   doc["labels"].(map[string]any)["check_http"],
		}
	}
	want := []map[string]any{{
		"args":   []any{"dirac-service", "Framework/Notification"},
		"port":   "dips",
		"health": "/opt/dirac/dockerEntrypoint.sh dirac-self-ping 9154/Framework/Notification",
		"http":   "http://lbdiracgw:1234/ping?host={host}&port={port}&service=Framework/Notification",
	}, {
		"args":   []any{"dirac-tornado-service", "Framework/TornadoNotification"},
		"port":   "https",
		"health": "/opt/dirac/dockerEntrypoint.sh dirac-self-ping -protocol https 10154/Framework/TornadoNotification",
		"http":   "http://lbdiracgw:1234/ping?host={host}&port={port}&service=Framework/TornadoNotification&protocol=https",
	}}
	for i, a := range apps {
		if got := view(a); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("%s:\n got %v\nwant %v", a.ID, got, want[i])
		}
	}
}

// renderProduction renders, for the production environment at version,
// a services file of the given services (and discovery) with the image,
// pinger and environment the app tests share, through a renderer that
// checks Marathon's own schema.
func renderProduction(t *testing.T, rest, version string) (*services.File, *Renderer, []App) {
	t.Helper()
	f, err := services.Parse("services.yaml", []byte(`image: reg.example/lhcb/lhcbdirac
pingerURL: http://lbdiracgw:1234
environments:
  production: {diracCfg: /etc/dirac/p.cfg, gridSecurity: /etc/grid-security, system: prod}
`+rest))
	if err != nil {
		t.Fatal(err)
	}
	r, err := New("", nil, officialSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := r.Render(f, "production", version)
	if err != nil {
		t.Fatal(err)
	}
	return f, r, apps
}
