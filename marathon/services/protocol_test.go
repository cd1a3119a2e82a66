package services

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestProtocolAndCannotRun: the two optional fields of a service (issue
// 23's full list): absent, a service is DIPS and runnable, as every file
// written before them says; given, they reach Resolved; bad values are
// refused with the file, line and service.
func TestProtocolAndCannotRun(t *testing.T) {
	head := "image: r/lhcbdirac\nenvironments:\n  certification: {diracCfg: /c.cfg, gridSecurity: /gs}\nservices:\n"
	f, err := Parse("s.yaml", []byte(head+
		"  - {name: A/Old, port: 9100}\n"+
		"  - {name: A/TornadoNew, port: 10100, protocol: https}\n"+
		"  - {name: A/Far, port: 9101, protocol: dips, cannotRun: 'cannot run here: an Oracle server'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := f.Resolve("certification")
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Protocol != ProtocolDIPS || rs[0].CannotRun != "" {
		t.Errorf("A/Old resolved to protocol %q cannotRun %q, want dips and runnable", rs[0].Protocol, rs[0].CannotRun)
	}
	if rs[1].Protocol != ProtocolHTTPS {
		t.Errorf("A/TornadoNew resolved to protocol %q, want https", rs[1].Protocol)
	}
	if rs[2].Protocol != ProtocolDIPS || rs[2].CannotRun != "cannot run here: an Oracle server" {
		t.Errorf("A/Far resolved to %+v", rs[2])
	}
	for body, want := range map[string]string{
		"  - {name: A/B, port: 9100, protocol: http}\n":                        `s.yaml:5: services[0] (A/B): protocol "http": want dips (the default) or https`,
		"  - {name: A/B, port: 9100, protocol: HTTPS}\n":                       `protocol "HTTPS"`,
		"  - {name: A/B, port: 9100, cannotRun: Oracle}\n":                     `s.yaml:5: services[0] (A/B): cannotRun "Oracle": say what is missing as "cannot run here: "`,
		"  - {name: A/B, port: 9100, cannotRun: ' cannot run here: x'}\n":      "cannotRun: one line without leading or trailing space",
		"  - {name: A/B, port: 9100, cannotRun: \"cannot run here: a\\nb\"}\n": "cannotRun: one line",
	} {
		_, err := Parse("s.yaml", []byte(head+body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
}

// TestWrittenFileReadsBack: a File marshalled with yaml.v3 (as the
// catalog's services:all writes one) leaves unset settings out and parses
// to the same services.
func TestWrittenFileReadsBack(t *testing.T) {
	two := 2
	in := &File{Image: "r/lhcbdirac", Environments: map[string]Environment{"certification": {DiracCfg: "/c.cfg", GridSecurity: "/gs"}},
		Services: []Service{{Name: "A/B", Port: 9100, Settings: Settings{Instances: &two}}, {Name: "A/TornadoB", Port: 10100, Protocol: ProtocolHTTPS, CannotRun: "cannot run here: x"}}}
	b, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"null", "cpus", "pingerURL", "defaults", "discovery", "environments: {}"} {
		if strings.Contains(string(b), absent) {
			t.Errorf("marshalled file holds %q:\n%s", absent, b)
		}
	}
	out, err := Parse("w.yaml", b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if len(out.Services) != 2 || *out.Services[0].Instances != 2 || out.Services[1].Protocol != ProtocolHTTPS || out.Services[1].CannotRun != "cannot run here: x" {
		t.Fatalf("read back %+v", out.Services)
	}
}
