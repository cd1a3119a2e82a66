package lhcbdirac

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/pki"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// Kit is what the service containers mount in place of the host's files:
// a TEST CA, a host certificate for every name the services are reached by
// (localhost too: the COMMAND health check dials it), and a dirac.cfg for
// them all (no Configuration Server: everything a service reads at start
// is local), with the credentials of the smoke test's database.
type Kit struct {
	Dir          string // holds dirac.cfg and grid-security/
	GridSecurity string
	DiracCfg     string
	DB           DBSettings
	// The catalog's kit (NewCatalogKit): the accounts and databases, and
	// the schemas (<DBName>.sql, each selecting its database) to load, as
	// files; "" for the fixed kit, whose schemas are read from the image.
	Accounts, SchemaDir string
}

// DBSettings are the smoke database's account.
type DBSettings struct {
	Host, User, Password string
	Port                 int
	Databases            []string // every database the services need
}

// ServiceDatabases are the databases each service reads at start (DIRAC's
// and LHCbDIRAC's handlers; docs/images.md). A service not listed needs
// none. Those listed in Schemas get their schema from DIRAC's own .sql
// file; the others are created empty and the service makes its tables.
var ServiceDatabases = map[string][]string{
	"DataManagement/DataIntegrity": {"DataIntegrityDB"},
	"DataManagement/FileCatalog":   {"FileCatalogDB"},
	"DataManagement/DataUsage":     {"StorageUsageDB"},
	"DataManagement/StorageUsage":  {"StorageUsageDB"},
	"RequestManagement/ReqManager": {"ReqDB"},
}

// Schemas are the databases whose schema a service does not create: the
// file catalog's, from the .sql file the installed DIRAC ships (DIRAC's
// own CI does the same), relative to the DIRAC package.
var Schemas = map[string]string{"FileCatalogDB": "DataManagementSystem/DB/FileCatalogWithFkAndPsDB.sql"}

// serviceOptions are the options a service needs beyond its port: the
// file catalog's managers matching the schema above (as DIRAC's CI sets
// them).
var serviceOptions = map[string][][2]string{
	"DataManagement/FileCatalog": {{"DirectoryManager", "DirectoryClosure"}, {"FileManager", "FileManagerPs"}, {"UniqueGUID", "True"}},
}

// Alias is the name a service is reached by on the Dagger network.
func Alias(name string) string {
	return "svc-" + strings.ToLower(strings.ReplaceAll(name, "/", "-"))
}

// kitMaxAge keeps the test CA (valid 48 h) comfortably fresh.
const kitMaxAge = 24 * time.Hour

// NewKit makes (or reuses, while it is fresh and for the same services)
// the kit. Reuse keeps a warm release's inputs identical, so Dagger can
// answer from its cache.
func NewKit(apps []render.App) (Kit, error) {
	apps = render.Services(apps) // the registrator's app is no DIRAC service
	names := []string{"localhost", "pinger"}
	for _, a := range apps {
		names = append(names, Alias(a.Service.Name))
	}
	sort.Strings(names[2:])
	db := DBSettings{Host: MariaDBAlias, Port: 3306, User: "Dirac"}
	seen := map[string]bool{}
	for _, a := range apps {
		for _, d := range ServiceDatabases[a.Service.Name] {
			if !seen[d] {
				seen[d] = true
				db.Databases = append(db.Databases, d)
			}
		}
	}
	sort.Strings(db.Databases)
	h := sha256.Sum256([]byte(strings.Join(names, ",") + "\n" + DiracCfg(apps, db)))
	base, err := cachedir.Sub("smoke-kit")
	if err != nil {
		return Kit{}, err
	}
	dir := filepath.Join(base, hex.EncodeToString(h[:8]))
	k := Kit{Dir: dir, GridSecurity: filepath.Join(dir, "grid-security"), DiracCfg: filepath.Join(dir, "dirac.cfg"), DB: db}
	pwFile := filepath.Join(dir, "db-password")
	built, err := cachedir.Entry{Dir: dir, MaxAge: kitMaxAge}.Ensure(func(tmp string) error {
		var err error
		if k.DB.Password, err = newKitSecrets(tmp, names); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "dirac.cfg"), []byte(DiracCfg(apps, k.DB)), 0o644)
	})
	if err != nil || built {
		return k, err
	}
	pw, err := os.ReadFile(pwFile)
	k.DB.Password = string(pw)
	return k, err
}

// DiracCfg is the smoke-test configuration, in DIRAC v9's layout (no
// setups, no instances): no Configuration Server, so a service reads only
// this; each service's port and options; each system's databases, all on
// the smoke database with the account's credentials; the ReqManager's URL
// for the ReqProxy. The password is filled in by NewKit (the kit's hash
// is made without it).
func DiracCfg(apps []render.App, db DBSettings) string {
	systems := map[string][]render.App{}
	for _, a := range apps {
		systems[a.Service.System] = append(systems[a.Service.System], a)
	}
	root := &CfgSection{}
	d := root.Sub("DIRAC")
	d.Set("VirtualOrganization", "lhcb")
	sec := d.Sub("Security")
	sec.Set("UseServerCertificate", "yes")
	sec.Set("CertFile", DiracRoot+"/etc/grid-security/hostcert.pem")
	sec.Set("KeyFile", DiracRoot+"/etc/grid-security/hostkey.pem")
	sec.Set("CALocation", DiracRoot+"/etc/grid-security/certificates")
	sys := root.Sub("Systems")
	if len(db.Databases) > 0 {
		dbs := sys.Sub("Databases")
		dbs.Set("Host", db.Host)
		dbs.Set("Port", fmt.Sprint(db.Port))
		dbs.Set("User", db.User)
		dbs.Set("Password", db.Password)
	}
	for _, name := range slices.Sorted(maps.Keys(systems)) {
		s := sys.Sub(name)
		svcs := s.Sub("Services")
		for _, a := range systems[name] {
			one := svcs.Sub(a.Service.Service)
			one.Set("Port", fmt.Sprint(a.Service.Port))
			for _, o := range serviceOptions[a.Service.Name] {
				one.Set(o[0], o[1])
			}
			for _, dbName := range ServiceDatabases[a.Service.Name] {
				s.Sub("Databases").Sub(dbName).Set("DBName", dbName)
			}
			if a.Service.Name == "RequestManagement/ReqManager" {
				s.Sub("URLs").Set("ReqManager", fmt.Sprintf("dips://%s:%d/%s", Alias(a.Service.Name), a.Service.Port, a.Service.Name))
			}
		}
	}
	return "# dirac.cfg of the smoke tests (written by the pipeline)\n" + root.String()
}

// newKitSecrets writes what every kit's entry holds besides its dirac.cfg:
// the TEST CA with one host certificate for names (grid-security/) and a
// new database password (db-password, 0600), which it returns.
func newKitSecrets(tmp string, names []string) (string, error) {
	ca, err := pki.NewPKI(filepath.Join(tmp, "grid-security"), "LHCbDIRAC smoke-test CA")
	if err != nil {
		return "", err
	}
	if _, err := ca.Host("host", names...); err != nil {
		return "", err
	}
	// Letters and digits only: DIRAC builds the ReqDB's SQLAlchemy URL
	// without quoting the password.
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return "", err
	}
	password := hex.EncodeToString(pw)
	if err := os.WriteFile(filepath.Join(tmp, "db-password"), []byte(password), 0o600); err != nil {
		return "", err
	}
	return password, nil
}
