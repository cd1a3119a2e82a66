package services

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

func TestSeedJSONIsAcceptedAsIs(t *testing.T) {
	f, err := Load(filepath.Join(testenv.Testdata(t), "seeds", "lhcbdirac", "certification_services.json"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := f.Resolve("certification")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Resolved{}
	for _, r := range rs {
		got[r.Name] = r
	}
	if len(got) != 6 {
		t.Fatalf("%d services, want 6", len(got))
	}
	fc := got["DataManagement/FileCatalog"]
	if fc.Port != 9197 || fc.Instances != 2 || fc.CPUs != 0.1 || fc.Mem != 200 || fc.DiracCfg != SeedDiracCfg {
		t.Fatalf("FileCatalog resolved to %+v", fc)
	}
	if r := got["RequestManagement/ReqProxy"]; r.Port != 9161 || r.Instances != 1 {
		t.Fatalf("ReqProxy resolved to %+v", r)
	}
}

func TestSettingsMergeFromDefaultsToServiceEnvironment(t *testing.T) {
	f, err := Parse("s.yaml", []byte(`
image: r/lhcbdirac
defaults: {mem: 300, env: {A: "1", B: "1"}}
environments:
  production: {diracCfg: /p.cfg, gridSecurity: /gs, instances: 3, env: {B: "2"}}
  certification: {diracCfg: /c.cfg, gridSecurity: /gs}
services:
  - {name: Sys/Svc, port: 9100, env: {C: "3"}, environments: {production: {instances: 5, mem: 900}}}
  - {name: Sys/Other, port: 9101}
`))
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := f.Resolve("production")
	if prod[0].Instances != 5 || prod[0].Mem != 900 || prod[0].Env["A"] != "1" || prod[0].Env["B"] != "2" || prod[0].Env["C"] != "3" {
		t.Fatalf("production Sys/Svc = %+v", prod[0])
	}
	if prod[1].Instances != 3 || prod[1].Mem != 300 || prod[1].CPUs != 0.1 {
		t.Fatalf("production Sys/Other = %+v", prod[1])
	}
	cert, _ := f.Resolve("certification")
	if cert[0].Instances != 1 || cert[0].DiracCfg != "/c.cfg" || *cert[0].HealthCheck.GracePeriodSeconds != 300 {
		t.Fatalf("certification Sys/Svc = %+v", cert[0])
	}
}

func TestBadInputNamesFileAndLine(t *testing.T) {
	head := "image: r/lhcbdirac\nenvironments:\n  certification: {diracCfg: /c.cfg, gridSecurity: /gs}\nservices:\n"
	for name, c := range map[string]struct{ body, want string }{
		"unknown key":    {head + "  - {name: A/B, port: 9100, cpu: 1}\n", "s.yaml: line 5: field cpu not found"},
		"duplicate":      {head + "  - {name: A/B, port: 9100}\n  - {name: a/b, port: 9101}\n", "s.yaml:6: services[1] (a/b): duplicate service"},
		"duplicate port": {head + "  - {name: A/B, port: 9100}\n  - {name: A/C, port: 9100}\n", "port 9100: already used by A/B"},
		"port range":     {head + "  - {name: A/B, port: 70000}\n", "s.yaml:5: services[0] (A/B): port 70000: out of range"},
		"zero cpus":      {head + "  - {name: A/B, port: 9100, cpus: 0}\n", "cpus 0: must be positive"},
		"negative mem":   {head + "  - {name: A/B, port: 9100, mem: -5}\n", "mem -5: must be positive"},
		"zero instances": {head + "  - {name: A/B, port: 9100, instances: 0}\n", "instances 0: must be positive"},
		"bad name":       {head + "  - {name: FileCatalog, port: 9100}\n", `name "FileCatalog": want System/Service`},
		"unknown env":    {head + "  - {name: A/B, port: 9100, environments: {staging: {}}}\n", "environments.staging: no such environment"},
		"tagged image":   {"image: r/lhcbdirac:v1\n" + head[len("image: r/lhcbdirac\n"):] + "  - {name: A/B, port: 9100}\n", "without tag"},
		"relative cfg":   {"image: r/x\nenvironments:\n  c: {diracCfg: dirac.cfg, gridSecurity: /gs}\nservices:\n  - {name: A/B, port: 9100}\n", "environments.c.diracCfg"},
		"bad type":       {head + "  - {name: A/B, port: nine}\n", "line 5"},
		"empty":          {head, "services: the list is empty"},
	} {
		_, err := Parse("s.yaml", []byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, c.want)
		}
	}
	for name, c := range map[string]struct{ body, want string }{
		"seed unknown key": {`{"A": {"B": {"port": "9100", "cpus": 1}}}`, `A.B: json: unknown field "cpus"`},
		"seed no port":     {`{"A": {"B": {"mem": 100}}}`, "A.B.port: missing"},
		"seed bad port":    {`{"A": {"B": {"port": "x"}}}`, "A.B.port"},
	} {
		_, err := Parse("seed.json", []byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "seed.json") {
			t.Errorf("%s: error %v, want it to contain %q and the file", name, err, c.want)
		}
	}
}

// TestMalformedFilesAreNamedRight: a second document was silently ignored,
// a null entry shifted every later error's line and index, and an empty
// file said "EOF".
func TestMalformedFilesAreNamedRight(t *testing.T) {
	const head = "image: r/lhcbdirac\nenvironments:\n  c: {diracCfg: /c.cfg, gridSecurity: /gs}\nservices:\n"
	for _, tc := range []struct{ body, want string }{
		{"", "s.yaml: the file has no services (it is empty or holds only comments)"},
		{"# only a comment\n\n", "s.yaml: the file has no services"},
		{"---\n", "s.yaml: the file has no services"},
		{head + "  - {name: Sys/A, port: 9100}\n---\nbogus: [1\n", "s.yaml: "},
		{head + "  - {name: Sys/A, port: 9100}\n---\nservices: []\n", "s.yaml:6: a second YAML document"},
		{head + "  - {name: Sys/A, port: 9100}\n  -\n  - {name: Sys/B, port: 0}\n", "s.yaml:6: services[1] is empty"},
		{head + "  - {name: Sys/A, port: 9100}\n  - {name: Sys/B, port: 0}\n", "s.yaml:6: services[1] (Sys/B): port 0"},
	} {
		_, err := Parse("s.yaml", []byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.body, err, tc.want)
		}
	}
}

// TestWhatMarathonRefusesIsRefusedHere: constraints and app ids Marathon
// answers 422 for (SchedulingValidation, PathId) are refused with the
// file and line of the service; and a constraint given twice, which
// Marathon's set would swallow.
func TestWhatMarathonRefusesIsRefusedHere(t *testing.T) {
	head := "image: r/lhcbdirac\nenvironments:\n  certification: {diracCfg: /c.cfg, gridSecurity: /gs}\nservices:\n"
	for c, want := range map[string]string{
		`[[hostname, UNIQUE, x]]`:                  "UNIQUE does not accept a value",
		`[[hostname, MAX_PER]]`:                    "MAX_PER requires an integer value",
		`[[hostname, MAX_PER, two]]`:               "MAX_PER requires an integer value",
		`[[hostname, GROUP_BY, two]]`:              "GROUP BY must define an integer value",
		`[[hostname, GROUP_BY, "9999999999"]]`:     "GROUP BY must define an integer value",
		`[[hostname, LIKE]]`:                       "LIKE and UNLIKE require a non-empty",
		`[[hostname, UNLIKE, "a(b"]]`:              "is not a valid regular expression",
		`[[rack, IS, "a b"]]`:                      "IS only supports Mesos text and float values",
		`[[rack, IS, "[1-2]"]]`:                    "IS only supports Mesos text and float values",
		`[[hostname, NEAR, x]]`:                    "operator must be one of the following",
		`[[hostname]]`:                             "2 or 3 fields",
		`[["", UNIQUE]]`:                           "missing field",
		`[[hostname, UNIQUE], [hostname, UNIQUE]]`: "is given twice",
	} {
		body := head + "  - {name: A/B, port: 9100, constraints: " + c + "}\n"
		_, err := Parse("s.yaml", []byte(body))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "s.yaml:5: services[0] (A/B)") {
			t.Errorf("%s: error %v, want %q at s.yaml:5", c, err, want)
		}
	}
	for _, ok := range []string{`[[hostname, CLUSTER]]`, `[[hostname, CLUSTER, a.b]]`, `[[hostname, GROUP_BY]]`, `[[hostname, GROUP_BY, "3"]]`,
		`[[hostname, MAX_PER, "2"]]`, `[[hostname, LIKE, "lbvobox[0-9]+"]]`, `[[rack, IS, "rack-1.a/b_c"]]`, `[[hostname, unique]]`} {
		if _, err := Parse("s.yaml", []byte(head+"  - {name: A/B, port: 9100, constraints: "+ok+"}\n")); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, name := range []string{"Sys/restart", "Sys/Tasks", "Sys/versions"} {
		_, err := Parse("s.yaml", []byte(head+"  - {name: "+name+", port: 9100}\n"))
		if err == nil || !strings.Contains(err.Error(), "a keyword Marathon reserves") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
