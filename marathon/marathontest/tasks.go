package marathontest

import (
	"cmp"
	"strings"
	"time"
)

// task is one instance; its version is the app version it was started
// with, as in Marathon's task JSON (examples/app_tasks.json).
type task struct {
	id, version string
	host        string
	ports       []int
	started     time.Time
	runAt       time.Time // when a staging task runs (Outcome.Delay after it was launched)
	outcome     Outcome
	checks      bool // its version has health checks
	running     bool // TASK_RUNNING (else TASK_STAGING)
	healthy     bool
	failAt      time.Time // when a healthy task turns unhealthy (Outcome.FailAfter)
}

// taskID is Marathon 1.10's task id: <app id with '_' for '/'>.instance-<uuid>._app.1.
func taskID(appID string) string {
	return strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_") + ".instance-" + newID() + "._app.1"
}

func instanceID(taskID string) string { return strings.TrimSuffix(taskID, "._app.1") }

func (s *Server) loop() {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.tick(now)
		}
	}
}

// tick moves tasks and deployments on.
func (s *Server) tick(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Tasks: staging ones run once their delay is over; healthy ones whose
	// Outcome says so turn unhealthy later.
	for id, a := range s.apps {
		for _, t := range a.tasks {
			if !t.running && now.After(t.runAt) {
				t.running = true
				t.healthy = t.checks && t.outcome.Healthy
				s.statusLocked(id, t, "TASK_RUNNING")
				if t.checks {
					s.healthLocked(id, t)
				}
				if t.healthy && t.outcome.FailAfter > 0 {
					t.failAt = now.Add(t.outcome.FailAfter)
				}
			}
			if t.healthy && !t.failAt.IsZero() && now.After(t.failAt) {
				t.healthy = false
				a.lastFailure = "health check failed: dirac-self-ping exited 1"
				s.emitLocked("failed_health_check_event", map[string]any{"appId": id, "taskId": t.id, "instanceId": instanceID(t.id), "version": t.version})
				s.healthLocked(id, t)
			}
		}
	}
	for _, id := range s.order {
		d, ok := s.deployments[id]
		if !ok || now.Sub(d.started) < d.outcome.Delay {
			continue
		}
		a := s.apps[d.appID]
		if d.target == nil { // stop/delete
			for _, t := range a.tasks {
				s.statusLocked(d.appID, t, "TASK_KILLED")
			}
			delete(s.apps, d.appID)
			delete(s.deployments, id)
			s.emitLocked("app_terminated_event", map[string]any{"appId": d.appID})
			s.emitLocked("deployment_success", map[string]any{"id": id})
			continue
		}
		if !d.restart && !d.scale { // no configuration change: nothing restarts
			delete(s.deployments, id)
			s.emitLocked("deployment_success", map[string]any{"id": id})
			continue
		}
		// The new tasks must run (and pass their checks); on a restart
		// they replace the old ones only then (the default upgradeStrategy
		// keeps full capacity, reference §1.7).
		checks := hasHealthChecks(d.target.def)
		ready, unhealthy := true, false
		for _, t := range a.tasks {
			if t.version == d.version {
				ready = ready && t.running && (t.healthy || !checks)
				unhealthy = unhealthy || (t.running && checks && !t.healthy)
			}
		}
		if ready {
			if d.restart {
				kept := a.tasks[:0]
				for _, t := range a.tasks {
					if t.version == d.version {
						kept = append(kept, t)
					} else {
						s.statusLocked(d.appID, t, "TASK_KILLED")
					}
				}
				a.tasks = kept
			}
			a.lastFailure = ""
			delete(s.deployments, id)
			s.emitLocked("deployment_success", map[string]any{"id": id})
			continue
		}
		// Marathon never fails a deployment: it keeps it and reports
		// failing health checks (reference §1.4).
		if unhealthy {
			a.lastFailure = "health check failed: dirac-self-ping exited 1"
			if now.Sub(d.failedEmitted) > 100*time.Millisecond {
				d.failedEmitted = now
				s.emitLocked("failed_health_check_event", map[string]any{"appId": d.appID, "taskId": d.appID + ".task", "version": d.version})
			}
		}
	}
	// forget finished deployments in the order list
	kept := s.order[:0]
	for _, id := range s.order {
		if _, ok := s.deployments[id]; ok {
			kept = append(kept, id)
		}
	}
	s.order = kept
}

// newTaskLocked launches a task of app id's version ver (TASK_STAGING) on
// the next host, with its host ports.
func (s *Server) newTaskLocked(id, ver string, def map[string]any, o Outcome) *task {
	hosts := s.Hosts
	if len(hosts) == 0 {
		hosts = []string{"agent-1.example.org"}
	}
	host := hosts[s.nextHost%len(hosts)]
	s.nextHost++
	var ports []int
	for _, fixed := range requestedHostPorts(def) {
		if fixed == 0 {
			if s.nextPort[host] == 0 {
				s.nextPort[host] = cmp.Or(s.FirstHostPort, 31000)
			}
			fixed = s.nextPort[host]
			s.nextPort[host]++
		}
		ports = append(ports, fixed)
	}
	now := time.Now()
	return &task{id: taskID(id), version: ver, host: host, ports: ports, started: now, runAt: now.Add(o.Delay), outcome: o, checks: hasHealthChecks(def)}
}

// requestedHostPorts are an app's host ports, 0 for dynamic ones
// (reference §1.8): its port mappings' hostPort with container networking;
// with host networking its port definitions, dynamic unless requirePorts
// makes the service ports the host ports.
func requestedHostPorts(def map[string]any) []int {
	var out []int
	if !hostNetworking(def) {
		for _, pm := range portEntries(def) {
			out = append(out, num(pm["hostPort"]))
		}
		return out
	}
	require, _ := def["requirePorts"].(bool)
	for _, pd := range portEntries(def) {
		if require {
			out = append(out, num(pd["port"]))
		} else {
			out = append(out, 0)
		}
	}
	return out
}

// FailTask makes one running task of the app fail (TASK_FAILED), as a
// crashed service does; Marathon launches a replacement of the app's
// current version, which behaves as the app's Outcome says. It returns
// the failed task's id, or "" when the app runs none.
func (s *Server) FailTask(appID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := normID(appID)
	a := s.apps[id]
	if a == nil {
		return ""
	}
	for i, t := range a.tasks {
		if !t.running {
			continue
		}
		a.tasks = append(a.tasks[:i], a.tasks[i+1:]...)
		a.lastFailure = "the task exited with status 1"
		s.statusLocked(id, t, "TASK_FAILED")
		cur := a.current()
		nt := s.newTaskLocked(id, cur.ts, cur.def, s.outcome(cur.def))
		a.tasks = append(a.tasks, nt)
		s.statusLocked(id, nt, "TASK_STAGING")
		return t.id
	}
	return ""
}
