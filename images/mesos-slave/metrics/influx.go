package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Influx is where points go: InfluxDB 1.x's /write, with the seed's
// config keys (host, port, username, password, database, ssl).
type Influx struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"`
	Database string `json:"database"`
	SSL      bool   `json:"ssl"`
}

// URL is the server's base URL (no credentials: they go in a header).
func (i Influx) URL() string {
	scheme := "http"
	if i.SSL {
		scheme = "https"
	}
	host, port := i.Host, i.Port
	if host == "" {
		host = "localhost"
	}
	if port == 0 {
		port = 8086
	}
	return fmt.Sprintf("%s://%s:%d", scheme, host, port)
}

// Buffer holds encoded points until InfluxDB takes them: bounded, the
// oldest dropped first (and counted) when it is full, so a long outage
// costs the oldest points, never memory without end.
type Buffer struct {
	Max int // points; default 200000

	mu      sync.Mutex
	lines   [][]byte
	dropped uint64
}

// Add queues encoded lines (one point each).
func (b *Buffer) Add(lines [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	max := b.Max
	if max <= 0 {
		max = 200000
	}
	b.lines = append(b.lines, lines...)
	if over := len(b.lines) - max; over > 0 {
		b.dropped += uint64(over)
		b.lines = append([][]byte(nil), b.lines[over:]...)
	}
}

// Len is the points waiting.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.lines)
}

// Dropped counts the points dropped because the buffer was full.
func (b *Buffer) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Flush writes the buffer to InfluxDB in batches of at most batch points,
// oldest first; a batch leaves the buffer only once InfluxDB took it.
func (b *Buffer) Flush(ctx context.Context, w *Writer, batch int) (int, error) {
	sent := 0
	for {
		b.mu.Lock()
		n := min(len(b.lines), batch)
		chunk := append([][]byte(nil), b.lines[:n]...)
		b.mu.Unlock()
		if n == 0 {
			return sent, nil
		}
		if err := w.Write(ctx, bytes.Join(chunk, nil)); err != nil {
			return sent, err
		}
		b.mu.Lock()
		// Points dropped meanwhile shifted the buffer: remove what was
		// sent, by identity.
		i := 0
		for i < len(b.lines) && i < n && &b.lines[i][0] == &chunk[i][0] {
			i++
		}
		b.lines = b.lines[i:]
		b.mu.Unlock()
		sent += n
	}
}

// Writer posts line protocol to InfluxDB.
type Writer struct {
	Target Influx
	Client *http.Client
}

// Write posts one batch. Credentials travel as basic authentication (which
// InfluxDB 1.x accepts), so they appear in no URL and no error.
func (w *Writer) Write(ctx context.Context, body []byte) error {
	cl := w.Client
	if cl == nil {
		cl = &http.Client{Timeout: 30 * time.Second}
	}
	q := url.Values{"db": {w.Target.Database}, "precision": {"ns"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.Target.URL()+"/write?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if w.Target.Username != "" || w.Target.Password != "" {
		req.SetBasicAuth(w.Target.Username, w.Target.Password)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("InfluxDB %s: %s", w.Target.URL(), redact(err.Error(), w.Target.Password))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("InfluxDB %s: %s: %s", w.Target.URL(), resp.Status, redact(strings.TrimSpace(string(b)), w.Target.Password))
	}
	return nil
}

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "***")
}
