package server

import (
	"fmt"
	"net/netip"
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
// written, never resolved.
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
