package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
)

// componentLabel marks a DIRAC service's app: a Marathon label, or (in the
// seed's apps) a docker label passed as a docker parameter.
const componentLabel = "dirac_component"

// SoftUpdate is the seed's "soft update": every app labelled
// dirac_component (Marathon label, or the docker label parameter the seed
// used) gets its image swapped for version's; instance counts, resources
// and everything else stay as they run. pin gives the digest version's tag
// names in a repository, so the image is named repository:version@digest
// (nil: by tag only); every pin is found before any app is changed.
func SoftUpdate(ctx context.Context, c *client.Client, version string, pin func(repo string) (string, error), o Options) ([]Result, error) {
	o.defaults()
	apps, err := client.Retry(ctx, time.Now().Add(o.Timeout), o.Log, "listing the apps", c.ListApps)
	if err != nil {
		return nil, err
	}
	var jobs []func(context.Context) Result
	for _, a := range apps {
		if !isDiracApp(a) {
			continue
		}
		image := a.Image()
		newImage, err := retag(image, version)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", a.ID, err)
		}
		if pin != nil {
			ref := app.ParseImage(newImage)
			if ref.Digest, err = pin(ref.Repo); err != nil {
				return nil, fmt.Errorf("app %s: %w", a.ID, err)
			}
			newImage = ref.String()
		}
		container, err := a.ContainerWithImage(newImage)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, func(ctx context.Context) Result {
			r := Result{ID: a.ID, Action: Update}
			if newImage == image {
				r.Action = Unchanged
				return r
			}
			// a partial update: only the container changes
			deadline := time.Now().Add(o.Timeout)
			body := map[string]any{"id": a.ID, "container": container}
			var d client.Deploying
			d, r.RolledBack, r.Err = changeOrUndo(ctx, c, a.ID, a.Version, o, deadline, func(ctx context.Context) (client.Deploying, error) {
				return c.PutApp(ctx, a.ID, body, client.PutOptions{Partial: true, Force: o.Force})
			})
			r.DeploymentID, r.Version = d.DeploymentID, d.Version
			if r.Err == nil {
				fmt.Fprintf(o.Log, "%s: image %s -> %s, deployment %s\n", a.ID, image, newImage, r.DeploymentID)
				r.RolledBack, r.Err = await(ctx, c, a.ID, d, a.Version, o, deadline)
			}
			if r.Err != nil {
				r.Err = fmt.Errorf("app %s: %w", a.ID, r.Err)
			}
			return r
		})
	}
	if len(jobs) == 0 {
		return nil, errors.New("no app labelled dirac_component runs on this Marathon")
	}
	return runAll(ctx, jobs, o)
}

func isDiracApp(a *app.Definition) bool {
	if _, ok := a.Labels[componentLabel]; ok {
		return true
	}
	_, ok := a.DockerLabels()[componentLabel]
	return ok
}

// retag replaces an image's tag, minding registry ports (host:5000/repo)
// and digests, which the seed's split on ":" got wrong. A digest goes: it
// pinned the old tag's content.
func retag(image, tag string) (string, error) {
	if image == "" {
		return "", errors.New("no container.docker.image")
	}
	return app.ParseImage(image).WithTag(tag).String(), nil
}
