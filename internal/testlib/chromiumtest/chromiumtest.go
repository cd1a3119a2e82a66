// Package chromiumtest runs Debian's chromium, headless, for tests that
// must see a page as a browser does (the release report): it starts one
// browser per test with a new profile and no background networking, and
// gives tabs that record every request the page makes and every console
// message, and block any request that is not the page itself.
//
// A missing chromium fails the test, never skips it: the test set-up
// (hostsetup.TestNeeds) installs Debian's chromium package.
package chromiumtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Debian's /usr/bin/chromium is a launcher script that sources
// /etc/chromium.d: it exports Google API keys and adds flags that turn on
// remote extensions. The tests run the browser binary behind it, with
// only their own flags.
var binaries = []string{"/usr/lib/chromium/chromium"}

// ExecPath is the chromium binary to run.
func ExecPath() (string, error) {
	for _, b := range binaries {
		if st, err := os.Stat(b); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return b, nil
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", errors.New("chromium is not installed: apt-get install -y chromium (Debian's package; `go run mage.go test` installs it)")
}

// Flags are what the browser runs with: headless, no first-run work, and
// nothing that talks to the network on its own.
func Flags() []chromedp.ExecAllocatorOption {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,InterestFeedContentSuggestions"),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	return opts
}

// Browser is one headless chromium, closed when the test ends.
type Browser struct {
	ctx    context.Context
	output *lockedBuffer
}

// Start starts chromium for t, or fails t.
func Start(t testing.TB) *Browser {
	t.Helper()
	path, err := ExecPath()
	if err != nil {
		t.Fatalf("CHROMIUM MISSING: %v", err)
	}
	// A short home of its own: Chromium's singleton socket lives under
	// TMPDIR, and a test's TempDir (named after the test) can make that
	// path longer than a Unix socket's 108 bytes.
	home, err := os.MkdirTemp("", "chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	out := &lockedBuffer{}
	opts := append(Flags(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(filepath.Join(home, "profile")),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
		// Its own environment: no credentials or proxies of the test's.
		chromedp.NoInheritEnv,
		chromedp.Env("HOME="+home, "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TZ=UTC", "TMPDIR="+home),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", path, err, out.String())
	}
	return &Browser{ctx: ctx, output: out}
}

// Request is one request a page made.
type Request struct {
	URL, Type string
	Blocked   bool // stopped by the tab: not the page itself
}

// Tab is one tab of the browser; it records what its pages do.
type Tab struct {
	Ctx context.Context

	mu       sync.Mutex
	allowed  map[string]bool
	requests []Request
	messages []string
}

// NewTab opens a tab in b. Every request the tab's pages make is recorded;
// a request for anything but a page opened with Open is failed before it
// leaves (the Fetch domain), and recorded as blocked.
func (b *Browser) NewTab(t testing.TB) *Tab {
	t.Helper()
	tab := &Tab{allowed: map[string]bool{}}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(tab.listen))
	t.Cleanup(cancel)
	tab.Ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v\n%s", err, b.output.String())
	}
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}}); err != nil {
		t.Fatalf("Fetch.enable: %v", err)
	}
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			url := ev.Request.URL
			if tab.isAllowed(url) {
				_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				continue
			}
			tab.mu.Lock()
			tab.requests = append(tab.requests, Request{URL: url, Type: string(ev.ResourceType), Blocked: true})
			tab.mu.Unlock()
			_, _ = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
		}
	}()
	return tab
}

func (tab *Tab) isAllowed(url string) bool {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return tab.allowed[url]
}

// listen runs in the tab's event loop: it only records.
func (tab *Tab) listen(ev any) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		tab.requests = append(tab.requests, Request{URL: ev.Request.URL, Type: string(ev.Type)})
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		tab.messages = append(tab.messages, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
	case *runtime.EventExceptionThrown:
		tab.messages = append(tab.messages, "exception: "+ev.ExceptionDetails.Text)
	case *log.EventEntryAdded:
		if ev.Entry != nil {
			tab.messages = append(tab.messages, fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	}
}

// Open loads url and waits until the page is laid out and painted; it
// returns how long that took.
func (tab *Tab) Open(t testing.TB, url string) time.Duration {
	t.Helper()
	tab.mu.Lock()
	tab.allowed[url] = true
	tab.mu.Unlock()
	start := time.Now()
	if err := chromedp.Do(tab.Ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	// two animation frames: the page has been styled, laid out and painted
	if _, err := chromedp.Run(tab.Ctx, chromedp.Evaluate[chromedp.Void](
		`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(document.body.getBoundingClientRect().height))))`,
		chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("waiting for %s to paint: %v", url, err)
	}
	return time.Since(start)
}

// Requests are the requests the tab's pages made so far.
func (tab *Tab) Requests() []Request {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]Request(nil), tab.requests...)
}

// Messages are the console messages, exceptions and browser log entries
// so far.
func (tab *Tab) Messages() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.messages...)
}

// Reset forgets the requests and messages recorded so far.
func (tab *Tab) Reset() {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	tab.requests, tab.messages = nil, nil
}

// Eval evaluates a JavaScript expression in the tab's page (through the
// DevTools protocol: the page's own policy forbids scripts) and decodes it.
func Eval[T any](t testing.TB, tab *Tab, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// Screenshot is a PNG of the whole page.
func (tab *Tab) Screenshot(t testing.TB) []byte {
	t.Helper()
	png, err := chromedp.Run(tab.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return png
}

// ScreenshotOf is a PNG of the first element that matches a CSS selector.
func (tab *Tab) ScreenshotOf(t testing.TB, selector string) []byte {
	t.Helper()
	png, err := chromedp.Run(tab.Ctx, chromedp.Screenshot(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", selector, err)
	}
	return png
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
