package registrator

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
)

// What may enter the sinks is decided here, once, as Marathon's answer is
// turned into wants: a task that cannot be written correctly is refused
// (with a reason, counted and logged once) rather than left to a sink to
// refuse — which used to abort the whole sync for every app.

// MaxLabel bounds the labels the registrator reads (check_http,
// check_interval, dirac_component): Consul refuses a meta value over 512
// bytes (agent/structs: metaValueMaxLength; at most 64 pairs, keys of at
// most 128 bytes of [A-Za-z0-9_-], none starting "consul-" — ours are
// fixed and fit), and dirac_component is one.
const MaxLabel = 512

// Refusal reasons: the reason label of registrator_entries_refused_total.
const (
	ReasonBadID           = "bad_id"            // app or task id that is no Marathon id (or a task id with '/')
	ReasonBadHost         = "bad_host"          // the task's host is no host name or address
	ReasonBadLabel        = "bad_label"         // a label over MaxLabel bytes or not UTF-8
	ReasonBadCheck        = "bad_check"         // check_http/check_interval that make no check
	ReasonCheckNotAllowed = "check_not_allowed" // check_http not under the pinger or the allow-list
	ReasonCheckInterval   = "check_interval"    // check_interval under the floor
	ReasonTooLarge        = "too_large"         // an entry over a sink's bound
	ReasonRefused         = "refused"           // the sink itself refused it (Consul's 400, etcd's "too large")
)

// DefaultMinCheckInterval is the floor of check_interval: Consul would
// run a check of 1 ms as fast as it can.
const DefaultMinCheckInterval = 5 * time.Second

// maxCheckTimeout is the HTTP check's timeout (Consul's default), cut to
// the interval when that is shorter so checks never pile up.
const maxCheckTimeout = 10 * time.Second

// CheckPolicy says which HTTP checks Consul may be asked to run: the
// pinger's /ping, and URLs under the allow-list. Anything else would let
// whoever writes a Marathon app make Consul (and its host) call any URL:
// cloud metadata, Consul's own API, hosts built from {host}.
type CheckPolicy struct {
	Pinger      string        // the pinger's base URL (the services file's pingerURL): checks go to <Pinger>/ping
	Allow       []string      // further URL prefixes, whole path segments; {host} and {port} are the task's
	MinInterval time.Duration // floor of check_interval; 0: DefaultMinCheckInterval
}

// checkPrefix is a parsed allowed URL prefix.
type checkPrefix struct {
	raw    string
	exact  bool // the pinger: the path itself, not what is under it
	scheme string
	host   string
	path   []string // segments
}

// parseCheckPolicy parses the policy once; what names the variable.
func parseCheckPolicy(p CheckPolicy, pingerWhat, allowWhat string) ([]checkPrefix, error) {
	var out []checkPrefix
	if p.Pinger != "" {
		c, err := parsePrefix(p.Pinger, false)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %v", pingerWhat, p.Pinger, err)
		}
		c.exact, c.path = true, append(c.path, "ping")
		out = append(out, c)
	}
	for _, a := range p.Allow {
		c, err := parsePrefix(a, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %v", allowWhat, a, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parsePrefix(raw string, placeholders bool) (checkPrefix, error) {
	probe := raw
	if placeholders {
		probe = fill(raw, "h", 1)
	}
	u, err := url.Parse(probe)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		return checkPrefix{}, fmt.Errorf("want an http(s)://host[:port][/path] URL")
	case u.User != nil:
		return checkPrefix{}, fmt.Errorf("no credentials in a check URL")
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return checkPrefix{}, fmt.Errorf("a prefix has no query or fragment")
	}
	segs, err := pathSegments(raw)
	if err != nil {
		return checkPrefix{}, err
	}
	return checkPrefix{raw: raw, scheme: u.Scheme, host: strings.ToLower(u.Host), path: segs}, nil
}

// pathSegments are the segments of a URL's path, refusing anything a
// server could resolve to another path: '%' (an encoded '.', '/' or '\'),
// '\', empty, "." and ".." segments.
func pathSegments(s string) ([]string, error) {
	_, rest, _ := strings.Cut(s, "://")
	if i := strings.IndexAny(rest, "/?#"); i < 0 {
		return nil, nil
	} else {
		rest = rest[i:]
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	if strings.ContainsAny(rest, `%\`) {
		return nil, fmt.Errorf("path %q: no '%%' escapes or '\\' in a check URL's path", rest)
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		return nil, nil
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	for _, g := range segs {
		if g == "" || g == "." || g == ".." {
			return nil, fmt.Errorf("path %q: no empty, '.' or '..' segments in a check URL", rest)
		}
	}
	return segs, nil
}

// fill is mesos-consul's substitution: {host} the task's agent, {port}
// its first port.
func fill(s, host string, port int) string {
	s = strings.ReplaceAll(s, "{host}", host)
	return strings.ReplaceAll(s, "{port}", strconv.Itoa(port))
}

// allowedCheck tells whether the filled check URL s is under one of the
// prefixes (the allow-list's filled for the same task).
func allowedCheck(s string, prefixes []checkPrefix, host string, port int) bool {
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Fragment != "" || strings.Contains(s, "#") || u.Opaque != "" {
		return false
	}
	segs, err := pathSegments(s)
	if err != nil {
		return false
	}
	for _, p := range prefixes {
		if p.raw != "" && strings.ContainsAny(p.raw, "{}") {
			if q, err := parsePrefix(fill(p.raw, host, port), false); err == nil {
				q.exact = p.exact
				p = q
			} else {
				continue
			}
		}
		if u.Scheme != p.scheme || strings.ToLower(u.Host) != p.host || len(segs) < len(p.path) || (p.exact && len(segs) != len(p.path)) {
			continue
		}
		ok := true
		for i, g := range p.path {
			ok = ok && segs[i] == g
		}
		if ok {
			return true
		}
	}
	return false
}

// label reads one of the labels the registrator uses, bounded.
func label(a app, name string) (string, bool, error) {
	v, ok := a.Labels[name]
	switch {
	case !ok:
		return "", false, nil
	case len(v) > MaxLabel:
		return "", true, fmt.Errorf("label %s: %d bytes (at most %d, Consul's limit for a meta value)", name, len(v), MaxLabel)
	case !utf8.ValidString(v):
		return "", true, fmt.Errorf("label %s: not UTF-8", name)
	}
	return v, true, nil
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// checkHost tells whether h is a host name or an IP address: it is
// written as the task's address and filled into check URLs.
func checkHost(h string) error {
	if len(h) <= 253 && (hostRE.MatchString(h) || net.ParseIP(h) != nil) {
		return nil
	}
	return fmt.Errorf("host %q: not a host name or an IP address", shorten(h, 80))
}

// admitTask decides whether a task may enter the sinks at all: its ids
// and host make its keys and addresses.
func admitTask(a app, t task) (reason string, err error) {
	if err := entry.CheckApp(a.ID); err != nil {
		return ReasonBadID, err
	}
	if err := entry.CheckTask(t.ID); err != nil {
		return ReasonBadID, err
	}
	if err := checkHost(t.Host); err != nil {
		return ReasonBadHost, err
	}
	return "", nil
}

// shorten cuts s to about n bytes for a message, keeping its head and
// its tail (where an error often says what is wrong: "…is too long").
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	head, tail := n*2/3, len(s)-n/3
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return s[:head] + fmt.Sprintf(" …(%d bytes cut)… ", tail-head) + s[tail:]
}
