// Package deploy puts rendered app definitions on Marathon: create or
// update each app, wait until its deployment has really succeeded (the new
// version runs and every instance is healthy), roll it back when it has not
// within a deadline, and print a plan instead when asked for a dry run.
//
// go-marathon drives deployments, versions and rollbacks. App bodies go over
// plain HTTP as JSON, for two reasons: v0.7.1, the only go-marathon version
// the module proxy serves, models apps as Marathon 1.4 did and would silently
// drop container.portMappings and networks; and it always sends Marathon's
// default partial update, which cannot remove a field. Its WaitOnDeployment
// is not used either: it cannot tell success from cancellation, and Marathon
// never fails a deployment by itself.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// Credentials come from the environment only, never from flags or files
// that end up in logs: MARATHON_USER/MARATHON_PASSWORD, or MARATHON_TOKEN.
const (
	URLEnv      = "MARATHON_URL"
	UserEnv     = "MARATHON_USER"
	PasswordEnv = "MARATHON_PASSWORD"
	TokenEnv    = "MARATHON_TOKEN"
)

// Client talks to one Marathon.
type Client struct {
	base  string
	http  *http.Client
	user  string
	pass  string
	token string
	m     marathon.Marathon
	// Retry bounds how long a transient failure is retried (default 2 min;
	// deploys use their own deadline).
	Retry time.Duration
	// MaxAnswer bounds one JSON answer (default DefaultMaxAnswer); a
	// longer one is an error saying so, never a truncated decode.
	MaxAnswer int64
}

// DefaultMaxAnswer is the default bound of one answer: /v2/apps with
// every task of a few thousand apps fits many times over.
const DefaultMaxAnswer = 32 << 20

// authTransport adds the credentials to every request, go-marathon's
// included. go-marathon is given none itself: with a DCOSToken it would
// also send every call to <url>/marathon/… (DC/OS's routing), where a
// plain Marathon answers 404 (MARATHON_TOKEN broke every deploy). A path
// prefix, where one is wanted, goes in MARATHON_URL.
type authTransport struct {
	base              http.RoundTripper
	user, pass, token string
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	switch {
	case t.token != "":
		r.Header.Set("Authorization", "token="+t.token)
	case t.user != "":
		r.SetBasicAuth(t.user, t.pass)
	}
	return t.base.RoundTrip(r)
}

// NewClient connects to baseURL with credentials read by getenv.
func NewClient(baseURL string, getenv func(string) string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("Marathon URL %q: want http(s)://host[:port][/path]", baseURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("Marathon URL: put credentials in %s/%s or %s, not in the URL", UserEnv, PasswordEnv, TokenEnv)
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), user: getenv(UserEnv), pass: getenv(PasswordEnv), token: getenv(TokenEnv)}
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: authTransport{base: http.DefaultTransport, user: c.user, pass: c.pass, token: c.token}}
	cfg := marathon.NewDefaultConfig()
	cfg.URL = c.base
	cfg.HTTPClient = c.http
	cfg.EventsTransport = marathon.EventsTransportSSE
	cfg.LogOutput = io.Discard
	c.m, err = marathon.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("Marathon at %s: %s", c.base, redact(err.Error(), c))
	}
	return c, nil
}

// FromEnv connects to $MARATHON_URL.
func FromEnv() (*Client, error) {
	u := os.Getenv(URLEnv)
	if u == "" {
		return nil, fmt.Errorf("%s is not set", URLEnv)
	}
	return NewClient(u, os.Getenv)
}

// Marathon exposes the go-marathon client.
func (c *Client) Marathon() marathon.Marathon { return c.m }

// APIError is a non-2xx answer.
type APIError struct {
	Status      int
	Message     string
	Deployments []string // the locking deployments of a 409
}

func (e *APIError) Error() string {
	if len(e.Deployments) > 0 {
		return fmt.Sprintf("Marathon answered %d: %s (locking deployments: %s)", e.Status, e.Message, strings.Join(e.Deployments, ", "))
	}
	return fmt.Sprintf("Marathon answered %d: %s", e.Status, e.Message)
}

// do sends a JSON request and decodes a JSON answer (numbers kept as text).
func (c *Client) do(ctx context.Context, method, path string, body any, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %s", method, path, redact(err.Error(), c))
	}
	defer resp.Body.Close()
	limit := c.MaxAnswer
	if limit <= 0 {
		limit = DefaultMaxAnswer
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if int64(len(raw)) > limit {
		if resp.StatusCode/100 == 2 {
			size := fmt.Sprintf("%d bytes", limit)
			if limit%(1<<20) == 0 {
				size = fmt.Sprintf("%d MiB", limit>>20)
			}
			return resp.Header, fmt.Errorf("%s %s: Marathon's answer is larger than %s (the client's limit)", method, path, size)
		}
		raw = raw[:limit]
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		var msg struct {
			Message     string `json:"message"`
			Deployments []struct {
				ID string `json:"id"`
			} `json:"deployments"`
			Details any `json:"details"`
		}
		if json.Unmarshal(raw, &msg) == nil && msg.Message != "" {
			e.Message = msg.Message
			if msg.Details != nil {
				d, _ := json.Marshal(msg.Details)
				e.Message += " " + string(d)
			}
			for _, d := range msg.Deployments {
				e.Deployments = append(e.Deployments, d.ID)
			}
		} else {
			e.Message = strings.TrimSpace(string(raw))
		}
		return resp.Header, fmt.Errorf("%s %s: %w", method, path, e)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: bad JSON answer: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// GetApp returns the app as Marathon runs it, or nil when it does not exist.
func (c *Client) GetApp(ctx context.Context, id string) (map[string]any, error) {
	var out struct {
		App map[string]any `json:"app"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v2/apps"+id, nil, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	return out.App, err
}

// GetAppTasks is GetApp with the app's tasks (embed=app.tasks): their
// versions and health check results.
func (c *Client) GetAppTasks(ctx context.Context, id string) (map[string]any, error) {
	var out struct {
		App map[string]any `json:"app"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v2/apps"+id+"?embed=app.tasks", nil, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	return out.App, err
}

// Get decodes the JSON answer to GET path into out (typed, unlike the
// maps the deploy compares); a 404 is an *APIError with Status 404.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	_, err := c.do(ctx, http.MethodGet, path, nil, out)
	return err
}

// Events opens Marathon's event stream (GET /v2/events, server-sent
// events), filtered to eventTypes when given. The stream has no overall
// timeout: it stays open until ctx ends or the connection drops.
func (c *Client) Events(ctx context.Context, eventTypes ...string) (io.ReadCloser, error) {
	q := url.Values{}
	for _, t := range eventTypes {
		q.Add("event_type", t)
	}
	path := "/v2/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	stream := &http.Client{Transport: c.http.Transport} // no Timeout: the stream is long-lived
	resp, err := stream.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /v2/events: %s", redact(err.Error(), c))
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("GET /v2/events: %w", &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))})
	}
	return resp.Body, nil
}

// ListApps returns every app.
func (c *Client) ListApps(ctx context.Context) ([]map[string]any, error) {
	var out struct {
		Apps []map[string]any `json:"apps"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v2/apps", nil, &out)
	return out.Apps, err
}

// PutApp creates or replaces an app and returns the deployment id and the
// new version. partial=false sends ?partialUpdate=false: fields missing from
// def go back to Marathon's defaults instead of keeping old values.
func (c *Client) PutApp(ctx context.Context, id string, def any, partial, force bool) (deployID, version string, err error) {
	q := url.Values{}
	if !partial {
		q.Set("partialUpdate", "false")
	}
	if force {
		q.Set("force", "true")
	}
	path := "/v2/apps" + id
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out struct {
		DeploymentID string `json:"deploymentId"`
		Version      string `json:"version"`
	}
	h, err := c.do(ctx, http.MethodPut, path, def, &out)
	if err != nil {
		return "", "", err
	}
	if out.DeploymentID == "" && h != nil {
		out.DeploymentID = h.Get("Marathon-Deployment-Id")
	}
	return out.DeploymentID, out.Version, nil
}

// redact keeps credentials out of error messages.
func redact(s string, c *Client) string {
	for _, secret := range []string{c.pass, c.token} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "****")
		}
	}
	return s
}

// Transient says whether an error is worth retrying: the network, or
// Marathon answering 502/503/504 — what it does during a leader election
// ("Could not determine the current leader") or under load — or
// go-marathon giving up on its only member after one of those.
func Transient(err error) bool {
	var ae *APIError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ae):
		return ae.Status == http.StatusBadGateway || ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusGatewayTimeout
	case errors.Is(err, marathon.ErrMarathonDown):
		return true
	}
	var ge *marathon.APIError
	if errors.As(err, &ge) {
		return ge.ErrCode == marathon.ErrCodeServer
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// retry runs f until it succeeds, fails for good, or deadline passes,
// waiting between tries (0.25 s, doubling, at most 5 s). A persistent
// failure is returned with how long it lasted.
func retry[T any](ctx context.Context, deadline time.Time, log io.Writer, what string, f func() (T, error)) (T, error) {
	wait := 250 * time.Millisecond
	start := time.Now()
	for n := 1; ; n++ {
		v, err := f()
		if !Transient(err) {
			return v, err
		}
		if time.Now().Add(wait).After(deadline) {
			return v, fmt.Errorf("%s: Marathon kept failing for %s (%d tries): %w", what, time.Since(start).Round(time.Second), n, err)
		}
		if log != nil {
			fmt.Fprintf(log, "%s: %v; retrying in %s\n", what, err, wait)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
