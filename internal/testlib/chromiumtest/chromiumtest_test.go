//go:build integration

package chromiumtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The recorders must see what they are there to catch, or the report's
// "no request, no console error" would prove nothing: a page that loads an
// image from the network, a page that logs an error, and a page whose
// Content-Security-Policy refuses an image.
func TestIntegrationRecordersCatchWhatTheyMust(t *testing.T) {
	b := Start(t)
	dir := t.TempDir()
	write := func(name, html string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(html), 0o644); err != nil {
			t.Fatal(err)
		}
		return "file://" + p
	}

	tab := b.NewTab(t)
	img := write("img.html", `<!DOCTYPE html><title>x</title><img src="http://127.0.0.1:9/leak.png">`)
	tab.Open(t, img)
	var blocked bool
	for _, r := range tab.Requests() {
		if r.URL == "http://127.0.0.1:9/leak.png" && r.Blocked {
			blocked = true
		}
	}
	if !blocked {
		t.Errorf("a page's request to the network was not caught and blocked: %+v", tab.Requests())
	}

	tab = b.NewTab(t)
	tab.Open(t, write("console.html", `<!DOCTYPE html><title>x</title><script>console.error("boom")</script>`))
	if m := strings.Join(tab.Messages(), "\n"); !strings.Contains(m, "console.error") || !strings.Contains(m, "boom") {
		t.Errorf("console.error not caught: %q", m)
	}

	tab = b.NewTab(t)
	tab.Open(t, write("csp.html", `<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src 'none'"><title>x</title><img src="http://127.0.0.1:9/refused.png">`))
	if m := strings.Join(tab.Messages(), "\n"); !strings.Contains(m, "refused.png") {
		t.Errorf("a request refused by the page's policy left no message: %q", m)
	}
	// Chrome reports the refused request too (Network.requestWillBeSent,
	// then loadingFailed "csp"), and it never reaches the Fetch stage: a
	// report that even tries to load something is caught.
	var seen bool
	for _, r := range tab.Requests() {
		if strings.Contains(r.URL, "refused.png") {
			seen = true
			if r.Blocked {
				t.Errorf("the policy let a request reach the network stage: %+v", r)
			}
		}
	}
	if !seen {
		t.Errorf("a request refused by the policy was not recorded: %+v", tab.Requests())
	}
	t.Logf("recorded: %v %q", tab.Requests(), tab.Messages())
}
