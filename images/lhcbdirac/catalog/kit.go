package catalog

import (
	"fmt"
	"sort"
	"strings"
)

// What a test installation (the smoke test's kit: one dirac.cfg, no
// Configuration Server, one MariaDB) must give each service so that it
// starts. Measured against the 12.0.21 release; docs/services.md has the
// figures.

// kitOptions are the choices the kit makes beyond the ConfigTemplate, each
// with why.
var kitOptions = map[string][][2]string{
	// The file catalogue's managers must match its schema. The kit loads
	// the schema with stored procedures (as DIRAC's own CI does,
	// tests/Jenkins/dirac-cfg-update-services.py), which the DIPS
	// service's template defaults (DirectoryLevelTree, FileManager) do not
	// use; the HTTPS one's template already selects these.
	"DataManagement/FileCatalog": {{"DirectoryManager", "DirectoryClosure"}, {"FileManager", "FileManagerPs"}, {"UniqueGUID", "True"}},
	// The code's default LoggingPlugin, PilotLoggingPlugin, is the
	// abstract base class: initializeHandler fails instantiating it. The
	// file cache plugin is the concrete one that needs no message queue.
	"WorkloadManagement/TornadoPilotLogging": {{"LoggingPlugin", "FileCacheLoggingPlugin"}},
}

// kitSchemas are the schema files the kit loads instead of the one
// DIRAC's installer would pick (<DBName>.sql), relative to site-packages.
var kitSchemas = map[string]string{
	"DataManagement/FileCatalogDB": "DIRAC/DataManagementSystem/DB/FileCatalogWithFkAndPsDB.sql",
}

// KitOptions are the options a service's section needs in the kit's
// dirac.cfg, beyond its Port: its ConfigTemplate's options (what DIRAC's
// installer writes), Protocol = https for Tornado services, and the kit's
// own choices. Sorted by name.
func KitOptions(s Service) [][2]string {
	m := map[string]string{}
	for k, v := range s.Options {
		m[k] = v
	}
	if s.Protocol == HTTPS {
		m["Protocol"] = HTTPS
	}
	for _, kv := range kitOptions[s.Name] {
		m[kv[0]] = kv[1]
	}
	out := make([][2]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, [2]string{k, m[k]})
	}
	return out
}

// KitSchemaFile is the .sql (site-packages relative) the kit loads for a
// database before the services start, "" when the service makes its own
// tables (or has none to make).
func KitSchemaFile(d DB) string {
	if f, ok := kitSchemas[d.FullName]; ok {
		return f
	}
	if d.Schema == SchemaFile {
		return d.SchemaFile
	}
	return ""
}

// KitDatabases are the MySQL databases the given services open, one per
// full name, sorted by it. The kit creates each (with DIRAC's grant) and
// loads KitSchemaFile when there is one.
func KitDatabases(svcs []Service) []DB {
	seen := map[string]DB{}
	for _, s := range svcs {
		for _, d := range s.Databases {
			if d.Backend != "MySQL" {
				continue
			}
			if _, ok := seen[d.FullName]; !ok {
				seen[d.FullName] = d
			}
		}
	}
	out := make([]DB, 0, len(seen))
	for _, k := range sortedKeys(seen) {
		out = append(out, seen[k])
	}
	return out
}

// DBAccount is the kit database's account.
type DBAccount struct {
	Host     string
	Port     int
	User     string
	Password string
}

// Kit is what DiracCfg needs besides the services.
type Kit struct {
	Root string    // DIRAC's root in the container (/opt/dirac)
	DB   DBAccount // every MySQL database is on this server
	// Host is the name a service is reached by from the others (its URL
	// in /Systems/<System>/URLs).
	Host func(service string) string
	// Hostname is /DIRAC/Hostname ("" leaves it out).
	Hostname string
}

// DiracCfg is a dirac.cfg in DIRAC v9's layout (no setups, no instances,
// no Configuration Server) for the given services: each service's section
// with its port and KitOptions, every database they open on the kit's
// server, and the URL of every service, so that the clients a service
// builds at start (NeedsURLsOf) resolve.
func DiracCfg(svcs []Service, ports map[string]int, k Kit) string {
	root := newCfg()
	d := root.sub("DIRAC")
	d.set("VirtualOrganization", "lhcb")
	if k.Hostname != "" {
		d.set("Hostname", k.Hostname)
	}
	sec := d.sub("Security")
	sec.set("UseServerCertificate", "yes")
	sec.set("CertFile", k.Root+"/etc/grid-security/hostcert.pem")
	sec.set("KeyFile", k.Root+"/etc/grid-security/hostkey.pem")
	sec.set("CALocation", k.Root+"/etc/grid-security/certificates")
	for _, s := range svcs {
		for _, k := range sortedKeys(s.Global) {
			root.setPath(strings.TrimPrefix(k, "/"), s.Global[k])
		}
	}
	sys := root.sub("Systems")
	dbs := KitDatabases(svcs)
	if len(dbs) > 0 {
		all := sys.sub("Databases")
		all.set("Host", k.DB.Host)
		all.set("Port", fmt.Sprint(k.DB.Port))
		all.set("User", k.DB.User)
		all.set("Password", k.DB.Password)
	}
	sorted := append([]Service(nil), svcs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, s := range sorted {
		system, comp, _ := strings.Cut(s.Name, "/")
		one := sys.sub(system).sub("Services").sub(comp)
		one.set("Port", fmt.Sprint(ports[s.Name]))
		for _, kv := range KitOptions(s) {
			one.setPath(kv[0], kv[1])
		}
	}
	for _, db := range dbs {
		system, name, _ := strings.Cut(db.FullName, "/")
		sys.sub(system).sub("Databases").sub(name).set("DBName", name)
	}
	// URLs: DIRAC's installer names an HTTPS service's URL without its
	// "Tornado" prefix; a DIPS twin of the same name keeps the key.
	for _, s := range sorted {
		system, comp, _ := strings.Cut(s.Name, "/")
		key, url := comp, fmt.Sprintf("dips://%s:%d/%s", k.Host(s.Name), ports[s.Name], s.Name)
		if s.Protocol == HTTPS {
			key = strings.TrimPrefix(comp, "Tornado")
			url = fmt.Sprintf("https://%s:%d/%s", k.Host(s.Name), ports[s.Name], s.Name)
			if _, twin := findService(svcs, system+"/"+key); twin && key != comp {
				continue
			}
		}
		sys.sub(system).sub("URLs").set(key, url)
	}
	return root.String()
}

func findService(svcs []Service, name string) (Service, bool) {
	for _, s := range svcs {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Waves orders the start of services that share a database they create
// themselves: two of them starting together race to create its tables
// and the loser fails ("Table 'tq_Jobs' already exists": JobManager,
// Matcher and OptimizationMind on TaskQueueDB, measured on 12.0.21). In
// each wave, no two services have a not-yet-created self-created database
// in common; a wave may start in parallel once the previous one is
// healthy. Services are taken in name order, so the waves are
// deterministic; services with none of those databases all go in the
// first wave.
func Waves(svcs []Service) [][]Service {
	rest := append([]Service(nil), svcs...)
	sort.Slice(rest, func(i, j int) bool { return rest[i].Name < rest[j].Name })
	created := map[string]bool{}
	var waves [][]Service
	for len(rest) > 0 {
		var wave, next []Service
		claimed := map[string]bool{}
		for _, s := range rest {
			var pending []string
			clash := false
			for _, d := range s.Databases {
				if d.Backend != "MySQL" || KitSchemaFile(d) != "" || created[d.FullName] {
					continue
				}
				if claimed[d.FullName] {
					clash = true
				}
				pending = append(pending, d.FullName)
			}
			if clash {
				next = append(next, s)
				continue
			}
			for _, p := range pending {
				claimed[p] = true
			}
			wave = append(wave, s)
		}
		for p := range claimed {
			created[p] = true
		}
		waves = append(waves, wave)
		rest = next
	}
	return waves
}
