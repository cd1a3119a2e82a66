package lhcbdirac

import (
	"context"
	"fmt"
	"path"
	"strings"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
)

// MariaDBBase is the smoke database's base: Debian's MariaDB (10.11 in
// bookworm), made with debootstrap like the other bases.
// The data directory the package's install made is cleared (its files
// carry the install's times and ids, so no two bases would be the same):
// the smoke database makes its own at start.
var MariaDBBase = baseimage.Spec{Suite: "bookworm", Variant: "minbase", Packages: []string{"mariadb-server", "mariadb-client"},
	Clear: []string{"var/lib/mysql"}}

// MariaDBAlias is the name the services reach the smoke database by.
const MariaDBAlias = "mariadb"

// grant is what DIRAC's own installer grants on a service's database
// (ComponentInstaller.installDatabase).
const grant = "SELECT,INSERT,LOCK TABLES,UPDATE,DELETE,CREATE,DROP,ALTER,REFERENCES,CREATE VIEW,SHOW VIEW,INDEX,TRIGGER,ALTER ROUTINE,CREATE ROUTINE"

// mariadbScript initialises the database with networking off (so the
// port, which Dagger waits for, opens only once every schema is in), then
// serves it on 3306.
const mariadbScript = `set -eu
sock=/run/mysqld/mysqld.sock
rm -rf /var/lib/mysql && mkdir -p /var/lib/mysql /run/mysqld
mariadb-install-db --user=root --datadir=/var/lib/mysql --skip-test-db >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
mariadbd --user=root --datadir=/var/lib/mysql --socket=$sock --skip-networking >/tmp/init.log 2>&1 &
i=0
until mariadb --socket=$sock -e 'SELECT 1' >/dev/null 2>&1; do
  i=$((i+1)); [ $i -lt 600 ] || { echo "MariaDB did not start:"; cat /tmp/init.log; exit 1; }; sleep 0.1
done
mariadb --socket=$sock </init/accounts.sql
for f in /init/schema/*.sql; do
  [ -e "$f" ] || continue
  echo "schema $(basename "$f")"
  mariadb --socket=$sock <"$f"
done
mariadb --socket=$sock -e 'FLUSH PRIVILEGES'
mariadb-admin --socket=$sock shutdown
exec mariadbd --user=root --datadir=/var/lib/mysql --socket=$sock --bind-address=0.0.0.0 --port=3306 --skip-name-resolve
`

// AccountsSQL creates the account and the databases without a schema of
// their own (their services create their tables), granted as DIRAC does.
func AccountsSQL(db DBSettings) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE USER '%s'@'%%' IDENTIFIED BY '%s';\n", db.User, db.Password)
	for _, d := range db.Databases {
		if _, ok := Schemas[d]; ok {
			continue // its .sql creates it and grants on it
		}
		fmt.Fprintf(&b, "CREATE DATABASE `%s`;\nGRANT %s ON `%s`.* TO '%s'@'%%';\n", d, grant, d, db.User)
	}
	return b.String()
}

// MariaDB is the smoke test's database server, as a Dagger service:
// initialised with the kit's account, every database the services need,
// and the schemas DIRAC ships, taken from the built image.
func MariaDB(ctx context.Context, c *dagger.Client, base string, img *dagger.Container, kit Kit) (*dagger.Service, error) {
	ctr := c.Container().From(base).
		WithEnvVariable("PATH", baseimage.StandardPath).
		WithNewFile("/init/start.sh", mariadbScript).
		WithExposedPort(3306)
	if kit.Accounts != "" { // the catalog's kit
		return ctr.WithMountedFile("/init/accounts.sql", c.Host().File(kit.Accounts)).
			WithMountedDirectory("/init/schema", c.Host().Directory(kit.SchemaDir)).
			AsService(dagger.ContainerAsServiceOpts{Args: []string{"sh", "/init/start.sh"}}), nil
	}
	ctr = ctr.WithNewFile("/init/accounts.sql", AccountsSQL(kit.DB))
	var pkg string
	for _, d := range kit.DB.Databases {
		rel, ok := Schemas[d]
		if !ok {
			continue
		}
		if pkg == "" {
			var err error
			if pkg, err = diracPackageDir(ctx, img); err != nil {
				return nil, err
			}
		}
		ctr = ctr.WithFile("/init/schema/"+d+".sql", img.File(path.Join(pkg, rel)))
	}
	return ctr.AsService(dagger.ContainerAsServiceOpts{Args: []string{"sh", "/init/start.sh"}}), nil
}

// diracPackageDir is where the image's DIRAC package is installed (the
// venv's site-packages, or DIRACOS2's).
func diracPackageDir(ctx context.Context, img *dagger.Container) (string, error) {
	out, err := img.WithExec([]string{"python", "-c", "import os, DIRAC; print(os.path.dirname(DIRAC.__file__))"}, dagger.ContainerWithExecOpts{UseEntrypoint: true}).Stdout(ctx)
	if err != nil {
		return "", fmt.Errorf("finding the installed DIRAC package (for its database schemas): %w", err)
	}
	return strings.TrimSpace(out), nil
}
