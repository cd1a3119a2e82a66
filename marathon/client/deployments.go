package client

import (
	"context"
	"net/http"
	"net/url"
)

// Deployment is one entry of GET /v2/deployments: a deployment under way.
// A deployment that finished is gone from the list (Marathon keeps no
// history of them).
type Deployment struct {
	ID           string   `json:"id"`
	Version      string   `json:"version"`
	AffectedApps []string `json:"affectedApps"`
}

// Deployments lists the deployments under way.
func (c *Client) Deployments(ctx context.Context) ([]Deployment, error) {
	var out []Deployment
	err := c.Get(ctx, "/v2/deployments", &out)
	return out, err
}

// CancelDeployment cancels deployment id; Marathon reverts it under a new
// deployment, which is what it answers (DELETE without force).
func (c *Client) CancelDeployment(ctx context.Context, id string) (Deploying, error) {
	return c.deploying(ctx, http.MethodDelete, "/v2/deployments/"+url.PathEscape(id), nil)
}
