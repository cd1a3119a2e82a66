package catalog

import (
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/fstest"
)

func TestPortsAreUniqueAndDeterministic(t *testing.T) {
	svcs := []Service{ // not in name order: Ports sorts
		{Name: "C/TornadoWide", Protocol: HTTPS},   // twin port 66000 is no port: the free range
		{Name: "A/TornadoOwn", Protocol: HTTPS},    // twin A/Own's template 9100: 10100, taken by A/TornadoClash
		{Name: "A/Own", Port: 9100},                // A/Clash, earlier by name, keeps 9100
		{Name: "A/Clash", Port: 9100},              //
		{Name: "A/Other", Protocol: HTTPS},         // no twin port: the free range
		{Name: "A/TornadoClash", Protocol: HTTPS},  // twin A/Clash: 10100
		{Name: "B/Taken", Port: FirstFreePort},     // the free range starts after it
		{Name: "B/TornadoTaken", Protocol: HTTPS},  // twin: FirstFreePort+TwinOffset
		{Name: "C/TornadoNoTwin", Protocol: HTTPS}, // the free range
		{Name: "C/Wide", Port: 65000},              //
	}
	ports, notes := Ports(svcs)
	want := map[string]int{
		"A/Clash": 9100, "A/TornadoClash": 9100 + TwinOffset, "B/Taken": FirstFreePort, "B/TornadoTaken": FirstFreePort + TwinOffset, "C/Wide": 65000,
		// the free range, in name order
		"A/Other": FirstFreePort + 1, "A/Own": FirstFreePort + 2, "A/TornadoOwn": FirstFreePort + 3, "C/TornadoNoTwin": FirstFreePort + 4, "C/TornadoWide": FirstFreePort + 5,
	}
	used := map[int]string{}
	for name, p := range ports {
		if other, dup := used[p]; dup {
			t.Errorf("port %d given to %s and %s", p, name, other)
		}
		used[p] = name
	}
	for name, p := range want {
		if ports[name] != p {
			t.Errorf("%s: port %d, want %d (%s)", name, ports[name], p, notes[name])
		}
	}
	if !strings.Contains(notes["A/Own"], "is A/Clash's") {
		t.Errorf("A/Own's note %q does not say whose port it lost", notes["A/Own"])
	}
	again, _ := Ports(svcs)
	for n, p := range ports {
		if again[n] != p {
			t.Fatalf("Ports is not deterministic: %s %d then %d", n, p, again[n])
		}
	}
}

func TestCfgParseAndMerge(t *testing.T) {
	low, err := parseCfg("low", "# c\nServices\n{\n  A\n  {\n    Port = 1\n    Opt = x = y\n    L = a\n    L += b\n    Authorization\n    {\n      Default = all\n    }\n  }\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	high, err := parseCfg("high", "Services {\n A {\n Port = 2\n New = n\n }\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	m := mergeCfg(low, high)
	var flat [][2]string
	m.section("Services/A").flatten("", &flat)
	got := []string{}
	for _, kv := range flat {
		got = append(got, kv[0]+"="+kv[1])
	}
	if want := "Port=2 Opt=x = y L=a, b Authorization/Default=all New=n"; strings.Join(got, " ") != want {
		t.Fatalf("merged %q, want %q", strings.Join(got, " "), want)
	}
	for _, bad := range []string{"A\n{\n", "}\n", "A {\n}\n}\n"} {
		if _, err := parseCfg("bad.cfg", bad); err == nil || !strings.Contains(err.Error(), "bad.cfg") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

func TestTornadoProblem(t *testing.T) {
	pypi := fstest.MapFS{
		"tornado-5.1.1.dist-info/METADATA": {},
		"tornado/iostream.py":              {Data: []byte("class SSLIOStream(IOStream):\n    pass\n")},
		"tornado/httputil.py":              {Data: []byte("class HTTPHeaders(collections.MutableMapping):\n")},
	}
	p := tornadoProblem(pypi)
	if !strings.Contains(p, "tornado 5.1.1") || !strings.Contains(p, "not Configurable") || !strings.Contains(p, "MutableMapping") {
		t.Errorf("PyPI's tornado 5.1.1: %q", p)
	}
	patched := fstest.MapFS{
		"tornado/iostream.py":  {Data: []byte("class SSLIOStream(IOStream, Configurable):\n")},
		"tornado/tcpserver.py": {Data: []byte("stream = SSLIOStream(connection, server_side=True, create_context_on_init=True)\n")},
		"tornado/httputil.py": {Data: []byte("class HTTPHeaders(collections.abc.MutableMapping):\n" +
			"    def get_ssl_certificate(self, **kwargs):\n        return self.connection.stream.get_ssl_certificate(**kwargs)\n")},
	}
	if p := tornadoProblem(patched); p != "" {
		t.Errorf("patched tornado: %q", p)
	}
	// Configurable alone: the server still wraps the socket with Python's
	// ssl, and the certificate is read off that socket.
	half := fstest.MapFS{
		"tornado/iostream.py":  patched["tornado/iostream.py"],
		"tornado/tcpserver.py": {Data: []byte("connection = ssl_wrap_socket(connection, self.ssl_options, server_side=True)\n")},
		"tornado/httputil.py":  {Data: []byte("class HTTPHeaders(collections.abc.MutableMapping):\n")},
	}
	if p := tornadoProblem(half); !strings.Contains(p, "create_context_on_init") || !strings.Contains(p, "certificate") || strings.Contains(p, "not Configurable") {
		t.Errorf("Configurable, the rest not patched: %q", p)
	}
	if p := tornadoProblem(fstest.MapFS{}); !strings.Contains(p, "not installed") {
		t.Errorf("no tornado: %q", p)
	}
}

func TestSchemaSQLSourcesOneLevel(t *testing.T) {
	fsys := fstest.MapFS{
		"E/XSystem/DB/ADB.sql": {Data: []byte("-- x\nsource D/XSystem/DB/ADB.sql\nALTER TABLE T ADD c INT;\n")},
		"D/XSystem/DB/ADB.sql": {Data: []byte("CREATE TABLE T (i INT);\n")},
		"E/XSystem/DB/BDB.sql": {Data: []byte("SOURCE D/nowhere.sql\n")},
	}
	got, err := SchemaSQL(fsys, "E/XSystem/DB/ADB.sql")
	if err != nil {
		t.Fatal(err)
	}
	if want := "-- x\nCREATE TABLE T (i INT);\n\nALTER TABLE T ADD c INT;\n\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := SchemaSQL(fsys, "E/XSystem/DB/BDB.sql"); err == nil || !strings.Contains(err.Error(), "E/XSystem/DB/BDB.sql") {
		t.Fatalf("a missing SOURCE: %v", err)
	}
}

func TestDiracCfgForTheKit(t *testing.T) {
	svcs := []Service{
		{Name: "S/A", Protocol: DIPS, Options: map[string]string{"Authorization/Default": "authenticated", "Opt": "1"},
			Databases: []DB{{Name: "ADB", FullName: "S/ADB", Backend: "MySQL", Schema: SchemaSelf}, {Name: "XDB", FullName: "S/XDB", Backend: "OpenSearch"}}},
		{Name: "S/TornadoA", Protocol: HTTPS},
		{Name: "S/TornadoOnly", Protocol: HTTPS},
	}
	cfg := DiracCfg(svcs, map[string]int{"S/A": 9100, "S/TornadoA": 10100, "S/TornadoOnly": 8443},
		Kit{Root: "/opt/dirac", DB: DBAccount{Host: "db", Port: 3306, User: "u", Password: "p"}, Host: func(n string) string { return "h-" + n[2:] }})
	c, err := parseCfg("generated", cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	for path, want := range map[string]string{
		"Systems/S/Services/A/Port":                  "9100",
		"Systems/S/Services/A/Authorization/Default": "authenticated",
		"Systems/S/Services/TornadoA/Protocol":       "https",
		"Systems/S/Databases/ADB/DBName":             "ADB",
		"Systems/Databases/Host":                     "db",
		"Systems/S/URLs/A":                           "dips://h-A:9100/S/A",
		"Systems/S/URLs/Only":                        "https://h-TornadoOnly:8443/S/TornadoOnly",
		"DIRAC/Security/CALocation":                  "/opt/dirac/etc/grid-security/certificates",
	} {
		dir, key := path[:strings.LastIndex(path, "/")], path[strings.LastIndex(path, "/")+1:]
		s := c.section(dir)
		if s == nil || s.opts[key] != want {
			t.Errorf("%s: want %q in\n%s", path, want, cfg)
		}
	}
	if c.section("Systems/S/Databases/XDB") != nil {
		t.Errorf("an OpenSearch database is no MySQL database for the kit:\n%s", cfg)
	}
}

// TestWavesKeepSelfCreatingServicesApart: services creating the same
// tables never start in the same wave; every service is started once.
func TestWavesKeepSelfCreatingServicesApart(t *testing.T) {
	tq := DB{FullName: "W/TaskQueueDB", Backend: "MySQL", Schema: SchemaSelf}
	job := DB{FullName: "W/JobDB", Backend: "MySQL", Schema: SchemaFile, SchemaFile: "x.sql"}
	svcs := []Service{
		{Name: "W/OptimizationMind", Databases: []DB{job, tq}},
		{Name: "W/Matcher", Databases: []DB{job, tq}},
		{Name: "W/JobManager", Databases: []DB{job, tq}},
		{Name: "W/PilotManager", Databases: []DB{job}},
		{Name: "X/Search", Databases: []DB{{FullName: "X/SearchDB", Backend: "OpenSearch"}}},
	}
	waves := Waves(svcs)
	var got []string
	for _, w := range waves {
		var names []string
		for _, s := range w {
			names = append(names, s.Name)
		}
		got = append(got, strings.Join(names, ","))
	}
	if want := "W/JobManager,W/PilotManager,X/Search|W/Matcher,W/OptimizationMind"; strings.Join(got, "|") != want {
		t.Fatalf("waves %q, want %q", strings.Join(got, "|"), want)
	}
}

// readRecorder is an fs.FS that records the names read through it.
type readRecorder struct {
	fs.FS
	read map[string]bool
}

func (r readRecorder) Open(name string) (fs.File, error) {
	r.read[name] = true
	return r.FS.Open(name)
}

// The image's catalog exports only SitePackagesFiles from the image: every
// file tornadoProblem reads must be among them, or a patched tornado reads
// as unpatched (tcpserver.py once was not, and every HTTPS service of the
// image said "cannot run here").
func TestSitePackagesFilesHoldWhatTornadoProblemReads(t *testing.T) {
	patched := fstest.MapFS{
		"tornado-5.1.1+lhcbdirac.1.dist-info/METADATA": {},
		"tornado/iostream.py":                          {Data: []byte("class SSLIOStream(IOStream, Configurable):\n")},
		"tornado/tcpserver.py":                         {Data: []byte("create_context_on_init=True\n")},
		"tornado/httputil.py":                          {Data: []byte("self.connection.stream.get_ssl_certificate(\n")},
	}
	rec := readRecorder{patched, map[string]bool{}}
	if p := tornadoProblem(rec); p != "" {
		t.Fatalf("patched tornado: %q", p)
	}
	exported := fstest.MapFS{}
	for name := range rec.read {
		if name == "." {
			continue
		}
		for _, pat := range SitePackagesFiles(nil) {
			if ok, _ := path.Match(pat, name); ok {
				if f, ok := patched[name]; ok {
					exported[name] = f
				}
			}
		}
		if _, ok := exported[name]; !ok && patched[name] != nil {
			t.Errorf("tornadoProblem reads %s, which SitePackagesFiles does not export", name)
		}
	}
	if p := tornadoProblem(exported); p != "" {
		t.Errorf("the patched tornado as the catalog exports it: %q", p)
	}
}
