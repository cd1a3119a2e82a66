package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"regexp"
	"strings"
	"syscall"
	"unicode/utf8"

	marathon "github.com/gambol99/go-marathon"
)

// maxMessage bounds what an error quotes of Marathon's answer: a proxy's
// 20 MB error page must not become a 20 MB error.
const maxMessage = 300

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

// IsNotFound says whether err is Marathon answering 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// IsConflict says whether err is Marathon answering 409 (an app locked by
// deployments, whose ids the APIError lists, or an id already taken).
func IsConflict(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusConflict
}

// RedirectError is a redirect to a host Config.URLs does not list. It is
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
// (EOF) or garbled (a header broken off mid-line: the connection was cut
// while Marathon answered), a timeout, a temporary DNS failure; Marathon
// answering 502, 503
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
	var pe textproto.ProtocolError
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
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &pe):
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
