package lhcbdirac

// The smoke kit of a services file beyond the seed's six (services:all's):
// built from the catalog of the image under test (images/lhcbdirac/catalog,
// docs/services.md) — each service's dirac.cfg section from its installed
// ConfigTemplate, the databases its initialisation opens, created in the
// smoke MariaDB with the schemas DIRAC's installer would load, the URLs of
// every service — and the services the catalog says cannot run here given
// as such.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/catalog"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// SeedServices are the services the fixed kit (ServiceDatabases,
// serviceOptions) knows: the seed's six, pipeline/services.yaml. A
// services file listing any other service gets the catalog's kit.
var SeedServices = []string{"DataManagement/DataIntegrity", "DataManagement/DataUsage", "DataManagement/FileCatalog",
	"DataManagement/StorageUsage", "RequestManagement/ReqManager", "RequestManagement/ReqProxy"}

// NeedsCatalog is true when apps list a service the fixed kit does not know.
func NeedsCatalog(apps []render.App) bool {
	for _, a := range render.Services(apps) {
		if !slices.Contains(SeedServices, a.Service.Name) {
			return true
		}
	}
	return false
}

// ImageCatalog reads the catalog of the release img installs: what the
// catalog reads of its site-packages is copied out of the image to a
// temporary directory (dir, which the caller removes), then analysed.
func ImageCatalog(ctx context.Context, c *dagger.Client, img *dagger.Container) (cat *catalog.Catalog, dir string, err error) {
	pkg, err := diracPackageDir(ctx, img)
	if err != nil {
		return nil, "", err
	}
	site := path.Dir(pkg)
	dir, err = os.MkdirTemp("", "lhcbdirac-smoke-catalog-")
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
			dir = ""
		}
	}()
	export := func(include []string) error {
		_, err := c.Directory().WithDirectory("/", img.Directory(site), dagger.DirectoryWithDirectoryOpts{Include: include}).Export(ctx, dir)
		return err
	}
	if err := export([]string{"*.dist-info/entry_points.txt"}); err != nil {
		return nil, "", fmt.Errorf("copying the image's entry points (%s): %w", site, err)
	}
	exts, err := catalog.Extensions(os.DirFS(dir))
	if err != nil {
		return nil, "", fmt.Errorf("the image's site-packages %s: %w", site, err)
	}
	if err := export(catalog.SitePackagesFiles(exts)); err != nil {
		return nil, "", fmt.Errorf("copying the image's DIRAC sources (%s): %w", site, err)
	}
	cat, err = catalog.LoadDir(ctx, dir, catalog.Options{})
	if err != nil {
		return nil, "", fmt.Errorf("the catalog of the image under test: %w", err)
	}
	return cat, dir, nil
}

// CannotRun is why a service cannot run here, "" when it can: the services
// file's cannotRun, else the catalog's (a database on OpenSearch or
// Oracle), else, for an HTTPS service, the installation's HTTPS problem,
// else, for a service no ping can show healthy (the Gateway), why.
func CannotRun(svc services.Resolved, cat *catalog.Catalog) string {
	if svc.CannotRun != "" {
		return svc.CannotRun
	}
	if cat == nil {
		return ""
	}
	s, ok := findService(cat, svc.Name)
	switch {
	case !ok:
		return ""
	case s.CannotRun != "":
		return s.CannotRun
	case s.Protocol == catalog.HTTPS && cat.HTTPSProblem != "":
		return services.CannotRunPrefix + "no HTTPS service can start in this image: " + cat.HTTPSProblem
	case s.NoPing != "":
		return services.CannotRunPrefix + "no ping with the host certificate shows it healthy: " + s.NoPing
	}
	return ""
}

func findService(cat *catalog.Catalog, name string) (catalog.Service, bool) {
	for _, s := range cat.Services {
		if s.Name == name {
			return s, true
		}
	}
	return catalog.Service{}, false
}

// catalogGrant is DIRAC's installer's grant (ComponentInstaller.installDatabase).
const catalogGrant = grant + ",CREATE TEMPORARY TABLES"

// createsDatabase: a schema file that makes its own database (the kit's
// FileCatalogWithFkAndPsDB.sql); DIRAC's <DBName>.sql files only USE it.
var createsDatabase = regexp.MustCompile(`(?im)^\s*create\s+database\b`)

// NewCatalogKit is the kit of apps from the catalog cat of the image
// under test, whose site-packages the catalog was read from (site): the
// same TEST CA as NewKit, catalog.DiracCfg for the services that can
// run, and every MySQL database they open, its schema (catalog.SchemaSQL
// of catalog.KitSchemaFile) loaded before they start.
func NewCatalogKit(apps []render.App, cat *catalog.Catalog, site string) (Kit, []catalog.Service, error) {
	apps = render.Services(apps)
	names := []string{"localhost", "pinger"}
	ports := map[string]int{}
	var run []catalog.Service
	for _, a := range apps {
		names = append(names, Alias(a.Service.Name))
		ports[a.Service.Name] = a.Service.Port
		if CannotRun(a.Service, cat) != "" {
			continue
		}
		// A service the image does not ship gets nothing from the kit: it
		// is still started as Marathon would start it (smokeCatalog), and
		// fails with its own log, as it would in production.
		if s, ok := findService(cat, a.Service.Name); ok {
			run = append(run, s)
		}
	}
	sort.Strings(names[2:])
	db := DBSettings{Host: MariaDBAlias, Port: 3306, User: "Dirac"}
	schemas := map[string]string{}
	accounts := ""
	for _, d := range catalog.KitDatabases(run) {
		db.Databases = append(db.Databases, d.Name)
		sql := ""
		if f := catalog.KitSchemaFile(d); f != "" {
			var err error
			if sql, err = catalog.SchemaSQL(os.DirFS(site), f); err != nil {
				return Kit{}, nil, fmt.Errorf("the schema of %s: %w", d.FullName, err)
			}
			schemas[d.Name] = sql
		}
		if sql != "" && createsDatabase.MatchString(sql) {
			continue // it creates its database and grants on it
		}
		accounts += fmt.Sprintf("CREATE DATABASE `%s`;\nGRANT %s ON `%s`.* TO '%s'@'%%';\n", d.Name, catalogGrant, d.Name, db.User)
		if sql != "" {
			schemas[d.Name] = fmt.Sprintf("USE `%s`;\n%s", d.Name, sql)
		}
	}
	cfg := func(pw string) string {
		acct := catalog.DBAccount{Host: db.Host, Port: db.Port, User: db.User, Password: pw}
		return "# dirac.cfg of the smoke tests, from the catalog of the image under test (written by the pipeline)\n" +
			catalog.DiracCfg(run, ports, catalog.Kit{Root: DiracRoot, DB: acct, Host: Alias})
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", strings.Join(names, ","), cfg(""), accounts)
	for _, k := range slices.Sorted(maps.Keys(schemas)) {
		fmt.Fprintf(h, "%s\n%s\n", k, schemas[k])
	}
	base, err := cachedir.Sub("smoke-kit")
	if err != nil {
		return Kit{}, nil, err
	}
	dir := filepath.Join(base, "catalog-"+hex.EncodeToString(h.Sum(nil)[:8]))
	k := Kit{Dir: dir, GridSecurity: filepath.Join(dir, "grid-security"), DiracCfg: filepath.Join(dir, "dirac.cfg"), DB: db,
		SchemaDir: filepath.Join(dir, "schema"), Accounts: filepath.Join(dir, "accounts.sql")}
	built, err := cachedir.Entry{Dir: dir, MaxAge: kitMaxAge}.Ensure(func(tmp string) error {
		var err error
		if k.DB.Password, err = newKitSecrets(tmp, names); err != nil {
			return err
		}
		acct := fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s';\n", db.User, k.DB.Password) + accounts
		if err := os.WriteFile(filepath.Join(tmp, "accounts.sql"), []byte(acct), 0o600); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(tmp, "schema"), 0o755); err != nil {
			return err
		}
		for name, sql := range schemas {
			if err := os.WriteFile(filepath.Join(tmp, "schema", name+".sql"), []byte(sql), 0o644); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(tmp, "dirac.cfg"), []byte(cfg(k.DB.Password)), 0o644)
	})
	if err != nil {
		return k, nil, err
	}
	if !built {
		pw, err := os.ReadFile(filepath.Join(dir, "db-password"))
		if err != nil {
			return k, nil, err
		}
		k.DB.Password = string(pw)
	}
	return k, run, nil
}
