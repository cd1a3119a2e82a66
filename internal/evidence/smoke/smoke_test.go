package smoke_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/smoke"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func service(name string, passed ...bool) smoke.Service {
	s := smoke.Service{Name: name, App: smoke.App{ID: "/certification/x", SHA256: strings.Repeat("a", 64)}}
	kinds := []string{smoke.CheckCommandHealth, smoke.CheckDIPSPing}
	for i, p := range passed {
		s.Checks = append(s.Checks, smoke.Check{Kind: kinds[i%2], Passed: p, At: t0})
	}
	return s
}

func TestResultIsDerivedFromTheChecks(t *testing.T) {
	p, err := smoke.New("c", t0, t0.Add(time.Minute), []smoke.Service{service("A/B", true, true), service("C/D", true, false), service("E/F")})
	if err != nil {
		t.Fatal(err)
	}
	if p.Result != smoke.Failed || p.Services[0].Result != smoke.Passed || p.Services[1].Result != smoke.Failed || p.Services[2].Result != smoke.Failed {
		t.Fatalf("%+v", p)
	}
	if f := p.Failures(); len(f) != 2 || f[0] != "C/D: dips-ping failed" || f[1] != "E/F: no check ran" {
		t.Fatalf("failures %v", f)
	}
	ok, err := smoke.New("c", t0, t0.Add(time.Minute), []smoke.Service{service("A/B", true, true)})
	if err != nil || ok.Result != smoke.Passed {
		t.Fatalf("%v %+v", err, ok)
	}
}

func TestParseRefusesAPassOverAFailedCheck(t *testing.T) {
	p, _ := smoke.New("c", t0, t0.Add(time.Minute), []smoke.Service{service("A/B", true, false)})
	b, _ := p.Marshal()
	forged := strings.Replace(strings.Replace(string(b), `"result":"failed"`, `"result":"passed"`, -1), `"result": "failed"`, `"result": "passed"`, -1)
	if _, err := smoke.Parse([]byte(forged)); err == nil {
		t.Fatalf("a predicate saying passed over a failed check was accepted:\n%s", forged)
	}
	if _, err := smoke.Parse(b); err != nil {
		t.Fatal(err)
	}
}
