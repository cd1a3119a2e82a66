package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// do sends a JSON request to the Marathon in use and decodes a JSON answer
// (numbers kept as text). ctx bounds it.
func (c *Client) do(ctx context.Context, method, path string, body any, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	m := c.member()
	req, err := http.NewRequestWithContext(ctx, method, m.String()+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if Transient(err) {
			c.failover(m)
		}
		return nil, c.fail(method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		e := c.apiError(resp)
		if Transient(e) {
			c.failover(m)
		}
		return resp.Header, fmt.Errorf("%s %s: %w", method, path, e)
	}
	limit := c.MaxAnswer
	if limit <= 0 {
		limit = DefaultMaxAnswer
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.Header, c.fail(method, path, err)
	}
	if int64(len(raw)) > limit {
		size := fmt.Sprintf("%d bytes", limit)
		if limit%(1<<20) == 0 {
			size = fmt.Sprintf("%d MiB", limit>>20)
		}
		return resp.Header, fmt.Errorf("%s %s: Marathon's answer is larger than %s (the client's limit): refused rather than cut", method, path, size)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: bad JSON answer: %s", method, path, clip(c.redact(err.Error()), maxMessage))
		}
	}
	return resp.Header, nil
}

// Get decodes the JSON answer to GET path into out (numbers as
// json.Number where out leaves them untyped); a 404 is an *APIError with
// Status 404 (IsNotFound).
func (c *Client) Get(ctx context.Context, path string, out any) error {
	_, err := c.do(ctx, http.MethodGet, path, nil, out)
	return err
}

// Deploying is what Marathon answers a change with (a DeploymentResult):
// the deployment that makes it, and the app version it makes.
type Deploying struct {
	DeploymentID string `json:"deploymentId"`
	Version      string `json:"version"`
}

// deploying makes a change Marathon answers with a DeploymentResult
// ({deploymentId, version}, or the Marathon-Deployment-Id header).
func (c *Client) deploying(ctx context.Context, method, path string, body any) (Deploying, error) {
	var out Deploying
	h, err := c.do(ctx, method, path, body, &out)
	if err != nil {
		return Deploying{}, err
	}
	if out.DeploymentID == "" && h != nil {
		out.DeploymentID = h.Get("Marathon-Deployment-Id")
	}
	return out, nil
}
