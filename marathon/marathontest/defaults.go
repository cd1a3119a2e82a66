package marathontest

import (
	"encoding/json"
	"maps"
)

// Marathon normalizes every definition it stores — defaults filled in,
// legacy fields moved to their canonical place, service ports assigned —
// and answers the stored form: a GET, a version, the body of a partial
// update's merge. So the stand-in does the same, at store time.

// localPortMin and localPortMax are where service ports come from
// (--local_port_min/max: 10000 and 20000 in examples/info.json; reference
// §1.8 "servicePort (0 = allocate from --local_port_min/max)").
const (
	localPortMin = 10000
	localPortMax = 20000
)

// appDefaults are what an app that does not set a field gets. From a
// documented GET answer (examples/app_list.json): args, user, env, disk,
// executor, constraints, uris, requirePorts, backoffSeconds,
// backoffFactor, maxLaunchDelaySeconds (3600 there), container,
// healthChecks, dependencies, labels, acceptedResourceRoles; upgradeStrategy
// 1/1 (reference §1.7, and the example); killSelection (schema default);
// instances 1 (app.raml's default, the schema's description). The others
// are not in the reference; they are Marathon 1.10's app.raml defaults as
// its GET answers show them (read in its sources): cmd, gpus, fetch,
// storeUrls, readinessChecks, secrets, residency, ipAddress,
// unreachableStrategy, role, tty. networks and portDefinitions depend on
// the app: normalize.
var appDefaults = map[string]any{
	"cmd": nil, "args": nil, "user": nil, "env": map[string]any{}, "instances": 1, "disk": 0, "gpus": 0, "executor": "",
	"constraints": []any{}, "uris": []any{}, "fetch": []any{}, "storeUrls": []any{},
	"requirePorts": false, "backoffSeconds": 1, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 3600,
	"container": nil, "healthChecks": []any{}, "readinessChecks": []any{}, "dependencies": []any{},
	"labels": map[string]any{}, "secrets": map[string]any{}, "acceptedResourceRoles": nil,
	"ipAddress": nil, "residency": nil,
	"unreachableStrategy": map[string]any{"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
	"killSelection":       "YOUNGEST_FIRST", "role": "*", "tty": false,
}

// upgradeDefaults are upgradeStrategy's (reference §1.7: 1.0 / 1.0).
var upgradeDefaults = map[string]any{"minimumHealthCapacity": 1, "maximumOverCapacity": 1}

// normalizeLocked is def as Marathon stores it; prev is the app's current
// definition (nil for a new app), whose service ports a port 0 keeps.
// Called with s.mu held.
func (s *Server) normalizeLocked(def, prev map[string]any) map[string]any {
	def = clone(def)
	migrateLegacy(def)
	for k, v := range appDefaults {
		if _, ok := def[k]; !ok {
			def[k] = v
		}
	}
	up, _ := def["upgradeStrategy"].(map[string]any)
	up = maps.Clone(up)
	if up == nil {
		up = map[string]any{}
	}
	for k, v := range upgradeDefaults {
		if _, ok := up[k]; !ok {
			up[k] = v
		}
	}
	def["upgradeStrategy"] = up
	if hcs, ok := def["healthChecks"].([]any); ok {
		for i, hc := range hcs {
			if m, ok := hc.(map[string]any); ok {
				hcs[i] = healthCheckDefaults(m)
			}
		}
	}
	// No networks at all is host networking (reference §1.8).
	if _, ok := def["networks"]; !ok {
		def["networks"] = []any{map[string]any{"mode": "host"}}
	}
	if hostNetworking(def) {
		// "Missing portDefinitions at create time defaults to one port
		// named default; send [] for none" (reference §1.8).
		if _, ok := def["portDefinitions"]; !ok {
			def["portDefinitions"] = []any{map[string]any{"port": 0, "protocol": "tcp", "name": "default"}}
		}
	} else if _, ok := def["portDefinitions"]; !ok {
		// "portDefinitions apply only to host networking" (reference §1.8).
		def["portDefinitions"] = []any{}
	}
	s.assignServicePortsLocked(def, prev)
	return clone(def)
}

// healthCheckDefaults fills one health check (reference §1.6): protocol
// HTTP, gracePeriodSeconds 300, intervalSeconds 60, timeoutSeconds 20,
// maxConsecutiveFailures 3, delaySeconds 15; path "/" for HTTP(S) checks;
// portIndex 0 for checks of a port that name neither port nor portIndex.
func healthCheckDefaults(hc map[string]any) map[string]any {
	hc = maps.Clone(hc)
	set := func(k string, v any) {
		if _, ok := hc[k]; !ok {
			hc[k] = v
		}
	}
	set("protocol", "HTTP")
	set("gracePeriodSeconds", 300)
	set("intervalSeconds", 60)
	set("timeoutSeconds", 20)
	set("maxConsecutiveFailures", 3)
	set("delaySeconds", 15)
	switch hc["protocol"] {
	case "HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS":
		set("path", "/")
	}
	if hc["protocol"] != "COMMAND" {
		if _, port := hc["port"]; !port {
			set("portIndex", 0)
		}
	}
	return hc
}

// migrateLegacy moves the legacy fields Marathon still accepts to the
// canonical ones it answers (reference §1.8: "Legacy inputs
// container.docker.network (BRIDGE/HOST/USER), container.docker.portMappings,
// … ports, uris are still accepted and migrated, but responses only
// contain canonical fields").
func migrateLegacy(def map[string]any) {
	if c, ok := def["container"].(map[string]any); ok {
		c = maps.Clone(c)
		if d, ok := c["docker"].(map[string]any); ok {
			d = maps.Clone(d)
			if n, ok := d["network"].(string); ok {
				if _, set := def["networks"]; !set {
					mode := map[string]string{"BRIDGE": "container/bridge", "HOST": "host", "USER": "container"}[n]
					if mode != "" {
						def["networks"] = []any{map[string]any{"mode": mode}}
					}
				}
				delete(d, "network")
			}
			if pms, ok := d["portMappings"]; ok {
				if _, set := c["portMappings"]; !set {
					c["portMappings"] = pms
				}
				delete(d, "portMappings")
			}
			c["docker"] = d
		}
		def["container"] = c
	}
	if ports, ok := def["ports"].([]any); ok {
		if _, set := def["portDefinitions"]; !set {
			var pds []any
			for _, p := range ports {
				pds = append(pds, map[string]any{"port": p, "protocol": "tcp"})
			}
			def["portDefinitions"] = append([]any{}, pds...)
		}
		delete(def, "ports")
	}
	if uris, ok := def["uris"].([]any); ok && len(uris) > 0 {
		if _, set := def["fetch"]; !set {
			var fetch []any
			for _, u := range uris {
				fetch = append(fetch, map[string]any{"uri": u})
			}
			def["fetch"] = fetch
		}
		def["uris"] = []any{}
	}
}

// hostNetworking says whether an app runs on its host's network: networks
// [{mode: host}] (reference §1.8).
func hostNetworking(def map[string]any) bool {
	nets, _ := def["networks"].([]any)
	if len(nets) == 0 {
		return true
	}
	n, _ := nets[0].(map[string]any)
	return n["mode"] == "host"
}

// assignServicePortsLocked gives each service port 0 — a port definition's
// port, a port mapping's servicePort — a port of Marathon's choosing
// ("port: 0 → Marathon picks", reference §1.8), which the stored
// definition then carries, as GET shows (examples/app_list.json's "ports":
// [10013, 10015]). The reference does not say what a new version of an
// app keeps: here a port 0 keeps the port the previous version had at the
// same place, so that an unchanged PUT stays unchanged; any other port 0
// gets the lowest port from localPortMin that no app uses.
func (s *Server) assignServicePortsLocked(def, prev map[string]any) {
	used := map[int]bool{}
	id, _ := def["id"].(string)
	for other, a := range s.apps {
		if other != id {
			for _, p := range servicePorts(a.current().def) {
				used[p] = true
			}
		}
	}
	for _, p := range servicePorts(def) {
		used[p] = true
	}
	old := servicePorts(prev)
	next := localPortMin
	assign := func(i int) int {
		if i < len(old) && old[i] != 0 {
			return old[i]
		}
		for used[next] && next < localPortMax {
			next++
		}
		used[next] = true
		return next
	}
	for i, e := range portEntries(def) {
		key := "port"
		if !hostNetworking(def) {
			key = "servicePort"
		}
		if num(e[key]) == 0 {
			e[key] = assign(i)
		}
	}
}

// portEntries are an app's port definitions (host networking) or port
// mappings (container networking), the objects themselves.
func portEntries(def map[string]any) []map[string]any {
	if def == nil {
		return nil
	}
	var list []any
	if hostNetworking(def) {
		list, _ = def["portDefinitions"].([]any)
	} else {
		list, _ = dig(def, "container", "portMappings").([]any)
	}
	var out []map[string]any
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// servicePorts are an app's service ports, in order (0 where unassigned).
func servicePorts(def map[string]any) []int {
	var out []int
	for _, e := range portEntries(def) {
		if hostNetworking(def) {
			out = append(out, num(e["port"]))
		} else {
			out = append(out, num(e["servicePort"]))
		}
	}
	return out
}

// num reads a JSON number (json.Number, float64 or int), 0 otherwise.
func num(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			f, _ := n.Float64()
			return int(f)
		}
		return int(i)
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}
