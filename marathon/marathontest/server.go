// Package marathontest is a Marathon API test server: apps with versions,
// create-or-update with Marathon's partialUpdate and force semantics, 409s
// for apps locked by a deployment, deployments that finish only when every
// instance of the new version is healthy (and otherwise run forever, as
// Marathon's do), cancel with rollback, health-check results, and the SSE
// event stream. Response bodies follow Marathon's documented examples
// closely enough that go-marathon cannot tell the difference for the calls
// the pipeline makes.
//
// It follows Marathon where the deploy code depends on it: an identical
// PUT still answers a new plan whose version the app then carries, without
// restarting anything; new tasks replace old ones only once healthy, so
// during a deployment the counters mix both (tasks carry the version they
// started with; GET …?embed=app.tasks lists them); cancelling a deployment
// starts a revert under a new id, which holds the lock in turn; PUT
// {"version": v} deploys an old definition as a new version; a leader
// election answers 502/503 (LeaderElection); constraints and health checks
// are sets (duplicates dropped, returned in their own order).
//
// Tasks land on Hosts in turn with host ports from 31000 (or the app's
// fixed ones) and report every state change as a status_update_event
// (TASK_STAGING, TASK_RUNNING, TASK_KILLED, TASK_FAILED) and every health
// change as a health_status_changed_event; a change of the instance count
// alone scales (tasks launched or killed, no restart); FailTask crashes a
// task and Marathon's replacement follows; a consumer of the event stream
// that falls behind is disconnected, as Marathon does, and
// DropEventStreams drops them all. Proxy puts it behind a loopback proxy
// that refuses, resets, closes, loses answers or hangs on demand: the
// network to Marathon failing, Marathon itself staying as it is.
//
// Not covered: pods, groups (/v2/groups), queues, tasks endpoints, leader
// proxying, readiness checks, scaling by resource offers (every instance
// starts at once), placement constraints, secrets, event filtering by
// event_type, /v2/eventSubscriptions (removed in Marathon 1.5).
package marathontest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// Outcome says how the tasks of a new app version behave.
type Outcome struct {
	Healthy bool          // health checks pass (apps without checks always "pass")
	Delay   time.Duration // time until the instances run (and are judged)
	// FailAfter, when set, turns healthy tasks unhealthy that long after
	// they started: the deployment has finished by then.
	FailAfter time.Duration
}

// Server is a fake Marathon on loopback.
type Server struct {
	URL string
	// Behaviour decides the outcome of deploying a definition; default:
	// healthy after 30 ms, except images whose tag contains "broken".
	Behaviour func(app map[string]any) Outcome
	// User/Password or Token, when set, are required on every request.
	User, Password, Token string
	// Hosts are the agents tasks land on, in turn (default
	// agent-1.example.org). Host ports come from 31000 up on each, or are
	// the app's fixed ones (hostPort, or requirePorts with port
	// definitions).
	Hosts []string

	mu          sync.Mutex
	election    time.Time // until then every /v2 call fails as during a leader election
	electionN   int       // calls failed so
	apps        map[string]*appState
	deployments map[string]*deployment
	order       []string // deployment ids in creation order
	subs        map[chan event]struct{}
	requests    []string
	ts          *httptest.Server
	stop        chan struct{}
	lastVersion time.Time
	nextHost    int
	nextPort    map[string]int
}

type version struct {
	ts  string
	def map[string]any
}

type appState struct {
	versions     []version // oldest first; last is current
	configChange string    // versionInfo.lastConfigChangeAt: the last change that restarted tasks
	tasks        []*task
	lastFailure  string
}

// task is one instance; its version is the app version it was started
// with, as in Marathon's task JSON.
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

func (a *appState) current() version { return a.versions[len(a.versions)-1] }

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

type event struct{ kind, data string }

// New starts the server on loopback.
func New() *Server {
	s := newServer()
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	go s.loop()
	return s
}

// NewOn starts the server on l (the registrator's smoke test serves it
// inside a container).
func NewOn(l net.Listener) *Server {
	s := newServer()
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.ts.Listener.Close()
	s.ts.Listener = l
	s.ts.Start()
	s.URL = "http://" + l.Addr().String()
	go s.loop()
	return s
}

func newServer() *Server {
	return &Server{apps: map[string]*appState{}, deployments: map[string]*deployment{}, subs: map[chan event]struct{}{}, stop: make(chan struct{}), nextPort: map[string]int{}}
}

// Close stops the server.
func (s *Server) Close() {
	close(s.stop)
	s.mu.Lock()
	for ch := range s.subs {
		close(ch)
		delete(s.subs, ch)
	}
	s.mu.Unlock()
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// Requests lists "METHOD path?query" of every request, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// App returns the current definition of an app (nil when absent), with
// its version and task counts.
func (s *Server) App(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[normID(id)]
	if a == nil {
		return nil
	}
	return s.appJSON(normID(id), a, true)
}

// Deployments returns the ids of deployments under way.
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

// Seed installs an app directly, as if deployed long ago and healthy.
func (s *Server) Seed(def map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := normID(def["id"].(string))
	def = clone(def)
	def["id"] = id
	v := s.newVersion()
	a := &appState{versions: []version{{ts: v, def: def}}, configChange: v}
	for range instances(def) {
		t := s.newTaskLocked(id, v, def, Outcome{Healthy: true})
		t.running, t.healthy = true, t.checks
		a.tasks = append(a.tasks, t)
	}
	s.apps[id] = a
}

// LeaderElection makes every /v2 call fail for d as during a leader
// election: Marathon's LeaderProxyFilter answers 502 "Could not determine
// the current leader" (and 503 while it starts as the new leader); /ping
// still answers. It returns at once.
func (s *Server) LeaderElection(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.election = time.Now().Add(d)
}

// ElectionFailures counts the calls answered 502/503 by LeaderElection.
func (s *Server) ElectionFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.electionN
}

func taskID(appID string) string {
	// Marathon 1.10: <app id with '_' for '/'>.instance-<uuid>._app.1
	return strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_") + ".instance-" + newID() + "._app.1"
}

func (s *Server) outcome(def map[string]any) Outcome {
	if s.Behaviour != nil {
		return s.Behaviour(def)
	}
	img, _ := dig(def, "container", "docker", "image").(string)
	return Outcome{Healthy: !strings.Contains(img[strings.LastIndex(img, ":")+1:], "broken"), Delay: 30 * time.Millisecond}
}

// ---- HTTP ----

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	s.mu.Unlock()
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Invalid username or password."})
		return
	}
	p := r.URL.Path
	s.mu.Lock()
	electing := time.Now().Before(s.election) && strings.HasPrefix(p, "/v2/")
	if electing {
		s.electionN++
	}
	n := s.electionN
	s.mu.Unlock()
	if electing {
		if n%2 == 1 {
			writeJSON(w, http.StatusBadGateway, map[string]string{"message": "Could not determine the current leader"})
		} else {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": "Leader is not elected yet"})
		}
		return
	}
	switch {
	case p == "/ping":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "pong\n")
	case p == "/v2/info":
		writeJSON(w, 200, map[string]any{"name": "marathon", "version": "1.10.26", "elected": true, "leader": r.Host,
			"marathon_config": map[string]any{"local_port_min": 10000, "local_port_max": 20000, "env_vars_prefix": nil}})
	case p == "/v2/events":
		s.events(w, r)
	case p == "/v2/deployments" && r.Method == http.MethodGet:
		s.listDeployments(w)
	case strings.HasPrefix(p, "/v2/deployments/") && r.Method == http.MethodDelete:
		s.deleteDeployment(w, r, strings.TrimPrefix(p, "/v2/deployments/"))
	case p == "/v2/apps" && r.Method == http.MethodGet:
		s.listApps(w, r)
	case p == "/v2/apps" && r.Method == http.MethodPost:
		s.createApp(w, r)
	case strings.HasPrefix(p, "/v2/apps/"):
		s.appRoute(w, r, strings.TrimPrefix(p, "/v2/apps"))
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found"})
	}
}

func (s *Server) authorized(r *http.Request) bool {
	switch {
	case s.Token != "":
		return r.Header.Get("Authorization") == "token="+s.Token
	case s.User != "":
		u, p, ok := r.BasicAuth()
		return ok && u == s.User && p == s.Password
	}
	return true
}

func (s *Server) appRoute(w http.ResponseWriter, r *http.Request, rest string) {
	if i := strings.Index(rest, "/versions"); i >= 0 {
		id, ver := normID(rest[:i]), strings.TrimPrefix(strings.TrimPrefix(rest[i:], "/versions"), "/")
		s.versions(w, id, ver)
		return
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
		writeJSON(w, 200, map[string]any{"app": body})
	case http.MethodPut:
		s.putApp(w, r, id)
	case http.MethodDelete:
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
		writeJSON(w, 200, map[string]string{"deploymentId": d.id, "version": d.version})
	default:
		writeJSON(w, 405, map[string]string{"message": "method not allowed"})
	}
}

func (s *Server) versions(w http.ResponseWriter, id, ver string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		appNotFound(w, id)
		return
	}
	if ver == "" {
		var vs []string
		for i := len(a.versions) - 1; i >= 0; i-- {
			vs = append(vs, a.versions[i].ts)
		}
		writeJSON(w, 200, map[string]any{"versions": vs})
		return
	}
	for _, v := range a.versions {
		if v.ts == ver {
			def := clone(v.def)
			def["version"] = v.ts
			writeJSON(w, 200, def)
			return
		}
	}
	writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("Version '%s' of app '%s' does not exist", ver, id)})
}

func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var body map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, 400, map[string]any{"message": "Invalid JSON", "details": []any{map[string]any{"path": "/", "errors": []string{err.Error()}}}})
		return nil, false
	}
	return body, true
}

// validate applies the checks Marathon's validators make on the fields a
// deploy sends (Marathon itself accepts null for absent fields, as
// go-marathon sends them). 422 with details, as Marathon answers.
func (s *Server) validate(w http.ResponseWriter, def map[string]any) bool {
	var problems []map[string]any
	bad := func(path, msg string) {
		problems = append(problems, map[string]any{"path": path, "errors": []string{msg}})
	}
	id, _ := def["id"].(string)
	if !idRE.MatchString(id) {
		bad("/id", "must match the path id pattern (lower case, digits, '-', '.')")
	}
	if def["cmd"] != nil && def["args"] != nil {
		bad("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.")
	}
	for _, k := range []string{"cpus", "mem", "disk", "instances"} {
		if n, ok := def[k].(json.Number); ok {
			if f, err := n.Float64(); err != nil || f < 0 {
				bad("/"+k, "got "+n.String()+", expected 0 or more")
			}
		} else if def[k] != nil {
			bad("/"+k, "must be a number")
		}
	}
	if cs, ok := def["constraints"].([]any); ok {
		for i, c := range cs {
			var fields []string
			l, _ := c.([]any)
			for _, f := range l {
				t, _ := f.(string)
				fields = append(fields, t)
			}
			if err := services.CheckConstraint(fields); err != nil {
				bad(fmt.Sprintf("/constraints(%d)", i), err.Error())
			}
		}
	}
	if segs := strings.Split(id, "/"); len(segs) > 0 {
		switch segs[len(segs)-1] {
		case "restart", "tasks", "versions":
			bad("/id", "must not end with any of the following reserved keywords: restart, tasks, versions, ., ..")
		}
	}
	if c, ok := def["container"].(map[string]any); ok && c["type"] == "DOCKER" {
		if img, _ := dig(c, "docker", "image").(string); img == "" {
			bad("/container/docker/image", "must not be empty")
		}
	}
	if len(problems) == 0 {
		return true
	}
	writeJSON(w, 422, map[string]any{"message": "Object is not valid", "details": problems})
	return false
}

var idRE = regexp.MustCompile(`^(/(([a-z0-9]|[a-z0-9][a-z0-9\-.]*[a-z0-9])))+$`)

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
		writeJSON(w, 409, map[string]string{"message": fmt.Sprintf("An app with id [%s] already exists.", id)})
		return
	}
	d := s.startLocked(id, &version{def: body}, nil)
	w.Header().Set("Marathon-Deployment-Id", d.id)
	w.Header().Set("Location", s.URL+"/v2/apps"+id)
	out := s.appJSON(id, s.apps[id], false)
	out["deployments"] = []any{map[string]string{"id": d.id}}
	writeJSON(w, 201, out)
}

// putApp is create-or-update; partialUpdate (default true) merges top-level
// fields into the current definition; {"version": v} rolls back.
func (s *Server) putApp(w http.ResponseWriter, r *http.Request, id string) {
	body, ok := s.decodeBody(w, r)
	if !ok {
		return
	}
	partial := r.URL.Query().Get("partialUpdate") != "false"
	s.mu.Lock()
	a := s.apps[id]
	s.mu.Unlock()
	var def map[string]any
	if v, isRollback := body["version"].(string); isRollback && len(body) == 1 {
		if a == nil {
			appNotFound(w, id)
			return
		}
		s.mu.Lock()
		for _, old := range a.versions {
			if old.ts == v {
				def = clone(old.def)
			}
		}
		s.mu.Unlock()
		if def == nil {
			writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("Version '%s' of app '%s' does not exist", v, id)})
			return
		}
	} else {
		delete(body, "version")
		if bid, ok := body["id"].(string); ok && normID(bid) != id {
			writeJSON(w, 422, map[string]any{"message": "Object is not valid", "details": []any{map[string]any{"path": "/id", "errors": []string{"id in the body differs from the URL"}}}})
			return
		}
		body["id"] = id
		if a != nil && partial {
			s.mu.Lock()
			def = clone(a.current().def)
			s.mu.Unlock()
			for k, v := range body {
				def[k] = v
			}
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
		cur := a.current()
		prev = &cur
	}
	d := s.startLocked(id, &version{def: def}, prev)
	w.Header().Set("Marathon-Deployment-Id", d.id)
	status := 200
	if prev == nil {
		status = 201
	}
	writeJSON(w, status, map[string]string{"deploymentId": d.id, "version": d.version})
}

// lockedLocked answers 409 when a deployment holds the app, unless force,
// which cancels it without rollback. Called with s.mu held.
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
	writeJSON(w, 409, map[string]any{
		"message":     fmt.Sprintf("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/%s'.", locking[0]),
		"deployments": deps,
	})
	return true
}

// startLocked records the new version (if any) and starts a deployment.
func (s *Server) startLocked(id string, target, prev *version) *deployment {
	d := &deployment{id: newID(), appID: id, started: time.Now(), prev: prev}
	a := s.apps[id]
	switch {
	case target == nil: // delete
		d.version = s.newVersion()
	case prev != nil && reflect.DeepEqual(canon(asSets(target.def)), canon(prev.def)):
		// An identical definition: a new plan, whose version the app now
		// carries, but no configuration change and no restart
		// (AppDeployIntegrationTest "redeploying an app without changes").
		target.ts = s.newVersion()
		target.def["id"] = id
		a.versions = append(a.versions, *target)
		d.target, d.version = target, target.ts
		d.outcome = Outcome{Healthy: true}
	case prev != nil && a != nil && onlyInstancesDiffer(asSets(target.def), prev.def):
		// Scaling: a new version (versionInfo.lastScalingAt), no
		// configuration change; tasks are launched or killed, the others
		// keep running (Marathon's ScaleApplication step).
		target.def = asSets(target.def)
		target.ts = s.newVersion()
		target.def["id"] = id
		a.versions = append(a.versions, *target)
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
		target.def = asSets(target.def)
		target.ts = s.newVersion()
		target.def["id"] = id
		if a == nil {
			a = &appState{}
			s.apps[id] = a
		}
		a.versions = append(a.versions, *target)
		a.configChange = target.ts
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
		}
		step := map[string]any{"action": action, "app": d.appID}
		out = append(out, map[string]any{
			"id": d.id, "version": d.version, "affectedApps": []string{d.appID}, "affectedPods": []string{},
			"steps":          []any{map[string]any{"actions": []any{step}}},
			"currentActions": []any{map[string]any{"action": action, "app": d.appID, "readinessCheckResults": []any{}}},
			"currentStep":    1, "totalSteps": 1,
		})
	}
	writeJSON(w, 200, out)
}

// deleteDeployment cancels; without force Marathon starts a rollback
// deployment to the previous version (or removes an app the deployment
// created) and answers with its id.
func (s *Server) deleteDeployment(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deployments[id]
	if !ok {
		writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("DeploymentPlan %s does not exist", id)})
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
	writeJSON(w, 200, map[string]string{"deploymentId": rb.id, "version": rb.version})
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.apps))
	for id := range s.apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	apps := []any{}
	for _, id := range ids {
		apps = append(apps, s.appJSON(id, s.apps[id], embeds(r, "apps.tasks")))
	}
	writeJSON(w, 200, map[string]any{"apps": apps})
}

// appJSON is the app as Marathon returns it: the definition plus version,
// deployments under way and task counts. Called with s.mu held.
func (s *Server) appJSON(id string, a *appState, embedTasks bool) map[string]any {
	cur := a.current()
	out := clone(cur.def)
	// Marathon answers with every field, its defaults filled in.
	for k, v := range render.MarathonDefaults {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	out["id"] = id
	out["version"] = cur.ts
	out["versionInfo"] = map[string]any{"lastConfigChangeAt": a.configChange, "lastScalingAt": cur.ts}
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
		ports := t.ports
		if ports == nil {
			ports = []int{}
		}
		tj := map[string]any{"id": t.id, "appId": id, "host": t.host, "ports": ports, "state": state, "version": t.version,
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
	if _, ok := out["instances"]; !ok {
		out["instances"] = 1
	}
	return out
}

// ---- the scheduler ----

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
		// keeps full capacity).
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
		// failing health checks.
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
				s.nextPort[host] = 31000
			}
			fixed = s.nextPort[host]
			s.nextPort[host]++
		}
		ports = append(ports, fixed)
	}
	now := time.Now()
	return &task{id: taskID(id), version: ver, host: host, ports: ports, started: now, runAt: now.Add(o.Delay), outcome: o, checks: hasHealthChecks(def)}
}

// requestedHostPorts are an app's host ports, 0 for dynamic ones: its port
// mappings' hostPort with container networking; with host networking its
// port definitions (one by default), fixed under requirePorts.
func requestedHostPorts(def map[string]any) []int {
	num := func(v any) int {
		switch n := v.(type) {
		case json.Number:
			i, _ := n.Int64()
			return int(i)
		case float64:
			return int(n)
		}
		return 0
	}
	pms, _ := dig(def, "container", "portMappings").([]any)
	if len(pms) == 0 {
		pms, _ = dig(def, "container", "docker", "portMappings").([]any)
	}
	var out []int
	if len(pms) > 0 {
		for _, pm := range pms {
			m, _ := pm.(map[string]any)
			out = append(out, num(m["hostPort"]))
		}
		return out
	}
	pds, ok := def["portDefinitions"].([]any)
	if !ok {
		return []int{0}
	}
	require, _ := def["requirePorts"].(bool)
	for _, pd := range pds {
		m, _ := pd.(map[string]any)
		if require {
			out = append(out, num(m["port"]))
		} else {
			out = append(out, 0)
		}
	}
	return out
}

// statusLocked emits a task's status_update_event (Marathon's
// MesosStatusUpdateEvent).
func (s *Server) statusLocked(appID string, t *task, status string) {
	ports := t.ports
	if ports == nil {
		ports = []int{}
	}
	s.emitLocked("status_update_event", map[string]any{"appId": appID, "taskId": t.id, "instanceId": instanceID(t.id), "taskStatus": status,
		"host": t.host, "ports": ports, "version": t.version, "slaveId": "agent-S0", "message": "", "ipAddresses": []any{}})
}

// healthLocked emits a task's health_status_changed_event.
func (s *Server) healthLocked(appID string, t *task) {
	s.emitLocked("health_status_changed_event", map[string]any{"appId": appID, "instanceId": instanceID(t.id), "version": t.version, "alive": t.healthy})
}

func instanceID(taskID string) string { return strings.TrimSuffix(taskID, "._app.1") }

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

// DropEventStreams closes every open event stream, as a Marathon restart
// or a lost connection does.
func (s *Server) DropEventStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		delete(s.subs, ch)
		close(ch)
	}
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

// ---- events (SSE) ----

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		writeJSON(w, 405, map[string]string{"message": "events need Accept: text/event-stream"})
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return
	}
	ch := make(chan event, 256)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	attached, _ := json.Marshal(map[string]any{"eventType": "event_stream_attached", "remoteAddress": r.RemoteAddr, "timestamp": stamp(time.Now())})
	fmt.Fprintf(w, "event: event_stream_attached\ndata: %s\n\n", attached)
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.kind, e.data)
			fl.Flush()
		}
	}
}

func (s *Server) emitLocked(kind string, payload map[string]any) {
	payload["eventType"] = kind
	payload["timestamp"] = stamp(time.Now())
	b, _ := json.Marshal(payload)
	for ch := range s.subs {
		select {
		case ch <- event{kind, string(b)}:
		default:
			// Marathon disconnects a consumer that falls behind
			// (event_stream_max_outstanding_messages) rather than
			// skipping events silently.
			delete(s.subs, ch)
			close(ch)
		}
	}
}

// ---- helpers ----

// asSets stores constraints and health checks as Marathon does, as sets
// (Set[Constraint], Set[HealthCheck] in its AppDefinition): duplicates go,
// and they come back in an order of their own (here: reverse JSON order).
func asSets(def map[string]any) map[string]any {
	def = clone(def)
	for _, k := range []string{"constraints", "healthChecks"} {
		l, ok := def[k].([]any)
		if !ok {
			continue
		}
		seen := map[string]any{}
		for _, e := range l {
			b, _ := json.Marshal(e)
			seen[string(b)] = e
		}
		keys := make([]string, 0, len(seen))
		for k := range seen {
			keys = append(keys, k)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(keys)))
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = seen[k]
		}
		def[k] = out
	}
	return def
}

// embeds says whether the request asks for an embedded field
// (?embed=app.tasks, repeatable).
func embeds(r *http.Request, what string) bool {
	for _, e := range r.URL.Query()["embed"] {
		if e == what {
			return true
		}
	}
	return false
}

func (s *Server) newVersion() string {
	t := time.Now().UTC().Truncate(time.Millisecond)
	if !t.After(s.lastVersion) {
		t = s.lastVersion.Add(time.Millisecond)
	}
	s.lastVersion = t
	return stamp(t)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func normID(id string) string { return "/" + strings.Trim(id, "/") }

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func instances(def map[string]any) int {
	switch n := def["instances"].(type) {
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	case nil:
		return 1
	}
	return 1
}

func hasHealthChecks(def map[string]any) bool {
	hc, _ := def["healthChecks"].([]any)
	return len(hc) > 0
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.Decode(&out)
	return out
}

func canon(m map[string]any) string {
	c := clone(m)
	delete(c, "version")
	b, _ := json.Marshal(c)
	return string(b)
}

// appNotFound is Marathon's 404 for an unknown app id.
func appNotFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": fmt.Sprintf("App '%s' does not exist", id)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
