package marathontest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// App returns the current definition of an app as GET /v2/apps/{id}
// answers it (nil when absent), with its version and task counts.
func (s *Server) App(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[normID(id)]
	if a == nil {
		return nil
	}
	return s.appJSON(normID(id), a, true)
}

// appRoute serves /v2/apps/{id} and /v2/apps/{id}/versions[/{version}].
func (s *Server) appRoute(w http.ResponseWriter, r *http.Request, rest string) {
	if i := strings.LastIndex(rest, "/versions"); i >= 0 {
		if tail := rest[i+len("/versions"):]; tail == "" || strings.HasPrefix(tail, "/") && !strings.Contains(tail[1:], "/") {
			s.versions(w, r, normID(rest[:i]), strings.TrimPrefix(tail, "/"))
			return
		}
	}
	id := normID(rest)
	switch r.Method {
	case http.MethodGet:
		s.mu.Lock()
		a := s.apps[id]
		var body map[string]any
		if a != nil {
			body = s.appJSON(id, a, embeds(r, "app.tasks"))
		}
		s.mu.Unlock()
		if body == nil {
			appNotFound(w, id)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"app": body})
	case http.MethodPut:
		s.putApp(w, r, id)
	case http.MethodDelete:
		s.deleteApp(w, r, id)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "method not allowed"})
	}
}

// deleteApp is DELETE /v2/apps/{id}: a deployment of its own (reference
// §1.3), which stops the tasks and removes the app with its versions.
func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		appNotFound(w, id)
		return
	}
	if s.lockedLocked(w, r, id) {
		return
	}
	cur := a.current()
	d := s.startLocked(id, nil, &cur)
	w.Header().Set("Marathon-Deployment-Id", d.id)
	writeJSON(w, http.StatusOK, map[string]string{"deploymentId": d.id, "version": d.version})
}

func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var body map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || body == nil {
		msg := "not a JSON object"
		if err != nil {
			msg = err.Error()
		}
		// reference §1.3: 400 {"message":"Invalid JSON","details":[{path,errors}]}
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid JSON", "details": []any{map[string]any{"path": "/", "errors": []string{msg}}}})
		return nil, false
	}
	return body, true
}

// createApp is POST /v2/apps: create only (reference §1.3) — 201 with the
// app as stored plus its deployment, Location and Marathon-Deployment-Id;
// 409 without "deployments" when the id is taken.
func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	body, ok := s.decodeBody(w, r)
	if !ok {
		return
	}
	id, _ := body["id"].(string)
	id = normID(id)
	body["id"] = id
	if !s.validate(w, body) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps[id] != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"message": fmt.Sprintf("An app with id [%s] already exists.", id)})
		return
	}
	d := s.startLocked(id, &version{def: body}, nil)
	w.Header().Set("Marathon-Deployment-Id", d.id)
	w.Header().Set("Location", s.URL+"/v2/apps"+id)
	out := s.appJSON(id, s.apps[id], false)
	out["deployments"] = []any{map[string]string{"id": d.id}}
	writeJSON(w, http.StatusCreated, out)
}

// putApp is PUT /v2/apps/{id}, create-or-update (reference §1.3):
// partialUpdate (default true) merges the body's top-level fields into the
// current definition, false replaces it (absent fields back to their
// defaults); {"version": v} alone deploys a stored version again (existing
// apps only); 201 for a new app, 200 otherwise, with a DeploymentResult.
func (s *Server) putApp(w http.ResponseWriter, r *http.Request, id string) {
	body, ok := s.decodeBody(w, r)
	if !ok {
		return
	}
	partial := r.URL.Query().Get("partialUpdate") != "false"
	s.mu.Lock()
	a := s.apps[id]
	var cur map[string]any
	if a != nil {
		cur = clone(a.current().def)
	}
	s.mu.Unlock()
	var def map[string]any
	if v, isRollback := body["version"].(string); isRollback && len(body) == 1 {
		if a == nil {
			appNotFound(w, id)
			return
		}
		s.mu.Lock()
		old, found := a.findVersion(v)
		s.mu.Unlock()
		if !found {
			versionNotFound(w, id, v)
			return
		}
		def = clone(old.def)
	} else {
		// What GET adds to a definition is no part of it: a client that
		// sends an answer back changes nothing by it.
		for _, k := range statusFields {
			delete(body, k)
		}
		if bid, ok := body["id"].(string); ok && normID(bid) != id {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Object is not valid", "details": []any{map[string]any{"path": "/id", "errors": []string{"id in the body differs from the URL"}}}})
			return
		}
		body["id"] = id
		if cur != nil && partial {
			def = cur
			maps.Copy(def, body)
		} else {
			def = body
		}
		if !s.validate(w, def) {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a = s.apps[id]
	if a != nil && s.lockedLocked(w, r, id) {
		return
	}
	var prev *version
	if a != nil {
		c := a.current()
		prev = &c
	}
	d := s.startLocked(id, &version{def: def}, prev)
	w.Header().Set("Marathon-Deployment-Id", d.id)
	status := http.StatusOK
	if prev == nil {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]string{"deploymentId": d.id, "version": d.version})
}

// statusFields are what GET answers about an app besides its definition
// (reference §1.3: deployments, tasksStaged/Running/Healthy/Unhealthy,
// tasks; examples/app_list.json: version, versionInfo, ports).
var statusFields = []string{"version", "versionInfo", "deployments", "tasks", "tasksStaged", "tasksRunning",
	"tasksHealthy", "tasksUnhealthy", "lastTaskFailure", "taskStats", "readinessCheckResults", "counts"}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	apps := []any{}
	for _, id := range slices.Sorted(maps.Keys(s.apps)) {
		apps = append(apps, s.appJSON(id, s.apps[id], embeds(r, "apps.tasks")))
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": apps})
}

// appJSON is the app as Marathon returns it (reference §1.3,
// examples/app_list.json): the stored definition plus version,
// versionInfo, the legacy "ports" (its service ports), deployments under
// way and task counts — and the tasks themselves when embedded. Called
// with s.mu held.
func (s *Server) appJSON(id string, a *appState, embedTasks bool) map[string]any {
	cur := a.current()
	out := clone(cur.def)
	out["id"] = id
	out["version"] = cur.ts
	out["versionInfo"] = map[string]any{"lastConfigChangeAt": cur.configChange, "lastScalingAt": cur.ts}
	ports := []any{}
	for _, p := range servicePorts(cur.def) {
		ports = append(ports, p)
	}
	out["ports"] = ports
	deps := []any{}
	for _, did := range s.order {
		if d, ok := s.deployments[did]; ok && d.appID == id {
			deps = append(deps, map[string]string{"id": did})
		}
	}
	out["deployments"] = deps
	// Marathon's counters count every task, old and new alike.
	var staged, running, healthy int
	tasks := []any{}
	checks := hasHealthChecks(cur.def)
	for _, t := range a.tasks {
		state := "TASK_STAGING"
		if t.running {
			state = "TASK_RUNNING"
			running++
		} else {
			staged++
		}
		tj := map[string]any{"id": t.id, "appId": id, "host": t.host, "ports": append([]int{}, t.ports...), "state": state, "version": t.version,
			"stagedAt": stamp(t.started)}
		if t.running {
			tj["startedAt"] = stamp(t.runAt)
		}
		if t.running && checks {
			tj["healthCheckResults"] = []any{map[string]any{"alive": t.healthy, "consecutiveFailures": map[bool]int{true: 0, false: 1}[t.healthy], "instanceId": t.id}}
			if t.healthy {
				healthy++
			}
		}
		tasks = append(tasks, tj)
	}
	out["tasksStaged"] = staged
	out["tasksRunning"] = running
	out["tasksHealthy"] = healthy
	out["tasksUnhealthy"] = running - healthy
	if embedTasks {
		out["tasks"] = tasks
	}
	if a.lastFailure != "" {
		out["lastTaskFailure"] = map[string]any{"appId": id, "message": a.lastFailure, "state": "TASK_FAILED", "version": cur.ts}
	}
	return out
}

// onlyInstancesDiffer tells a scaling from a configuration change.
func onlyInstancesDiffer(a, b map[string]any) bool {
	a, b = clone(a), clone(b)
	if instances(a) == instances(b) {
		return false
	}
	delete(a, "instances")
	delete(b, "instances")
	return canon(a) == canon(b)
}
