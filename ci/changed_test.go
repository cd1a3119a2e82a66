package ci

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/fixture"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

const servicesV1 = `image: r.example/lhcbdirac
environments:
  certification: {diracCfg: /etc/dirac.cfg, gridSecurity: /etc/grid-security}
services:
  - name: DataManagement/FileCatalog
    port: 9197
  - name: RequestManagement/ReqManager
    port: 9140
`

func TestChangedServices(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644)
	}
	write("services.yaml", servicesV1)
	write("README.md", "x")
	if err := fixture.Commit(ctx, dir, "base"); err != nil {
		t.Fatal(err)
	}
	fixture.Git(ctx, dir, "branch", "base")
	check := func(want ...string) {
		t.Helper()
		f, err := services.Load(filepath.Join(dir, "services.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ChangedServices(ctx, dir, "base", "services.yaml", f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("changed: %v, want %v", got, want)
		}
	}
	write("README.md", "y")
	fixture.Commit(ctx, dir, "docs only")
	check()
	write("services.yaml", servicesV1+"    mem: 512\n")
	fixture.Commit(ctx, dir, "ReqManager memory")
	check("RequestManagement/ReqManager")
	write("images/lhcbdirac/entrypoint/main.go", "package main")
	fixture.Commit(ctx, dir, "image change")
	check("DataManagement/FileCatalog", "RequestManagement/ReqManager")
	if _, err := ChangedServices(ctx, dir, "no-such-ref", "services.yaml", &services.File{}); err == nil {
		t.Fatal("an unknown base must fail")
	}
}
