package dips

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DIRAC's HTTPS (Tornado) services answer the same RPCs as DIPS ones over
// HTTP: a POST to https://host:port/<System>/<Component> with the form
// fields method (the RPC's name) and args (its arguments, JSON-encoded as
// DIRAC's JEncode does; an empty list when absent), authenticated by the
// client certificate, answered with the JEncoded S_OK/S_ERROR structure
// (DIRAC.Core.Tornado.Server.TornadoService, _getMethod/_getMethodArgs;
// private/BaseRequestHandler.__execute). ping is authorised for "all".
// Failures before the call are HTTP statuses: 401 for a missing or
// unaccepted certificate, 404 for no such route, and a dropped connection
// when the handler's initializeHandler (run at the first request) fails.

// ParseHTTPSURL parses https://host:port/System/Component.
func ParseHTTPSURL(raw string) (URL, error) {
	p, err := url.Parse(raw)
	if err != nil {
		return URL{}, fmt.Errorf("HTTPS service URL %q: %w", raw, err)
	}
	if p.Scheme != "https" {
		return URL{}, fmt.Errorf("HTTPS service URL %q: scheme must be https", raw)
	}
	if p.Hostname() == "" {
		return URL{}, fmt.Errorf("HTTPS service URL %q: no host", raw)
	}
	port, err := strconv.Atoi(p.Port())
	if err != nil || port < 1 || port > 65535 {
		return URL{}, fmt.Errorf("HTTPS service URL %q: port must be 1-65535", raw)
	}
	svc := strings.TrimLeft(p.Path, "/")
	if sys, comp, ok := strings.Cut(svc, "/"); !ok || sys == "" || comp == "" || strings.Contains(comp, "/") {
		return URL{}, fmt.Errorf("HTTPS service URL %q: path must be /System/Component", raw)
	}
	return URL{Scheme: "https", Host: p.Hostname(), Port: port, Service: svc}, nil
}

// HTTPError is an HTTP status other than 200 from an HTTPS service.
type HTTPError struct {
	URL    string
	Status int
	Body   string // the start of the body, for the message
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("dips: %s answered HTTP %d: %s", e.URL, e.Status, e.Body)
}

// PingHTTPS calls ping on an HTTPS (Tornado) service and returns its Value
// dict, with the client's certificate, CA pool, ServerName, timeouts and
// reply limit as for DIPS.
func (c *Client) PingHTTPS(ctx context.Context, rawURL string) (*Dict, error) {
	v, err := c.CallHTTPS(ctx, rawURL, "ping")
	if err != nil {
		return nil, err
	}
	d, ok := v.(*Dict)
	if !ok {
		return nil, &ProtocolError{Stage: "result", Err: fmt.Errorf("ping Value is a %s, not a dict", typeName(v))}
	}
	return d, nil
}

// CallHTTPS makes one RPC to an HTTPS service and returns the Value of its
// S_OK (an S_ERROR is a *RemoteError).
func (c *Client) CallHTTPS(ctx context.Context, rawURL, method string, args ...any) (any, error) {
	u, err := ParseHTTPSURL(rawURL)
	if err != nil {
		return nil, err
	}
	if args == nil {
		args = []any{}
	}
	encoded, err := EncodeJSON(args)
	if err != nil {
		return nil, fmt.Errorf("dips: encoding the arguments of %s: %w", method, err)
	}
	name := u.Host
	if c.ServerName != "" {
		name = c.ServerName
	}
	tlsCfg, err := c.tlsConfig(name)
	if err != nil {
		return nil, err
	}
	connectTimeout := c.ConnectTimeout
	if connectTimeout <= 0 {
		connectTimeout = DefaultConnectTimeout
	}
	callTimeout := c.CallTimeout
	if callTimeout <= 0 {
		callTimeout = DefaultCallTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout+callTimeout)
	defer cancel()
	tr := &http.Transport{
		TLSClientConfig:     tlsCfg,
		DialContext:         (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: connectTimeout,
		DisableKeepAlives:   true,
		ForceAttemptHTTP2:   false, // Tornado 5 speaks HTTP/1.1
		Proxy:               nil,   // a service is dialled directly, never through a proxy
	}
	defer tr.CloseIdleConnections()
	form := url.Values{"method": {method}, "args": {string(encoded)}}
	if c.HostCredentials {
		form.Set("extraCredentials", `"hosts"`)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", ClientVersion)
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("a DIRAC service does not redirect")
	}}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if isTLSRejection(err) {
			return nil, &TLSError{Addr: u.Addr(), Err: err}
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return nil, &ConnectError{Addr: u.Addr(), Err: err}
		}
		return nil, &ProtocolError{Stage: "result", Err: err}
	}
	defer resp.Body.Close()
	limit := c.MaxReplySize
	if limit <= 0 {
		limit = DefaultMaxReplySize
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, &ProtocolError{Stage: "result", Err: err}
	}
	if len(body) > limit {
		return nil, &ProtocolError{Stage: "result", Err: fmt.Errorf("reply larger than %d bytes", limit)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{URL: u.String(), Status: resp.StatusCode, Body: snippet(body)}
	}
	deadline, _ := ctx.Deadline()
	v, err := DecodeJSONBefore(bytes.TrimSpace(body), deadline)
	if err != nil {
		return nil, &ProtocolError{Stage: "result", Err: err}
	}
	r, err := ParseResult(v)
	if err != nil {
		return nil, &ProtocolError{Stage: "result", Err: err}
	}
	if !r.OK {
		return nil, &RemoteError{Stage: "call", Errno: r.Errno, Message: r.Message}
	}
	return r.Value, nil
}

// snippet is the start of an error body, on one line.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
