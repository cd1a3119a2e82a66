package lhcbdirac

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/catalog"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// fixtureApps are the catalog's DIRAC-shaped fixture (an Oracle and an
// OpenSearch service, a Tornado twin, the Gateway, a schema file, a
// self-created database), its services file written and rendered.
func fixtureApps(t *testing.T) ([]render.App, *catalog.Catalog, string) {
	t.Helper()
	site := filepath.Join("catalog", "testdata", "site-packages")
	cat, err := catalog.LoadDir(context.Background(), site, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, err := services.Load(filepath.Join("..", "..", "pipeline", "services.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := catalog.ServicesFile(cat, base)
	if err != nil {
		t.Fatal(err)
	}
	f, err := services.Parse("fixture", y)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := r.Render(f, "certification", "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	return render.Services(apps), cat, site
}

func TestSeedServicesKeepTheFixedKit(t *testing.T) {
	f, err := services.Load(filepath.Join("..", "..", "pipeline", "services.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Services) != len(SeedServices) {
		t.Fatalf("pipeline/services.yaml has %d services, SeedServices %d", len(f.Services), len(SeedServices))
	}
	r, _ := render.New("", nil)
	apps, err := r.Render(f, "certification", "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if NeedsCatalog(apps) {
		t.Fatal("the default services file would get the catalog's kit")
	}
	all, _, _ := fixtureApps(t)
	if !NeedsCatalog(all) {
		t.Fatal("a services file beyond the six would get the fixed kit")
	}
}

// TestCannotRunIsTyped: the file's or the catalog's reason, the HTTPS
// problem for an HTTPS service, the Gateway's NoPing; the rest run.
func TestCannotRunIsTyped(t *testing.T) {
	apps, cat, _ := fixtureApps(t)
	got := map[string]string{}
	for _, a := range apps {
		got[a.Service.Name] = CannotRun(a.Service, cat)
	}
	for name, want := range map[string]string{
		"Foo/Ledger":        "cannot run here: an Oracle server for Foo/LedgerDB",
		"Foo/Search":        "cannot run here: an OpenSearch cluster for Foo/SearchDB",
		"Foo/TornadoBar":    "cannot run here: no HTTPS service can start in this image: tornado is not installed",
		"Framework/Gateway": "cannot run here: no ping with the host certificate shows it healthy: DISET's Gateway",
	} {
		if !strings.HasPrefix(got[name], want) {
			t.Errorf("%s: %q, want %q…", name, got[name], want)
		}
	}
	for _, name := range []string{"Foo/Bar", "Foo/Moved", "Foo/Orphan", "Foo/Relay", "Foo/Table"} {
		if got[name] != "" {
			t.Errorf("%s: %q, want it to run", name, got[name])
		}
	}
}

// TestCatalogKit: the dirac.cfg of the runnable services, their MySQL
// databases created with DIRAC's grant, a schema file loaded into its
// database, a self-created one left empty; reused while fresh.
func TestCatalogKit(t *testing.T) {
	cachedir.SetRoot(t.TempDir())
	t.Cleanup(func() { cachedir.SetRoot("") })
	apps, cat, site := fixtureApps(t)
	kit, run, err := NewCatalogKit(apps, cat, site)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range run {
		names = append(names, s.Name)
	}
	if strings.Join(names, " ") != "Foo/Bar Foo/Moved Foo/Orphan Foo/Relay Foo/Table" {
		t.Errorf("runnable: %v", names)
	}
	if strings.Join(kit.DB.Databases, " ") != "BarDB TableDB" {
		t.Errorf("databases %v", kit.DB.Databases)
	}
	cfg, _ := os.ReadFile(kit.DiracCfg)
	for _, want := range []string{"Password = " + kit.DB.Password, "Relay", "Port = 8443", "URLs", "svc-foo-bar"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("dirac.cfg lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(string(cfg), "Ledger\n") || strings.Contains(string(cfg), "SearchDB") {
		t.Errorf("dirac.cfg configures a service that cannot run:\n%s", cfg)
	}
	acct, _ := os.ReadFile(kit.Accounts)
	for _, want := range []string{"CREATE USER 'Dirac'@'%' IDENTIFIED BY '" + kit.DB.Password + "'", "CREATE DATABASE `BarDB`", "CREATE DATABASE `TableDB`", "CREATE TEMPORARY TABLES ON `TableDB`"} {
		if !strings.Contains(string(acct), want) {
			t.Errorf("accounts.sql lacks %q:\n%s", want, acct)
		}
	}
	entries, _ := os.ReadDir(kit.SchemaDir)
	if len(entries) != 1 || entries[0].Name() != "TableDB.sql" {
		t.Fatalf("schemas %v, want TableDB.sql only (BarDB is self-created)", entries)
	}
	sql, _ := os.ReadFile(filepath.Join(kit.SchemaDir, "TableDB.sql"))
	if !strings.HasPrefix(string(sql), "USE `TableDB`;\n") {
		t.Errorf("TableDB.sql does not select its database:\n%s", sql)
	}
	again, _, err := NewCatalogKit(apps, cat, site)
	if err != nil || again.Dir != kit.Dir || again.DB.Password != kit.DB.Password {
		t.Errorf("the kit was not reused: %v %s %s", err, again.Dir, kit.Dir)
	}
}

func TestAutoConcurrency(t *testing.T) {
	for _, tc := range []struct {
		avail int64
		cpus  int
		want  int
	}{
		{24 << 30, 2, 8},  // cores bound it
		{2 << 30, 8, 4},   // memory bounds it
		{100 << 20, 2, 1}, // at least one
		{0, 2, 8},         // memory unknown
	} {
		if got := autoConcurrency(tc.avail, tc.cpus); got != tc.want {
			t.Errorf("autoConcurrency(%d, %d) = %d, want %d", tc.avail, tc.cpus, got, tc.want)
		}
	}
	if AutoConcurrency() < 1 {
		t.Fatal("AutoConcurrency < 1")
	}
}
