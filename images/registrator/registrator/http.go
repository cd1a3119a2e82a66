package registrator

import (
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	reg          *prometheus.Registry
	events       *prometheus.CounterVec
	reconnects   prometheus.Counter
	fullSyncs    prometheus.Counter
	appSyncs     prometheus.Counter
	sinkErrors   *prometheus.CounterVec
	refusedTotal *prometheus.CounterVec
	refused      *prometheus.GaugeVec
	entries      prometheus.Gauge
	syncSeconds  prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg:        prometheus.NewRegistry(),
		events:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "registrator_events_total", Help: "Marathon events received, by type."}, []string{"type"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "registrator_stream_reconnects_total", Help: "Times the event stream was opened again."}),
		fullSyncs:  prometheus.NewCounter(prometheus.CounterOpts{Name: "registrator_full_syncs_total", Help: "Full reconciliations written."}),
		appSyncs:   prometheus.NewCounter(prometheus.CounterOpts{Name: "registrator_app_syncs_total", Help: "Single apps read again and written."}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "registrator_sink_errors_total", Help: "Failed writes, by sink."}, []string{"sink"}),
		refusedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "registrator_entries_refused_total",
			Help: "Tasks kept out of a sink, by sink and reason; each counted (and logged) once while it stays refused."}, []string{"sink", "reason"}),
		refused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "registrator_entries_refused",
			Help: "Tasks a sink does not hold now, by sink and reason."}, []string{"sink", "reason"}),
		entries:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "registrator_entries", Help: "Running tasks written (not refused)."}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "registrator_sync_seconds", Help: "Time to read and write one batch of dirty apps.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
	}
	m.reg.MustRegister(m.events, m.reconnects, m.fullSyncs, m.appSyncs, m.sinkErrors, m.refusedTotal, m.refused, m.entries, m.syncSeconds,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Handler serves /info (HTML, or JSON with ?format=json or Accept:
// application/json), /metrics and /healthz.
func (r *Registrator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", r.info)
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", r.healthz)
	return mux
}

// Info is what /info shows.
type Info struct {
	Status status            `json:"status"`
	Apps   map[string][]Want `json:"apps"`
}

func (r *Registrator) snapshot() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	apps := make(map[string][]Want, len(r.held))
	for k, v := range r.held {
		apps[k] = append([]Want(nil), v...)
	}
	st := r.status
	st.Pending = len(r.dirty)
	return Info{Status: st, Apps: apps}
}

var infoPage = template.Must(template.New("info").Funcs(template.FuncMap{"deref": func(b *bool) bool { return *b }}).Parse(`<!doctype html>
<title>registrator</title>
<h1>Running tasks</h1>
<p>event stream {{if .Status.StreamAttached}}attached{{else}}<b>detached</b>{{end}};
last full sync {{.Status.LastFullSync.Format "2006-01-02 15:04:05Z07:00"}}{{if .Status.LastError}}; last error: {{.Status.LastError}}{{end}}</p>
{{range .Names}}<h2>{{.}}</h2>
<table><tr><th>task</th><th>host</th><th>ports</th><th>healthy</th><th>version</th><th>Consul check</th></tr>
{{range index $.Apps .}}<tr><td>{{.Task}}</td><td>{{.Host}}</td><td>{{range .Ports}}{{.Name}}={{.Host}}{{if .Container}}→{{.Container}}{{end}} {{end}}</td>
<td>{{if .Healthy}}{{if deref .Healthy}}yes{{else}}no{{end}}{{else}}–{{end}}</td><td>{{.Version}}</td><td>{{if .Refused}}<b>refused</b>: {{.Refused}}{{else if .CheckErr}}{{.CheckErr}}{{else}}{{.CheckHTTP}} {{.CheckInterval}}{{end}}</td></tr>
{{end}}</table>
{{end}}`))

func (r *Registrator) info(w http.ResponseWriter, req *http.Request) {
	in := r.snapshot()
	if req.URL.Query().Get("format") == "json" || strings.Contains(req.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(in)
		return
	}
	names := make([]string, 0, len(in.Apps))
	for k := range in.Apps {
		names = append(names, k)
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	infoPage.Execute(w, struct {
		Info
		Names []string
	}{in, names})
}

// healthz is 200 while the event stream is attached and the last full
// sync is recent; otherwise 503 with the reason.
func (r *Registrator) healthz(w http.ResponseWriter, _ *http.Request) {
	in := r.snapshot()
	var problems []string
	if !in.Status.StreamAttached {
		problems = append(problems, "the event stream is not attached")
	}
	if in.Status.LastFullSync.IsZero() {
		problems = append(problems, "no full sync yet")
	} else if age := time.Since(in.Status.LastFullSync); age > 2*r.cfg.Resync+time.Minute {
		problems = append(problems, "the last full sync is "+age.Round(time.Second).String()+" old")
	}
	if len(problems) > 0 {
		msg := strings.Join(problems, "; ")
		if in.Status.LastError != "" {
			msg += "; last error: " + in.Status.LastError
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}
