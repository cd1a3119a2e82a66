package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
)

// await waits until deployment d is finished and the app runs its version
// with every instance of that version running and healthy, and stays so
// for the settle time. Past the deadline, or when Marathon stops answering
// until the deadline while the deployment is under way, the app is rolled
// back to prev (rollback).
func await(ctx context.Context, c *client.Client, id string, d client.Deploying, prev string, o Options, deadline time.Time) (rolledBack bool, err error) {
	dep, ver := d.DeploymentID, d.Version
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
		var cur *app.Definition
		if err == nil {
			cur, err = client.Retry(ctx, deadline, o.Log, id+": reading the app", func(ctx context.Context) (*app.Definition, error) { return c.GetAppTasks(ctx, id) })
		}
		if err != nil {
			if !client.Transient(err) {
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
		last = health(cur, ver)
		if !running[dep] {
			switch {
			case cur == nil:
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
		if err := client.Sleep(ctx, o.Poll); err != nil {
			return false, err
		}
	}
	fmt.Fprintf(o.Log, "%s: %s; rolling back\n", id, reason)
	return rollback(ctx, c, id, dep, prev, o, reason)
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
func health(a *app.Definition, ver string) appHealth {
	if a == nil {
		return appHealth{}
	}
	h := appHealth{version: a.Version, instances: a.Instances, staged: a.TasksStaged, checks: len(a.HealthChecks)}
	if a.LastTaskFailure != nil {
		h.failure = a.LastTaskFailure.Message
	}
	if a.Tasks == nil { // no task list: Marathon's counters
		h.running, h.healthy = a.TasksRunning, a.TasksHealthy
		return h
	}
	config := ver
	if a.VersionInfo != nil && a.VersionInfo.LastConfigChangeAt != "" {
		config = a.VersionInfo.LastConfigChangeAt
	}
	for _, t := range a.Tasks {
		if t.State != "TASK_RUNNING" {
			continue
		}
		if t.Version < config { // ISO 8601 UTC: text order is time order
			h.older++
			continue
		}
		h.running++
		alive := len(t.HealthCheckResults) > 0
		for _, r := range t.HealthCheckResults {
			alive = alive && r.Alive
		}
		if alive {
			h.healthy++
		}
	}
	return h
}
