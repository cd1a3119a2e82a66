package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
)

// Scale sets app id's instance count to n (PUT {"instances": n}, a
// partial update: Marathon scales and restarts nothing) and waits as Apply
// does, with its timeout, lock and rollback rules: a 409 waits for the
// locking deployments (or Force overrides them), transient failures are
// retried, and a scale whose instances are not all running and healthy by
// the deadline is rolled back to the previous instance count's version.
// n must lie within 0…Options.MaxInstances; it is checked before anything
// is asked of Marathon.
func Scale(ctx context.Context, c *client.Client, id string, n int, o Options) (Result, error) {
	o.defaults()
	r := Result{ID: id}
	if n < 0 || n > o.MaxInstances {
		return r, fmt.Errorf("app %s: %d instances: want 0 to %d (%s raises the bound)", id, n, o.MaxInstances, MaxInstancesEnv)
	}
	deadline := time.Now().Add(o.Timeout)
	cur, err := readApp(ctx, c, deadline, o, "reading the app", id)
	if err != nil {
		return r, fmt.Errorf("app %s: %w", id, err)
	}
	if cur == nil {
		return r, fmt.Errorf("app %s does not run on Marathon: deploy it first", id)
	}
	prev := cur.Version
	if cur.Instances == n {
		fmt.Fprintf(o.Log, "%s: already %d instances\n", id, n)
		r.Action, r.Version = Unchanged, prev
		return r, nil
	}
	r.Action = Update
	var d client.Deploying
	d, r.RolledBack, err = changeOrUndo(ctx, c, id, prev, o, deadline, func(ctx context.Context) (client.Deploying, error) {
		return c.ScaleApp(ctx, id, n, o.Force)
	})
	r.DeploymentID, r.Version = d.DeploymentID, d.Version
	if err != nil {
		return r, fmt.Errorf("app %s: scaling to %d: %w", id, n, err)
	}
	fmt.Fprintf(o.Log, "%s: scaling to %d, deployment %s (version %s)\n", id, n, r.DeploymentID, r.Version)
	if r.RolledBack, err = await(ctx, c, id, d, prev, o, deadline); err != nil {
		return r, fmt.Errorf("app %s: %w", id, err)
	}
	fmt.Fprintf(o.Log, "%s: %d instances of version %s running and healthy\n", id, n, r.Version)
	return r, nil
}
