package report_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/report"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/report/reporttest"
)

func render(t testing.TB, rel report.Release) (string, []string) {
	t.Helper()
	var b bytes.Buffer
	problems, err := (&report.Renderer{}).HTML(&b, rel)
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), problems
}

// Nothing in the page can load anything or run: the policy is the first
// thing in <head>, and no element or attribute fetches, links out or
// scripts — checked on the parsed page, for each sample.
func TestPageLoadsNothing(t *testing.T) {
	for name, rel := range map[string]report.Release{"passed": reporttest.Passed(), "failed": reporttest.Failed(), "large": reporttest.Generated(40, 60, 30)} {
		page, _ := render(t, rel)
		z := html.NewTokenizer(strings.NewReader(page))
		var seenCSP, seenStyle bool
		for {
			tt := z.Next()
			if tt == html.ErrorToken {
				break
			}
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			switch tok.Data {
			case "script", "link", "iframe", "frame", "object", "embed", "img", "image", "use", "base", "form", "video", "audio", "source", "track", "picture", "portal", "foreignobject":
				t.Errorf("%s: <%s> in the page", name, tok.Data)
			case "style":
				seenStyle = true
				if !seenCSP {
					t.Errorf("%s: <style> before the Content-Security-Policy", name)
				}
			case "meta":
				for _, a := range tok.Attr {
					if a.Key == "http-equiv" && strings.EqualFold(a.Val, "refresh") {
						t.Errorf("%s: meta refresh", name)
					}
					if a.Key == "content" && strings.Contains(a.Val, "default-src 'none'") {
						seenCSP = true
						if a.Val != "default-src 'none'; style-src 'unsafe-inline'; img-src data:" {
							t.Errorf("%s: policy %q", name, a.Val)
						}
					}
				}
			}
			for _, a := range tok.Attr {
				switch k := strings.ToLower(a.Key); {
				case strings.HasPrefix(k, "on"):
					t.Errorf("%s: event handler %s=%q on <%s>", name, a.Key, a.Val, tok.Data)
				case k == "href" && !strings.HasPrefix(a.Val, "#"):
					t.Errorf("%s: <%s href=%q>: only links within the page", name, tok.Data, a.Val)
				case k == "src", k == "srcset", k == "action", k == "formaction", k == "poster", k == "data", k == "xlink:href", k == "background", k == "ping":
					t.Errorf("%s: <%s %s=%q>", name, tok.Data, a.Key, a.Val)
				case k == "style" && strings.Contains(a.Val, "url("):
					t.Errorf("%s: url() in a style attribute: %q", name, a.Val)
				}
			}
		}
		if !seenCSP || !seenStyle {
			t.Errorf("%s: policy %v, style %v", name, seenCSP, seenStyle)
		}
		// the stylesheet refers to nothing outside the page
		css := page[strings.Index(page, "<style>"):strings.Index(page, "</style>")]
		if strings.Contains(css, "@import") || strings.Contains(css, "@font-face") || strings.Count(css, "url(") != strings.Count(css, "url(#hatch)") {
			t.Errorf("%s: the stylesheet loads something", name)
		}
	}
}

// Every text of the input, set to a hostile string, comes out escaped and
// without its credential — whichever field it is in.
func TestHostileInputIsShownNotInterpreted(t *testing.T) {
	var rel report.Release
	hostile := reporttest.Hostile + " https://robot:" + reporttest.Token + "@git.example.org/x.git " + reporttest.Token
	fill(reflect.ValueOf(&rel).Elem(), hostile)
	rel.Started = reporttest.T0
	for i := range rel.Steps {
		rel.Steps[i].Start, rel.Steps[i].End = reporttest.T0, reporttest.T0.Add(time.Second)
	}
	page, problems := render(t, rel)
	if len(problems) == 0 {
		t.Error("outcomes that are hostile strings must be reported as problems")
	}
	for _, bad := range []string{"<script", "</script>", "<img", "\x00", "\x1b", "\r", reporttest.Token, "robot:"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp; &#34;dq&#34; &#39;sq&#39; \\x00nul \\x1b[31mred\\x1b[0m\\rCR") {
		t.Errorf("the hostile text is not shown escaped")
	}
	var notes bytes.Buffer
	if _, err := (&report.Renderer{}).Markdown(&notes, rel); err != nil {
		t.Fatal(err)
	}
	// outside fenced code (where Markdown shows text as it is) no markup
	// survives; inside, nothing can close the fence
	outside, fenced := splitFences(t, notes.String())
	for _, bad := range []string{"<script", "<img", "\x00", "\x1b", reporttest.Token} {
		if strings.Contains(outside, bad) {
			t.Errorf("the notes hold %q outside code", bad)
		}
	}
	if !strings.Contains(fenced, reporttest.Hostile[:20]) || strings.Contains(fenced, reporttest.Token) || strings.Contains(fenced, "\x1b") {
		t.Errorf("the fenced log lines are not the cleaned input: %q", fenced)
	}
}

// splitFences separates a Markdown text's fenced code blocks from the rest,
// failing when a block is not closed by its own fence.
func splitFences(t *testing.T, md string) (outside, fenced string) {
	var out, in strings.Builder
	fence := ""
	for _, line := range strings.Split(md, "\n") {
		switch {
		case fence == "" && strings.HasPrefix(line, "```"):
			fence = strings.TrimRight(line, "abcdefghijklmnopqrstuvwxyz")
		case fence != "" && line == fence:
			fence = ""
		case fence != "":
			in.WriteString(line + "\n")
		default:
			out.WriteString(line + "\n")
		}
	}
	if fence != "" {
		t.Errorf("a fenced block is not closed")
	}
	return out.String(), in.String()
}

func fill(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i), s)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		}
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i), s)
		}
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), s)
	}
}

func TestFailedReleaseShowsHowFarItGot(t *testing.T) {
	page, problems := render(t, reporttest.Failed())
	if len(problems) > 0 {
		t.Errorf("problems: %q", problems)
	}
	for _, want := range []string{
		`<div id="verdict" class="verdict failed">FAILED at smoke</div>`,
		`<span class="sname">push</span><span class="slabel"><span class="icon" aria-hidden="true">○</span> <span class="stext">not reached</span>`,
		`<p class="absent">Not reached: the release failed at stage smoke.</p>`,
		`https://git.example.org/lhcb/DIRAC.git`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the failed release's page lacks %s", want)
		}
	}
	if n := strings.Count(page, `<p class="absent">Not reached`); n != 2 {
		t.Errorf("%d sections marked not reached, want 2 (evidence, deploy)", n)
	}
}

// A report made from the registry has no run: its sections say "not
// recorded", not "not reached".
func TestReportWithoutRun(t *testing.T) {
	rel := reporttest.Passed()
	rel.Result, rel.Stages, rel.Steps, rel.Smoke, rel.Deploy = report.Result{}, nil, nil, nil, report.Deploy{}
	page, _ := render(t, rel)
	if !strings.Contains(page, "NO RUN RECORDED") || strings.Count(page, "Not recorded for this release.") != 3 || strings.Contains(page, "Not reached") {
		t.Errorf("a report without a run must say so")
	}
}

func TestBadEntriesAreShownAndCounted(t *testing.T) {
	rel := reporttest.Passed()
	rel.Steps[0].Outcome = "pased"
	rel.Steps[1].End = rel.Steps[1].Start.Add(-time.Second)
	rel.Smoke[2].Checks[0].Outcome = "ok"
	rel.Deploy.Apps[0].Action = "recreate"
	rel.Lock.Current = append(rel.Lock.Current, report.Distribution{Name: "pyyaml", Version: "1.0"})
	dir := t.TempDir()
	w, err := report.Write(dir, rel)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`timeline step "version and command line": outcome "pased" is not one of passed, failed, cached, skipped`,
		`timeline step "services file": ends (2026-03-02 09:14:04 UTC) before it starts (2026-03-02 09:14:05 UTC)`,
		`lock: distribution "pyyaml" is listed twice; the first entry is used`,
		`smoke "DataManagement/StorageUsage", check "health check": outcome "ok" is not one of passed, failed, cannot-run-here`,
		`deploy: app "/lhcbdirac/dataintegrity": action "recreate" is not one of create, update, unchanged`,
	}
	if strings.Join(w.Problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant\n%s", strings.Join(w.Problems, "\n"), strings.Join(want, "\n"))
	}
	page, _ := os.ReadFile(w.HTML)
	if !strings.Contains(string(page), `<section id="problems">`) || !strings.Contains(string(page), "unknown (pased)") {
		t.Error("the page must list its input's problems and show the bad outcome as unknown")
	}
	// the service whose check is unknown did not pass
	if !strings.Contains(string(page), `data-outcome="failed">`) {
		t.Error("a check of unknown outcome must not count as passed")
	}
}

func TestWriteReplacesBothFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dist", "v12.0.21")
	if _, err := report.Write(dir, reporttest.Failed()); err != nil {
		t.Fatal(err)
	}
	w, err := report.Write(dir, reporttest.Passed())
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dist holds %d files (temporary files left?)", len(entries))
	}
	page, _ := os.ReadFile(w.HTML)
	notes, _ := os.ReadFile(w.Notes)
	if !strings.Contains(string(page), "PASSED") || !strings.HasPrefix(string(notes), "## LHCbDIRAC v12.0.21 — PASSED") {
		t.Error("the second write did not replace the first")
	}
}

// The same input gives the same bytes: a report can be compared and cached.
func TestDeterministic(t *testing.T) {
	a, _ := render(t, reporttest.Generated(50, 80, 20))
	b, _ := render(t, reporttest.Generated(50, 80, 20))
	if a != b {
		t.Error("two renderings of one input differ")
	}
}

func TestLargeReportSize(t *testing.T) {
	page, _ := render(t, reporttest.Generated(300, 400, 80))
	if len(page) >= 2<<20 {
		t.Errorf("report of 300 services and 400 distributions: %d bytes, want under 2 MB", len(page))
	}
	t.Logf("report.html of 300 services, 400 distributions, 80 steps: %d bytes", len(page))
}

func BenchmarkRender300Services(b *testing.B) {
	rel := reporttest.Generated(300, 400, 80)
	var n int
	for b.Loop() {
		var buf bytes.Buffer
		if _, err := (&report.Renderer{}).HTML(&buf, rel); err != nil {
			b.Fatal(err)
		}
		n = buf.Len()
	}
	b.ReportMetric(float64(n), "bytes/report")
}
