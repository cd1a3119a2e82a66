// Package pinger is the HTTP front of DIPS pings that Consul health checks
// call: GET /ping?host=&port=&service= pings dips://host:port/service with
// the pinger's host certificate (&protocol=https pings a DIRAC Tornado
// service, https://host:port/service, with DIRAC's POST method=ping). It keeps the seed pinger's API (200 / 400
// naming the missing parameter / 418 on a failed ping / 404 elsewhere,
// /self for its own health) and adds what a network-facing service needs: an
// allow-list (403 outside it, and for names that resolve into loopback,
// link-local or metadata ranges; what is dialled is the address checked),
// per-request timeouts, a bound on concurrent
// pings, Prometheus metrics, structured logs and graceful shutdown.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
)

// Pinger turns HTTP requests into DIPS pings. The handler dials checked
// addresses, never names, so the client must also know the name the
// server's certificate is checked against: a *dips.Client (a copy of it
// with ServerName set pings) or a NamedPinger.
type Pinger interface {
	Ping(ctx context.Context, url string) (*dips.Dict, error)
}

// NamedPinger pings url, whose host is an address, checking the server's
// certificate (and sending SNI) for serverName; "" means the address. The
// URL's scheme is the protocol: dips://, or https:// for DIRAC's Tornado
// services.
type NamedPinger interface {
	PingNamed(ctx context.Context, url, serverName string) (*dips.Dict, error)
}

// Config of the HTTP handler.
type Config struct {
	Client        Pinger
	Allow         *AllowList
	Resolver      Resolver      // looks target names up (default net.DefaultResolver)
	Timeout       time.Duration // per ping, name lookup included (default 10 s, Consul's check timeout)
	MaxConcurrent int           // pings in flight at once (default 64)
	Logger        *slog.Logger
}

// namedPing pings through c, which must take a server name.
func namedPing(c Pinger) (func(ctx context.Context, url, serverName string) (*dips.Dict, error), error) {
	switch p := c.(type) {
	case NamedPinger:
		return p.PingNamed, nil
	case *dips.Client:
		return func(ctx context.Context, url, serverName string) (*dips.Dict, error) {
			named := *p
			if serverName != "" {
				named.ServerName = serverName
			}
			if strings.HasPrefix(url, "https://") {
				return named.PingHTTPS(ctx, url)
			}
			return named.Ping(ctx, url)
		}, nil
	}
	return nil, fmt.Errorf("pinger: the DIPS client (%T) must be a *dips.Client or a NamedPinger: the pinger dials checked addresses and needs the host name for the certificate", c)
}

// Handler serves /self, /ping and /metrics.
type Handler struct {
	cfg     Config
	dial    func(ctx context.Context, url, serverName string) (*dips.Dict, error)
	slots   chan struct{}
	mux     *http.ServeMux
	pings   *prometheus.CounterVec
	latency prometheus.Histogram
	flight  prometheus.Gauge
}

// NewHandler builds the handler with its own metrics registry.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Client == nil || cfg.Allow == nil {
		return nil, errors.New("pinger: a DIPS client and an allow-list are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	dial, err := namedPing(cfg.Client)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, dial: dial, slots: make(chan struct{}, cfg.MaxConcurrent), mux: http.NewServeMux()}
	reg := prometheus.NewRegistry()
	h.pings = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pinger_pings_total", Help: "DIPS pings by result."}, []string{"result"})
	h.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pinger_ping_duration_seconds", Help: "Duration of DIPS pings.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)})
	h.flight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "pinger_pings_in_flight", Help: "DIPS pings under way."})
	reg.MustRegister(h.pings, h.latency, h.flight, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h.mux.HandleFunc("/self", h.self)
	h.mux.HandleFunc("/", h.route)
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) self(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/self" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	fmt.Fprint(w, "I am good thanks")
}

// route: the seed served any path starting with /ping; so do we.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/ping") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " not allowed"})
		return
	}
	h.ping(w, r)
}

func (h *Handler) ping(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	q := r.URL.Query()
	var vals [3]string
	for i, name := range []string{"host", "port", "service"} { // the seed's order
		vals[i] = q.Get(name)
		if vals[i] == "" {
			h.finish(r, start, "bad_request", http.StatusBadRequest, w, "Missing Param ! "+name, nil)
			return
		}
	}
	host, portText, service := vals[0], vals[1], vals[2]
	// protocol is optional (the seed's checks have none): dips, or https
	// for a Tornado service.
	scheme := "dips"
	switch p := q.Get("protocol"); p {
	case "", "dips":
	case "https":
		scheme = "https"
	default:
		h.finish(r, start, "bad_request", http.StatusBadRequest, w, fmt.Sprintf("Bad Param ! protocol %q: want dips (the default) or https", p), nil)
		return
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		h.finish(r, start, "bad_request", http.StatusBadRequest, w, fmt.Sprintf("Bad Param ! port %q is not a port number", portText), nil)
		return
	}
	// The host is parsed once; the allow-list checks it, and then the
	// addresses it stands for (Resolve), which are what is dialled.
	target, err := ParseTarget(host)
	if err != nil {
		h.finish(r, start, "bad_request", http.StatusBadRequest, w, "Bad Param ! "+err.Error(), nil)
		return
	}
	path := strings.TrimLeft(service, "/")
	if _, err := dips.ParseURL(fmt.Sprintf("dips://%s/%s", net.JoinHostPort(target.String(), strconv.Itoa(port)), path)); err != nil {
		h.finish(r, start, "bad_request", http.StatusBadRequest, w, "Bad Param ! "+err.Error(), nil)
		return
	}
	if !h.cfg.Allow.Allows(target, port) { // at once, before waiting for a slot
		h.finish(r, start, "forbidden", http.StatusForbidden, w, (&NotAllowedError{HostPort: net.JoinHostPort(target.String(), strconv.Itoa(port))}).Error(), nil)
		return
	}
	// A health check waits only briefly for a free slot: under overload an
	// immediate 503 tells the checker more than a late timeout would.
	queueWait := min(time.Second, h.cfg.Timeout/4)
	wait := time.NewTimer(queueWait)
	select {
	case h.slots <- struct{}{}:
		wait.Stop()
	case <-wait.C:
		h.finish(r, start, "busy", http.StatusServiceUnavailable, w, fmt.Sprintf("%d pings already under way; no slot freed within %s", cap(h.slots), queueWait), nil)
		return
	case <-r.Context().Done():
		wait.Stop()
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	h.flight.Inc()
	v, err := h.pingTarget(ctx, scheme, target, port, path)
	h.flight.Dec()
	<-h.slots
	h.latency.Observe(time.Since(start).Seconds())
	var denied *DeniedError
	var notAllowed *NotAllowedError
	switch {
	case errors.As(err, &denied), errors.As(err, &notAllowed):
		h.finish(r, start, "forbidden", http.StatusForbidden, w, err.Error(), nil)
		return
	case err != nil:
		h.finish(r, start, failureKind(err), http.StatusTeapot, w, err.Error(), err)
		return
	}
	h.pings.WithLabelValues("ok").Inc()
	h.cfg.Logger.Info("ping", "target", fmt.Sprintf("%s://%s/%s", scheme, net.JoinHostPort(target.String(), strconv.Itoa(port)), path), "status", 200, "duration_ms", time.Since(start).Milliseconds())
	writeJSON(w, http.StatusOK, toJSON(v))
}

// pingTarget resolves the target once (Resolve checks every address) and
// pings the first address that takes the connection, with the certificate
// checked for the name asked for.
func (h *Handler) pingTarget(ctx context.Context, scheme string, t Target, port int, path string) (*dips.Dict, error) {
	addrs, err := h.cfg.Allow.Resolve(ctx, h.cfg.Resolver, t, port)
	if err != nil {
		return nil, err
	}
	var last error
	for _, a := range addrs {
		v, err := h.dial(ctx, fmt.Sprintf("%s://%s/%s", scheme, net.JoinHostPort(a.String(), strconv.Itoa(port)), path), t.Name)
		var ce *dips.ConnectError
		if err == nil || !errors.As(err, &ce) || ctx.Err() != nil {
			if err != nil && t.Name != "" {
				err = &resolvedError{name: t.Name, addr: a, err: err}
			}
			return v, err
		}
		last = &resolvedError{name: t.Name, addr: a, err: err}
	}
	return nil, last
}

// resolvedError says which address of a name a ping failed on.
type resolvedError struct {
	name string
	addr netip.Addr
	err  error
}

func (e *resolvedError) Error() string { return fmt.Sprintf("%s (%s): %v", e.name, e.addr, e.err) }
func (e *resolvedError) Unwrap() error { return e.err }

// finish answers an error and logs it once.
func (h *Handler) finish(r *http.Request, start time.Time, result string, status int, w http.ResponseWriter, msg string, err error) {
	h.pings.WithLabelValues(result).Inc()
	body := map[string]any{"error": msg}
	var re *dips.RemoteError
	if errors.As(err, &re) {
		body["errno"] = re.Errno
	}
	if err != nil {
		body["kind"] = result
	}
	h.cfg.Logger.Warn("ping", "query", r.URL.RawQuery, "status", status, "result", result, "error", msg, "duration_ms", time.Since(start).Milliseconds())
	writeJSON(w, status, body)
}

func failureKind(err error) string {
	var ce *dips.ConnectError
	var te *dips.TLSError
	var re *dips.RemoteError
	var rse *ResolveError
	var he *dips.HTTPError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &rse):
		return "resolve"
	case errors.As(err, &ce):
		return "connect"
	case errors.As(err, &te):
		return "tls"
	case errors.As(err, &re):
		return "remote_error"
	case errors.As(err, &he):
		return "http_status"
	default:
		return "protocol"
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// toJSON turns decoded DIPS values into what encoding/json can write:
// dicts become objects (keys as text), datetimes RFC 3339, odd floats text.
func toJSON(v any) any {
	switch x := v.(type) {
	case *dips.Dict:
		m := make(map[string]any, x.Len())
		for _, kv := range x.Items {
			m[fmt.Sprint(kv.Key)] = toJSON(kv.Value)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = toJSON(x[i])
		}
		return out
	case dips.Tuple:
		return toJSON([]any(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case dips.Date:
		return fmt.Sprintf("%04d-%02d-%02d", x.Year, x.Month, x.Day)
	case dips.TimeOfDay:
		return fmt.Sprintf("%02d:%02d:%02d.%06d", x.Hour, x.Minute, x.Second, x.Microsecond)
	case *big.Int:
		return json.Number(x.String())
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return dips.FormatFloat(x)
		}
	}
	return v
}
