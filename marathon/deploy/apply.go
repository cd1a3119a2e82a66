package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

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

// Apply deploys every app (at most Concurrency at once) and returns one
// result per app, in order, and an error naming every app that failed.
func Apply(ctx context.Context, c *client.Client, apps []render.App, o Options) ([]Result, error) {
	o.defaults()
	jobs := make([]func(context.Context) Result, len(apps))
	for i, a := range apps {
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

// readApp reads app id, retrying until deadline.
func readApp(ctx context.Context, c *client.Client, deadline time.Time, o Options, what, id string) (*app.Definition, error) {
	return client.Retry(ctx, deadline, o.Log, id+": "+what, func(ctx context.Context) (*app.Definition, error) { return c.GetApp(ctx, id) })
}

func deployOne(ctx context.Context, c *client.Client, a render.App, o Options) Result {
	r := Result{ID: a.ID}
	fail := func(err error) Result {
		r.Err = fmt.Errorf("app %s: %w", a.ID, err)
		fmt.Fprintf(o.Log, "%s: FAILED: %v\n", a.ID, err)
		return r
	}
	deadline := time.Now().Add(o.Timeout)
	cur, err := readApp(ctx, c, deadline, o, "reading the app", a.ID)
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
	var d client.Deploying
	d, r.RolledBack, err = changeOrUndo(ctx, c, a.ID, prev, o, deadline, func(ctx context.Context) (client.Deploying, error) {
		return c.PutApp(ctx, a.ID, a.Doc, client.PutOptions{Force: o.Force})
	})
	r.DeploymentID, r.Version = d.DeploymentID, d.Version
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(o.Log, "%s: %s, deployment %s (version %s)\n", a.ID, ch.Action, r.DeploymentID, r.Version)
	r.RolledBack, err = await(ctx, c, a.ID, d, prev, o, deadline)
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
func changeOrUndo(ctx context.Context, c *client.Client, id, prev string, o Options, deadline time.Time, change func(context.Context) (client.Deploying, error)) (d client.Deploying, rolledBack bool, err error) {
	d, err = waitingForLocks(ctx, c, id, o, deadline, change)
	if err != nil && client.Transient(err) {
		fmt.Fprintf(o.Log, "%s: %v; finding out whether Marathon made the change\n", id, err)
		rolledBack, err = rollback(ctx, c, id, "", prev, o, err.Error())
	}
	return d, rolledBack, err
}

// waitingForLocks makes a change, retrying transient failures. A 409
// means deployments hold the app: with Force they are overridden;
// otherwise they are awaited and the change made again — as many times as
// the lock changes hands before the deadline (an owner that cancels its
// deployment leaves Marathon's revert holding the lock under a new id:
// DeploymentManagerActor, DeploymentPlanReverter).
func waitingForLocks(ctx context.Context, c *client.Client, id string, o Options, deadline time.Time, change func(context.Context) (client.Deploying, error)) (client.Deploying, error) {
	for {
		d, err := client.Retry(ctx, deadline, o.Log, id+": PUT", change)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusConflict || o.Force {
			return d, err
		}
		fmt.Fprintf(o.Log, "%s: locked by deployment(s) %s; waiting for them (use force to override)\n", id, strings.Join(ae.Deployments, ", "))
		for {
			running, err := runningDeployments(ctx, c, deadline, o.Log)
			if err != nil {
				return client.Deploying{}, err
			}
			if !anyOf(running, ae.Deployments) {
				break
			}
			if time.Now().After(deadline) {
				return client.Deploying{}, fmt.Errorf("locked by deployment(s) %s, still running after %s; rerun with force to override them", strings.Join(ae.Deployments, ", "), o.Timeout)
			}
			if err := client.Sleep(ctx, o.Poll); err != nil {
				return client.Deploying{}, err
			}
		}
	}
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
func rollback(ctx context.Context, c *client.Client, id, dep, prev string, o Options, reason string) (rolledBack bool, err error) {
	deadline := time.Now().Add(o.Timeout)
	deps, err := client.Retry(ctx, deadline, o.Log, id+": listing deployments for the rollback", c.Deployments)
	if err != nil {
		return false, fmt.Errorf("%s; the rollback could not start: %w", reason, err)
	}
	if dep == "" {
		cur, err := readApp(ctx, c, deadline, o, "reading the app for the rollback", id)
		if err != nil {
			return false, fmt.Errorf("%s; could not find out whether Marathon made the change, so nothing was rolled back: %w", reason, err)
		}
		switch {
		case cur == nil && prev == "":
			return false, fmt.Errorf("%s; Marathon did not create the app: nothing to roll back", reason)
		case cur != nil && cur.Version == prev:
			return false, fmt.Errorf("%s; Marathon did not make the change (the app still runs version %s): nothing to roll back", reason, prev)
		}
		now := ""
		if cur != nil {
			now = cur.Version
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
	var rb client.Deploying
	var how string
	if running {
		rb, err = client.Retry(ctx, deadline, o.Log, id+": cancelling deployment "+dep, func(ctx context.Context) (client.Deploying, error) { return c.CancelDeployment(ctx, dep) })
		switch {
		case client.IsNotFound(err):
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
			rb, err = client.Retry(ctx, deadline, o.Log, id+": deleting the new app", func(ctx context.Context) (client.Deploying, error) { return c.DeleteApp(ctx, id, false) })
			if client.IsNotFound(err) {
				return true, fmt.Errorf("%s; rolled back: the new app is gone", reason)
			}
			if err != nil {
				return false, fmt.Errorf("%s; deleting the new app failed: %w", reason, err)
			}
			how = "the app was new and is deleted"
		} else {
			rb, err = waitingForLocks(ctx, c, id, o, deadline, func(ctx context.Context) (client.Deploying, error) {
				return c.RedeployVersion(ctx, id, prev, o.Force)
			})
			if err != nil {
				return false, fmt.Errorf("%s; redeploying version %s failed: %w", reason, prev, err)
			}
			how = "version " + prev + "'s definition deployed again"
		}
	}
	if rb.DeploymentID == "" {
		return true, fmt.Errorf("%s; rolled back: %s", reason, how)
	}
	for {
		running, err := runningDeployments(ctx, c, deadline, o.Log)
		if err != nil {
			return true, fmt.Errorf("%s; rollback %s: %w", reason, rb.DeploymentID, err)
		}
		if !running[rb.DeploymentID] {
			if prev == "" {
				return true, fmt.Errorf("%s; rolled back: %s (deployment %s)", reason, how, rb.DeploymentID)
			}
			// Marathon runs the previous definition as a new version.
			return true, fmt.Errorf("%s; rolled back: %s, now running as version %s (deployment %s)", reason, how, rb.Version, rb.DeploymentID)
		}
		if time.Now().After(deadline) {
			return true, fmt.Errorf("%s; %s, but the rollback (deployment %s) is still running after %s", reason, how, rb.DeploymentID, o.Timeout)
		}
		if err := client.Sleep(ctx, o.Poll); err != nil {
			return true, err
		}
	}
}

// runningDeployments are the ids of the deployments under way.
func runningDeployments(ctx context.Context, c *client.Client, deadline time.Time, log io.Writer) (map[string]bool, error) {
	deps, err := client.Retry(ctx, deadline, log, "listing deployments", c.Deployments)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range deps {
		out[d.ID] = true
	}
	return out, nil
}

func anyOf(set map[string]bool, ids []string) bool {
	return slices.ContainsFunc(ids, func(id string) bool { return set[id] })
}
