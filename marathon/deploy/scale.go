package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// Scale sets app id's instance count to n through go-marathon
// (ScaleApplicationInstances: PUT {"instances": n}) and waits as Apply
// does, with its timeout, lock and rollback rules: a 409 waits for the
// locking deployments (or Force overrides them), transient failures are
// retried, and a scale whose instances are not all running and healthy by
// the deadline is rolled back to the previous instance count's version.
func Scale(ctx context.Context, c *Client, id string, n int, o Options) (Result, error) {
	o.defaults()
	r := Result{ID: id}
	if n < 0 {
		return r, fmt.Errorf("app %s: %d instances: want 0 or more", id, n)
	}
	deadline := time.Now().Add(o.Timeout)
	cur, err := retry(ctx, deadline, o.Log, id+": reading the app", func() (map[string]any, error) { return c.GetApp(ctx, id) })
	if err != nil {
		return r, fmt.Errorf("app %s: %w", id, err)
	}
	if cur == nil {
		return r, fmt.Errorf("app %s does not run on Marathon: deploy it first", id)
	}
	prev, _ := cur["version"].(string)
	if have, _ := strconv.Atoi(fmt.Sprint(cur["instances"])); have == n {
		fmt.Fprintf(o.Log, "%s: already %d instances\n", id, n)
		r.Action, r.Version = Unchanged, prev
		return r, nil
	}
	r.Action = Update
	r.DeploymentID, r.Version, err = waitingForLocks(ctx, c, id, o, deadline, func() (string, string, error) {
		d, err := c.Marathon().ScaleApplicationInstances(id, n, o.Force)
		if err != nil {
			return "", "", c.lockError(id, err)
		}
		return d.DeploymentID, d.Version, nil
	})
	if err != nil {
		return r, fmt.Errorf("app %s: scaling to %d: %w", id, n, err)
	}
	fmt.Fprintf(o.Log, "%s: scaling to %d, deployment %s (version %s)\n", id, n, r.DeploymentID, r.Version)
	if r.RolledBack, err = await(ctx, c, id, r.DeploymentID, r.Version, prev, o, deadline); err != nil {
		return r, fmt.Errorf("app %s: %w", id, err)
	}
	fmt.Fprintf(o.Log, "%s: %d instances of version %s running and healthy\n", id, n, r.Version)
	return r, nil
}

// lockError turns go-marathon's 409 into an *APIError naming the
// deployments that hold the app (go-marathon keeps only the message), so
// the lock can be waited on; other errors pass as they are.
func (c *Client) lockError(id string, err error) error {
	var ae *marathon.APIError
	if !errors.As(err, &ae) || (ae.ErrCode != marathon.ErrCodeAppLocked && ae.ErrCode != marathon.ErrCodeDuplicateID) {
		return err
	}
	out := &APIError{Status: http.StatusConflict, Message: ae.Error()}
	deps, derr := c.Marathon().Deployments()
	if derr != nil {
		return err
	}
	for _, d := range deps {
		for _, a := range d.AffectedApps {
			if a == id {
				out.Deployments = append(out.Deployments, d.ID)
			}
		}
	}
	return out
}
