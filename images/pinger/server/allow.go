package server

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Target is a host the pinger may dial, parsed once: either an IP address
// or a DNS host name, never something in between. The allow-list checks
// it and the dialler gets exactly it, so what was checked is what is
// dialled (an IPv6 literal with a zone such as "::ffff:127.0.0.1%25.cern.ch"
// must not pass as a name under *.cern.ch and then be dialled as loopback).
type Target struct {
	IP   netip.Addr // valid for an address (IPv4-mapped IPv6 unmapped to IPv4)
	Name string     // lower-case host name, no trailing dot, for a name
}

// String is the host as dialled (an IPv6 address without brackets).
func (t Target) String() string {
	if t.IP.IsValid() {
		return t.IP.String()
	}
	return t.Name
}

// ParseTarget parses a host query parameter. An IP address may not carry a
// zone; a name must be a valid DNS host name (RFC 1123 labels of letters,
// digits and inner hyphens, at most 253 characters) whose last label is
// not all digits (which resolvers may read as a number: "127.1"). Anything
// else — brackets, colons, '%', '_', spaces — is refused.
func ParseTarget(host string) (Target, error) {
	if host == "" {
		return Target{}, fmt.Errorf("empty host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return Target{}, fmt.Errorf("host %q: an IPv6 address with a zone is not a ping target", host)
		}
		return Target{IP: ip.Unmap()}, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if len(name) == 0 || len(name) > 253 {
		return Target{}, fmt.Errorf("host %q is not a valid host name (1 to 253 characters)", host)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !validLabel(l) {
			return Target{}, fmt.Errorf("host %q is neither an IP address nor a valid host name (label %q)", host, l)
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return Target{}, fmt.Errorf("host %q: a host name cannot end in a numeric label (write the IP address in full)", host)
	}
	return Target{Name: name}, nil
}

func validLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// AllowList says which targets may be pinged. Without it the pinger would be
// an open scanner of whatever network it sits in.
type AllowList struct{ rules []rule }

type rule struct {
	name   string       // exact host name, or ".suffix" for "*.suffix"
	prefix netip.Prefix // for addresses (a plain IP is a /32 or /128)
	lo, hi int          // port range; 0,0 = any port
}

// ParseAllowList reads comma-separated entries HOST[:PORT|:LO-HI], where HOST
// is a name, "*.domain", an IP or a CIDR (an IPv6 one in brackets when a port
// follows: [fd00::/8]:9100-9200).
func ParseAllowList(spec string) (*AllowList, error) {
	al := &AllowList{}
	for _, e := range strings.Split(spec, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		r, err := parseRule(e)
		if err != nil {
			return nil, fmt.Errorf("allow-list entry %q: %w", e, err)
		}
		al.rules = append(al.rules, r)
	}
	if len(al.rules) == 0 {
		return nil, fmt.Errorf("allow-list %q has no entries", spec)
	}
	return al, nil
}

func parseRule(e string) (rule, error) {
	host, ports := e, ""
	if strings.HasPrefix(e, "[") {
		end := strings.Index(e, "]")
		if end < 0 {
			return rule{}, fmt.Errorf("unclosed [")
		}
		host, ports = e[1:end], strings.TrimPrefix(e[end+1:], ":")
	} else if i := strings.LastIndex(e, ":"); i >= 0 && strings.Count(e, ":") == 1 {
		host, ports = e[:i], e[i+1:]
	}
	r := rule{}
	if ports != "" {
		lo, hi, ok := strings.Cut(ports, "-")
		if !ok {
			hi = lo
		}
		var err1, err2 error
		r.lo, err1 = strconv.Atoi(lo)
		r.hi, err2 = strconv.Atoi(hi)
		if err1 != nil || err2 != nil || r.lo < 1 || r.hi > 65535 || r.lo > r.hi {
			return rule{}, fmt.Errorf("port %q: want N or LO-HI within 1-65535", ports)
		}
	}
	host = strings.ToLower(host)
	switch {
	case strings.Contains(host, "/"):
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return rule{}, err
		}
		r.prefix = unmapPrefix(p.Masked())
	case host == "" || host == "*":
		return rule{}, fmt.Errorf("a bare wildcard would allow every host")
	case strings.HasPrefix(host, "*."):
		t, err := ParseTarget(host[2:])
		if err != nil || t.Name == "" {
			return rule{}, fmt.Errorf("%q: *. must be followed by a domain name", host)
		}
		r.name = "." + t.Name
	default:
		t, err := ParseTarget(host)
		if err != nil {
			return rule{}, err
		}
		if t.IP.IsValid() {
			r.prefix = netip.PrefixFrom(t.IP, t.IP.BitLen())
		} else {
			r.name = t.Name
		}
	}
	return r, nil
}

// unmapPrefix turns ::ffff:a.b.c.d/N (N ≥ 96) into a.b.c.d/(N-96), so an
// IPv4 range written either way matches the unmapped targets.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Allows reports whether the target may be pinged on port: address rules
// admit only addresses, name rules only names. Names are matched as
// written here; Resolve then checks what they resolve to.
func (a *AllowList) Allows(t Target, port int) bool {
	for _, r := range a.rules {
		if r.lo != 0 && (port < r.lo || port > r.hi) {
			continue
		}
		switch {
		case r.prefix.IsValid():
			if t.IP.IsValid() && r.prefix.Contains(t.IP) {
				return true
			}
		case t.Name == "":
		case strings.HasPrefix(r.name, "."):
			if strings.HasSuffix(t.Name, r.name) {
				return true
			}
		case t.Name == r.name:
			return true
		}
	}
	return false
}

// Resolver looks host names up; net.DefaultResolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// deniedRanges are where a ping must not land unless an address entry of
// the allow-list names the place: the pinger's own host (loopback,
// unspecified), the link (link-local, where cloud metadata services
// answer), groups (multicast) and what is not an address to dial.
// Private ranges are not here: DIRAC services live on them at CERN.
var deniedRanges = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("100.100.100.200/32"), "cloud metadata"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// nat64 carries an IPv4 address in its last 32 bits (RFC 6052): it is
// judged as that address.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// DeniedError is an address in a denied range that the allow-list does not
// name.
type DeniedError struct {
	Host  string // the host asked for
	Addr  netip.Addr
	Range string // what the range is: loopback, link-local, …
}

func (e *DeniedError) Error() string {
	const why = "the pinger dials such an address only when an address entry of PINGER_ALLOW names it or its range (a wider range does not count)"
	if e.Host != e.Addr.String() {
		return fmt.Sprintf("host %s resolves to %s (%s): %s", e.Host, e.Addr, e.Range, why)
	}
	return fmt.Sprintf("%s (%s): %s", e.Addr, e.Range, why)
}

// ResolveError is a name that could not be resolved to any address.
type ResolveError struct {
	Host string
	Err  error
}

func (e *ResolveError) Error() string { return fmt.Sprintf("resolving %s: %v", e.Host, e.Err) }
func (e *ResolveError) Unwrap() error { return e.Err }

// NotAllowedError is a target outside the allow-list.
type NotAllowedError struct{ HostPort string }

func (e *NotAllowedError) Error() string {
	return fmt.Sprintf("target %s is not in the pinger's allow-list", e.HostPort)
}

// Resolve gives the addresses the pinger may dial for target on port, and
// is the only way to them: the target must be allowed (Allows); a name is
// resolved once, here, and those addresses are what gets dialled — a
// second lookup at dial time could answer otherwise (DNS rebinding). Every
// address must lie outside the denied ranges (loopback, link-local with
// cloud metadata, unspecified, multicast…) unless an address entry at
// least as narrow as the range names it: "127.0.0.1:9197" or
// "169.254.0.0/16" lets those through (the metadata address needs an
// entry of its own), "0.0.0.0/0" does not. One denied
// address refuses the target: a name whose records mix a good address and
// a loopback one is not half-allowed.
func (a *AllowList) Resolve(ctx context.Context, r Resolver, t Target, port int) ([]netip.Addr, error) {
	if !a.Allows(t, port) {
		return nil, &NotAllowedError{HostPort: joinHostPort(t.String(), port)}
	}
	addrs := []netip.Addr{t.IP}
	if !t.IP.IsValid() {
		found, err := r.LookupNetIP(ctx, "ip", t.Name)
		if err != nil {
			return nil, &ResolveError{Host: t.Name, Err: err}
		}
		addrs = addrs[:0]
		for _, ip := range found {
			if ip = ip.Unmap(); !slices.Contains(addrs, ip) {
				addrs = append(addrs, ip)
			}
		}
		if len(addrs) == 0 {
			return nil, &ResolveError{Host: t.Name, Err: fmt.Errorf("no address")}
		}
	}
	for _, ip := range addrs {
		if what := a.denied(ip, port); what != "" {
			return nil, &DeniedError{Host: t.String(), Addr: ip, Range: what}
		}
	}
	return addrs, nil
}

// denied names the denied range ip lies in, unless an address rule for
// port at least as narrow as that range admits it; "" when ip may be
// dialled.
func (a *AllowList) denied(ip netip.Addr, port int) string {
	if ip.Zone() != "" {
		return "zoned"
	}
	judged := ip
	if nat64.Contains(ip) {
		b := ip.As16()
		judged = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, d := range deniedRanges {
		if !d.prefix.Contains(judged) {
			continue
		}
		for _, r := range a.rules {
			if r.prefix.IsValid() && r.prefix.Contains(judged) && r.prefix.Bits() >= d.prefix.Bits() && d.prefix.Contains(r.prefix.Addr()) &&
				(r.lo == 0 || port >= r.lo && port <= r.hi) {
				return ""
			}
		}
		if judged != ip {
			return "NAT64 form of a " + d.what + " address"
		}
		return d.what
	}
	return ""
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}
