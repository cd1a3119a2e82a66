package marathontest

import (
	"fmt"
	"net/http"
	"time"
)

// deployment is one deployment under way. "A deployment never fails by
// itself" (reference §1.4): one whose tasks never get healthy runs until
// it is cancelled or overridden.
type deployment struct {
	id, version, appID string
	started            time.Time
	outcome            Outcome
	target             *version // nil: the app is deleted
	prev               *version // nil: the deployment created the app
	restart            bool     // the configuration changed: new tasks replace the old
	scale              bool     // only the instance count changed: tasks are added or killed
	failedEmitted      time.Time
}

// Deployments returns the ids of the deployments under way.
func (s *Server) Deployments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, id := range s.order {
		if _, ok := s.deployments[id]; ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// lockedLocked answers 409 when a deployment holds the app (reference
// §1.3: AppLockedException, with the locking deployments), unless
// ?force=true, which cancels them without rollback. Called with s.mu held.
func (s *Server) lockedLocked(w http.ResponseWriter, r *http.Request, id string) bool {
	var locking []string
	for _, did := range s.order {
		if d, ok := s.deployments[did]; ok && d.appID == id {
			locking = append(locking, did)
		}
	}
	if len(locking) == 0 {
		return false
	}
	if r.URL.Query().Get("force") == "true" {
		for _, did := range locking {
			delete(s.deployments, did)
			s.emitLocked("deployment_failed", map[string]any{"id": did})
		}
		return false
	}
	var deps []any
	for _, did := range locking {
		deps = append(deps, map[string]string{"id": did})
	}
	writeJSON(w, http.StatusConflict, map[string]any{
		"message":     fmt.Sprintf("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/%s'.", locking[0]),
		"deployments": deps,
	})
	return true
}

// startLocked records the new version (if any) and starts a deployment:
// to target (nil: the app is deleted) from prev (nil: the app is new).
// Called with s.mu held.
func (s *Server) startLocked(id string, target, prev *version) *deployment {
	d := &deployment{id: newID(), appID: id, started: time.Now(), prev: prev}
	a := s.apps[id]
	if target != nil {
		var prevDef map[string]any
		if prev != nil {
			prevDef = prev.def
		}
		target.def = storeSets(s.normalizeLocked(target.def, prevDef))
		target.def["id"] = id
	}
	switch {
	case target == nil: // delete
		d.version = s.newVersion()
	case prev != nil && a != nil && canon(target.def) == canon(prev.def):
		// An identical definition: a new plan, whose version the app now
		// carries, but no configuration change and no restart (reference
		// §1.3: "Redeploying an identical definition does not restart
		// tasks, but a deployment id is still returned").
		*target = s.addVersionLocked(id, a, target.def, false)
		d.target, d.version = target, target.ts
		d.outcome = Outcome{Healthy: true}
	case prev != nil && a != nil && onlyInstancesDiffer(target.def, prev.def):
		// Scaling: a new version (versionInfo.lastScalingAt, reference
		// §1.5), no configuration change; tasks are launched or killed,
		// the others keep running (a ScaleApplication step, §1.4).
		*target = s.addVersionLocked(id, a, target.def, false)
		d.target, d.version, d.scale = target, target.ts, true
		d.outcome = s.outcome(target.def)
		want := instances(target.def)
		for len(a.tasks) > want { // the newest go first
			t := a.tasks[len(a.tasks)-1]
			a.tasks = a.tasks[:len(a.tasks)-1]
			s.statusLocked(id, t, "TASK_KILLED")
		}
		for len(a.tasks) < want {
			t := s.newTaskLocked(id, target.ts, target.def, d.outcome)
			a.tasks = append(a.tasks, t)
			s.statusLocked(id, t, "TASK_STAGING")
		}
	default:
		if a == nil {
			a = &appState{}
			s.apps[id] = a
		}
		*target = s.addVersionLocked(id, a, target.def, true)
		d.target, d.version, d.restart = target, target.ts, true
		d.outcome = s.outcome(target.def)
		for range instances(target.def) {
			t := s.newTaskLocked(id, target.ts, target.def, d.outcome)
			a.tasks = append(a.tasks, t)
			s.statusLocked(id, t, "TASK_STAGING")
		}
	}
	s.deployments[d.id] = d
	s.order = append(s.order, d.id)
	s.emitLocked("deployment_info", map[string]any{"plan": map[string]any{"id": d.id, "version": d.version}})
	return d
}

// listDeployments is GET /v2/deployments (reference §1.4,
// examples/deployments.json): the deployments under way only.
func (s *Server) listDeployments(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, id := range s.order {
		d, ok := s.deployments[id]
		if !ok {
			continue
		}
		action := "RestartApplication"
		switch {
		case d.target == nil:
			action = "StopApplication"
		case d.prev == nil:
			action = "StartApplication"
		case d.scale:
			action = "ScaleApplication"
		}
		step := map[string]any{"action": action, "app": d.appID}
		out = append(out, map[string]any{
			"id": d.id, "version": d.version, "affectedApps": []string{d.appID}, "affectedPods": []string{},
			"steps":          []any{map[string]any{"actions": []any{step}}},
			"currentActions": []any{map[string]any{"action": action, "app": d.appID, "readinessCheckResults": []any{}}},
			"currentStep":    1, "totalSteps": 1,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteDeployment cancels (reference §1.4): without force Marathon starts
// a rollback deployment to the previous version (or removes an app the
// deployment created) and answers its DeploymentResult; with force it only
// cancels, 202 without a body; an unknown id is a 404.
func (s *Server) deleteDeployment(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deployments[id]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": fmt.Sprintf("DeploymentPlan %s does not exist", id)})
		return
	}
	delete(s.deployments, id)
	s.emitLocked("deployment_failed", map[string]any{"id": id})
	if r.URL.Query().Get("force") == "true" {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var rb *deployment
	if d.prev == nil { // the app was new: rolling back removes it
		a := s.apps[d.appID]
		cur := a.current()
		rb = s.startLocked(d.appID, nil, &cur)
	} else {
		prev := *d.prev
		prev.def = clone(prev.def)
		rb = s.startLocked(d.appID, &prev, &version{ts: d.version, def: s.apps[d.appID].current().def})
	}
	w.Header().Set("Marathon-Deployment-Id", rb.id)
	writeJSON(w, http.StatusOK, map[string]string{"deploymentId": rb.id, "version": rb.version})
}
