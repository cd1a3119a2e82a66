package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// allServicesFile is services:all's file for 12.0.21: every service the
// release ships, 42 DIPS and 27 HTTPS.
const allServicesFile = "../../images/lhcbdirac/catalog/testdata/v12.0.21.services.yaml"

func renderAllServices(t testing.TB, ver string) []render.App {
	t.Helper()
	f, err := services.Load(allServicesFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := r.Render(f, "production", ver)
	if err != nil {
		t.Fatal(err)
	}
	return apps
}

// TestEveryServiceOfTheReleasePlansDeploysAndRollsBack: the 70 apps of
// the full release (69 services and the registrator) against the STAND-IN Marathon (marathontest; Marathon
// cannot be installed here): the dry run plans 70 creations, the deploy
// creates them and waits until each is healthy, a second plan finds them
// unchanged, and an update in which one Tornado service never gets
// healthy rolls back that one app only, naming it, while the 69 others
// run the new version. It logs apps per second planned and deployed.
func TestEveryServiceOfTheReleasePlansDeploysAndRollsBack(t *testing.T) {
	srv, c, o, log := setup(t)
	ctx := context.Background()
	srv.Behaviour = func(map[string]any) marathontest.Outcome {
		return marathontest.Outcome{Healthy: true, Delay: 30 * time.Millisecond}
	}
	o.Timeout = time.Minute
	apps := renderAllServices(t, "v12.0.21")
	if len(apps) != 70 || len(render.Services(apps)) != 69 {
		t.Fatalf("%d apps, %d of them services", len(apps), len(render.Services(apps)))
	}

	start := time.Now()
	plan, err := Plan(ctx, c, apps)
	if err != nil {
		t.Fatal(err)
	}
	planned := time.Since(start)
	for _, ch := range plan {
		if ch.Action != Create {
			t.Errorf("first plan: %s %s", ch.Action, ch.ID)
		}
	}

	start = time.Now()
	res, err := Apply(ctx, c, apps, o)
	if err != nil {
		t.Fatalf("deploy of every service: %v\n%s", err, log.String())
	}
	deployed := time.Since(start)
	for _, r := range res {
		if r.Action != Create || r.RolledBack {
			t.Errorf("%s: %s, rolled back %v", r.ID, r.Action, r.RolledBack)
		}
		if d := srv.Definition(r.ID); d == nil || d.TasksHealthy != d.Instances {
			t.Errorf("%s is not healthy after the deploy: %+v", r.ID, d)
		}
	}
	n := float64(len(apps))
	t.Logf("%d apps: planned in %v (%.0f apps/s), deployed and healthy in %v (%.1f apps/s; 4 at once, the stand-in starting each in 30 ms)",
		len(apps), planned.Round(time.Millisecond), n/planned.Seconds(), deployed.Round(time.Millisecond), n/deployed.Seconds())

	again, err := Plan(ctx, c, apps)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range again {
		if ch.Action != Unchanged {
			t.Errorf("second plan: %s %s", ch.Action, ch.ID)
		}
	}

	const bad = "/workloadmanagement/tornadosandboxstore"
	good := srv.Definition(bad)
	srv.Behaviour = func(def map[string]any) marathontest.Outcome {
		return marathontest.Outcome{Healthy: !strings.Contains(imageOf(def), ":v12.0.22") || def["id"] != bad, Delay: 30 * time.Millisecond}
	}
	o.Timeout = 2 * time.Second
	res, err = Apply(ctx, c, renderAllServices(t, "v12.0.22"), o)
	if err == nil {
		t.Fatal("an app that never gets healthy deployed without error")
	}
	if !strings.Contains(err.Error(), "app "+bad) || strings.Count(err.Error(), "app /") != 1 {
		t.Errorf("the error does not name exactly the unhealthy app: %v", err)
	}
	for _, r := range res {
		d := srv.Definition(r.ID)
		switch {
		case r.ID == bad:
			if !r.RolledBack || d.Image() != good.Image() || d.TasksHealthy != d.Instances {
				t.Errorf("%s: rolled back %v, runs %s with %d/%d healthy", r.ID, r.RolledBack, d.Image(), d.TasksHealthy, d.Instances)
			}
		case r.RolledBack || r.Action != Update || !strings.HasSuffix(d.Image(), ":v12.0.22"):
			t.Errorf("%s: %s, rolled back %v, runs %s", r.ID, r.Action, r.RolledBack, d.Image())
		}
	}
	if len(srv.Deployments()) != 0 {
		t.Errorf("deployments left running: %v", srv.Deployments())
	}
}
