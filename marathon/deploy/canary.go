package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// Canary says how ApplyCanary tries a change on one instance first.
type Canary struct {
	// Apps are the canary apps' ids; empty means every app that changes.
	Apps []string
	// Gate is asked about each canary once Marathon runs its one new
	// instance healthy (tasks: the app's tasks then): an error stops the
	// deploy, and every app is rolled back.
	Gate func(ctx context.Context, a render.App, tasks []app.Task) error
}

// CanaryResult is what ApplyCanary did.
type CanaryResult struct {
	Canaries   []Result // phase 1: one instance of each canary app
	Results    []Result // phase 2: every app at its full definition
	RolledBack []string // the apps put back to the version they had
}

// ApplyCanary deploys apps in two phases: first each canary app's new
// definition with one instance, awaited healthy and gated; then every app
// at its full definition, awaited healthy and settled. Any failure, in
// either phase, rolls every app it touched back to the version it had
// before (an app it created is deleted). During phase 1 a canary app runs
// its one new instance only: mark as canaries the services that can run
// on one instance for the time of the gate.
func ApplyCanary(ctx context.Context, c *client.Client, apps []render.App, can Canary, o Options) (CanaryResult, error) {
	o.defaults()
	var out CanaryResult
	// What every app runs now, so that all can be put back.
	prev := map[string]string{} // id → version ("" for an app that does not exist)
	var changing []render.App
	for _, a := range apps {
		cur, err := readApp(ctx, c, time.Now().Add(o.Timeout), o, "reading the app", a.ID)
		if err != nil {
			return out, fmt.Errorf("app %s: %w", a.ID, err)
		}
		if compare(a, cur).Action == Unchanged {
			continue
		}
		if cur != nil {
			prev[a.ID] = cur.Version
		} else {
			prev[a.ID] = ""
		}
		changing = append(changing, a)
	}
	touched := map[string]bool{}
	var mu sync.Mutex
	undo := func(reason error) error {
		ids := slices.Sorted(maps.Keys(touched))
		var errs []error
		for _, id := range ids {
			rolled, err := rollback(ctx, c, id, "", prev[id], o, reason.Error())
			if rolled {
				out.RolledBack = append(out.RolledBack, id)
				fmt.Fprintf(o.Log, "%s: rolled back to version %q\n", id, prev[id])
			} else if err != nil && !isNothingToRollBack(err) {
				errs = append(errs, fmt.Errorf("rolling %s back: %w", id, err))
			}
		}
		return errors.Join(append([]error{reason}, errs...)...)
	}

	// Phase 1: the canaries, one instance each.
	var canaries []render.App
	for _, a := range changing {
		if len(can.Apps) == 0 || slices.Contains(can.Apps, a.ID) {
			canaries = append(canaries, a)
		}
	}
	jobs := make([]func(context.Context) Result, len(canaries))
	for i, a := range canaries {
		one := a
		one.Doc = maps.Clone(a.Doc)
		one.Doc["instances"] = 1
		jobs[i] = func(ctx context.Context) Result {
			mu.Lock()
			touched[a.ID] = true
			mu.Unlock()
			r := deployOne(ctx, c, one, o)
			if r.Err != nil || can.Gate == nil {
				return r
			}
			tasks, err := client.Retry(ctx, time.Now().Add(o.Timeout), o.Log, a.ID+": reading the canary's tasks", func(ctx context.Context) (*app.Definition, error) { return c.GetAppTasks(ctx, a.ID) })
			if err == nil && tasks == nil {
				err = errors.New("the app is gone")
			}
			if err == nil {
				var fresh []app.Task // the canary's own instance, not what the version before left
				for _, t := range tasks.Tasks {
					if t.Version == r.Version || r.Version == "" {
						fresh = append(fresh, t)
					}
				}
				if len(fresh) == 0 {
					err = fmt.Errorf("no task of version %s runs", r.Version)
				} else {
					err = can.Gate(ctx, a, fresh)
				}
			}
			if err != nil {
				r.Err = fmt.Errorf("app %s: the canary's gate: %w", a.ID, err)
				fmt.Fprintf(o.Log, "%s: canary FAILED its gate: %v\n", a.ID, err)
			} else {
				fmt.Fprintf(o.Log, "%s: canary passed (one instance, healthy, gate passed)\n", a.ID)
			}
			return r
		}
	}
	var err error
	if out.Canaries, err = runAll(ctx, jobs, o); err != nil {
		return out, undo(fmt.Errorf("canary phase: %w", err))
	}

	// Phase 2: every app at its full definition.
	for _, a := range changing {
		touched[a.ID] = true
	}
	if out.Results, err = Apply(ctx, c, changing, o); err != nil {
		return out, undo(fmt.Errorf("full deploy after the canaries passed: %w", err))
	}
	return out, nil
}

// isNothingToRollBack is rollback's word that the app never changed.
func isNothingToRollBack(err error) bool {
	return strings.Contains(err.Error(), "nothing to roll back")
}
