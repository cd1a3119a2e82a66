package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

func renderApps(t testing.TB, ver string, edit func(*services.File)) []render.App {
	t.Helper()
	f, err := services.Load("../render/testdata/services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(f)
	}
	r, err := render.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := r.Render(f, "certification", ver)
	if err != nil {
		t.Fatal(err)
	}
	return apps
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newClient(t testing.TB, urls string, cfg client.Config) *client.Client {
	t.Helper()
	cfg.URLs = urls
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// imageOf is the image a definition the stand-in deploys runs
// (Behaviour's argument).
func imageOf(def map[string]any) string {
	d, err := app.FromDoc(def)
	if err != nil {
		panic(err)
	}
	return d.Image()
}

// setup is a STAND-IN Marathon (marathontest: Marathon cannot be installed
// here) and a client of it.
func setup(t testing.TB) (*marathontest.Server, *client.Client, Options, *syncBuf) {
	t.Helper()
	srv := marathontest.New()
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, client.Config{})
	log := &syncBuf{}
	return srv, c, Options{Timeout: 2 * time.Second, Settle: 100 * time.Millisecond, Poll: 15 * time.Millisecond, Log: log}, log
}

func countRequests(srv *marathontest.Server, prefix string) int {
	n := 0
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func TestCreateThenUnchangedThenUpdate(t *testing.T) {
	srv, c, o, _ := setup(t)
	ctx := context.Background()
	apps := renderApps(t, "v9.1", nil)
	res, err := Apply(ctx, c, apps, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Action != Create || r.DeploymentID == "" {
			t.Fatalf("first deploy: %+v", r)
		}
		a := srv.Definition(r.ID)
		if a.TasksHealthy != a.Instances {
			t.Fatalf("%s not healthy after Apply: %v/%v", r.ID, a.TasksHealthy, a.Instances)
		}
	}
	if n := countRequests(srv, "PUT /v2/apps/datamanagement/filecatalog?partialUpdate=false"); n != 1 {
		t.Fatalf("want one full (non-partial) PUT, requests: %v", srv.Requests())
	}

	puts := countRequests(srv, "PUT ")
	res, err = Apply(ctx, c, apps, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Action != Unchanged {
			t.Fatalf("second deploy of the same apps: %+v", r)
		}
	}
	if countRequests(srv, "PUT ") != puts {
		t.Fatal("unchanged apps were PUT again")
	}

	bigger := renderApps(t, "v9.1", func(f *services.File) { m := 512.0; f.Services[1].Mem = &m })
	plan, err := Plan(ctx, c, bigger)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	FormatPlan(&out, plan)
	for _, want := range []string{"unchanged /datamanagement/filecatalog", "update    /requestmanagement/reqmanager", `-  "mem": 256`, `+  "mem": 512`, "plan: 0 to create, 1 to update, 1 unchanged"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out.String())
		}
	}
	// The same change field by field, for a report or a promote command.
	if got := plan[1].Fields; len(got) != 1 || got[0] != (FieldChange{Path: "mem", Old: "256", New: "512"}) || plan[0].Fields != nil {
		t.Errorf("fields: %+v, unchanged: %+v", got, plan[0].Fields)
	}
	before := srv.Definition("/requestmanagement/reqmanager").Version
	if _, err := Apply(ctx, c, bigger, o); err != nil {
		t.Fatal(err)
	}
	after := srv.Definition("/requestmanagement/reqmanager")
	if after.Version == before || after.Mem != 512 {
		t.Fatalf("update not applied: %+v", after)
	}
}

func TestUnhealthyUpdateIsRolledBack(t *testing.T) {
	srv, c, o, log := setup(t)
	ctx := context.Background()
	if _, err := Apply(ctx, c, renderApps(t, "v9.1", nil), o); err != nil {
		t.Fatal(err)
	}
	good := srv.Definition("/datamanagement/filecatalog")
	srv.Behaviour = func(def map[string]any) marathontest.Outcome {
		return marathontest.Outcome{Healthy: !strings.HasSuffix(imageOf(def), ":v9.2"), Delay: 20 * time.Millisecond}
	}
	o.Timeout = 300 * time.Millisecond
	res, err := Apply(ctx, c, renderApps(t, "v9.2", nil), o)
	if err == nil {
		t.Fatal("an app that never gets healthy deployed without error")
	}
	for _, want := range []string{"app /datamanagement/filecatalog", "not healthy within 300ms", "0/2 healthy", "Marathon reverts to version " + good.Version + "'s definition, now running as version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	for _, r := range res {
		if !r.RolledBack {
			t.Errorf("%s not marked rolled back", r.ID)
		}
	}
	now := srv.Definition("/datamanagement/filecatalog")
	if img := now.Image(); img != "registry.example.org/lhcb-dirac/lhcbdirac:v9.1" || now.TasksHealthy != 2 {
		t.Fatalf("after rollback the app runs %v with %v healthy", img, now.TasksHealthy)
	}
	if !strings.Contains(log.String(), "rolling back") {
		t.Errorf("log: %s", log.String())
	}
	if len(srv.Deployments()) != 0 {
		t.Errorf("deployments left running: %v", srv.Deployments())
	}
}

func TestFailedCreateRemovesTheApp(t *testing.T) {
	srv, c, o, _ := setup(t)
	srv.Behaviour = func(map[string]any) marathontest.Outcome { return marathontest.Outcome{Healthy: false} }
	o.Timeout = 200 * time.Millisecond
	_, err := Apply(context.Background(), c, renderApps(t, "v9.1", nil)[:1], o)
	if err == nil || !strings.Contains(err.Error(), "the app was new and Marathon removes it") {
		t.Fatalf("error %v", err)
	}
	if srv.App("/datamanagement/filecatalog") != nil {
		t.Fatal("a new app that never got healthy is still there")
	}
}

func TestConflictWaitsOrForces(t *testing.T) {
	srv, c, o, log := setup(t)
	ctx := context.Background()
	apps := renderApps(t, "v9.1", nil)[:1]
	if _, err := Apply(ctx, c, apps, o); err != nil {
		t.Fatal(err)
	}
	const put = "PUT /v2/apps/datamanagement/filecatalog?partialUpdate=false"
	const forced = "PUT /v2/apps/datamanagement/filecatalog?force=true&partialUpdate=false"
	// Someone else starts a slow deployment on the app. The stand-in, as
	// Marathon, answers 409 to any PUT while it runs: a PUT that succeeds
	// after one 409 was made once it had finished — what the wait means,
	// whatever the machine's speed.
	srv.Behaviour = func(map[string]any) marathontest.Outcome {
		return marathontest.Outcome{Healthy: true, Delay: 400 * time.Millisecond}
	}
	other := renderApps(t, "v9.1.1", nil)[:1]
	d, err := c.PutApp(ctx, other[0].ID, other[0].Doc, client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Behaviour = nil
	puts := countRequests(srv, put)
	res, err := Apply(ctx, c, renderApps(t, "v9.1.2", nil)[:1], o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	// Two PUTs: the one refused, the one made after the deployment ended
	// (polling deployments in between, not PUTting again and again).
	if n := countRequests(srv, put) - puts; n != 2 || !strings.Contains(log.String(), "locked by deployment(s) "+d.DeploymentID) || countRequests(srv, forced) != 0 {
		t.Fatalf("a 409 should wait for the running deployment %s, then PUT once more (%d PUTs): %s", d.DeploymentID, n, log.String())
	}
	if res[0].Action != Update || !strings.HasSuffix(srv.Definition(apps[0].ID).Image(), ":v9.1.2") {
		t.Fatalf("%+v, the app runs %s", res[0], srv.Definition(apps[0].ID).Image())
	}

	// A deployment that never ends by itself: waiting for it would run
	// into the deploy's timeout (an error), so a deploy that succeeds
	// overrode it.
	srv.Behaviour = func(map[string]any) marathontest.Outcome {
		return marathontest.Outcome{Healthy: true, Delay: time.Hour}
	}
	if d, err = c.PutApp(ctx, other[0].ID, other[0].Doc, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Behaviour = nil
	o.Force = true
	mark := len(log.String())
	if _, err := Apply(ctx, c, renderApps(t, "v9.1.3", nil)[:1], o); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if countRequests(srv, forced) != 1 || strings.Contains(log.String()[mark:], "locked by deployment") || slices.Contains(srv.Deployments(), d.DeploymentID) {
		t.Fatalf("force should override deployment %s at once (deployments %v): %v\n%s", d.DeploymentID, srv.Deployments(), srv.Requests(), log.String())
	}
	if img := srv.Definition(apps[0].ID).Image(); !strings.HasSuffix(img, ":v9.1.3") {
		t.Fatalf("the app runs %s", img)
	}
}

func TestSoftUpdateSwapsOnlyDiracImages(t *testing.T) {
	srv, c, o, _ := setup(t)
	// The seed's app layout (docker label parameter, legacy port mappings),
	// one with a registry port, and an app that is not DIRAC's.
	srv.Seed(map[string]any{"id": "/dm/fc", "instances": json.Number("3"), "cpus": json.Number("0.1"), "mem": json.Number("200"),
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "registry:5000/lhcb-dirac/lhcbdirac:v8r4",
			"parameters": []any{map[string]any{"key": "label", "value": "dirac_component=DataManagement/FileCatalog"}}}}})
	srv.Seed(map[string]any{"id": "/rm/req", "instances": json.Number("1"), "cpus": json.Number("0.1"), "mem": json.Number("200"),
		"labels":    map[string]any{"dirac_component": "RequestManagement/ReqManager"},
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "gitlab-registry.cern.ch/lhcb-dirac/lhcbdirac:v8r4"}}})
	srv.Seed(map[string]any{"id": "/pinger", "instances": json.Number("1"), "cpus": json.Number("0.1"), "mem": json.Number("100"),
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "gitlab-registry.cern.ch/lhcb-dirac/lhcbdirac:pinger_v0r3"}}})
	res, err := SoftUpdate(context.Background(), c, "v8r5", nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("%d apps updated, want the 2 DIRAC ones: %+v", len(res), res)
	}
	fc := srv.Definition("/dm/fc")
	if img := fc.Image(); img != "registry:5000/lhcb-dirac/lhcbdirac:v8r5" {
		t.Fatalf("image %v", img)
	}
	if fc.Instances != 3 {
		t.Fatalf("instance count changed: %v", fc.Instances)
	}
	if img := srv.Definition("/pinger").Image(); img != "gitlab-registry.cern.ch/lhcb-dirac/lhcbdirac:pinger_v0r3" {
		t.Fatalf("a non-DIRAC app was touched: %v", img)
	}
}

func TestRetag(t *testing.T) {
	for in, want := range map[string]string{
		"repo:v1": "repo:v2", "host:5000/repo": "host:5000/repo:v2", "host:5000/a/repo:v1": "host:5000/a/repo:v2",
		"repo@sha256:abc": "repo:v2", "repo": "repo:v2", "host:5000/repo:v1@sha256:abc": "host:5000/repo:v2",
	} {
		if got, _ := retag(in, "v2"); got != want {
			t.Errorf("retag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCredentialsNeverLeak(t *testing.T) {
	srv := marathontest.New()
	defer srv.Close()
	srv.User, srv.Password = "deployer", "s3cr3t-pw"
	cfg := client.Config{User: "deployer", Password: "s3cr3t-pw"}
	c := newClient(t, srv.URL, cfg)
	log := &syncBuf{}
	o := Options{Timeout: time.Second, Settle: 100 * time.Millisecond, Poll: 15 * time.Millisecond, Log: log}
	if _, err := Apply(context.Background(), c, renderApps(t, "v9.1", nil), o); err != nil {
		t.Fatal(err)
	}
	cfg.Password = "wrong-s3cr3t"
	bad := newClient(t, srv.URL, cfg)
	_, err := Apply(context.Background(), bad, renderApps(t, "v9.1", nil), o)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: %v", err)
	}
	for _, s := range []string{err.Error(), log.String()} {
		if strings.Contains(s, "s3cr3t") {
			t.Fatalf("a credential leaked: %s", s)
		}
	}
}

// go-marathon itself against the test server: the calls the pipeline uses,
// and the event stream.
func TestGoMarathonCannotTellTheDifference(t *testing.T) {
	srv, c, o, _ := setup(t)
	m := c.Marathon()
	events, err := m.AddEventsListener(marathon.EventIDStreamAttached | marathon.EventIDDeploymentSuccess)
	if err != nil {
		t.Fatal(err)
	}
	defer m.RemoveEventsListener(events)
	// Marathon opens each stream with event_stream_attached: once it is
	// here, the deployment's events reach this stream.
	next := func(want int, what string) {
		t.Helper()
		select {
		case e := <-events:
			if e.ID != want {
				t.Fatalf("want %s, got event %+v", what, e)
			}
		case <-time.After(30 * time.Second): // a deadline, not a speed
			t.Fatalf("no %s event on the stream", what)
		}
	}
	next(marathon.EventIDStreamAttached, "event_stream_attached")
	if _, err := Apply(context.Background(), c, renderApps(t, "v9.1", nil)[:1], o); err != nil {
		t.Fatal(err)
	}
	next(marathon.EventIDDeploymentSuccess, "deployment_success")
	app, err := m.Application("/datamanagement/filecatalog")
	if err != nil || app.Container.Docker.Image != "registry.example.org/lhcb-dirac/lhcbdirac:v9.1" || app.TasksHealthy != 2 {
		t.Fatalf("Application: %+v %v", app, err)
	}
	vs, err := m.ApplicationVersions("/datamanagement/filecatalog")
	if err != nil || len(vs.Versions) != 1 || vs.Versions[0] != app.Version {
		t.Fatalf("versions %v %v", vs, err)
	}
	if _, err := m.Ping(); err != nil {
		t.Fatal(err)
	}
	dup := marathon.NewDockerApplication().Name("/datamanagement/filecatalog").CPU(0.1).Memory(64).Count(1)
	dup.Container.Docker.Container("x:1")
	_, err = m.CreateApplication(dup)
	if apiErr, ok := err.(*marathon.APIError); !ok || apiErr.ErrCode != marathon.ErrCodeDuplicateID {
		t.Fatalf("duplicate create: %#v", err)
	}
	_ = srv
}
