package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
)

// Renderer writes the report and the notes.
type Renderer struct {
	// Compare orders two versions (PEP 440): negative, zero or positive.
	// Nil is CompareVersions.
	Compare func(a, b string) int
}

func (r *Renderer) compare() func(a, b string) int {
	if r == nil || r.Compare == nil {
		return CompareVersions
	}
	return r.Compare
}

// The file names in dist/<version>/.
const (
	HTMLName  = "report.html"
	NotesName = "release-notes.md"
)

// Written says what Write wrote, and what it found wrong in its input
// (also shown at the end of the report): a bad entry is shown as such and
// counted, it never stops the report.
type Written struct {
	HTML, Notes string
	Problems    []string
}

// Write writes report.html and release-notes.md into dir (dist/<version>),
// each replaced whole or not at all.
func Write(dir string, rel Release) (Written, error) { return (&Renderer{}).Write(dir, rel) }

// Write is the package-level Write with r's comparator.
func (r *Renderer) Write(dir string, rel Release) (Written, error) {
	v := r.build(rel)
	w := Written{HTML: filepath.Join(dir, HTMLName), Notes: filepath.Join(dir, NotesName), Problems: v.Problems}
	var html, notes bytes.Buffer
	if err := page.Execute(&html, v); err != nil {
		return w, fmt.Errorf("report: rendering %s: %w", HTMLName, err)
	}
	writeNotes(&notes, v)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return w, fmt.Errorf("report: %w", err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{w.HTML, html.Bytes()}, {w.Notes, notes.Bytes()}} {
		if err := writeFileAtomic(f.path, f.data); err != nil {
			return w, fmt.Errorf("report: writing %s: %w", f.path, err)
		}
	}
	return w, nil
}

// HTML writes the report page.
func (r *Renderer) HTML(w io.Writer, rel Release) ([]string, error) {
	v := r.build(rel)
	return v.Problems, page.Execute(w, v)
}

// Markdown writes the release notes.
func (r *Renderer) Markdown(w io.Writer, rel Release) ([]string, error) {
	v := r.build(rel)
	var b bytes.Buffer
	writeNotes(&b, v)
	_, err := w.Write(b.Bytes())
	return v.Problems, err
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

//go:embed report.html.tmpl
var pageSource string

//go:embed report.css
var pageCSS string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"css":    func() template.CSS { return template.CSS(pageCSS) },
	"f1":     func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"short":  shortDigest,
	"commit": shortCommit,
	"plural": plural,
	"add":    func(a, b int) int { return a + b },
	"odd":    func(i int) bool { return i%2 == 1 },
}).Parse(pageSource))
