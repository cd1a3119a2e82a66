package catalog

import (
	"fmt"
	"sort"
	"strings"
)

// Port rules for a services file, where every service gets a port of its
// own (a container per service). They depend only on the catalog, so the
// same release always gets the same ports.
const (
	// TwinOffset: an HTTPS service Tornado<X> whose DIPS twin <X> has a
	// template port p gets p+TwinOffset (DIRAC's DIPS ports are 9130-9199,
	// so HTTPS ones land in 10130-10199).
	TwinOffset = 1000
	// FirstFreePort: services with no template port and no twin take the
	// first free port from here on, in name order (8443 is DIRAC's
	// /Systems/Tornado/Port default).
	FirstFreePort = 8443
)

// Ports assigns every service a unique port, in three passes over the
// services in name order:
//  1. the ConfigTemplate's Port, unless an earlier service (by name) has it;
//  2. an HTTPS service Tornado<X> without a port: its twin's port +
//     TwinOffset, when <X> has a template port and that port is free;
//  3. the rest (and the losers of a clash): the first free port from
//     FirstFreePort upwards.
//
// notes says, per service, where its port came from when not pass 1.
func Ports(svcs []Service) (ports map[string]int, notes map[string]string) {
	ports, notes = map[string]int{}, map[string]string{}
	svcs = append([]Service(nil), svcs...)
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
	used := map[int]string{}
	template := map[string]int{}
	for _, s := range svcs {
		template[s.Name] = s.Port
	}
	var rest []Service
	for _, s := range svcs {
		if s.Port == 0 {
			rest = append(rest, s)
			continue
		}
		if other, ok := used[s.Port]; ok {
			notes[s.Name] = fmt.Sprintf("its ConfigTemplate port %d is %s's", s.Port, other)
			rest = append(rest, s)
			continue
		}
		used[s.Port], ports[s.Name] = s.Name, s.Port
	}
	var last []Service
	for _, s := range rest {
		sys, comp, _ := strings.Cut(s.Name, "/")
		twin := sys + "/" + strings.TrimPrefix(comp, "Tornado")
		if s.Port == 0 && s.Protocol == HTTPS && twin != s.Name && template[twin] != 0 {
			p := template[twin] + TwinOffset
			if _, taken := used[p]; !taken && p <= 65535 {
				used[p], ports[s.Name] = s.Name, p
				notes[s.Name] = fmt.Sprintf("its DIPS twin %s's port %d + %d", twin, template[twin], TwinOffset)
				continue
			}
		}
		last = append(last, s)
	}
	next := FirstFreePort
	for _, s := range last {
		for {
			if _, taken := used[next]; !taken {
				break
			}
			next++
		}
		used[next], ports[s.Name] = s.Name, next
		why := "no ConfigTemplate port"
		if n, ok := notes[s.Name]; ok {
			why = n
		}
		notes[s.Name] = fmt.Sprintf("%s: the first free port from %d", why, FirstFreePort)
	}
	return ports, notes
}
