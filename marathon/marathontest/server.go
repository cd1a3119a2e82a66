// Package marathontest is a STAND-IN for Marathon: a test server speaking
// Marathon's REST API on loopback, because Marathon (and Mesos under it)
// cannot be installed here. Every deploy, scale and discovery test runs
// against it, so it must behave as Marathon does — and what Marathon does
// is taken from Marathon's documentation, never from this project's own
// code: ../shared/reference/marathon-api.md (cited below as "reference
// §n"), Marathon's JSON schema AppDefinition.json and its documented
// request and response bodies (../shared/testdata/marathon/, cited as
// "schema" and "examples/…"). Where those are silent and a rule comes from
// reading Marathon's sources, the comment says so. It imports nothing of
// the project's rules (marathon/services, marathon/render); only its
// client side (client.go) hands apps back typed, as marathon/app reads
// them, for tests.
//
// What it keeps: apps with versions (every change and scale a new version,
// listed newest first, at most MaxVersions kept, dropped with the app);
// create-or-update with Marathon's partialUpdate and force semantics; 409s
// for apps locked by a deployment; deployments that finish only when every
// instance of the new version is healthy (and otherwise run forever, as
// Marathon's do); cancel with rollback; health-check results; and the SSE
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
// are sets (duplicates dropped, returned in their own order); GET answers
// every field, Marathon's defaults filled in, and service ports 0 become
// ports of Marathon's choosing.
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
// starts at once), placement constraints (checked, not applied), secrets,
// event filtering by event_type, /v2/eventSubscriptions (removed in
// Marathon 1.5, reference §1.10).
package marathontest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Outcome says how the tasks of a new app version behave.
type Outcome struct {
	Healthy bool          // health checks pass (apps without checks always "pass")
	Delay   time.Duration // time until the instances run (and are judged)
	// FailAfter, when set, turns healthy tasks unhealthy that long after
	// they started: the deployment has finished by then.
	FailAfter time.Duration
}

// DefaultMaxVersions is how many versions of an app Marathon keeps: its
// zk_max_versions setting, 50 in examples/info.json (reference §1.5).
const DefaultMaxVersions = 50

// Server is a stand-in Marathon on loopback.
type Server struct {
	URL string
	// Behaviour decides the outcome of deploying a definition; default:
	// healthy after 30 ms, except images whose tag contains "broken".
	Behaviour func(def map[string]any) Outcome
	// User/Password or Token, when set, are required on every request.
	User, Password, Token string
	// Hosts are the agents tasks land on, in turn (default
	// agent-1.example.org). Host ports come from 31000 up on each, or are
	// the app's fixed ones (hostPort, or requirePorts with port
	// definitions).
	Hosts []string
	// FirstHostPort is where each agent's dynamic host ports start
	// (default 31000, Mesos' default range); a test that serves the tasks'
	// ports itself picks a range it holds.
	FirstHostPort int
	// MaxVersions bounds the versions kept of each app (default
	// DefaultMaxVersions); the oldest go first.
	MaxVersions int

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
	nextPort    map[string]int // per host: the next dynamic host port
}

// appState is one app: its versions and its tasks.
type appState struct {
	versions    []version // oldest first; last is current
	tasks       []*task
	lastFailure string
}

func (a *appState) current() version { return a.versions[len(a.versions)-1] }

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

// Seed installs an app directly, as if deployed long ago and healthy.
func (s *Server) Seed(def map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := normID(def["id"].(string))
	def = clone(def)
	def["id"] = id
	a := &appState{}
	s.apps[id] = a
	v := s.addVersionLocked(id, a, storeSets(s.normalizeLocked(def, nil)), true)
	for range instances(def) {
		t := s.newTaskLocked(id, v.ts, v.def, Outcome{Healthy: true})
		t.running, t.healthy = true, t.checks
		a.tasks = append(a.tasks, t)
	}
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

func (s *Server) outcome(def map[string]any) Outcome {
	if s.Behaviour != nil {
		return s.Behaviour(def)
	}
	img, _ := dig(def, "container", "docker", "image").(string)
	return Outcome{Healthy: !strings.Contains(img[strings.LastIndex(img, ":")+1:], "broken"), Delay: 30 * time.Millisecond}
}

// serve routes a request as Marathon's resources do (reference §1.3–1.11).
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	s.mu.Unlock()
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	p := r.URL.Path
	if s.electing(w, p) {
		return
	}
	switch {
	case p == "/ping":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "pong\n")
	case p == "/v2/info":
		writeJSON(w, 200, map[string]any{"name": "marathon", "version": "1.10.26", "elected": true, "leader": r.Host,
			"marathon_config":  map[string]any{"local_port_min": localPortMin, "local_port_max": localPortMax, "env_vars_prefix": nil},
			"zookeeper_config": map[string]any{"zk_max_versions": s.maxVersions()}})
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

// electing answers a /v2 call as during a leader election, when one is
// under way (LeaderElection).
func (s *Server) electing(w http.ResponseWriter, path string) bool {
	s.mu.Lock()
	electing := time.Now().Before(s.election) && strings.HasPrefix(path, "/v2/")
	if electing {
		s.electionN++
	}
	n := s.electionN
	s.mu.Unlock()
	if !electing {
		return false
	}
	if n%2 == 1 {
		writeJSON(w, http.StatusBadGateway, map[string]string{"message": "Could not determine the current leader"})
	} else {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": "Leader is not elected yet"})
	}
	return true
}
