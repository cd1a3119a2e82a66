package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// Action is what deploying an app does.
type Action string

const (
	Create    Action = "create"
	Update    Action = "update"
	Unchanged Action = "unchanged"
)

// Change is one line of a plan.
type Change struct {
	ID      string
	Action  Action
	Diff    string // unified diff, running → rendered, for updates
	Version string // the running version, for updates
}

// Options tune Apply.
type Options struct {
	// Force overrides a deployment already running on an app (?force=true).
	// Without it, a 409 waits for that deployment to finish, then retries.
	Force bool
	// Concurrency bounds the apps deployed at once (default 4).
	Concurrency int
	// Timeout is how long an app may take to run its new version with every
	// instance healthy before it is rolled back (default 10 min).
	Timeout time.Duration
	// Poll is the polling interval (default 1 s).
	Poll time.Duration
	// Log receives one line per event; nil discards.
	Log io.Writer
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Result is what happened to one app.
type Result struct {
	ID           string
	Action       Action
	DeploymentID string
	Version      string
	RolledBack   bool
	Err          error
	Duration     time.Duration
}

// Plan compares the rendered apps with what Marathon runs. Only the fields
// the rendered app sets are compared, so the defaults Marathon fills in do
// not show up as changes.
func Plan(ctx context.Context, c *Client, apps []render.App) ([]Change, error) {
	var out []Change
	for _, a := range apps {
		cur, err := c.GetApp(ctx, a.ID)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", a.ID, err)
		}
		out = append(out, compare(a, cur))
	}
	return out, nil
}

func compare(a render.App, cur map[string]any) Change {
	if cur == nil {
		return Change{ID: a.ID, Action: Create}
	}
	ver, _ := cur["version"].(string)
	running := pretty(normalize(project(cur, a.Doc)))
	want := pretty(normalize(a.Doc))
	if running == want {
		return Change{ID: a.ID, Action: Unchanged, Version: ver}
	}
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(running), B: difflib.SplitLines(want),
		FromFile: "running " + a.ID + " (version " + ver + ")", ToFile: "rendered " + a.ID, Context: 2,
	})
	return Change{ID: a.ID, Action: Update, Diff: diff, Version: ver}
}

// FormatPlan prints a plan for people.
func FormatPlan(w io.Writer, plan []Change) {
	n := map[Action]int{}
	for _, c := range plan {
		n[c.Action]++
		fmt.Fprintf(w, "%-9s %s\n", c.Action, c.ID)
		if c.Diff != "" {
			for _, line := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	fmt.Fprintf(w, "plan: %d to create, %d to update, %d unchanged\n", n[Create], n[Update], n[Unchanged])
}

// Apply deploys every app (at most Concurrency at once) and returns one
// result per app, in order, and an error naming every app that failed.
func Apply(ctx context.Context, c *Client, apps []render.App, o Options) ([]Result, error) {
	o.defaults()
	jobs := make([]func(context.Context) Result, len(apps))
	for i, a := range apps {
		a := a
		jobs[i] = func(ctx context.Context) Result { return deployOne(ctx, c, a, o) }
	}
	return runAll(ctx, jobs, o)
}

func runAll(ctx context.Context, jobs []func(context.Context) Result, o Options) ([]Result, error) {
	results := make([]Result, len(jobs))
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			results[i] = job(ctx)
			results[i].Duration = time.Since(start)
		}()
	}
	wg.Wait()
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return results, errors.Join(errs...)
}

func deployOne(ctx context.Context, c *Client, a render.App, o Options) Result {
	r := Result{ID: a.ID}
	fail := func(err error) Result {
		r.Err = fmt.Errorf("app %s: %w", a.ID, err)
		fmt.Fprintf(o.Log, "%s: FAILED: %v\n", a.ID, err)
		return r
	}
	cur, err := c.GetApp(ctx, a.ID)
	if err != nil {
		return fail(err)
	}
	ch := compare(a, cur)
	r.Action = ch.Action
	if ch.Action == Unchanged {
		fmt.Fprintf(o.Log, "%s: unchanged (version %s)\n", a.ID, ch.Version)
		r.Version = ch.Version
		return r
	}
	prev := ch.Version
	r.DeploymentID, r.Version, err = putWaitingForLocks(ctx, c, a.ID, a.Doc, false, o)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(o.Log, "%s: %s, deployment %s (version %s)\n", a.ID, ch.Action, r.DeploymentID, r.Version)
	r.RolledBack, err = await(ctx, c, a.ID, r.DeploymentID, r.Version, prev, o)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(o.Log, "%s: deployed, all instances healthy\n", a.ID)
	return r
}

// putWaitingForLocks PUTs the app. A 409 means another deployment holds the
// app: with Force it is overridden, otherwise we wait for it to finish and
// try once more.
func putWaitingForLocks(ctx context.Context, c *Client, id string, body any, partial bool, o Options) (string, string, error) {
	dep, ver, err := c.PutApp(ctx, id, body, partial, o.Force)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || o.Force {
		return dep, ver, err
	}
	fmt.Fprintf(o.Log, "%s: locked by deployment(s) %s; waiting for them (use force to override)\n", id, strings.Join(ae.Deployments, ", "))
	deadline := time.Now().Add(o.Timeout)
	for {
		running, err := runningDeployments(c)
		if err != nil {
			return "", "", err
		}
		if !anyOf(running, ae.Deployments) {
			break
		}
		if time.Now().After(deadline) {
			return "", "", fmt.Errorf("locked by deployment(s) %s, still running after %s; rerun with force to override them", strings.Join(ae.Deployments, ", "), o.Timeout)
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return "", "", err
		}
	}
	return c.PutApp(ctx, id, body, partial, false)
}

// await waits until deployment dep is finished and the app runs version ver
// with every instance running and healthy. Past the deadline the deployment
// is cancelled, which makes Marathon roll the app back to its previous
// version (or remove an app it was creating); that rollback is awaited too.
func await(ctx context.Context, c *Client, id, dep, ver, prev string, o Options) (rolledBack bool, err error) {
	deadline := time.Now().Add(o.Timeout)
	var last string
	for {
		running, err := runningDeployments(c)
		if err != nil {
			return false, err
		}
		app, err := c.GetApp(ctx, id)
		if err != nil {
			return false, err
		}
		status := health(app)
		last = status.String()
		if !running[dep] {
			switch {
			case app == nil:
				return false, fmt.Errorf("deployment %s finished but the app is gone (deleted or cancelled by someone else)", dep)
			case status.version != ver:
				return false, fmt.Errorf("deployment %s is gone but the app runs version %s, not %s: it was cancelled or overridden", dep, status.version, ver)
			case status.ok():
				return false, nil
			}
		}
		if time.Now().After(deadline) {
			break
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return false, err
		}
	}
	reason := fmt.Sprintf("not healthy within %s: %s", o.Timeout, last)
	fmt.Fprintf(o.Log, "%s: %s; rolling back\n", id, reason)
	rb, err := c.Marathon().DeleteDeployment(dep, false)
	if err != nil {
		return false, fmt.Errorf("%s; cancelling deployment %s for the rollback failed: %v", reason, dep, err)
	}
	target := "version " + prev
	if prev == "" {
		target = "nothing (the app was new and is removed)"
	}
	if rb == nil || rb.DeploymentID == "" {
		return true, fmt.Errorf("%s; deployment %s cancelled, rollback to %s started", reason, dep, target)
	}
	rbDeadline := time.Now().Add(o.Timeout)
	for {
		running, err := runningDeployments(c)
		if err != nil {
			return true, fmt.Errorf("%s; rollback %s: %v", reason, rb.DeploymentID, err)
		}
		if !running[rb.DeploymentID] {
			return true, fmt.Errorf("%s; rolled back to %s (deployment %s)", reason, target, rb.DeploymentID)
		}
		if time.Now().After(rbDeadline) {
			return true, fmt.Errorf("%s; the rollback to %s (deployment %s) is still running after %s", reason, target, rb.DeploymentID, o.Timeout)
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return true, err
		}
	}
}

type appHealth struct {
	version                                     string
	instances, running, healthy, checks, staged int
	failure                                     string
}

func (h appHealth) ok() bool {
	return h.running >= h.instances && (h.checks == 0 || h.healthy >= h.instances)
}

func (h appHealth) String() string {
	s := fmt.Sprintf("%d/%d instances running", h.running, h.instances)
	if h.checks > 0 {
		s += fmt.Sprintf(", %d/%d healthy", h.healthy, h.instances)
	}
	if h.failure != "" {
		s += " (last failure: " + h.failure + ")"
	}
	return s
}

func health(app map[string]any) appHealth {
	if app == nil {
		return appHealth{}
	}
	h := appHealth{
		instances: intOf(app["instances"]), running: intOf(app["tasksRunning"]),
		healthy: intOf(app["tasksHealthy"]), staged: intOf(app["tasksStaged"]),
	}
	h.version, _ = app["version"].(string)
	if hc, ok := app["healthChecks"].([]any); ok {
		h.checks = len(hc)
	}
	if f, ok := app["lastTaskFailure"].(map[string]any); ok {
		h.failure, _ = f["message"].(string)
	}
	return h
}

func runningDeployments(c *Client) (map[string]bool, error) {
	deps, err := c.Marathon().Deployments()
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %s", redact(err.Error(), c))
	}
	out := map[string]bool{}
	for _, d := range deps {
		out[d.ID] = true
	}
	return out, nil
}

// SoftUpdate is the seed's "soft update": every app labelled
// dirac_component (Marathon label, or the docker label parameter the seed
// used) gets its image tag swapped for version; instance counts, resources
// and everything else stay as they run.
func SoftUpdate(ctx context.Context, c *Client, version string, o Options) ([]Result, error) {
	o.defaults()
	apps, err := c.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	var jobs []func(context.Context) Result
	for _, app := range apps {
		if !isDiracApp(app) {
			continue
		}
		id, _ := app["id"].(string)
		container, _ := app["container"].(map[string]any)
		docker, _ := container["docker"].(map[string]any)
		image, _ := docker["image"].(string)
		newImage, err := retag(image, version)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", id, err)
		}
		prev, _ := app["version"].(string)
		jobs = append(jobs, func(ctx context.Context) Result {
			r := Result{ID: id, Action: Update}
			if newImage == image {
				r.Action = Unchanged
				return r
			}
			docker["image"] = newImage
			// a partial update: only the container changes
			r.DeploymentID, r.Version, r.Err = putWaitingForLocks(ctx, c, id, map[string]any{"id": id, "container": container}, true, o)
			if r.Err == nil {
				fmt.Fprintf(o.Log, "%s: image %s -> %s, deployment %s\n", id, image, newImage, r.DeploymentID)
				r.RolledBack, r.Err = await(ctx, c, id, r.DeploymentID, r.Version, prev, o)
			}
			if r.Err != nil {
				r.Err = fmt.Errorf("app %s: %w", id, r.Err)
			}
			return r
		})
	}
	if len(jobs) == 0 {
		return nil, errors.New("no app labelled dirac_component runs on this Marathon")
	}
	return runAll(ctx, jobs, o)
}

func isDiracApp(app map[string]any) bool {
	if labels, ok := app["labels"].(map[string]any); ok {
		if _, ok := labels["dirac_component"]; ok {
			return true
		}
	}
	container, _ := app["container"].(map[string]any)
	docker, _ := container["docker"].(map[string]any)
	params, _ := docker["parameters"].([]any)
	for _, p := range params {
		m, _ := p.(map[string]any)
		if v, _ := m["value"].(string); m["key"] == "label" && strings.HasPrefix(v, "dirac_component=") {
			return true
		}
	}
	return false
}

// retag replaces an image's tag, minding registry ports (host:5000/repo)
// and digests, which the seed's split on ":" got wrong.
func retag(image, tag string) (string, error) {
	if image == "" {
		return "", errors.New("no container.docker.image")
	}
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndex(image, "/")
	if colon := strings.LastIndex(image, ":"); colon > slash {
		image = image[:colon]
	}
	return image + ":" + tag, nil
}

// ---- helpers ----

// project keeps, from what Marathon returns, the fields the rendered app
// sets, recursively.
func project(cur, want any) any {
	switch w := want.(type) {
	case map[string]any:
		c, ok := cur.(map[string]any)
		if !ok {
			return cur
		}
		out := map[string]any{}
		for k := range w {
			if v, ok := c[k]; ok {
				out[k] = project(v, w[k])
			}
		}
		return out
	case []any:
		c, ok := cur.([]any)
		if !ok || len(c) != len(w) {
			return cur
		}
		out := make([]any, len(w))
		for i := range w {
			out[i] = project(c[i], w[i])
		}
		return out
	}
	return cur
}

// normalize makes numbers comparable: 1 and 1.0 are the same to Marathon.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	}
	return v
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b) + "\n"
}

func intOf(v any) int {
	switch x := v.(type) {
	case json.Number:
		n, _ := x.Int64()
		return int(n)
	case float64:
		return int(x)
	}
	return 0
}

func anyOf(set map[string]bool, ids []string) bool {
	for _, id := range ids {
		if set[id] {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
