package server

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// AllowList says which targets may be pinged. Without it the pinger would be
// an open scanner of whatever network it sits in.
type AllowList struct{ rules []rule }

type rule struct {
	host   string     // exact name, or ".suffix" for "*.suffix"
	cidr   *net.IPNet // for address ranges
	lo, hi int        // port range; 0,0 = any port
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
		_, n, err := net.ParseCIDR(host)
		if err != nil {
			return rule{}, err
		}
		r.cidr = n
	case strings.HasPrefix(host, "*."):
		r.host = host[1:]
	case host == "" || host == "*":
		return rule{}, fmt.Errorf("a bare wildcard would allow every host")
	default:
		r.host = host
	}
	return r, nil
}

// Allows reports whether host:port may be pinged. Names are matched as
// written, never resolved: an address range only admits IP literals.
func (a *AllowList) Allows(host string, port int) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	ip := net.ParseIP(host)
	for _, r := range a.rules {
		if r.lo != 0 && (port < r.lo || port > r.hi) {
			continue
		}
		switch {
		case r.cidr != nil:
			if ip != nil && r.cidr.Contains(ip) {
				return true
			}
		case strings.HasPrefix(r.host, "."):
			if strings.HasSuffix(host, r.host) && len(host) > len(r.host) {
				return true
			}
		case host == r.host:
			return true
		}
	}
	return false
}
