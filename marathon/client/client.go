// Package client talks to Marathon's REST API: the project's own client,
// used by the deploy, the scale and the registrator.
//
// Requests go over plain HTTP as JSON, each with the context of its call,
// so a caller's deadline bounds every request and not only the waits
// between them. A Client knows one cluster: the Marathons a Config lists,
// tried in turn when one fails; credentials go to their origins only, and
// a redirect anywhere else is refused (RedirectError). Errors are typed:
// APIError is Marathon's answer (status, message, locking deployments),
// Transient tells a failure worth retrying by its type, and Retry retries
// such failures with backoff under a deadline. Answers are bounded
// (Config.MaxAnswer) and error messages are redacted and clipped. Apps
// come back typed (marathon/app), with the JSON Marathon sent kept beside.
//
// The configuration is a value (Config): this package reads no
// environment. The variable names below are those the settings use, for
// errors to name the variable to fix.
//
// go-marathon v0.7.1, the only version the module proxy serves, is kept as
// Marathon() for callers that want its typed API, on the same HTTP client
// (the same credential rules), but the deploy does not use it: it has no
// context anywhere (a hanging Marathon held a call for the HTTP client's
// 30 s whatever the deadline); it reduces every network error and 5xx to
// ErrMarathonDown after marking its only member down for 5 s, so a failure
// cannot be classified; it models apps as Marathon 1.4 did and would
// silently drop container.portMappings and networks; it always sends
// Marathon's default partial update, which cannot remove a field; and its
// WaitOnDeployment cannot tell success from cancellation.
package client

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	marathon "github.com/gambol99/go-marathon"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// The environment variables the settings read into a Config; errors name
// them so that the fix is plain. Credentials come from the environment
// only, never from flags or files that end up in logs.
const (
	URLEnv      = "MARATHON_URL"
	UserEnv     = "MARATHON_USER"
	PasswordEnv = "MARATHON_PASSWORD"
	TokenEnv    = "MARATHON_TOKEN"
)

// Defaults of a Config.
const (
	// DefaultMaxAnswer bounds the body of a Marathon answer that is read.
	DefaultMaxAnswer = 32 << 20
	// DefaultRequestTimeout bounds each request, under the call's deadline.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultRetry is how long a caller without a deadline of its own
	// (the deploy's plan) retries a transient failure.
	DefaultRetry = 2 * time.Minute
)

// Config says which Marathon cluster to talk to, and how.
type Config struct {
	// URLs lists the Marathons of one cluster: one URL or several,
	// comma-separated (MARATHON_URL's form, go-marathon's: an entry
	// without a scheme takes the first's). A path prefix, where one is
	// wanted (DC/OS's /marathon), goes here.
	URLs string
	// User and Password authenticate with HTTP Basic; Token, when set,
	// instead, as "Authorization: token=…".
	User, Password, Token string
	// MaxAnswer bounds an answer's body (default DefaultMaxAnswer): a
	// larger answer is an error naming the bound, never cut short.
	MaxAnswer int64
	// RequestTimeout bounds each request (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Retry is Client.Retry (default DefaultRetry).
	Retry time.Duration
}

// Client talks to one Marathon cluster: the Marathons Config.URLs lists.
// Requests go to one of them and move to the next when it fails;
// credentials go to these origins only.
type Client struct {
	members []*url.URL
	cur     atomic.Int32 // index of the member in use
	origins map[string]bool
	http    *http.Client // Config.RequestTimeout for each request, under the call's deadline
	stream  *http.Client // the event stream: no overall timeout
	secrets []string     // what redact removes from errors
	m       marathon.Marathon
	// Retry bounds how long callers without a deadline of their own retry
	// a transient failure (the deploy's plan; deploys and scales use
	// their own timeout).
	Retry time.Duration
	// MaxAnswer bounds an answer's body: a larger answer is an error
	// naming the bound, never cut short. 0 is DefaultMaxAnswer.
	MaxAnswer int64
}

// New checks cfg and makes a client. Nothing is asked of Marathon yet.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.URLs) == "" {
		return nil, fmt.Errorf("%s is not set", URLEnv)
	}
	members, err := parseMembers(cfg.URLs)
	if err != nil {
		return nil, err
	}
	c := &Client{members: members, origins: map[string]bool{},
		Retry: cmp.Or(cfg.Retry, DefaultRetry), MaxAnswer: cmp.Or(cfg.MaxAnswer, DefaultMaxAnswer)}
	for _, m := range members {
		c.origins[origin(m)] = true
	}
	var auth string
	switch {
	case cfg.Token != "":
		auth = "token=" + cfg.Token
		c.secrets = append(c.secrets, cfg.Token, url.QueryEscape(cfg.Token))
	case cfg.User != "":
		basic := base64.StdEncoding.EncodeToString([]byte(cfg.User + ":" + cfg.Password))
		auth = "Basic " + basic
		c.secrets = append(c.secrets, basic, strings.TrimRight(basic, "="))
		if cfg.Password != "" {
			c.secrets = append(c.secrets, cfg.Password, url.QueryEscape(cfg.Password))
		}
	}
	tr := authTransport{base: http.DefaultTransport, origins: c.origins, auth: auth}
	c.http = &http.Client{Timeout: cmp.Or(cfg.RequestTimeout, DefaultRequestTimeout), Transport: tr, CheckRedirect: c.checkRedirect}
	c.stream = &http.Client{Transport: tr, CheckRedirect: c.checkRedirect}
	mcfg := marathon.NewDefaultConfig()
	var urls []string
	for _, m := range members {
		urls = append(urls, m.String())
	}
	mcfg.URL = strings.Join(urls, ",")
	mcfg.HTTPClient = c.http
	mcfg.EventsTransport = marathon.EventsTransportSSE
	mcfg.LogOutput = io.Discard
	c.m, err = marathon.NewClient(mcfg)
	if err != nil {
		return nil, fmt.Errorf("Marathon at %s: %s", strings.Join(c.listed(), ","), c.redact(err.Error()))
	}
	return c, nil
}

// Marathon exposes the go-marathon client (no context: its calls are
// bounded by Config.RequestTimeout only).
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

// authTransport adds the credentials to the requests for the configured
// Marathons (scheme, host and port as Config.URLs lists them), and to no
// other: a redirect elsewhere must not carry them. go-marathon is given
// none itself: with a DCOSToken it would also send every call to
// <url>/marathon/… (DC/OS's routing), where a plain Marathon answers 404.
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

// parseMembers reads Config.URLs: one URL or several, comma-separated
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
