// Package deploy puts rendered app definitions on Marathon: create or
// update each app, wait until its deployment has really succeeded (the new
// version runs and every instance is healthy), roll it back when it has not
// within a deadline, and print a plan instead when asked for a dry run.
//
// Requests go over plain HTTP as JSON, each with the context of its call,
// so MARATHON_TIMEOUT bounds every request and not only the waits between
// them. go-marathon v0.7.1, the only version the module proxy serves, is
// kept as Marathon() for callers that want its typed API, on the same HTTP
// client (the same credential rules), but the deploy does not use it: it
// has no context anywhere (a hanging Marathon held a call for the HTTP
// client's 30 s whatever the deadline); it reduces every network error and
// 5xx to ErrMarathonDown after marking its only member down for 5 s, so a
// failure cannot be classified; it models apps as Marathon 1.4 did and
// would silently drop container.portMappings and networks; it always sends
// Marathon's default partial update, which cannot remove a field; and its
// WaitOnDeployment cannot tell success from cancellation.
package deploy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	marathon "github.com/gambol99/go-marathon"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// Credentials come from the environment only, never from flags or files
// that end up in logs: MARATHON_USER/MARATHON_PASSWORD, or MARATHON_TOKEN.
const (
	URLEnv      = "MARATHON_URL"
	UserEnv     = "MARATHON_USER"
	PasswordEnv = "MARATHON_PASSWORD"
	TokenEnv    = "MARATHON_TOKEN"
)

// DefaultMaxAnswer bounds the body of a Marathon answer that is read.
const DefaultMaxAnswer = 32 << 20

// maxMessage bounds what an error quotes of Marathon's answer: a proxy's
// 20 MB error page must not become a 20 MB error.
const maxMessage = 300

// Client talks to one Marathon cluster: the Marathons MARATHON_URL lists
// (comma-separated, as go-marathon reads it). Requests go to one of them
// and move to the next when it fails; credentials go to these origins only.
type Client struct {
	members []*url.URL
	cur     atomic.Int32 // index of the member in use
	origins map[string]bool
	http    *http.Client // a 30 s bound for each request, under the call's deadline
	stream  *http.Client // the event stream: no overall timeout
	user    string
	secrets []string // what redact removes from errors
	m       marathon.Marathon
	// Retry bounds how long Plan retries a transient failure (default
	// 2 min; deploys and scales use their MARATHON_TIMEOUT).
	Retry time.Duration
	// MaxAnswer bounds an answer's body (default DefaultMaxAnswer): a
	// larger answer is an error naming the bound, never cut short.
	MaxAnswer int64
}

// authTransport adds the credentials to the requests for the configured
// Marathons (scheme, host and port as MARATHON_URL lists them), and to no
// other: a redirect elsewhere must not carry them. go-marathon is given
// none itself: with a DCOSToken it would also send every call to
// <url>/marathon/… (DC/OS's routing), where a plain Marathon answers 404.
// A path prefix, where one is wanted, goes in MARATHON_URL.
type authTransport struct {
	base    http.RoundTripper
	origins map[string]bool
	auth    string // the Authorization header's value, "" for none
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if t.auth != "" && t.origins[origin(r.URL)] {
		r.Header.Set("Authorization", t.auth)
	} else {
		r.Header.Del("Authorization")
	}
	return t.base.RoundTrip(r)
}

// origin is scheme://host:port with the port always written, so
// http://m and http://m:80 are one origin and https://m another.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// RedirectError is a redirect to a host MARATHON_URL does not list. It is
// not followed: a 307 would send the request — an app definition — and
// the credentials there. Marathon's standbys proxy to the leader rather
// than redirect (LeaderProxyFilter), so in a healthy cluster there is no
// such redirect; one is a misconfigured proxy, or a hostile one.
type RedirectError struct {
	Method, Path string
	From, To     string // origins
	Listed       []string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("Marathon at %s redirected %s %s to %s, which %s does not list (%s): not followed, so neither the request nor the credentials go there; add it to %s if it is a Marathon of this cluster",
		e.From, e.Method, e.Path, e.To, URLEnv, strings.Join(e.Listed, ", "), URLEnv)
}

func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if !c.origins[origin(req.URL)] {
		first := via[0]
		return &RedirectError{Method: first.Method, Path: first.URL.Path, From: origin(via[len(via)-1].URL), To: origin(req.URL) + req.URL.EscapedPath(), Listed: c.listed()}
	}
	return nil
}

func (c *Client) listed() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, origin(m))
	}
	return out
}

// parseMembers reads MARATHON_URL: one URL or several, comma-separated
// (go-marathon's form: an entry without a scheme takes the first's).
func parseMembers(spec string) ([]*url.URL, error) {
	var out []*url.URL
	scheme := ""
	for i, e := range strings.Split(spec, ",") {
		e = strings.TrimSpace(e)
		shown := redact.URL(e)
		if e == "" {
			return nil, fmt.Errorf("%s %q: entry %d is empty", URLEnv, redact.URL(spec), i+1)
		}
		if scheme != "" && !strings.Contains(e, "://") {
			e = scheme + "://" + e
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%s entry %q: want http(s)://host[:port][/path]", URLEnv, shown)
		}
		if u.User != nil {
			return nil, fmt.Errorf("%s entry %q: put credentials in %s/%s or %s, not in the URL", URLEnv, shown, UserEnv, PasswordEnv, TokenEnv)
		}
		if scheme == "" {
			scheme = u.Scheme
		}
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		out = append(out, u)
	}
	return out, nil
}

// NewClient connects to baseURL (one Marathon URL, or several
// comma-separated) with credentials read by getenv.
func NewClient(baseURL string, getenv func(string) string) (*Client, error) {
	members, err := parseMembers(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{members: members, origins: map[string]bool{}, user: getenv(UserEnv), Retry: 2 * time.Minute, MaxAnswer: DefaultMaxAnswer}
	for _, m := range members {
		c.origins[origin(m)] = true
	}
	pass, token := getenv(PasswordEnv), getenv(TokenEnv)
	var auth string
	switch {
	case token != "":
		auth = "token=" + token
		c.secrets = append(c.secrets, token, url.QueryEscape(token))
	case c.user != "":
		basic := base64.StdEncoding.EncodeToString([]byte(c.user + ":" + pass))
		auth = "Basic " + basic
		c.secrets = append(c.secrets, basic, strings.TrimRight(basic, "="))
		if pass != "" {
			c.secrets = append(c.secrets, pass, url.QueryEscape(pass))
		}
	}
	tr := authTransport{base: http.DefaultTransport, origins: c.origins, auth: auth}
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: tr, CheckRedirect: c.checkRedirect}
	c.stream = &http.Client{Transport: tr, CheckRedirect: c.checkRedirect}
	cfg := marathon.NewDefaultConfig()
	var urls []string
	for _, m := range members {
		urls = append(urls, m.String())
	}
	cfg.URL = strings.Join(urls, ",")
	cfg.HTTPClient = c.http
	cfg.EventsTransport = marathon.EventsTransportSSE
	cfg.LogOutput = io.Discard
	c.m, err = marathon.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("Marathon at %s: %s", strings.Join(c.listed(), ","), c.redact(err.Error()))
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

// Marathon exposes the go-marathon client (no context: its calls are
// bounded by the HTTP client's 30 s only).
func (c *Client) Marathon() marathon.Marathon { return c.m }

// member is the Marathon requests go to now.
func (c *Client) member() *url.URL { return c.members[int(c.cur.Load())%len(c.members)] }

// failover moves to the next listed Marathon after m failed.
func (c *Client) failover(m *url.URL) {
	for i, x := range c.members {
		if x == m {
			c.cur.CompareAndSwap(int32(i), int32((i+1)%len(c.members)))
		}
	}
}

// APIError is a non-2xx answer. Message is Marathon's message, with the
// credentials removed and cut to a few hundred bytes.
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

// apiError reads a non-2xx answer's body (at most 64 KiB of it).
func (c *Client) apiError(resp *http.Response) *APIError {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Status: resp.StatusCode}
	var msg struct {
		Message     string `json:"message"`
		Deployments []struct {
			ID string `json:"id"`
		} `json:"deployments"`
		Details any `json:"details"`
	}
	text := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &msg) == nil && msg.Message != "" {
		text = msg.Message
		if msg.Details != nil {
			d, _ := json.Marshal(msg.Details)
			text += " " + string(d)
		}
		for _, d := range msg.Deployments {
			e.Deployments = append(e.Deployments, clip(c.redact(d.ID), 64))
		}
	}
	e.Message = clip(c.redact(text), maxMessage)
	return e
}

// requestError is a failed request: its message redacted and bounded, the
// failure itself kept underneath for errors.Is/As (Transient).
type requestError struct {
	msg string
	err error
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.err }

func (c *Client) fail(method, path string, err error) error {
	return &requestError{msg: method + " " + path + ": " + clip(c.redact(err.Error()), 2*maxMessage), err: err}
}

// do sends a JSON request to the Marathon in use and decodes a JSON answer
// (numbers kept as text). ctx bounds it.
func (c *Client) do(ctx context.Context, method, path string, body any, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	m := c.member()
	req, err := http.NewRequestWithContext(ctx, method, m.String()+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if Transient(err) {
			c.failover(m)
		}
		return nil, c.fail(method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		e := c.apiError(resp)
		if Transient(e) {
			c.failover(m)
		}
		return resp.Header, fmt.Errorf("%s %s: %w", method, path, e)
	}
	limit := c.MaxAnswer
	if limit <= 0 {
		limit = DefaultMaxAnswer
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.Header, c.fail(method, path, err)
	}
	if int64(len(raw)) > limit {
		size := fmt.Sprintf("%d bytes", limit)
		if limit%(1<<20) == 0 {
			size = fmt.Sprintf("%d MiB", limit>>20)
		}
		return resp.Header, fmt.Errorf("%s %s: Marathon's answer is larger than %s (the client's limit): refused rather than cut", method, path, size)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: bad JSON answer: %s", method, path, clip(c.redact(err.Error()), maxMessage))
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
// timeout: it stays open until ctx ends or the connection drops. A
// redirect to a Marathon MARATHON_URL does not list is refused, as for
// every request.
func (c *Client) Events(ctx context.Context, eventTypes ...string) (io.ReadCloser, error) {
	q := url.Values{}
	for _, t := range eventTypes {
		q.Add("event_type", t)
	}
	path := "/v2/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	m := c.member()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.String()+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.stream.Do(req)
	if err != nil {
		if Transient(err) {
			c.failover(m)
		}
		return nil, c.fail(http.MethodGet, "/v2/events", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := c.apiError(resp)
		resp.Body.Close()
		if Transient(e) {
			c.failover(m)
		}
		return nil, fmt.Errorf("GET /v2/events: %w", e)
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
	return c.deploying(ctx, http.MethodPut, path, def)
}

// deploying makes a change Marathon answers with a DeploymentResult
// ({deploymentId, version}, or the Marathon-Deployment-Id header).
func (c *Client) deploying(ctx context.Context, method, path string, body any) (deployID, version string, err error) {
	var out struct {
		DeploymentID string `json:"deploymentId"`
		Version      string `json:"version"`
	}
	h, err := c.do(ctx, method, path, body, &out)
	if err != nil {
		return "", "", err
	}
	if out.DeploymentID == "" && h != nil {
		out.DeploymentID = h.Get("Marathon-Deployment-Id")
	}
	return out.DeploymentID, out.Version, nil
}

// deployment is one entry of GET /v2/deployments.
type deployment struct {
	ID           string   `json:"id"`
	Version      string   `json:"version"`
	AffectedApps []string `json:"affectedApps"`
}

func (c *Client) deployments(ctx context.Context) ([]deployment, error) {
	var out []deployment
	_, err := c.do(ctx, http.MethodGet, "/v2/deployments", nil, &out)
	return out, err
}

// cancelDeployment cancels a deployment; Marathon reverts it under a new
// deployment, whose id and version it answers (DELETE without force).
func (c *Client) cancelDeployment(ctx context.Context, id string) (string, string, error) {
	return c.deploying(ctx, http.MethodDelete, "/v2/deployments/"+url.PathEscape(id), nil)
}

// deleteApp removes an app (a deployment of its own).
func (c *Client) deleteApp(ctx context.Context, id string) (string, string, error) {
	return c.deploying(ctx, http.MethodDelete, "/v2/apps"+id, nil)
}

// putVersion deploys a stored version's definition again (PUT
// {"version": v}): Marathon runs it as a new version.
func (c *Client) putVersion(ctx context.Context, id, version string, force bool) (string, string, error) {
	path := "/v2/apps" + id
	if force {
		path += "?force=true"
	}
	return c.deploying(ctx, http.MethodPut, path, map[string]string{"version": version})
}

// scaleApp sets the instance count alone (a partial update: Marathon
// scales, restarting nothing).
func (c *Client) scaleApp(ctx context.Context, id string, n int, force bool) (string, string, error) {
	path := "/v2/apps" + id
	if force {
		path += "?force=true"
	}
	return c.deploying(ctx, http.MethodPut, path, map[string]int{"instances": n})
}

// headerSecret finds what looks like a credential in a quoted header or
// query: "Basic …", "Bearer …", "token=…".
var headerSecret = regexp.MustCompile(`(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{4,}|\btoken=[^\s"',;&]+`)

// redact keeps credentials out of error messages: ours (the password, the
// token, the Basic header's encoding of both), and anything that looks
// like an Authorization value an answer echoes.
func (c *Client) redact(s string) string {
	for _, secret := range c.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "****")
		}
	}
	return headerSecret.ReplaceAllStringFunc(s, func(m string) string {
		if i := strings.IndexAny(m, " \t="); i >= 0 {
			return m[:i+1] + "****"
		}
		return "****"
	})
}

// clip makes s one line of at most n bytes (whole UTF-8 characters),
// saying how long it was.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes in all)", s[:cut], len(s))
}

// Transient says whether an error is worth retrying, by its type: the
// connection refused, reset, aborted or broken, the answer cut short
// (EOF), a timeout, a temporary DNS failure; Marathon answering 502, 503
// or 504 — what it and the proxies in front of it do during a leader
// election ("Could not determine the current leader") or under load; or
// go-marathon giving up on its members after one of those. Not: a refused
// redirect, a TLS or certificate failure, a cancelled call, any other
// answer of Marathon's.
func Transient(err error) bool {
	var re *RedirectError
	var ae *APIError
	var ge *marathon.APIError
	var dns *net.DNSError
	var ne net.Error
	var oe *net.OpError
	switch {
	case err == nil, errors.As(err, &re), errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &ae):
		return ae.Status == http.StatusBadGateway || ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusGatewayTimeout
	case errors.Is(err, marathon.ErrMarathonDown):
		return true
	case errors.As(err, &ge):
		return ge.ErrCode == marathon.ErrCodeServer
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &dns):
		return dns.IsTemporary || dns.IsTimeout
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &oe):
		// dial, read, write; not "remote error" (a TLS alert)
		return oe.Op == "dial" || oe.Op == "read" || oe.Op == "write"
	}
	return false
}

// retry runs f until it succeeds, fails for good, or deadline passes,
// waiting between tries (0.25 s, doubling, at most 5 s, never past the
// deadline). Every try gets the time left: f's ctx ends at the deadline.
// A persistent failure is returned with how long it lasted.
func retry[T any](ctx context.Context, deadline time.Time, log io.Writer, what string, f func(context.Context) (T, error)) (T, error) {
	tctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	wait := 250 * time.Millisecond
	start := time.Now()
	var last error // the last failure that says more than "deadline exceeded"
	for n := 1; ; n++ {
		v, err := f(tctx)
		if !Transient(err) || ctx.Err() != nil {
			return v, err
		}
		if last == nil || !errors.Is(err, context.DeadlineExceeded) {
			last = err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return v, fmt.Errorf("%s: Marathon kept failing for %s (%d tries): %w", what, time.Since(start).Round(100*time.Millisecond), n, last)
		}
		if log != nil {
			fmt.Fprintf(log, "%s: %v; retrying in %s\n", what, err, min(wait, left).Round(time.Millisecond))
		}
		if err := sleep(ctx, min(wait, left)); err != nil {
			return v, err
		}
		wait = min(2*wait, 5*time.Second)
	}
}
