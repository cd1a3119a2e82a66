//go:build integration

package registrator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
)

// front stands between the registrator and the STAND-IN Marathon
// (marathontest): it passes every request on unchanged, except what a test
// overrides — an event stream that closes at once, hangs, or carries only
// the events the test sends; an error page or an oversized answer of
// GET /v2/apps; an answer rewritten as no real Marathon would write it.
// The stand-in itself is left as it is.
type front struct {
	srv    *httptest.Server
	client *client.Client // the registrator's Marathon, through the front

	mu       sync.Mutex
	events   http.HandlerFunc         // GET /v2/events; nil: passed on
	apps     http.HandlerFunc         // GET /v2/apps (the list); nil: passed on
	rewrite  func(app map[string]any) // every app of an apps answer (list or one)
	requests []string
	inject   chan string // the events an injected stream sends ("type data")
}

func (w *world) front(getenv func(string) string) *front {
	w.t.Helper()
	target, _ := url.Parse(w.srv.URL)
	f := &front{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // the event stream, as it comes
	proxy.ModifyResponse = func(resp *http.Response) error {
		f.mu.Lock()
		rw := f.rewrite
		f.mu.Unlock()
		if rw == nil || resp.Request.Method != http.MethodGet || resp.StatusCode != 200 || resp.Request.URL.Path == "/v2/events" {
			return nil
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var body map[string]any
		if json.Unmarshal(raw, &body) == nil {
			if list, ok := body["apps"].([]any); ok {
				for _, a := range list {
					rw(a.(map[string]any))
				}
			}
			if a, ok := body["app"].(map[string]any); ok {
				rw(a)
			}
			raw, _ = json.Marshal(body)
		}
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		resp.ContentLength = int64(len(raw))
		resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
		return nil
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		events, apps := f.events, f.apps
		f.mu.Unlock()
		switch {
		case r.URL.Path == "/v2/events" && events != nil:
			events(rw, r)
		case r.URL.Path == "/v2/apps" && r.Method == http.MethodGet && apps != nil:
			apps(rw, r)
		default:
			proxy.ServeHTTP(rw, r)
		}
	}))
	w.t.Cleanup(f.srv.Close)
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var err error
	if f.client, err = client.New(client.Config{URLs: f.srv.URL, User: getenv(client.UserEnv), Password: getenv(client.PasswordEnv), Token: getenv(client.TokenEnv)}); err != nil {
		w.t.Fatal(err)
	}
	return f
}

func (f *front) setEvents(h http.HandlerFunc) { f.mu.Lock(); f.events = h; f.mu.Unlock() }
func (f *front) setApps(h http.HandlerFunc)   { f.mu.Lock(); f.apps = h; f.mu.Unlock() }
func (f *front) setRewrite(rw func(map[string]any)) {
	f.mu.Lock()
	f.rewrite = rw
	f.mu.Unlock()
}

// count is how many requests were "METHOD request-uri".
func (f *front) count(req string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r == req {
			n++
		}
	}
	return n
}

// injectEvents makes the event stream Marathon's attach event followed by
// what send sends, and nothing of the stand-in's.
func (f *front) injectEvents() {
	f.mu.Lock()
	f.inject = make(chan string, 16)
	ch := f.inject
	f.mu.Unlock()
	f.setEvents(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/event-stream")
		rw.WriteHeader(200)
		fmt.Fprintf(rw, "event: event_stream_attached\ndata: {\"eventType\":\"event_stream_attached\"}\n\n")
		rw.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-ch:
				kind, data, _ := strings.Cut(ev, " ")
				fmt.Fprintf(rw, "event: %s\ndata: %s\n\n", kind, data)
				rw.(http.Flusher).Flush()
			}
		}
	})
}

// send sends one event of kind for appID on the injected stream.
func (f *front) send(t *testing.T, kind, appID string) {
	t.Helper()
	data, _ := json.Marshal(map[string]any{"eventType": kind, "appId": appID, "taskStatus": "TASK_RUNNING", "timestamp": time.Now().UTC().Format(time.RFC3339)})
	select {
	case f.inject <- kind + " " + string(data):
	case <-time.After(10 * time.Second):
		t.Fatal("nobody reads the injected event stream")
	}
}
