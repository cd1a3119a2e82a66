// Package lint holds the checks of the tree's shape that gofmt and go vet
// cannot make: imports flow one way, from the magefile down, and only the
// configuration boundary reads the environment. `mage lint` runs them, and
// so does `go test` (layers_test.go), so a change that breaks the shape
// fails where it is made.
package lint

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Module is the module's path.
const Module = "github.com/lhcbdirac/lhcbdirac-pipeline"

// Package is what the checks need of one package.
type Package struct {
	Path    string   // relative to the module: "pipeline", "internal/host/engine"
	Name    string   // "main" for programs
	Dir     string   // on disk
	Imports []string // the module's own, relative
	Files   []string // non-test Go files
}

// Load lists the module's packages (go list, with every build tag the
// tree uses, so the magefile's and the integration tests' imports count).
func Load(ctx context.Context, root string) ([]Package, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-tags", "integration", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, stderr.String())
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Name, Dir string
			Imports, GoFiles      []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		pkg := Package{Path: rel(p.ImportPath), Name: p.Name, Dir: p.Dir}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, Module+"/") {
				pkg.Imports = append(pkg.Imports, rel(imp))
			}
		}
		for _, f := range p.GoFiles {
			pkg.Files = append(pkg.Files, filepath.Join(p.Dir, f))
		}
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

func rel(imp string) string {
	if imp == Module {
		return "."
	}
	return strings.TrimPrefix(imp, Module+"/")
}

// under is true when p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// testSupport are the packages only tests (and the STAND-INs) may import.
func testSupport(p string) bool {
	return under(p, "internal/testlib") || p == "dips/dipstest" || p == "marathon/marathontest"
}

// image is the image a package belongs to ("" for none): images/<name>/….
func image(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || parts[0] != "images" || parts[1] == "internal" {
		return ""
	}
	return parts[1]
}

// Layers checks that imports run one way, from the magefile down:
// magefile → internal/target → pipeline → images (the list) → images/<name>,
// marathon/*, ci → dips, internal/* machinery. It returns every violation.
func Layers(pkgs []Package) []string {
	var bad []string
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if why := forbidden(p, imp); why != "" {
				bad = append(bad, fmt.Sprintf("%s imports %s: %s", p.Path, imp, why))
			}
		}
	}
	slices.Sort(bad)
	return bad
}

func forbidden(p Package, imp string) string {
	from := p.Path
	// The one test helper that makes a real release image for tests makes
	// it through the release's own build, so what tests read is what a
	// release makes. Nothing that ships imports test support (checked
	// below), so imports still flow one way for the product.
	if from == "internal/testlib/releaseimage" && (imp == "pipeline" || imp == "images") {
		return ""
	}
	switch {
	case under(imp, "internal/target") && !under(from, "internal/target") && from != ".":
		return "the targets are the top: only the magefile imports them"
	case imp == "pipeline" && !under(from, "internal/target") && from != ".":
		return "only the targets run the release"
	case imp == "images" && !under(from, "pipeline") && !under(from, "internal/target") && from != "images":
		return "the list of images is the pipeline's; an image does not know the others"
	case image(from) != "" && image(imp) != "" && image(from) != image(imp) && !strings.Contains(from, "standin"):
		return "images are siblings: what two images share goes in images/internal"
	case testSupport(imp) && !testSupport(from) && !strings.Contains(from, "standin"):
		return "product code never imports test support"
	case from == "marathon/marathontest" && (under(imp, "marathon/services") || under(imp, "marathon/render")):
		return "the Marathon stand-in follows Marathon's documentation, not our reading of it"
	}
	up := func(dirs ...string) bool {
		for _, d := range dirs {
			if under(imp, d) {
				return true
			}
		}
		return false
	}
	switch {
	case under(from, "dips") && !under(imp, "dips"):
		return "dips is the protocol: it stands on nothing of the project's"
	case under(from, "internal") && !under(from, "internal/target") && !under(from, "internal/lint") && up("pipeline", "images", "marathon", "ci"):
		return "internal/ is machinery below the release, its images and Marathon"
	case under(from, "marathon") && up("pipeline", "images", "ci"):
		return "marathon/ stands below the release and its images"
	case from == "ci" && up("pipeline", "images"):
		return "ci decides; the pipeline carries the decision out"
	}
	return ""
}

// EnvReaders lists the calls that read the environment outside the
// configuration boundary (internal/settings) and the programs' main
// packages: os.Getenv, os.LookupEnv.
func EnvReaders(pkgs []Package) ([]string, error) {
	var bad []string
	fset := token.NewFileSet()
	for _, p := range pkgs {
		if p.Name == "main" || p.Path == "internal/settings" || p.Path == "." {
			continue
		}
		for _, f := range p.Files {
			file, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				return nil, err
			}
			ast.Inspect(file, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "os" && (sel.Sel.Name == "Getenv" || sel.Sel.Name == "LookupEnv") {
					pos := fset.Position(sel.Pos())
					bad = append(bad, fmt.Sprintf("%s:%d: os.%s outside internal/settings", filepath.Join(p.Path, filepath.Base(pos.Filename)), pos.Line, sel.Sel.Name))
				}
				return true
			})
		}
	}
	slices.Sort(bad)
	return bad, nil
}
