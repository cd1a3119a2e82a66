//go:build integration

package pipeline_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/chromiumtest"
)

// reportInBrowser opens a release's report.html in Debian's chromium
// (headless) as a release manager would, and returns the page's visible
// text: no console message and no request but the file itself are allowed.
// A screenshot goes next to the report.
func reportInBrowser(t *testing.T, dir string) string {
	t.Helper()
	page := filepath.Join(dir, "report.html")
	if _, err := os.Stat(page); err != nil {
		t.Fatalf("the release wrote no report: %v", err)
	}
	for _, f := range []string{"release-notes.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the release wrote no %s: %v", f, err)
		}
	}
	b := chromiumtest.Start(t)
	tab := b.NewTab(t)
	tab.Open(t, "file://"+page)
	text := chromiumtest.Eval[string](t, tab, `document.body.innerText`)
	if msgs := tab.Messages(); len(msgs) > 0 {
		t.Errorf("the report logged: %v", msgs)
	}
	if reqs := tab.Requests(); len(reqs) != 1 {
		t.Errorf("the report made %d requests, want the file alone: %+v", len(reqs), reqs)
	}
	os.WriteFile(filepath.Join(dir, "report.png"), tab.Screenshot(t), 0o644)
	return text
}

func wantInReport(t *testing.T, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("the report does not show %q", w)
		}
	}
}
