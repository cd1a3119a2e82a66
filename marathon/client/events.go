package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Events opens Marathon's event stream (GET /v2/events, server-sent
// events), filtered to eventTypes when given. The stream has no overall
// timeout: it stays open until ctx ends or the connection drops. A
// redirect to a Marathon Config.URLs does not list is refused, as for
// every request.
func (c *Client) Events(ctx context.Context, eventTypes ...string) (io.ReadCloser, error) {
	q := url.Values{}
	for _, t := range eventTypes {
		q.Add("event_type", t)
	}
	path := "/v2/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	m := c.member()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.String()+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.stream.Do(req)
	if err != nil {
		if Transient(err) {
			c.failover(m)
		}
		return nil, c.fail(http.MethodGet, "/v2/events", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := c.apiError(resp)
		resp.Body.Close()
		if Transient(e) {
			c.failover(m)
		}
		return nil, fmt.Errorf("GET /v2/events: %w", e)
	}
	return resp.Body, nil
}
