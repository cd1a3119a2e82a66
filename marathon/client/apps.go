package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
)

// Reads return nil for what does not exist (an app, a version): to the
// deploy, an absent app is a state like any other. App ids are absolute
// ("/system/service").

// GetApp returns the app as Marathon runs it, or nil when it does not exist.
func (c *Client) GetApp(ctx context.Context, id string) (*app.Definition, error) {
	return c.getApp(ctx, "/v2/apps"+appPath(id))
}

// GetAppTasks is GetApp with the app's tasks (embed=app.tasks): their
// versions and health check results.
func (c *Client) GetAppTasks(ctx context.Context, id string) (*app.Definition, error) {
	return c.getApp(ctx, "/v2/apps"+appPath(id)+"?embed=app.tasks")
}

func (c *Client) getApp(ctx context.Context, path string) (*app.Definition, error) {
	var out struct {
		App json.RawMessage `json:"app"`
	}
	if err := c.Get(ctx, path, &out); err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return parseApp(path, out.App)
}

// ListApps returns every app.
func (c *Client) ListApps(ctx context.Context) ([]*app.Definition, error) {
	const path = "/v2/apps"
	var out struct {
		Apps []json.RawMessage `json:"apps"`
	}
	if err := c.Get(ctx, path, &out); err != nil {
		return nil, err
	}
	apps := make([]*app.Definition, 0, len(out.Apps))
	for _, raw := range out.Apps {
		a, err := parseApp(path, raw)
		if err != nil {
			return nil, err
		}
		apps = append(apps, a)
	}
	return apps, nil
}

// AppVersions lists the versions Marathon keeps of app id, newest first
// (GET /v2/apps/{id}/versions); nil when the app does not exist (Marathon
// keeps at least one version of every app it runs, and none of an app it
// deleted).
func (c *Client) AppVersions(ctx context.Context, id string) ([]string, error) {
	var out struct {
		Versions []string `json:"versions"`
	}
	if err := c.Get(ctx, "/v2/apps"+appPath(id)+"/versions", &out); err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if out.Versions == nil {
		out.Versions = []string{}
	}
	return out.Versions, nil
}

// AppVersion is app id's definition as it was at version (GET
// /v2/apps/{id}/versions/{version}); nil when Marathon has no such version
// (or no such app).
func (c *Client) AppVersion(ctx context.Context, id, version string) (*app.Definition, error) {
	path := "/v2/apps" + appPath(id) + "/versions/" + url.PathEscape(version)
	var raw json.RawMessage
	if err := c.Get(ctx, path, &raw); err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return parseApp(path, raw)
}

// PutOptions are the query of a PUT.
type PutOptions struct {
	// Partial keeps Marathon's default partial update: fields missing from
	// the body keep their old values. Without it (?partialUpdate=false)
	// they go back to Marathon's defaults, so a removed field goes away.
	Partial bool
	// Force overrides the deployments locking the app (?force=true).
	Force bool
}

// PutApp creates or replaces app id with def (anything that marshals to an
// app definition) and returns the deployment that does it.
func (c *Client) PutApp(ctx context.Context, id string, def any, o PutOptions) (Deploying, error) {
	q := url.Values{}
	if !o.Partial {
		q.Set("partialUpdate", "false")
	}
	if o.Force {
		q.Set("force", "true")
	}
	path := "/v2/apps" + appPath(id)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.deploying(ctx, http.MethodPut, path, def)
}

// ScaleApp sets the instance count alone (a partial update: Marathon
// scales, restarting nothing).
func (c *Client) ScaleApp(ctx context.Context, id string, n int, force bool) (Deploying, error) {
	return c.PutApp(ctx, id, map[string]int{"instances": n}, PutOptions{Partial: true, Force: force})
}

// RedeployVersion deploys a stored version's definition again (PUT
// {"version": v}): Marathon runs it as a new version.
func (c *Client) RedeployVersion(ctx context.Context, id, version string, force bool) (Deploying, error) {
	path := "/v2/apps" + appPath(id)
	if force {
		path += "?force=true"
	}
	return c.deploying(ctx, http.MethodPut, path, map[string]string{"version": version})
}

// DeleteApp removes an app (a deployment of its own).
func (c *Client) DeleteApp(ctx context.Context, id string, force bool) (Deploying, error) {
	path := "/v2/apps" + appPath(id)
	if force {
		path += "?force=true"
	}
	return c.deploying(ctx, http.MethodDelete, path, nil)
}

// appPath is an app id as a path: absolute, without a trailing slash.
func appPath(id string) string { return "/" + strings.Trim(id, "/") }

func parseApp(path string, raw json.RawMessage) (*app.Definition, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("GET %s: Marathon's answer has no app", path)
	}
	a, err := app.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return a, nil
}
