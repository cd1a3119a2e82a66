package client

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
)

func webApp(image string, instances int) map[string]any {
	return map[string]any{"id": "/lhcb/web", "instances": instances, "cpus": 0.1, "mem": 64,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": image}},
		"labels":    map[string]any{"owner": "lhcb"}}
}

// waitDeployed waits until the stand-in has no deployment under way.
func waitDeployed(t *testing.T, srv *marathontest.Server) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(srv.Deployments()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("deployments still running: %v", srv.Deployments())
		}
	}
}

// Apps come back typed, with Marathon's JSON beside; what does not exist
// is nil, not an error.
func TestAppsComeBackTyped(t *testing.T) {
	srv := marathontest.New()
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, Config{})
	ctx := context.Background()
	if a, err := c.GetApp(ctx, "/lhcb/web"); a != nil || err != nil {
		t.Fatalf("an absent app: %v %v", a, err)
	}
	d, err := c.PutApp(ctx, "/lhcb/web", webApp("registry:5000/lhcb/web:v1@sha256:0123", 2), PutOptions{})
	if err != nil || d.DeploymentID == "" || d.Version == "" {
		t.Fatalf("PUT: %+v %v", d, err)
	}
	waitDeployed(t, srv)
	a, err := c.GetAppTasks(ctx, "lhcb/web/")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "/lhcb/web" || a.Version != d.Version || a.Instances != 2 || len(a.Tasks) != 2 || a.Labels["owner"] != "lhcb" ||
		a.ImageRepo() != "registry:5000/lhcb/web" || a.ImageTag() != "v1" || a.ImageDigest() != "sha256:0123" {
		t.Fatalf("GET answered %+v", a)
	}
	if a.Doc["cpus"] == nil || a.Doc["upgradeStrategy"] == nil {
		t.Fatalf("Marathon's JSON is not kept: %v", a.Doc)
	}
	apps, err := c.ListApps(ctx)
	if err != nil || len(apps) != 1 || apps[0].ID != "/lhcb/web" || apps[0].Tasks != nil {
		t.Fatalf("ListApps: %+v %v", apps, err)
	}
}

// Versions, for a rollback to a chosen one: listed newest first, each
// readable as it was; a PUT of an identical definition is a version too
// (Marathon answers a new one); an unknown app or version is nil.
func TestAppVersions(t *testing.T) {
	srv := marathontest.New()
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, Config{})
	ctx := context.Background()
	var made []string
	for _, def := range []map[string]any{webApp("web:v1", 1), webApp("web:v2", 1), webApp("web:v2", 1), webApp("web:v2", 3)} {
		d, err := c.PutApp(ctx, "/lhcb/web", def, PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, d.Version)
		waitDeployed(t, srv)
	}
	vs, err := c.AppVersions(ctx, "/lhcb/web")
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(made)
	if !slices.Equal(vs, made) {
		t.Fatalf("versions %v, want the PUTs' %v newest first", vs, made)
	}
	first, err := c.AppVersion(ctx, "/lhcb/web", vs[len(vs)-1])
	if err != nil || first == nil || first.Image() != "web:v1" || first.Version != vs[len(vs)-1] || first.Instances != 1 {
		t.Fatalf("the first version: %+v %v", first, err)
	}
	scaled, err := c.AppVersion(ctx, "/lhcb/web", vs[0])
	if err != nil || scaled.Instances != 3 || scaled.VersionInfo == nil || scaled.VersionInfo.LastScalingAt != vs[0] || scaled.VersionInfo.LastConfigChangeAt != vs[2] {
		t.Fatalf("the scaled version: %+v %+v %v", scaled, scaled.VersionInfo, err)
	}
	if v, err := c.AppVersion(ctx, "/lhcb/web", "2001-01-01T00:00:00.000Z"); v != nil || err != nil {
		t.Fatalf("an unknown version: %v %v", v, err)
	}
	if vs, err := c.AppVersions(ctx, "/lhcb/none"); vs != nil || err != nil {
		t.Fatalf("an unknown app's versions: %v %v", vs, err)
	}
	// Back to the first version's definition: a new version of its own.
	d, err := c.RedeployVersion(ctx, "/lhcb/web", first.Version, false)
	if err != nil {
		t.Fatal(err)
	}
	waitDeployed(t, srv)
	now, err := c.GetApp(ctx, "/lhcb/web")
	if err != nil || now.Image() != "web:v1" || now.Version != d.Version || now.Version == first.Version {
		t.Fatalf("after the redeploy of %s: %+v %v", first.Version, now, err)
	}
	if _, err := c.RedeployVersion(ctx, "/lhcb/web", "2001-01-01T00:00:00.000Z", false); !IsNotFound(err) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("redeploying an unknown version: %v", err)
	}
}
