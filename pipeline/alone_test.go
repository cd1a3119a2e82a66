package pipeline

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The tests that set the process's environment (t.Setenv, or through
// plantCredentials) are the ones the test command runs in a process of
// their own; any other test of the package may run beside them. A test
// that sets the environment under another name would run beside the
// others, or panic beside its parallel ones.
func TestTestsThatSetTheEnvironmentRunAlone(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	alone := regexp.MustCompile(aloneTests)
	fset := token.NewFileSet()
	var found []string
	for _, f := range files {
		// The integration tests are behind a build tag; the parser reads
		// them all.
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") || fn.Body == nil {
				continue
			}
			sets := false
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				c, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				switch x := c.Fun.(type) {
				case *ast.SelectorExpr:
					sets = sets || x.Sel.Name == "Setenv"
				case *ast.Ident:
					sets = sets || x.Name == "plantCredentials"
				}
				return true
			})
			if sets != alone.MatchString(fn.Name.Name) {
				t.Errorf("%s: %s sets the environment: %v; named to run alone (%s): %v", f, fn.Name.Name, sets, aloneTests, alone.MatchString(fn.Name.Name))
			}
			if sets {
				found = append(found, fn.Name.Name)
			}
		}
	}
	if len(found) == 0 {
		t.Error("no test sets the environment: the check found nothing to check")
	}
	a, r := testArgs(true), testArgs(false)
	if i := slices.Index(a, "-run"); i < 0 || a[i+1] != aloneTests || !slices.Contains(a, "./pipeline") {
		t.Errorf("the alone process: %v", a)
	}
	if i := slices.Index(r, "-skip"); i < 0 || r[i+1] != aloneTests || r[len(r)-1] != "./..." {
		t.Errorf("the rest: %v", r)
	}
}
