package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// The deploy against Marathon's behaviour, as marathontest reproduces it
// (a stand-in for Marathon, which cannot be installed here).

// MARATHON_TOKEN: go-marathon with a DCOSToken sends its calls to
// /marathon/v2/…, a 404 on a plain Marathon. Token auth must work against
// the URL as given.
func TestTokenAuthAgainstAPlainMarathon(t *testing.T) {
	srv := marathontest.New()
	defer srv.Close()
	srv.Token = "tok-PLANTED-91"
	c := newClient(t, srv.URL, client.Config{Token: "tok-PLANTED-91"})
	log := &syncBuf{}
	o := Options{Timeout: 3 * time.Second, Settle: 100 * time.Millisecond, Poll: 15 * time.Millisecond, Log: log}
	if _, err := Apply(context.Background(), c, renderApps(t, "v9.1", nil), o); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r, "/marathon/") {
			t.Errorf("a call went to a DC/OS path: %s", r)
		}
	}
	if countRequests(srv, "GET /v2/deployments") == 0 {
		t.Fatalf("go-marathon's calls did not reach /v2/deployments: %v", srv.Requests())
	}
	if strings.Contains(log.String(), "tok-PLANTED") {
		t.Fatal("the token is in the log")
	}
}

// A leader election (502, then 503) during a deploy is retried with
// backoff within the deploy's timeout, for every app.
func TestLeaderElectionIsRetried(t *testing.T) {
	srv, c, o, log := setup(t)
	o.Timeout = 20 * time.Second
	srv.Behaviour = func(map[string]any) marathontest.Outcome {
		return marathontest.Outcome{Healthy: true, Delay: time.Second}
	}
	// The election begins once the first deployment has started (its PUT
	// answered), whenever that is; the deployments last long enough for a
	// slow machine to start it before they end.
	afterRequest(t, srv, "PUT /v2/apps", func() { srv.LeaderElection(1500 * time.Millisecond) })
	res, err := Apply(context.Background(), c, renderApps(t, "v9.1", nil), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if srv.ElectionFailures() == 0 || !strings.Contains(log.String(), "retrying in") {
		t.Fatalf("the election was not met (%d failed calls): %s", srv.ElectionFailures(), log.String())
	}
	for _, r := range res {
		if r.Err != nil || r.RolledBack {
			t.Errorf("%+v", r)
		}
	}
}

// A Marathon that keeps failing fails the deploy, naming how long.
func TestPersistentFailureFails(t *testing.T) {
	srv, c, o, _ := setup(t)
	o.Timeout = 1500 * time.Millisecond
	srv.LeaderElection(time.Minute)
	_, err := Apply(context.Background(), c, renderApps(t, "v9.1", nil)[:1], o)
	if err == nil || !strings.Contains(err.Error(), "Marathon kept failing for") {
		t.Fatalf("got %v", err)
	}
}

// The lock changes hands: the owner of the deployment that holds the app
// cancels it, and Marathon's revert holds the lock under a new id. The
// deploy waits for that one too.
func TestLockChangesHands(t *testing.T) {
	srv, c, o, log := setup(t)
	ctx := context.Background()
	app := renderApps(t, "v9.1", nil)[:1]
	if _, err := Apply(ctx, c, app, o); err != nil {
		t.Fatal(err)
	}
	// Someone else deploys a version that never gets healthy…
	srv.Behaviour = func(def map[string]any) marathontest.Outcome {
		if strings.HasSuffix(imageOf(def), ":v9.9") {
			return marathontest.Outcome{Healthy: false}
		}
		return marathontest.Outcome{Healthy: true, Delay: 400 * time.Millisecond} // the revert takes its time
	}
	other := renderApps(t, "v9.9", nil)[:1]
	d, err := c.PutApp(ctx, other[0].ID, other[0].Doc, client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := d.DeploymentID
	// …and cancels it while we wait for it (once the deploy says so):
	// Marathon reverts under a new id.
	go func() {
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), "locked by deployment(s) "+first) && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v2/deployments/"+first, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	o.Timeout = 5 * time.Second
	res, err := Apply(ctx, c, renderApps(t, "v9.2", nil)[:1], o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if strings.Count(log.String(), "locked by deployment") < 2 || !strings.Contains(log.String(), first) {
		t.Fatalf("the deploy should have waited for %s, then for the revert:\n%s", first, log.String())
	}
	if img := srv.Definition(app[0].ID).Image(); !strings.HasSuffix(img, ":v9.2") || res[0].RolledBack {
		t.Fatalf("the app runs %v", img)
	}
}

// The deployment finishes, then the new tasks turn unhealthy before the
// wait ends: cancelling is no longer possible (the deployment is gone), so
// the previous version's definition is deployed again — Marathon runs it
// as a new version, and the message says so.
func TestUnhealthyAfterTheDeploymentFinished(t *testing.T) {
	srv, c, o, log := setup(t)
	ctx := context.Background()
	apps := renderApps(t, "v9.1", nil)[:1]
	if _, err := Apply(ctx, c, apps, o); err != nil {
		t.Fatal(err)
	}
	good := srv.Definition(apps[0].ID).Version
	srv.Behaviour = func(def map[string]any) marathontest.Outcome {
		if strings.HasSuffix(imageOf(def), ":v9.2") {
			return marathontest.Outcome{Healthy: true, Delay: 20 * time.Millisecond, FailAfter: 30 * time.Millisecond}
		}
		return marathontest.Outcome{Healthy: true, Delay: 20 * time.Millisecond}
	}
	o.Timeout = 600 * time.Millisecond
	res, err := Apply(ctx, c, renderApps(t, "v9.2", nil)[:1], o)
	if err == nil {
		t.Fatalf("an app whose tasks turned unhealthy deployed:\n%s", log.String())
	}
	for _, want := range []string{"0/2 healthy", "rolled back: version " + good + "'s definition deployed again, now running as version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	now := srv.Definition(apps[0].ID)
	if img := now.Image(); !strings.HasSuffix(img, ":v9.1") || !res[0].RolledBack {
		t.Fatalf("after the rollback the app runs %v", img)
	}
	if now.Version == good {
		t.Error("the old definition should run as a new version")
	}
}

// Marathon keeps constraints and health checks as sets, in an order of
// its own; a duplicate vanishes. The plan compares them as sets, so an
// unchanged app stays unchanged.
func TestSetsCompareAsSets(t *testing.T) {
	_, c, o, _ := setup(t)
	ctx := context.Background()
	edit := func(f *services.File) {
		f.Defaults.Constraints = [][]string{{"hostname", "UNIQUE"}, {"rack", "GROUP_BY", "2"}, {"hostname", "LIKE", "lbvobox.*"}}
	}
	if _, err := Apply(ctx, c, renderApps(t, "v9.1", edit), o); err != nil {
		t.Fatal(err)
	}
	plan, err := Plan(ctx, c, renderApps(t, "v9.1", edit))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range plan {
		if ch.Action != Unchanged {
			t.Errorf("%s: %s\n%s", ch.ID, ch.Action, ch.Diff)
		}
	}
}

// A field the template does not set is reset by the deploy: the plan
// shows it as a change when it is not Marathon's default.
func TestFieldsOutsideTheTemplateAreSeen(t *testing.T) {
	srv, c, o, _ := setup(t)
	ctx := context.Background()
	apps := renderApps(t, "v9.1", nil)[:1]
	if _, err := Apply(ctx, c, apps, o); err != nil {
		t.Fatal(err)
	}
	// Someone adds fields by hand.
	hand := srv.App(apps[0].ID)
	for _, k := range []string{"version", "versionInfo", "deployments", "tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy"} {
		delete(hand, k)
	}
	hand["user"] = "root"
	hand["acceptedResourceRoles"] = []any{"slave_public"}
	hand["taskKillGracePeriodSeconds"] = 30
	if _, err := c.PutApp(ctx, apps[0].ID, hand, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(srv.Deployments()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) { // a deadline, not a speed
			t.Fatalf("the hand edit's deployment still runs: %v", srv.Deployments())
		}
	}
	plan, err := Plan(ctx, c, apps)
	if err != nil {
		t.Fatal(err)
	}
	if plan[0].Action != Update {
		t.Fatalf("the hand-added fields were not seen: %+v", plan[0])
	}
	for _, want := range []string{`"user": "root"`, `"slave_public"`, `"taskKillGracePeriodSeconds": 30`} {
		if !strings.Contains(plan[0].Diff, "-"+strings.TrimSpace(want)) && !strings.Contains(plan[0].Diff, want) {
			t.Errorf("the diff does not show %s:\n%s", want, plan[0].Diff)
		}
	}
	// Field by field: each goes (New "", absent), nothing else changes.
	if want := []FieldChange{{"acceptedResourceRoles", `["slave_public"]`, ""}, {"taskKillGracePeriodSeconds", "30", ""}, {"user", `"root"`, ""}}; !slices.Equal(plan[0].Fields, want) {
		t.Errorf("fields %+v, want %+v", plan[0].Fields, want)
	}
	if _, err := Apply(ctx, c, apps, o); err != nil {
		t.Fatal(err)
	}
	if after := srv.Definition(apps[0].ID); after.User != nil || after.Doc["taskKillGracePeriodSeconds"] != nil {
		t.Fatalf("the deploy left user=%v, taskKillGracePeriodSeconds=%v", after.User, after.Doc["taskKillGracePeriodSeconds"])
	}
	plan, _ = Plan(ctx, c, apps)
	if plan[0].Action != Unchanged {
		t.Fatalf("after the deploy: %s\n%s", plan[0].Action, plan[0].Diff)
	}
}

// Marathon refuses constraints and ids its validators reject (422); the
// stand-in does too, and the deploy says what Marathon said.
func TestMarathonRefusesWhatItValidates(t *testing.T) {
	_, c, _, _ := setup(t)
	bad := map[string]any{"id": "/sys/x", "instances": 1, "cpus": 0.1, "mem": 10, "constraints": []any{[]any{"hostname", "UNIQUE", "x"}},
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "r/x:1"}}}
	_, err := c.PutApp(context.Background(), "/sys/x", bad, client.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "UNIQUE does not accept a value") {
		t.Fatalf("got %v", err)
	}
}

// Scaling goes through go-marathon and waits as a deploy does; tasks that
// never turn healthy roll the scale back to the previous count.
func TestScale(t *testing.T) {
	srv, c, o, log := setup(t)
	ctx := context.Background()
	apps := renderApps(t, "v9.1", nil)[:1]
	if _, err := Apply(ctx, c, apps, o); err != nil {
		t.Fatal(err)
	}
	id := apps[0].ID
	before := len(srv.Definition(id).Deployments)
	res, err := Scale(ctx, c, id, 3, o)
	if err != nil || res.Action != Update || before != 0 {
		t.Fatalf("scale to 3: %+v %v\n%s", res, err, log.String())
	}
	if n := srv.Definition(id).TasksRunning; n != 3 {
		t.Fatalf("%v tasks running after scaling to 3", n)
	}
	if res, err := Scale(ctx, c, id, 3, o); err != nil || res.Action != Unchanged {
		t.Errorf("scaling to the same count: %+v %v", res, err)
	}
	if _, err := Scale(ctx, c, "/no/such", 2, o); err == nil || !strings.Contains(err.Error(), "app /no/such does not run on Marathon") {
		t.Errorf("unknown app: %v", err)
	}

	// New tasks that never pass their checks: rolled back to 3.
	srv.Behaviour = func(map[string]any) marathontest.Outcome {
		return marathontest.Outcome{Healthy: false, Delay: 10 * time.Millisecond}
	}
	o.Timeout = 500 * time.Millisecond
	res, err = Scale(ctx, c, id, 5, o)
	if err == nil || !res.RolledBack || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("unhealthy scale: %+v %v", res, err)
	}
	deadline := time.Now().Add(30 * time.Second) // a deadline, not a speed
	for a := srv.Definition(id); a.Instances != 3 || a.TasksRunning != 3; a = srv.Definition(id) {
		if time.Now().After(deadline) {
			t.Fatalf("after the rollback: %v instances, %v running", a.Instances, a.TasksRunning)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The registrator's app asks for a service port of Marathon's choosing
// (portDefinitions port 0), which Marathon stores and answers as the port
// it chose (reference §1.8). Deployed again unchanged, it must be
// unchanged — not restarted by every release.
func TestAPortOfMarathonsChoosingIsNoChange(t *testing.T) {
	srv, c, o, log := setup(t)
	ctx := context.Background()
	apps := renderApps(t, "v9.1", func(f *services.File) {
		f.Discovery = &services.Discovery{Marathon: "http://marathon.example:8080", Etcd: []string{"http://etcd.example:2379"}, Consul: "http://localhost:8500"}
	})
	reg := apps[len(apps)-1]
	if reg.ID != render.RegistratorID {
		t.Fatalf("no registrator app: %v", reg.ID)
	}
	if _, err := Apply(ctx, c, apps, o); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if pds := srv.Definition(reg.ID).PortDefinitions; pds == nil || len(*pds) != 1 || (*pds)[0].Port == 0 {
		t.Fatalf("the stand-in did not choose a service port: %+v", pds)
	}
	plan, err := Plan(ctx, c, apps)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range plan {
		if ch.Action != Unchanged {
			t.Errorf("%s: %s\n%s", ch.ID, ch.Action, ch.Diff)
		}
	}
	// A port the template fixes is compared as it is.
	fixed := render.App{ID: reg.ID, Kind: reg.Kind, Doc: clone(t, reg.Doc)}
	fixed.Doc["portDefinitions"] = []any{map[string]any{"port": json.Number("10555"), "protocol": "tcp", "name": "http"}}
	plan, err = Plan(ctx, c, []render.App{fixed})
	if err != nil || plan[0].Action != Update || !slices.ContainsFunc(plan[0].Fields, func(f FieldChange) bool {
		return f.Path == "portDefinitions[0].port" && f.New == "10555"
	}) {
		t.Fatalf("a fixed port: %+v %v", plan, err)
	}
}

func clone(t *testing.T, doc map[string]any) map[string]any {
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}
