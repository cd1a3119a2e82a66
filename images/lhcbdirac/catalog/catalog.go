// Package catalog is the release's own service catalog: every service an
// installed DIRAC release ships (DIRAC and its extensions, LHCbDIRAC's
// replacing DIRAC's), read from the installed site-packages, with what each
// needs to start: its defaults from the installed ConfigTemplate.cfg, the
// databases its initialisation opens (and who makes their tables), the
// services it talks to, and, for those that need what a build machine
// cannot have (OpenSearch, Oracle, a master CS), why they cannot run here.
//
// The Python sources are read by a small ast-based analyser (analyze.py,
// run with any python3; nothing of DIRAC is imported or executed), the CFG
// and .sql files here. docs/services.md describes the rules and the
// figures measured against the 12.0.21 release.
package catalog

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

//go:embed analyze.py
var analyzer string

// Protocols of a service.
const (
	DIPS  = "dips"  // DISET, run by dirac-service
	HTTPS = "https" // Tornado, run by tornado-start-all
)

// Schema kinds: who makes a database's tables.
const (
	SchemaFile = "file"         // the .sql shipped beside the DB class (DIRAC's installer runs it)
	SchemaSelf = "self-created" // the DB class (or its handler) creates its tables at start
	SchemaNone = "none"         // neither: a start on an empty database sees no tables
)

// Catalog is one release's services.
type Catalog struct {
	Extensions []Extension `json:"extensions"` // highest priority first
	Services   []Service   `json:"services"`   // by name
	// HTTPSProblem, when set, is why no HTTPS (Tornado) service of this
	// installation can start at all: a defect of the installation, not
	// something a build machine lacks (so not CannotRun).
	HTTPSProblem string `json:"httpsProblem,omitempty"`
}

// Extension is DIRAC or one of its extensions, as its "dirac" entry point
// declares it.
type Extension struct {
	Name     string `json:"name"`
	Priority int    `json:"priority"`
	Version  string `json:"version"` // from its dist-info
}

// Service is one service of the release.
type Service struct {
	Name      string `json:"name"`      // System/Component, as dirac-service takes it
	Extension string `json:"extension"` // the extension whose handler runs
	Handler   string `json:"handler"`   // module.Class; "" for DISET's built-in Gateway
	Protocol  string `json:"protocol"`  // DIPS or HTTPS
	Port      int    `json:"port"`      // ConfigTemplate's Port; 0: none (HTTPS services share /Systems/Tornado/Port)
	// Options are the ConfigTemplate's options for the service (merged
	// across extensions, the higher priority winning), without Port and
	// Protocol; subsections flattened as "Authorization/Default". They are
	// what DIRAC's installer writes for it (HandlerPath included).
	Options map[string]string `json:"options,omitempty"`
	// Reads are the options the initialisation code reads, with the
	// code's defaults ("" when not a constant).
	Reads       map[string]string `json:"reads,omitempty"`
	Databases   []DB              `json:"databases,omitempty"`
	NeedsURLsOf []string          `json:"needsURLsOf,omitempty"` // services it builds clients for at start
	// Command starts it with DIRAC's own scripts: dirac-service System/Name
	// for DIPS; tornado-start-all for HTTPS (it serves every service whose
	// section in dirac.cfg says Protocol = https, each on its own Port, so
	// a container of one HTTPS service needs a dirac.cfg where only that
	// one does); tornado-start-CS for the Configuration Server.
	Command []string `json:"command"`
	// NoPing, when set, is why a ping cannot show it healthy although it
	// starts.
	NoPing string `json:"noPing,omitempty"`
	// Global are options outside the service's own section it needs to
	// start (as CFG paths, "/DIRAC/Configuration/Master").
	Global    map[string]string `json:"global,omitempty"`
	Replaces  string            `json:"replaces,omitempty"`  // the lower-priority handler it replaces
	CannotRun string            `json:"cannotRun,omitempty"` // "cannot run here: …", or ""
	Init      []string          `json:"init,omitempty"`      // the initialisation functions read
	Notes     []string          `json:"notes,omitempty"`

	instances []string // release classes its initialisation builds
}

// DB is one database a service opens at start.
type DB struct {
	Name       string `json:"name"`     // DBName
	FullName   string `json:"fullName"` // System/DBName: the CS section /Systems/<System>/Databases/<DBName>
	Class      string `json:"class"`
	Backend    string `json:"backend"` // MySQL, OpenSearch or Oracle
	Schema     string `json:"schema"`  // SchemaFile, SchemaSelf or SchemaNone
	SchemaFile string `json:"schemaFile,omitempty"`
	// Optional: the service starts without it (its initialisation catches
	// the failure and carries on).
	Optional bool `json:"optional,omitempty"`
}

// Options tune Load.
type Options struct {
	// Python runs the analyser: any python3 (3.8+); default "python3".
	Python string
}

// Load reads the catalog from an installed site-packages tree. When fsys is
// not a directory on disk (os.DirFS), the files the analyser reads are
// copied to a temporary directory first.
func Load(ctx context.Context, fsys fs.FS, o Options) (*Catalog, error) {
	exts, err := findExtensions(fsys)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "lhcbdirac-catalog-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, e := range exts {
		if err := copyTree(fsys, e.Name, tmp); err != nil {
			return nil, err
		}
	}
	return load(ctx, fsys, tmp, exts, o)
}

// LoadDir is Load of a site-packages directory on disk, read in place.
func LoadDir(ctx context.Context, dir string, o Options) (*Catalog, error) {
	fsys := os.DirFS(dir)
	exts, err := findExtensions(fsys)
	if err != nil {
		return nil, err
	}
	return load(ctx, fsys, dir, exts, o)
}

// findExtensions reads the "dirac" entry points of the installed
// distributions (metadata = <Extension>:extension_metadata).
func findExtensions(fsys fs.FS) ([]Extension, error) {
	infos, err := fs.Glob(fsys, "*.dist-info/entry_points.txt")
	if err != nil {
		return nil, err
	}
	var exts []Extension
	for _, p := range infos {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		in := false
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "[") {
				in = line == "[dirac]"
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !in || !ok || strings.TrimSpace(k) != "metadata" {
				continue
			}
			mod, _, _ := strings.Cut(strings.TrimSpace(v), ":")
			name := strings.Split(mod, ".")[0]
			exts = append(exts, Extension{Name: name, Version: distVersion(path.Dir(p))})
		}
	}
	if len(exts) == 0 {
		return nil, errors.New("no DIRAC installation: no *.dist-info/entry_points.txt declares a [dirac] metadata entry point")
	}
	sort.Slice(exts, func(i, j int) bool { return exts[i].Name < exts[j].Name })
	return exts, nil
}

var distVersionRE = regexp.MustCompile(`^[A-Za-z0-9_.]+-([^-]+)\.dist-info$`)

func distVersion(dir string) string {
	if m := distVersionRE.FindStringSubmatch(dir); m != nil {
		return m[1]
	}
	return ""
}

// copyTree copies what the analyser reads (Python sources) of one package.
func copyTree(fsys fs.FS, root, dst string) error {
	return fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "__pycache__" || d.Name() == "tests" {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".py") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}

// analysis is analyze.py's output.
type analysis struct {
	Extensions []struct {
		Name     string `json:"name"`
		Priority *int   `json:"priority"`
	} `json:"extensions"`
	Handlers  []handlerFacts     `json:"handlers"`
	Databases map[string]dbFacts `json:"databases"`
	Builtins  struct {
		Gateway string `json:"gateway"`
	} `json:"builtins"`
}

type handlerFacts struct {
	Module    string   `json:"module"`
	Class     string   `json:"class"`
	File      string   `json:"file"`
	Found     bool     `json:"found"`
	Protocol  string   `json:"protocol"`
	MRO       []string `json:"mro"`
	Init      []string `json:"init"`
	Databases []struct {
		Class            string `json:"class"`
		Key              string `json:"key"`
		Guarded          bool   `json:"guarded"`
		CreatedByHandler bool   `json:"created_by_handler"`
	} `json:"databases"`
	Clients []struct {
		Class   string `json:"class"`
		Service string `json:"service"`
	} `json:"clients"`
	Options   map[string]any `json:"options"`
	Instances []string       `json:"instances"`
}

type dbFacts struct {
	Class         string   `json:"class"`
	MRO           []string `json:"mro"`
	Backends      []string `json:"backends"`
	FullNames     []string `json:"fullnames"`
	CreatesTables bool     `json:"creates_tables"`
	Parts         []string `json:"parts"`
}

func load(ctx context.Context, fsys fs.FS, dir string, exts []Extension, o Options) (*Catalog, error) {
	templates, err := readTemplates(fsys, exts)
	if err != nil {
		return nil, err
	}
	// Handlers named by HandlerPath in a template are analysed too.
	args := []string{"-I", "-c", analyzer, dir}
	for _, e := range exts {
		args = append(args, e.Name)
	}
	for _, sys := range sortedKeys(templates) {
		t := templates[sys].section("Services")
		if t == nil {
			continue
		}
		for _, n := range t.sections() {
			if hp := t.subs[n].opts["HandlerPath"]; hp != "" {
				mod := strings.ReplaceAll(strings.TrimSuffix(hp, ".py"), "/", ".")
				args = append(args, "--handler", mod+":"+mod[strings.LastIndex(mod, ".")+1:])
			}
		}
	}
	py := o.Python
	if py == "" {
		py = "python3"
	}
	cmd := exec.CommandContext(ctx, py, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C.UTF-8", "PYTHONHASHSEED=0"}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("catalog analyser (%s, reading %s): %v: %s", py, dir, err, strings.TrimSpace(stderr.String()))
	}
	var a analysis
	if err := json.Unmarshal(stdout.Bytes(), &a); err != nil {
		return nil, fmt.Errorf("catalog analyser: its output is not the expected JSON: %v", err)
	}
	byName := map[string]*Extension{}
	for i := range exts {
		byName[exts[i].Name] = &exts[i]
	}
	var ordered []Extension
	for _, e := range a.Extensions {
		x := byName[e.Name]
		if x == nil {
			continue
		}
		if e.Priority == nil {
			return nil, fmt.Errorf("extension %s: its extension_metadata() declares no constant priority", e.Name)
		}
		x.Priority = *e.Priority
		ordered = append(ordered, *x)
	}
	b := builder{fsys: fsys, exts: ordered, templates: templates, a: &a}
	return b.build()
}

// readTemplates merges each system's ConfigTemplate.cfg across the
// extensions, the higher priority's options winning, as
// ComponentInstaller.getComponentCfg does. Keyed by system name without
// the "System" suffix.
func readTemplates(fsys fs.FS, exts []Extension) (map[string]*cfg, error) {
	out := map[string]*cfg{}
	// lowest priority first, so later (higher) ones lay over
	order := slices.Clone(exts)
	sort.SliceStable(order, func(i, j int) bool { return order[i].Priority < order[j].Priority })
	for _, e := range order {
		files, err := fs.Glob(fsys, e.Name+"/*System/ConfigTemplate.cfg")
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				return nil, err
			}
			c, err := parseCfg(f, string(b))
			if err != nil {
				return nil, err
			}
			sys := strings.TrimSuffix(path.Base(path.Dir(f)), "System")
			out[sys] = mergeCfg(out[sys], c)
		}
	}
	return out, nil
}

type builder struct {
	fsys      fs.FS
	exts      []Extension
	templates map[string]*cfg
	a         *analysis
}

func (b *builder) build() (*Catalog, error) {
	// readTemplates ran before the priorities were known: redo it in order.
	t, err := readTemplates(b.fsys, b.exts)
	if err != nil {
		return nil, err
	}
	b.templates = t
	facts := map[string]*handlerFacts{} // module -> facts
	for i := range b.a.Handlers {
		facts[b.a.Handlers[i].Module] = &b.a.Handlers[i]
	}
	services := map[string]*Service{}
	// 1. Handler files, by extension priority: the first wins.
	for _, e := range b.exts {
		seen := map[string]bool{}
		for _, h := range b.a.Handlers {
			if seen[h.Module] { // also named by a HandlerPath
				continue
			}
			seen[h.Module] = true
			parts := strings.Split(h.Module, ".")
			if len(parts) != 4 || parts[0] != e.Name || parts[2] != "Service" || !strings.HasSuffix(parts[1], "System") {
				continue
			}
			name := strings.TrimSuffix(parts[1], "System") + "/" + strings.TrimSuffix(parts[3], "Handler")
			if s, ok := services[name]; ok {
				if s.Replaces == "" {
					s.Replaces = h.Module + "." + h.Class
				}
				continue
			}
			services[name] = &Service{Name: name, Extension: e.Name, Handler: h.Module + "." + h.Class}
		}
	}
	// 2. Template sections: options, and services that have no handler
	// file of their own name (HandlerPath, DISET's Gateway).
	for _, sys := range sortedKeys(b.templates) {
		t := b.templates[sys].section("Services")
		if t == nil {
			continue
		}
		for _, comp := range t.sections() {
			name := sys + "/" + comp
			sec := t.subs[comp]
			s := services[name]
			if hp := sec.opts["HandlerPath"]; hp != "" {
				mod := strings.ReplaceAll(strings.TrimSuffix(hp, ".py"), "/", ".")
				handler := mod + "." + mod[strings.LastIndex(mod, ".")+1:]
				if s == nil {
					s = &Service{Name: name}
					services[name] = s
				} else if s.Handler != handler {
					s.Notes = append(s.Notes, fmt.Sprintf("HandlerPath %s replaces the handler found by name (%s)", hp, s.Handler))
				}
				s.Handler, s.Extension = handler, strings.Split(mod, ".")[0]
			}
			if s == nil {
				if name == b.a.Builtins.Gateway {
					s = &Service{Name: name, Extension: "DIRAC", Protocol: DIPS,
						Notes: []string{"DISET's built-in gateway (DIRAC.Core.DISET.private.GatewayService): no handler module"}}
				} else {
					s = &Service{Name: name, Notes: []string{"a ConfigTemplate section with no handler module"}}
				}
				services[name] = s
			}
			b.template(s, sec)
		}
	}
	cat := &Catalog{Extensions: b.exts, HTTPSProblem: tornadoProblem(b.fsys)}
	for _, name := range sortedKeys(services) {
		s := services[name]
		if s.Handler != "" {
			mod := s.Handler[:strings.LastIndex(s.Handler, ".")]
			if err := b.handler(s, facts[mod]); err != nil {
				return nil, err
			}
		}
		if s.Protocol == "" {
			s.Protocol = DIPS
		}
		needs(s)
		s.CannotRun = cannotRun(s)
		switch {
		case s.Name == "Configuration/Server" && s.Protocol == HTTPS:
			s.Command = []string{"tornado-start-CS"}
		case s.Protocol == HTTPS:
			s.Command = []string{"tornado-start-all"}
		default:
			s.Command = []string{"dirac-service", s.Name}
		}
		if s.Name == b.a.Builtins.Gateway && s.Handler == "" {
			// GatewayService relays a call only after the client delegated
			// a proxy: a ping from a host certificate gets S_ERROR
			// "Error in receiving delegated proxy" (measured on 12.0.21).
			s.NoPing = "DISET's Gateway answers a call only after the client delegates a proxy; a host-certificate ping gets \"Error in receiving delegated proxy\" (a TLS handshake shows it listens)"
		}
		cat.Services = append(cat.Services, *s)
	}
	return cat, nil
}

func (b *builder) template(s *Service, sec *cfg) {
	var flat [][2]string
	sec.flatten("", &flat)
	for _, kv := range flat {
		switch kv[0] {
		case "Port":
			p, err := strconv.Atoi(kv[1])
			if err != nil || p < 1 || p > 65535 {
				s.Notes = append(s.Notes, fmt.Sprintf("ConfigTemplate Port %q is not a port", kv[1]))
				continue
			}
			s.Port = p
		case "Protocol":
			if strings.EqualFold(kv[1], HTTPS) {
				s.Protocol = HTTPS
			}
		default:
			if s.Options == nil {
				s.Options = map[string]string{}
			}
			s.Options[kv[0]] = strings.Trim(kv[1], `"`)
		}
	}
}

func (b *builder) handler(s *Service, h *handlerFacts) error {
	if h == nil || !h.Found {
		s.Notes = append(s.Notes, "handler "+s.Handler+" not found in the installation")
		return nil
	}
	tmplProto := s.Protocol
	switch h.Protocol {
	case HTTPS:
		s.Protocol = HTTPS
		if tmplProto != HTTPS {
			s.Notes = append(s.Notes, "the handler is a TornadoService but the ConfigTemplate does not set Protocol = https: the catalog sets it")
		}
	case DIPS:
		if tmplProto == HTTPS {
			s.Notes = append(s.Notes, "the ConfigTemplate sets Protocol = https but the handler is a DISET RequestHandler")
		}
		s.Protocol = DIPS
	default:
		s.Notes = append(s.Notes, "the handler derives from neither DISET's RequestHandler nor TornadoService")
	}
	s.Init = h.Init
	s.instances = h.Instances
	for k, v := range h.Options {
		if s.Reads == nil {
			s.Reads = map[string]string{}
		}
		s.Reads[k] = optionString(v)
	}
	seen := map[string]bool{}
	for _, c := range h.Clients {
		if c.Service != "" && c.Service != s.Name && !seen[c.Service] {
			seen[c.Service] = true
			s.NeedsURLsOf = append(s.NeedsURLsOf, c.Service)
		}
	}
	sort.Strings(s.NeedsURLsOf)
	dbs := map[string]*DB{}
	var add func(key string, optional, handlerCreates bool, depth int)
	add = func(key string, optional, handlerCreates bool, depth int) {
		f, ok := b.a.Databases[key]
		if !ok || depth > 4 {
			return
		}
		if len(f.FullNames) == 0 || len(f.Parts) > 0 {
			// a composite (MultiAccountingDB, OracleBookkeepingDB): its parts
			for _, p := range f.Parts {
				add(p, optional, handlerCreates, depth+1)
			}
			if len(f.FullNames) == 0 {
				return
			}
		}
		for _, full := range f.FullNames {
			if d, ok := dbs[full]; ok {
				d.Optional = d.Optional && optional
				continue
			}
			_, name, _ := strings.Cut(full, "/")
			d := &DB{Name: name, FullName: full, Class: f.Class, Backend: strings.Join(f.Backends, "+"), Optional: optional}
			if d.Backend == "" {
				d.Backend = "unknown"
			}
			d.SchemaFile = b.sqlFile(name)
			switch {
			case d.SchemaFile != "" && b.sqlHasTables(d.SchemaFile):
				d.Schema = SchemaFile
			case f.CreatesTables || handlerCreates:
				d.Schema = SchemaSelf
			default:
				d.Schema = SchemaNone
			}
			if d.Backend != "MySQL" {
				d.Schema, d.SchemaFile = "", ""
			}
			dbs[full] = d
		}
	}
	for _, e := range h.Databases {
		add(e.Key, e.Guarded, e.CreatedByHandler, 0)
	}
	for _, k := range sortedKeys(dbs) {
		s.Databases = append(s.Databases, *dbs[k])
	}
	return nil
}

// sqlFile is the <DBName>.sql DIRAC's installer would run
// (ComponentInstaller.installDatabase: the first extension, by priority,
// shipping <DBName>.sql in any of its systems' DB packages),
// site-packages relative.
func (b *builder) sqlFile(name string) string {
	for _, e := range b.exts {
		files, _ := fs.Glob(b.fsys, path.Join(e.Name, "*System", "DB", name+".sql"))
		if len(files) > 0 {
			return files[0]
		}
	}
	return ""
}

var createTableRE = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\b`)

func (b *builder) sqlHasTables(p string) bool {
	sql, err := SchemaSQL(b.fsys, p)
	return err == nil && createTableRE.MatchString(sql)
}

// SchemaSQL is a schema file as DIRAC's installer executes it
// (ComponentInstaller._createMySQLCMDLines): each line starting with
// "source" (any case) replaced by the named file (a site-packages relative
// path), one level deep. The result is for the mysql/mariadb client, which
// also understands the DELIMITER blocks the installer's own splitting on
// ";" cannot run.
func SchemaSQL(fsys fs.FS, file string) (string, error) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if len(line) >= 6 && strings.EqualFold(line[:6], "source") {
			f := strings.Fields(line)
			if len(f) < 2 {
				return "", fmt.Errorf("%s: %q names no file", file, line)
			}
			src, err := fs.ReadFile(fsys, path.Clean(f[1]))
			if err != nil {
				return "", fmt.Errorf("%s: %q: %w", file, strings.TrimSpace(line), err)
			}
			out.Write(src)
			out.WriteString("\n")
			continue
		}
		out.WriteString(line)
		out.WriteString("\n")
	}
	return out.String(), nil
}

func optionString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
