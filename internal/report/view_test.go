package report

import (
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func sec(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }

// Concurrent steps overlap on the axis; the chart spans the release; the
// rows follow the release's stage order.
func TestTimelineGeometry(t *testing.T) {
	r := Release{Started: t0, Finished: sec(100),
		Stages: []Stage{{Name: "inputs"}, {Name: "build"}},
		Steps: []Step{
			{Name: "b", Stage: "build", Start: sec(10), End: sec(60), Outcome: Passed},
			{Name: "a", Stage: "build", Start: sec(10), End: sec(40), Outcome: Cached},
			{Name: "c", Stage: "build", Start: sec(20), End: sec(30), Outcome: Passed},
			{Name: "i", Stage: "inputs", Start: sec(0), End: sec(10), Outcome: Passed},
		}}
	var p []string
	tv := buildTimeline(r, "", &p)
	if len(p) > 0 {
		t.Fatal(p)
	}
	var names []string
	for _, row := range tv.Rows {
		names = append(names, row.Label)
	}
	if strings.Join(names, " ") != "i b a c" {
		t.Errorf("rows %v, want inputs first, then build by start", names)
	}
	if tv.MaxConcurrent != 3 || tv.Steps != 4 || tv.Cached != 1 {
		t.Errorf("max %d, steps %d, cached %d", tv.MaxConcurrent, tv.Steps, tv.Cached)
	}
	x0, w := float64(tv.ChartX), tv.ChartW
	b, c := tv.Rows[1], tv.Rows[3]
	if math.Abs(b.X-(x0+w*0.10)) > 0.01 || math.Abs(b.W-w*0.5) > 0.01 || c.X < b.X || c.X+c.W > b.X+b.W {
		t.Errorf("b at %.1f+%.1f, c at %.1f+%.1f: c must lie within b", b.X, b.W, c.X, c.W)
	}
	if last := tv.Ticks[len(tv.Ticks)-1]; last.Label != "1:40" && last.Label != "1:30" {
		t.Errorf("ticks %v", tv.Ticks)
	}
}

// A step of a release that stopped has no end: it is drawn to the end
// of the window and says so.
func TestTimelineStepWithoutEnd(t *testing.T) {
	r := Release{Started: t0, Finished: sec(50), Steps: []Step{
		{Name: "running", Stage: "smoke", Start: sec(10), Outcome: Failed},
		{Name: "no start", Stage: "smoke", End: sec(5), Outcome: Passed},
	}}
	var p []string
	tv := buildTimeline(r, "", &p)
	if len(p) != 1 || !strings.Contains(p[0], `"no start": no start time`) {
		t.Errorf("problems %q", p)
	}
	var run rowView
	for _, row := range tv.Rows {
		if row.Label == "running" {
			run = row
		}
	}
	if run.X+run.W != float64(tv.ChartX)+tv.ChartW || !strings.Contains(run.Title, "no end recorded") {
		t.Errorf("the open step ends at %.1f of %.1f: %s", run.X+run.W, float64(tv.ChartX)+tv.ChartW, run.Title)
	}
}
