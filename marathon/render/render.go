// Package render turns a services file into Marathon app definitions: an
// editable text/template (with sprig's functions) renders each service, the
// output must parse as JSON and pass the app schema, and the result is
// written with stable key order, one <System>_<Service>.json per app as the
// seed's generate-marathon-config did. Nothing is returned unless every app
// is valid, so a bad service can never be half deployed.
package render

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

//go:embed app.json.tmpl
var defaultTemplate string

//go:embed registrator.json.tmpl
var registratorTemplate string

// Kinds of rendered apps.
const (
	KindService     = "service"     // a DIRAC service, one per services file entry
	KindRegistrator = "registrator" // the registrator (images/registrator), when discovery is configured
)

// RegistratorID is the registrator app's id.
const RegistratorID = "/lhcbdirac/registrator"

// DefaultTemplateName names the embedded template in errors.
const DefaultTemplateName = "marathon/render/app.json.tmpl (embedded)"

// DefaultTemplate returns the embedded template text, for users to copy.
func DefaultTemplate() string { return defaultTemplate }

// Data is what the template sees for one service.
type Data struct {
	services.Resolved
	ID          string
	Version     string
	Image       string // repository:version
	HealthCheck struct{ GracePeriodSeconds, IntervalSeconds, TimeoutSeconds, MaxConsecutiveFailures int }
}

// App is one rendered, validated app definition.
type App struct {
	Kind    string            // KindService or KindRegistrator
	Service services.Resolved // the DIRAC service (KindService)
	ID      string
	Doc     map[string]any // decoded with json.Number
	JSON    []byte         // canonical: indented, keys sorted

	def *app.Definition // Doc, typed
}

// Definition is the app, typed: its image, instance count, labels… as
// Marathon will read them (the registrator's too, which has no Service).
func (a App) Definition() app.Definition {
	if a.def != nil {
		return *a.def
	}
	// An App not made by Render (a test's): read its document.
	d, err := app.FromDoc(a.Doc)
	if err != nil {
		if d, err = app.Parse(a.JSON); err != nil {
			return app.Definition{ID: a.ID, Doc: a.Doc}
		}
	}
	return *d
}

// FileName is the seed's output name: <System>_<Service>.json
// (lhcbdirac_registrator.json for the registrator).
func (a App) FileName() string {
	if a.Kind == KindRegistrator {
		return "lhcbdirac_registrator.json"
	}
	return a.Service.System + "_" + a.Service.Service + ".json"
}

// Services are the DIRAC service apps among apps.
func Services(apps []App) []App {
	var out []App
	for _, a := range apps {
		if a.Kind == KindService {
			out = append(out, a)
		}
	}
	return out
}

// Renderer holds a parsed template and a schema.
type Renderer struct {
	// Pins pin images: repository → the tag and digest it was pushed as
	// ("v12.0.21@sha256:…", or a hotfix build's own tag). A pinned image
	// is named repository:tag@digest — what runs is what was tested,
	// whatever the tag names later: Docker and Mesos' docker
	// containerizer pull by the digest.
	Pins map[string]string

	tmplName string
	tmpl     *template.Template
	schemas  []*Schema
}

// New parses the template at tmplPath ("" for the embedded default). Apps
// are validated against schema (nil: the embedded app schema) and any extra
// schemas, such as Marathon's own AppDefinition.json (LoadSchemaFile).
func New(tmplPath string, schema *Schema, extra ...*Schema) (*Renderer, error) {
	text, name := defaultTemplate, DefaultTemplateName
	if tmplPath != "" {
		b, err := os.ReadFile(tmplPath)
		if err != nil {
			return nil, err
		}
		text, name = string(b), tmplPath
	}
	t, err := template.New(filepath.Base(name)).Funcs(sprig.TxtFuncMap()).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	if schema == nil {
		if schema, err = DefaultSchema(); err != nil {
			return nil, err
		}
	}
	return &Renderer{tmplName: name, tmpl: t, schemas: append([]*Schema{schema}, extra...)}, nil
}

// AppID is the Marathon id of a service: /system/service, lower case (the
// seed lower-cased it too; Marathon ids are lower case).
func AppID(name string) string { return "/" + strings.ToLower(name) }

// Render renders every service of env at version. All apps are rendered and
// validated; any failure fails the whole call, listing every bad app.
func (r *Renderer) Render(f *services.File, env, ver string) ([]App, error) {
	v, err := version.Parse(ver)
	if err != nil {
		return nil, err
	}
	return r.RenderVersion(f, env, v)
}

// RenderVersion is Render for a version parsed already (the release's,
// parsed once where it entered).
func (r *Renderer) RenderVersion(f *services.File, env string, v version.Version) ([]App, error) {
	resolved, err := f.Resolve(env)
	if err != nil {
		return nil, err
	}
	var apps []App
	var errs []error
	for _, s := range resolved {
		a, err := r.one(s, v.Raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: service %s: %w", f.Path, s.Name, err))
			continue
		}
		apps = append(apps, a)
	}
	if f.Discovery != nil {
		a, err := r.registrator(f, v.Raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: discovery: %w", f.Path, err))
		} else {
			apps = append(apps, a)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return apps, nil
}

// registrator renders the registrator's app. It is checked against the
// extra schemas (Marathon's own) only: the app schema describes DIRAC
// services.
func (r *Renderer) registrator(f *services.File, ver string) (App, error) {
	t, err := template.New("registrator.json.tmpl").Funcs(sprig.TxtFuncMap()).Option("missingkey=error").Parse(registratorTemplate)
	if err != nil {
		return App{}, err
	}
	d := struct {
		ID, Image, Version string
		PingerURL          string // the check_http labels' pinger: the one the registrator lets Consul call
		Discovery          services.Discovery
	}{RegistratorID, r.image(f.DiscoveryImage(), ver), ver, f.PingerURL, *f.Discovery}
	var out bytes.Buffer
	if err := t.Execute(&out, d); err != nil {
		return App{}, fmt.Errorf("template marathon/render/registrator.json.tmpl: %w", err)
	}
	return finish(App{Kind: KindRegistrator, ID: RegistratorID}, out.Bytes(), "marathon/render/registrator.json.tmpl", r.schemas[1:])
}

func (r *Renderer) one(s services.Resolved, ver string) (App, error) {
	d := Data{Resolved: s, ID: AppID(s.Name), Version: ver, Image: r.image(s.Image, ver)}
	// The seed's Consul check, through the pinger; {host} and {port} are
	// filled in by mesos-consul, not here.
	labels := map[string]string{
		"dirac_component": s.Name,
		"check_interval":  "20s",
		"system":          s.SystemLabel,
	}
	if s.PingerURL != "" {
		labels["check_http"] = strings.TrimRight(s.PingerURL, "/") + "/ping?host={host}&port={port}&service=" + s.Name
		if s.Protocol == services.ProtocolHTTPS {
			labels["check_http"] += "&protocol=https" // a Tornado service: DIRAC's POST method=ping
		}
	}
	for k, v := range s.Labels {
		labels[k] = v
	}
	d.Labels = labels
	if d.Env == nil {
		d.Env = map[string]string{}
	}
	if d.Constraints == nil {
		d.Constraints = [][]string{}
	}
	h := s.HealthCheck
	d.HealthCheck.GracePeriodSeconds = deref(h.GracePeriodSeconds)
	d.HealthCheck.IntervalSeconds = deref(h.IntervalSeconds)
	d.HealthCheck.TimeoutSeconds = deref(h.TimeoutSeconds)
	d.HealthCheck.MaxConsecutiveFailures = deref(h.MaxConsecutiveFailures)

	var out bytes.Buffer
	if err := r.tmpl.Execute(&out, d); err != nil {
		return App{}, fmt.Errorf("template %s: %w", r.tmplName, err)
	}
	return finish(App{Kind: KindService, Service: s, ID: d.ID}, out.Bytes(), r.tmplName, r.schemas)
}

// finish parses a rendered app, validates it and gives it its canonical
// form.
func finish(a App, rendered []byte, tmplName string, schemas []*Schema) (App, error) {
	doc, err := decodeStrict(rendered)
	if err != nil {
		return App{}, fmt.Errorf("template %s rendered invalid JSON: %w", tmplName, err)
	}
	for _, sc := range schemas {
		if err := sc.Validate(doc); err != nil {
			return App{}, fmt.Errorf("app %s %w", a.ID, err)
		}
	}
	var canon bytes.Buffer
	enc := json.NewEncoder(&canon) // map keys come out sorted
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep check_http's "&" readable
	if err := enc.Encode(doc); err != nil {
		return App{}, err
	}
	def, err := app.FromDoc(doc)
	if err != nil {
		return App{}, fmt.Errorf("template %s: %w", tmplName, err)
	}
	a.Doc, a.JSON, a.def = doc, canon.Bytes(), def
	return a, nil
}

// image is repository:version, or repository:tag@digest when pinned.
func (r *Renderer) image(repo, ver string) string {
	if p := r.Pins[repo]; p != "" {
		return repo + ":" + p
	}
	return repo + ":" + ver
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// decodeStrict parses one JSON object, keeping numbers as written, refusing
// duplicate-free trailing data, and reporting syntax errors by line.
func decodeStrict(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
			return nil, fmt.Errorf("line %d of the output: %v\n%s", line, err, excerpt(b, line))
		}
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value in the output")
	}
	return doc, nil
}

func excerpt(b []byte, line int) string {
	lines := strings.Split(string(b), "\n")
	lo, hi := max(0, line-3), min(len(lines), line+1)
	var out []string
	for i := lo; i < hi; i++ {
		out = append(out, fmt.Sprintf("%5d | %s", i+1, lines[i]))
	}
	return strings.Join(out, "\n")
}

// WriteDir writes each app as <System>_<Service>.json into dir, all or
// nothing: every target is checked first (a directory in the way fails
// before anything is written), every file is written under a temporary
// name, and only when all are written are they renamed into place. On any
// failure the temporary files are removed and dir is as it was. Other
// files in dir are left alone. Files are readable by all (0644), as app
// definitions are no secret.
func WriteDir(apps []App, dir string) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, a := range apps {
		target := filepath.Join(dir, a.FileName())
		if st, err := os.Lstat(target); err == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("cannot write %s: a %s is in the way; nothing was written", target, kind(st.Mode()))
		}
	}
	var tmps []string
	defer func() {
		if err != nil {
			for _, t := range tmps {
				os.Remove(t)
			}
		}
	}()
	for _, a := range apps {
		t, err := writeTemp(dir, a.FileName(), a.JSON)
		if err != nil {
			return fmt.Errorf("writing %s: %w; nothing was written", filepath.Join(dir, a.FileName()), err)
		}
		tmps = append(tmps, t)
	}
	for i, a := range apps {
		if err := os.Rename(tmps[i], filepath.Join(dir, a.FileName())); err != nil {
			tmps = tmps[i:] // the renamed ones are in place; remove the rest
			return fmt.Errorf("renaming into %s: %w (%d of %d app definitions were replaced)", dir, err, i, len(apps))
		}
	}
	return nil
}

// ReplaceDir makes dir hold exactly the apps' definitions (no file of an
// earlier run's removed service stays behind): they are written into a new
// sibling directory, which then takes dir's place. On failure dir is as it
// was. For directories the pipeline owns (dist/<version>/marathon).
func ReplaceDir(apps []App, dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := WriteDir(apps, tmp); err != nil {
		return err
	}
	old := ""
	if _, err := os.Lstat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("replacing %s: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return fmt.Errorf("replacing %s: %w", dir, err)
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

func writeTemp(dir, name string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return "", err
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o644)); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	}
	return "non-regular file"
}
