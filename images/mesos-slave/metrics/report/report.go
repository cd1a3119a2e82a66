// Package metricsreport is the release manager's view of what the collectors
// (images/mesos-slave/metrics) wrote: CPU and memory per DIRAC component
// over a period, as a PNG and an HTML page.
package metricsreport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave/metrics"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/httpbody"
)

// Options are a report's.
type Options struct {
	Influx metrics.Influx
	Since  time.Duration // the period, up to now (default 1 h)
	Dir    string        // where report.png and report.html go
	Client *http.Client
}

// Series is one component's values over time.
type Series struct {
	Component string
	Times     []time.Time
	Values    []float64
}

// Stat is a component's mean and peak.
type Stat struct {
	Component          string
	CPUMean, CPUMax    float64 // cores
	MemMean, MemMax    float64 // MiB
	Containers, Points int
}

// Result is what a report made.
type Result struct {
	PNG, Page string // the files written
	Stats     []Stat
	// Refused counts the rows of InfluxDB's answers that were not a time
	// and a number (left out of the figures); FirstRefused names the
	// first: the query, the series, the row.
	Refused      int
	FirstRefused string
}

// Report queries InfluxDB and writes report.png and report.html into
// o.Dir. A component's value at a time is the sum over its containers
// (the mean of each container's points in the bucket).
func Report(ctx context.Context, o Options) (Result, error) {
	var res Result
	png, page, stats, err := o.report(ctx, &res)
	res.PNG, res.Page, res.Stats = png, page, stats
	return res, err
}

func (o Options) report(ctx context.Context, res *Result) (png, page string, stats []Stat, err error) {
	if o.Since <= 0 {
		o.Since = time.Hour
	}
	bucket := max(o.Since/120, 10*time.Second).Round(time.Second)
	q := func(field, measurement string) string {
		return fmt.Sprintf(`SELECT sum("m") AS v FROM (SELECT mean(%q) AS m FROM %q WHERE time > now() - %ds AND "dirac_component" != '' GROUP BY time(%ds), "docker_id", "dirac_component") GROUP BY time(%ds), "dirac_component" fill(none)`,
			field, measurement, int(o.Since.Seconds()), int(bucket.Seconds()), int(bucket.Seconds()))
	}
	cpu, err := o.query(ctx, "cpu", q("usage_cores", "cpu"), res)
	if err != nil {
		return "", "", nil, err
	}
	mem, err := o.query(ctx, "memory", q("usage", "memory"), res)
	if err != nil {
		return "", "", nil, err
	}
	for i := range mem {
		for j := range mem[i].Values {
			mem[i].Values[j] /= 1 << 20
		}
	}
	if len(cpu) == 0 && len(mem) == 0 {
		err := fmt.Errorf("InfluxDB %s, database %q: no points of any DIRAC component in the last %s", o.Influx.URL(), o.Influx.Database, o.Since)
		if res.Refused > 0 {
			err = fmt.Errorf("%w (%d rows of its answers refused, the first: %s)", err, res.Refused, res.FirstRefused)
		}
		return "", "", nil, err
	}
	counts, err := o.containers(ctx)
	if err != nil {
		return "", "", nil, err
	}
	stats = summarise(cpu, mem, counts)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return "", "", nil, err
	}
	png = filepath.Join(o.Dir, "report.png")
	if err := drawPNG(png, cpu, mem, o.Since); err != nil {
		return "", "", nil, err
	}
	page = filepath.Join(o.Dir, "report.html")
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, struct {
		Since, Generated, Database string
		Stats                      []Stat
		Refused                    int
		FirstRefused               string
	}{o.Since.String(), time.Now().UTC().Format(time.RFC3339), o.Influx.Database, stats, res.Refused, res.FirstRefused}); err != nil {
		return "", "", nil, err
	}
	return png, page, stats, os.WriteFile(page, b.Bytes(), 0o644)
}

var pageTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<meta charset="utf-8">
<title>DIRAC components: CPU and memory, last {{.Since}}</title>
<h1>DIRAC components: CPU and memory, last {{.Since}}</h1>
<p>From InfluxDB database <code>{{.Database}}</code>, made {{.Generated}}. Each component's value is the sum over its containers.</p>
{{if .Refused}}<p><strong>{{.Refused}} rows of InfluxDB's answers were not a time and a number and are left out</strong> (the first: <code>{{.FirstRefused}}</code>).</p>
{{end}}<img src="report.png" alt="CPU and memory per component">
<table border="1" cellpadding="4">
<tr><th>component</th><th>containers</th><th>CPU mean (cores)</th><th>CPU peak</th><th>memory mean (MiB)</th><th>memory peak</th></tr>
{{range .Stats}}<tr><td>{{.Component}}</td><td>{{.Containers}}</td><td>{{printf "%.3f" .CPUMean}}</td><td>{{printf "%.3f" .CPUMax}}</td><td>{{printf "%.1f" .MemMean}}</td><td>{{printf "%.1f" .MemMax}}</td></tr>
{{end}}</table>
`))

func summarise(cpu, mem []Series, containers map[string]int) []Stat {
	by := map[string]*Stat{}
	get := func(c string) *Stat {
		if by[c] == nil {
			by[c] = &Stat{Component: c, Containers: containers[c]}
		}
		return by[c]
	}
	for _, s := range cpu {
		st := get(s.Component)
		st.CPUMean, st.CPUMax = meanMax(s.Values)
		st.Points += len(s.Values)
	}
	for _, s := range mem {
		st := get(s.Component)
		st.MemMean, st.MemMax = meanMax(s.Values)
	}
	var out []Stat
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Component < out[j].Component })
	return out
}

func meanMax(v []float64) (mean, peak float64) {
	for _, x := range v {
		mean += x
		peak = max(peak, x)
	}
	if len(v) > 0 {
		mean /= float64(len(v))
	}
	return mean, peak
}

// drawPNG draws CPU above memory, one line per component.
func drawPNG(path string, cpu, mem []Series, since time.Duration) error {
	mk := func(title, unit string, series []Series) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.Y.Label.Text = unit
		p.X.Label.Text = "time (UTC)"
		p.X.Tick.Marker = plot.TimeTicks{Format: "15:04"}
		p.Legend.Top = true
		for i, s := range series {
			pts := make(plotter.XYs, len(s.Times))
			for j := range s.Times {
				pts[j].X = float64(s.Times[j].Unix())
				pts[j].Y = s.Values[j]
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return nil, err
			}
			l.Color = plotutil.Color(i)
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(s.Component, l)
		}
		p.Add(plotter.NewGrid())
		p.BackgroundColor = color.White
		// From zero, with room above the highest line for the legend.
		p.Y.Min = 0
		p.Y.Max = max(p.Y.Max*1.25, 0.01)
		return p, nil
	}
	top, err := mk("CPU per DIRAC component, last "+since.String(), "cores", cpu)
	if err != nil {
		return err
	}
	bottom, err := mk("Memory per DIRAC component", "MiB", mem)
	if err != nil {
		return err
	}
	const w, h = 28 * vg.Centimeter, 24 * vg.Centimeter
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2, PadY: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// influxSeries is one series of an InfluxQL result, as /query returns it;
// its rows are decoded one by one, so one odd row is refused alone.
type influxSeries struct {
	Name   string            `json:"name"`
	Tags   map[string]string `json:"tags"`
	Values []json.RawMessage `json:"values"`
}

// Bounds of what is read of InfluxDB's answers: a query's result (a
// report of a long period over many containers is a few MiB), and an error
// body quoted in a message.
const (
	answerMax    = 64 << 20
	errorBodyMax = 512
)

// series runs InfluxQL and returns the series of its result, or the error
// InfluxDB reports for the query or its first statement.
func (o Options) series(ctx context.Context, q string) ([]influxSeries, error) {
	var r struct {
		Results []struct {
			Series []influxSeries `json:"series"`
			Error  string         `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	if err := o.get(ctx, q, &r); err != nil {
		return nil, err
	}
	if r.Error != "" {
		return nil, fmt.Errorf("InfluxDB %s: %s", o.Influx.URL(), o.brief(r.Error))
	}
	if len(r.Results) > 0 && r.Results[0].Error != "" {
		return nil, fmt.Errorf("InfluxDB %s: %s", o.Influx.URL(), o.brief(r.Results[0].Error))
	}
	var out []influxSeries
	for _, res := range r.Results {
		out = append(out, res.Series...)
	}
	return out, nil
}

// brief is a message from InfluxDB fit for an error: one line, bounded,
// without credentials.
func (o Options) brief(s string) string {
	return httpbody.Line(o.Influx.Redact(s), errorBodyMax)
}

// query runs InfluxQL and returns a series per dirac_component. A row that
// is not [time in ns, number] is refused and counted in res (a null value
// is no value, and skipped); so is a series without a component.
func (o Options) query(ctx context.Context, what, q string, res *Result) ([]Series, error) {
	series, err := o.series(ctx, q)
	if err != nil {
		return nil, err
	}
	refuse := func(s influxSeries, row int, raw json.RawMessage, why string) {
		if res.Refused == 0 {
			res.FirstRefused = httpbody.Line(fmt.Sprintf("the %s query, series %s %v, row %d %s: %s", what, s.Name, s.Tags, row, raw, why), 300)
		}
		res.Refused++
	}
	var out []Series
	for _, s := range series {
		ser := Series{Component: s.Tags["dirac_component"]}
		if ser.Component == "" {
			for j, raw := range s.Values {
				refuse(s, j, raw, "a series without a dirac_component tag")
			}
			continue
		}
		for j, raw := range s.Values {
			t, x, ok, why := row(raw)
			switch {
			case why != "":
				refuse(s, j, raw, why)
			case ok:
				ser.Times = append(ser.Times, t)
				ser.Values = append(ser.Values, x)
			}
		}
		if len(ser.Times) > 0 {
			out = append(out, ser)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Component < out[j].Component })
	return out, nil
}

// row reads one row of a result: [time in ns, number]. ok is false for a
// null value; why says what is wrong with an odd row.
func row(raw json.RawMessage) (t time.Time, x float64, ok bool, why string) {
	var v []any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return t, 0, false, "not an array"
	}
	if len(v) != 2 {
		return t, 0, false, fmt.Sprintf("%d values, want 2 (time, value)", len(v))
	}
	tn, isNum := v[0].(json.Number)
	ns, err := tn.Int64()
	if !isNum || err != nil {
		return t, 0, false, "the time is not an integer of nanoseconds"
	}
	if v[1] == nil {
		return t, 0, false, ""
	}
	xn, isNum := v[1].(json.Number)
	x, err = xn.Float64()
	if !isNum || err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return t, 0, false, "the value is not a number"
	}
	return time.Unix(0, ns).UTC(), x, true, ""
}

// containers counts each component's containers in the period.
func (o Options) containers(ctx context.Context) (map[string]int, error) {
	q := fmt.Sprintf(`SELECT count("usage") FROM "memory" WHERE time > now() - %ds AND "dirac_component" != '' GROUP BY "dirac_component", "docker_id"`, int(o.Since.Seconds()))
	series, err := o.series(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range series {
		if c := s.Tags["dirac_component"]; c != "" {
			out[c]++
		}
	}
	return out, nil
}

// get posts a query and decodes InfluxDB's answer (at most answerMax). An
// error quotes at most errorBodyMax of an error body, without credentials.
func (o Options) get(ctx context.Context, q string, out any) error {
	cl := o.Client
	if cl == nil {
		cl = &http.Client{Timeout: time.Minute}
	}
	form := url.Values{"db": {o.Influx.Database}, "q": {q}, "epoch": {"ns"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.Influx.URL()+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("InfluxDB %s: %s", o.Influx.URL(), o.brief(err.Error()))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if o.Influx.Username != "" || o.Influx.Password != "" {
		req.SetBasicAuth(o.Influx.Username, o.Influx.Password)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("InfluxDB %s: %s", o.Influx.URL(), o.brief(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Read a little more than is shown: redacted first, then cut, so
		// no cut leaves part of a secret.
		return fmt.Errorf("InfluxDB %s: %s: %s", o.Influx.URL(), resp.Status, o.brief(httpbody.Snippet(resp.Body, 8*errorBodyMax)))
	}
	if err := httpbody.DecodeJSON(resp.Body, answerMax, out, true); err != nil {
		return fmt.Errorf("InfluxDB %s: the query's answer: %v", o.Influx.URL(), err)
	}
	return nil
}

// OptionsFromEnv reads LHCBDIRAC_METRICS_SINCE (a duration, default 1h),
// LHCBDIRAC_METRICS_OUT (default dist/metrics) and the InfluxDB settings:
// the collector's JSON file LHCBDIRAC_METRICS_CONFIG, then INFLUXDB_*.
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	o := Options{Since: time.Hour, Dir: filepath.Join("dist", "metrics")}
	if v := getenv("LHCBDIRAC_METRICS_SINCE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("--since %q: want a duration such as 1h or 30m", v)
		}
		o.Since = d
	}
	if v := getenv("LHCBDIRAC_METRICS_OUT"); v != "" {
		o.Dir = v
	}
	in, err := metrics.LoadInflux(getenv("LHCBDIRAC_METRICS_CONFIG"), getenv)
	if err != nil {
		return o, err
	}
	if in.Database == "" {
		return o, fmt.Errorf("no InfluxDB database: set INFLUXDB_DATABASE (and INFLUXDB_HOST, INFLUXDB_PORT, INFLUXDB_USERNAME, INFLUXDB_PASSWORD), or LHCBDIRAC_METRICS_CONFIG to the collector's JSON file")
	}
	o.Influx = in
	return o, nil
}

// Main is `mage metrics:report`: the report of the InfluxDB the settings
// name (getenv is the configuration boundary's), its figures printed.
func Main(ctx context.Context, getenv func(string) string, out io.Writer) error {
	o, err := OptionsFromEnv(getenv)
	if err != nil {
		return err
	}
	r, err := Report(ctx, o)
	if err != nil {
		return err
	}
	for _, s := range r.Stats {
		fmt.Fprintf(out, "%-40s %d containers  cpu %.3f cores (peak %.3f)  memory %.0f MiB (peak %.0f)\n", s.Component, s.Containers, s.CPUMean, s.CPUMax, s.MemMean, s.MemMax)
	}
	if r.Refused > 0 {
		fmt.Fprintf(out, "%d rows of InfluxDB's answers refused (left out), the first: %s\n", r.Refused, r.FirstRefused)
	}
	fmt.Fprintf(out, "%s\n%s\n", r.PNG, r.Page)
	return nil
}
