package client

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// No package under marathon/ reads the environment, directly or through
// an injected getenv: the settings read it once and hand values down
// (Config, deploy.ParseOptions, runspec.ParseOptions).
func TestMarathonPackagesReadNoEnvironment(t *testing.T) {
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		n++
		ast.Inspect(f, func(node ast.Node) bool {
			switch x := node.(type) {
			case *ast.SelectorExpr:
				if pkg, ok := x.X.(*ast.Ident); ok && (pkg.Name == "os" || pkg.Name == "syscall") {
					switch x.Sel.Name {
					case "Getenv", "LookupEnv", "Environ", "ExpandEnv":
						t.Errorf("%s: %s.%s", fset.Position(x.Pos()), pkg.Name, x.Sel.Name)
					}
				}
			case *ast.Ident:
				if strings.EqualFold(x.Name, "getenv") {
					t.Errorf("%s: %s: an injected environment", fset.Position(x.Pos()), x.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d files under marathon/ were read", n)
	}
}
