package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
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
	// Settle is how long every instance of the new version must stay
	// healthy after its deployment finished (default 30 s, at most until
	// Timeout). Marathon ends a deployment once the tasks first pass their
	// health checks; a service that dies a few seconds later would
	// otherwise be reported deployed.
	Settle time.Duration
	// Poll is the polling interval (default 1 s).
	Poll time.Duration
	// Log receives one line per event; nil discards.
	Log io.Writer
	// MaxInstances bounds the instance count Scale accepts (default
	// DefaultMaxInstances, MARATHON_MAX_INSTANCES): a typo of a few zeros
	// must not reach Marathon, which would try to start them all.
	MaxInstances int
}

// DefaultMaxInstances is Scale's bound when none is set: DIRAC services
// run a handful of instances each.
const DefaultMaxInstances = 100

// MaxInstancesEnv raises (or lowers) Scale's bound.
const MaxInstancesEnv = "MARATHON_MAX_INSTANCES"

// OptionsFromEnv reads MARATHON_FORCE ("1"), MARATHON_TIMEOUT and
// MARATHON_SETTLE (Go durations) and MARATHON_MAX_INSTANCES; log receives
// the deploy's events. MARATHON_TIMEOUT bounds a deploy or scale of each
// app, every request included; a rollback after it gets as long again.
func OptionsFromEnv(getenv func(string) string, log io.Writer) (Options, error) {
	o := Options{Log: log}
	switch f := getenv("MARATHON_FORCE"); f {
	case "", "0":
	case "1":
		o.Force = true
	default:
		return o, fmt.Errorf("MARATHON_FORCE=%q: want 1 (override running deployments) or unset", f)
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"MARATHON_TIMEOUT", &o.Timeout}, {"MARATHON_SETTLE", &o.Settle}} {
		t := getenv(d.name)
		if t == "" {
			continue
		}
		v, err := time.ParseDuration(t)
		if err != nil || v <= 0 {
			return o, fmt.Errorf("%s=%q: want a positive duration such as 90s or 10m", d.name, t)
		}
		*d.to = v
	}
	if m := getenv(MaxInstancesEnv); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > 1_000_000 {
			return o, fmt.Errorf("%s=%q: want a whole number of instances from 1 to 1000000", MaxInstancesEnv, m)
		}
		o.MaxInstances = n
	}
	if o.Timeout > 0 && o.Settle > o.Timeout {
		return o, fmt.Errorf("MARATHON_SETTLE=%s is longer than MARATHON_TIMEOUT=%s", o.Settle, o.Timeout)
	}
	return o, nil
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.MaxInstances <= 0 {
		o.MaxInstances = DefaultMaxInstances
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
	deadline := time.Now().Add(c.Retry)
	var out []Change
	for _, a := range apps {
		cur, err := retry(ctx, deadline, nil, a.ID+": reading the app", func(ctx context.Context) (map[string]any, error) { return c.GetApp(ctx, a.ID) })
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
	shown := project(cur, a.Doc).(map[string]any)
	// A field the rendered app does not set is reset to Marathon's default
	// by the full PUT; one that differs from that default is a change.
	for k, v := range cur {
		if _, set := a.Doc[k]; set || statusFields[k] || isDefault(k, v) {
			continue
		}
		shown[k] = v
	}
	running := pretty(asSets(normalize(shown)))
	want := pretty(asSets(normalize(a.Doc)))
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
	deadline := time.Now().Add(o.Timeout)
	cur, err := retry(ctx, deadline, o.Log, a.ID+": reading the app", func(ctx context.Context) (map[string]any, error) { return c.GetApp(ctx, a.ID) })
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
	r.DeploymentID, r.Version, r.RolledBack, err = changeOrUndo(ctx, c, a.ID, prev, o, deadline, func(ctx context.Context) (string, string, error) {
		return c.PutApp(ctx, a.ID, a.Doc, false, o.Force)
	})
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(o.Log, "%s: %s, deployment %s (version %s)\n", a.ID, ch.Action, r.DeploymentID, r.Version)
	r.RolledBack, err = await(ctx, c, a.ID, r.DeploymentID, r.Version, prev, o, deadline)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(o.Log, "%s: deployed, all instances of version %s running and healthy\n", a.ID, r.Version)
	return r
}

// changeOrUndo makes a change to app id (change: a PUT or a DELETE that
// starts a deployment) as waitingForLocks does. When Marathon kept failing
// until the deadline the change may have been made all the same — a PUT
// that arrived and whose answer was lost — so it is looked for and, when
// found, rolled back (rolledBack; err says what happened).
func changeOrUndo(ctx context.Context, c *Client, id, prev string, o Options, deadline time.Time, change func(context.Context) (dep, ver string, err error)) (dep, ver string, rolledBack bool, err error) {
	dep, ver, err = waitingForLocks(ctx, c, id, o, deadline, change)
	if err != nil && Transient(err) {
		fmt.Fprintf(o.Log, "%s: %v; finding out whether Marathon made the change\n", id, err)
		rolledBack, err = rollback(ctx, c, id, "", prev, o, err.Error())
	}
	return dep, ver, rolledBack, err
}

// waitingForLocks makes a change, retrying transient failures. A 409
// means deployments hold the app: with Force they are overridden;
// otherwise they are awaited and the change made again — as many times as
// the lock changes hands before the deadline (an owner that cancels its
// deployment leaves Marathon's revert holding the lock under a new id:
// DeploymentManagerActor, DeploymentPlanReverter).
func waitingForLocks(ctx context.Context, c *Client, id string, o Options, deadline time.Time, change func(context.Context) (dep, ver string, err error)) (string, string, error) {
	type put struct{ dep, ver string }
	for {
		p, err := retry(ctx, deadline, o.Log, id+": PUT", func(ctx context.Context) (put, error) {
			dep, ver, err := change(ctx)
			return put{dep, ver}, err
		})
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusConflict || o.Force {
			return p.dep, p.ver, err
		}
		fmt.Fprintf(o.Log, "%s: locked by deployment(s) %s; waiting for them (use force to override)\n", id, strings.Join(ae.Deployments, ", "))
		for {
			running, err := runningDeployments(ctx, c, deadline, o.Log)
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
	}
}

// await waits until deployment dep is finished and the app runs version
// ver with every instance of that version running and healthy. Past the
// deadline, or when Marathon stops answering until the deadline while the
// deployment is under way, the app is rolled back (rollback).
func await(ctx context.Context, c *Client, id, dep, ver, prev string, o Options, deadline time.Time) (rolledBack bool, err error) {
	var last appHealth
	var healthySince time.Time // zero while not finished and healthy
	var reason string
	for {
		if time.Now().After(deadline) {
			// Healthy since the deployment finished, until the deadline.
			if !healthySince.IsZero() {
				return false, nil
			}
			reason = fmt.Sprintf("not healthy within %s: %s", o.Timeout, last)
			break
		}
		running, err := runningDeployments(ctx, c, deadline, o.Log)
		var app map[string]any
		if err == nil {
			app, err = retry(ctx, deadline, o.Log, id+": reading the app", func(ctx context.Context) (map[string]any, error) { return c.GetAppTasks(ctx, id) })
		}
		if err != nil {
			if !Transient(err) {
				return false, err
			}
			if !healthySince.IsZero() {
				// Finished and healthy at the last look: a working
				// deploy is not undone because Marathon went quiet.
				return false, fmt.Errorf("deployment %s finished and every instance was healthy, then Marathon stopped answering before the %s settle time was over (%v): not rolled back; check the app", dep, o.Settle, err)
			}
			reason = fmt.Sprintf("not healthy within %s: Marathon stopped answering while deployment %s was under way (%v)", o.Timeout, dep, err)
			if last.version != "" {
				reason += "; last seen: " + last.String()
			}
			break
		}
		last = health(app, ver)
		if !running[dep] {
			switch {
			case app == nil:
				return false, fmt.Errorf("deployment %s finished but the app is gone (deleted or cancelled by someone else)", dep)
			case last.version != ver:
				return false, fmt.Errorf("deployment %s is gone but the app runs version %s, not %s: it was cancelled or overridden", dep, last.version, ver)
			case last.ok():
				if healthySince.IsZero() {
					healthySince = time.Now()
					fmt.Fprintf(o.Log, "%s: deployment %s finished, %s; watching it for %s\n", id, dep, last, o.Settle)
				}
				if time.Since(healthySince) >= o.Settle {
					return false, nil
				}
			default:
				if !healthySince.IsZero() {
					fmt.Fprintf(o.Log, "%s: after its deployment finished: %s\n", id, last)
				}
				healthySince = time.Time{}
			}
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return false, err
		}
	}
	fmt.Fprintf(o.Log, "%s: %s; rolling back\n", id, reason)
	return rollback(ctx, c, id, dep, prev, o, reason)
}

// rollback undoes a change to app id that failed for reason, with a
// deadline of its own (the change's has passed): a deployment dep still
// running is cancelled, which makes Marathon revert it
// (DeploymentPlanReverter); one that finished is undone by deploying the
// previous version's definition again (PUT {"version": prev}: Marathon
// keeps every version), or by deleting an app the deployment created
// (prev ""). With dep "" the change's fate is unknown (Marathon kept
// failing on it): the app is read, and when it no longer runs prev, the
// deployment of the version it runs is the one undone. It always returns
// an error, saying what was done.
func rollback(ctx context.Context, c *Client, id, dep, prev string, o Options, reason string) (rolledBack bool, err error) {
	deadline := time.Now().Add(o.Timeout)
	deps, err := retry(ctx, deadline, o.Log, id+": listing deployments for the rollback", c.deployments)
	if err != nil {
		return false, fmt.Errorf("%s; the rollback could not start: %w", reason, err)
	}
	if dep == "" {
		app, err := retry(ctx, deadline, o.Log, id+": reading the app for the rollback", func(ctx context.Context) (map[string]any, error) { return c.GetApp(ctx, id) })
		if err != nil {
			return false, fmt.Errorf("%s; could not find out whether Marathon made the change, so nothing was rolled back: %w", reason, err)
		}
		now, _ := app["version"].(string)
		switch {
		case app == nil && prev == "":
			return false, fmt.Errorf("%s; Marathon did not create the app: nothing to roll back", reason)
		case app != nil && now == prev:
			return false, fmt.Errorf("%s; Marathon did not make the change (the app still runs version %s): nothing to roll back", reason, prev)
		}
		for _, d := range deps {
			if d.Version == now && slices.Contains(d.AffectedApps, id) {
				dep = d.ID
			}
		}
	}
	running := false
	for _, d := range deps {
		running = running || (dep != "" && d.ID == dep)
	}
	var rbDep, rbVer, how string
	if running {
		rbDep, rbVer, err = retry2(ctx, deadline, o.Log, id+": cancelling deployment "+dep, func(ctx context.Context) (string, string, error) { return c.cancelDeployment(ctx, dep) })
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			running = false // it ended meanwhile (or an earlier try cancelled it): undo what it did
		case err != nil:
			return false, fmt.Errorf("%s; cancelling deployment %s for the rollback failed: %w", reason, dep, err)
		case prev == "":
			how = "deployment " + dep + " cancelled; the app was new and Marathon removes it"
		default:
			how = "deployment " + dep + " cancelled; Marathon reverts to version " + prev + "'s definition"
		}
	}
	if !running {
		if prev == "" {
			rbDep, rbVer, err = retry2(ctx, deadline, o.Log, id+": deleting the new app", func(ctx context.Context) (string, string, error) { return c.deleteApp(ctx, id) })
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				return true, fmt.Errorf("%s; rolled back: the new app is gone", reason)
			}
			if err != nil {
				return false, fmt.Errorf("%s; deleting the new app failed: %w", reason, err)
			}
			how = "the app was new and is deleted"
		} else {
			rbDep, rbVer, err = waitingForLocks(ctx, c, id, o, deadline, func(ctx context.Context) (string, string, error) { return c.putVersion(ctx, id, prev, o.Force) })
			if err != nil {
				return false, fmt.Errorf("%s; redeploying version %s failed: %w", reason, prev, err)
			}
			how = "version " + prev + "'s definition deployed again"
		}
	}
	if rbDep == "" {
		return true, fmt.Errorf("%s; rolled back: %s", reason, how)
	}
	for {
		running, err := runningDeployments(ctx, c, deadline, o.Log)
		if err != nil {
			return true, fmt.Errorf("%s; rollback %s: %w", reason, rbDep, err)
		}
		if !running[rbDep] {
			if prev == "" {
				return true, fmt.Errorf("%s; rolled back: %s (deployment %s)", reason, how, rbDep)
			}
			// Marathon runs the previous definition as a new version.
			return true, fmt.Errorf("%s; rolled back: %s, now running as version %s (deployment %s)", reason, how, rbVer, rbDep)
		}
		if time.Now().After(deadline) {
			return true, fmt.Errorf("%s; %s, but the rollback (deployment %s) is still running after %s", reason, how, rbDep, o.Timeout)
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return true, err
		}
	}
}

// retry2 is retry for a change that answers a deployment and a version.
func retry2(ctx context.Context, deadline time.Time, log io.Writer, what string, f func(context.Context) (string, string, error)) (string, string, error) {
	type result struct{ dep, ver string }
	r, err := retry(ctx, deadline, log, what, func(ctx context.Context) (result, error) {
		dep, ver, err := f(ctx)
		return result{dep, ver}, err
	})
	return r.dep, r.ver, err
}

type appHealth struct {
	version                                     string
	instances, running, healthy, checks, staged int
	older                                       int // tasks of other versions still running
	failure                                     string
}

func (h appHealth) ok() bool {
	return h.running >= h.instances && (h.checks == 0 || h.healthy >= h.instances)
}

func (h appHealth) String() string {
	s := fmt.Sprintf("%d/%d instances of version %s running", h.running, h.instances, h.version)
	if h.checks > 0 {
		s += fmt.Sprintf(", %d/%d healthy", h.healthy, h.instances)
	}
	if h.older > 0 {
		s += fmt.Sprintf(" (and %d of an older version)", h.older)
	}
	if h.failure != "" {
		s += " (last failure: " + h.failure + ")"
	}
	return s
}

// health counts what runs of version ver. With the app's tasks (GET with
// embed=app.tasks) only tasks started with the current configuration count
// — their version is at least versionInfo.lastConfigChangeAt, since a
// change that restarts nothing (an identical PUT, a scale) gives the app a
// new version but leaves its tasks theirs — for during a deployment
// Marathon's counters mix old and new tasks ("4/2 running"). A task is
// healthy when every health check result says alive.
func health(app map[string]any, ver string) appHealth {
	if app == nil {
		return appHealth{}
	}
	h := appHealth{instances: intOf(app["instances"]), staged: intOf(app["tasksStaged"])}
	h.version, _ = app["version"].(string)
	if hc, ok := app["healthChecks"].([]any); ok {
		h.checks = len(hc)
	}
	if f, ok := app["lastTaskFailure"].(map[string]any); ok {
		h.failure, _ = f["message"].(string)
	}
	tasks, ok := app["tasks"].([]any)
	if !ok { // no task list: Marathon's counters
		h.running, h.healthy = intOf(app["tasksRunning"]), intOf(app["tasksHealthy"])
		return h
	}
	config := ver
	if vi, ok := app["versionInfo"].(map[string]any); ok {
		if c, ok := vi["lastConfigChangeAt"].(string); ok && c != "" {
			config = c
		}
	}
	for _, t := range tasks {
		task, _ := t.(map[string]any)
		if task == nil || task["state"] != "TASK_RUNNING" {
			continue
		}
		if v, _ := task["version"].(string); v < config { // ISO 8601 UTC: text order is time order
			h.older++
			continue
		}
		h.running++
		results, _ := task["healthCheckResults"].([]any)
		alive := len(results) > 0
		for _, r := range results {
			if m, _ := r.(map[string]any); m == nil || m["alive"] != true {
				alive = false
			}
		}
		if alive {
			h.healthy++
		}
	}
	return h
}

func runningDeployments(ctx context.Context, c *Client, deadline time.Time, log io.Writer) (map[string]bool, error) {
	deps, err := retry(ctx, deadline, log, "listing deployments", c.deployments)
	if err != nil {
		return nil, err
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
	apps, err := retry(ctx, time.Now().Add(o.Timeout), o.Log, "listing the apps", c.ListApps)
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
			deadline := time.Now().Add(o.Timeout)
			body := map[string]any{"id": id, "container": container}
			r.DeploymentID, r.Version, r.RolledBack, r.Err = changeOrUndo(ctx, c, id, prev, o, deadline, func(ctx context.Context) (string, string, error) {
				return c.PutApp(ctx, id, body, true, o.Force)
			})
			if r.Err == nil {
				fmt.Fprintf(o.Log, "%s: image %s -> %s, deployment %s\n", id, image, newImage, r.DeploymentID)
				r.RolledBack, r.Err = await(ctx, c, id, r.DeploymentID, r.Version, prev, o, deadline)
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

// statusFields are what Marathon reports about an app, not its definition.
var statusFields = map[string]bool{
	"version": true, "versionInfo": true, "deployments": true, "tasks": true, "tasksStaged": true,
	"tasksRunning": true, "tasksHealthy": true, "tasksUnhealthy": true, "lastTaskFailure": true,
	"taskStats": true, "readinessCheckResults": true, "counts": true, "ports": true, "id": true,
}

// isDefault says whether a field not in the rendered app holds what
// Marathon would give it anyway. A field unknown here counts as default
// when empty (a newer Marathon's addition, left alone); otherwise it is a
// change, shown in the plan and removed by the deploy.
func isDefault(k string, v any) bool {
	v = normalize(v)
	if d, ok := render.MarathonDefaults[k]; ok {
		if k == "acceptedResourceRoles" { // 1.x returns the default role list
			if l, ok := v.([]any); ok && len(l) == 1 && l[0] == "*" {
				return true
			}
		}
		if k == "maxLaunchDelaySeconds" && v == 3600.0 { // the 1.x default before 1.10
			return true
		}
		return pretty(d) == pretty(v) || v == nil && d == nil
	}
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// setFields are the fields Marathon keeps as sets (AppDefinition:
// constraints Set[Constraint], healthChecks Set[HealthCheck]): it drops
// duplicates and returns them in an order of its own, so a plan compares
// them as sets — or every redeploy of an unchanged app would be an update.
var setFields = []string{"constraints", "healthChecks"}

// asSets sorts and dedupes the set-valued fields of an app.
func asSets(v any) any {
	app, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for _, k := range setFields {
		l, ok := app[k].([]any)
		if !ok {
			continue
		}
		byText := map[string]any{}
		for _, e := range l {
			byText[pretty(e)] = e
		}
		keys := make([]string, 0, len(byText))
		for k := range byText {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = byText[k]
		}
		app[k] = out
	}
	return app
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
