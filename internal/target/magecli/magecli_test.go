package magecli

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type ns struct{}

func (ns) Up(context.Context) error                    { return nil }
func (ns) Build(context.Context, string, string) error { return nil }
func release(context.Context, string) error            { return nil }
func lint(context.Context) error                       { return nil }

func TestCheck(t *testing.T) {
	targets := map[string]any{"release": release, "lint": lint, "engine:up": ns.Up, "base:build": ns.Build}
	for _, ok := range [][]string{{"release", "v9.1"}, {"lint", "release", "v9.1"}, {"Engine:Up"}, {"-v", "release", "v9.1"}, {"-t", "5m", "base:build", "n", "p"}, {"-l"}, {}} {
		if err := Check(ok, targets, false); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for args, want := range map[string]string{
		"release v9.1 extra":  `"extra" after "release v9.1" is not a target`,
		"release":             "release takes 1 argument(s), got 0",
		"base:build onlyname": "base:build takes 2 argument(s), got 1",
		"relase v9.1":         `unknown target "relase"`,
	} {
		err := Check(strings.Fields(args), targets, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", args, err, want)
		}
	}
}

// TestMagefileListsEveryTarget asks mage itself which targets the
// magefile has (they live in internal/target/, imported with
// mage:import): every one, and every alias, must be in magecliTargets,
// so the check knows all of them.
func TestMagefileListsEveryTarget(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	cmd := exec.Command("go", "run", "mage.go", "-l")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mage -l: %v\n%s", err, out)
	}
	want := map[string]bool{}
	inTargets := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Targets:") {
			inTargets = true
			continue
		}
		if f := strings.Fields(line); inTargets && len(f) > 0 && strings.HasPrefix(line, "  ") {
			want[strings.ToLower(strings.TrimSuffix(f[0], "*"))] = true
		}
	}
	if len(want) < 20 {
		t.Fatalf("mage -l listed %d targets:\n%s", len(want), out)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, "magefile.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range g.Specs {
			vs, ok := s.(*ast.ValueSpec)
			if !ok || len(vs.Names) != 1 {
				continue
			}
			for _, e := range vs.Values[0].(*ast.CompositeLit).Elts {
				key := strings.ToLower(strings.Trim(e.(*ast.KeyValueExpr).Key.(*ast.BasicLit).Value, `"`))
				switch vs.Names[0].Name {
				case "Aliases": // mage's aliases are targets too ("lock" for lock:resolve)
					want[key] = true
				case "magecliTargets":
					listed[key] = true
				}
			}
		}
	}
	if len(listed) == 0 {
		t.Fatal("magefile.go has no magecliTargets map")
	}
	for n := range want {
		if !listed[n] {
			t.Errorf("target %s is missing from magecliTargets", n)
		}
	}
	for n := range listed {
		if !want[n] {
			t.Errorf("magecliTargets lists %s, which is no target", n)
		}
	}
}

func TestOptions(t *testing.T) {
	env := map[string]string{}
	set := func(k, v string) error { env[k] = v; return nil }
	opts := map[string]string{"since": "SINCE"}
	out, err := Options([]string{"-v", "metrics:report", "--since", "2h"}, "metrics:report", opts, set)
	if err != nil || strings.Join(out, " ") != "-v metrics:report" || env["SINCE"] != "2h" {
		t.Fatalf("%v %v %v", out, err, env)
	}
	if out, err = Options([]string{"metrics:report", "--since=30m"}, "metrics:report", opts, set); err != nil || len(out) != 1 || env["SINCE"] != "30m" {
		t.Fatalf("%v %v %v", out, err, env)
	}
	if _, err := Options([]string{"metrics:report", "--until", "1h"}, "metrics:report", opts, set); err == nil || !strings.Contains(err.Error(), "unknown option --until (have --since)") {
		t.Errorf("unknown option: %v", err)
	}
	if _, err := Options([]string{"metrics:report", "--since"}, "metrics:report", opts, set); err == nil || !strings.Contains(err.Error(), "--since needs a value") {
		t.Errorf("no value: %v", err)
	}
	// Other targets' words are left alone.
	if out, _ := Options([]string{"release", "--x"}, "metrics:report", opts, set); strings.Join(out, " ") != "release --x" {
		t.Errorf("%v", out)
	}
}
