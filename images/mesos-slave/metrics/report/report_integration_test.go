//go:build integration

package metricsreport

import (
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave/metrics"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/influxtest"
)

// The report against a real InfluxDB (Debian's) holding half an hour of
// points as the collector writes them: two file catalog containers at 0.5
// and 0.25 cores (0.75 for the component), a request proxy at 0.1 cores.
func TestReport(t *testing.T) {
	in := influxtest.Start(t)
	in.CreateDatabase("dirac")
	target := metrics.Influx{Host: "127.0.0.1", Port: in.Port, Username: in.User, Password: in.Password, Database: "dirac"}
	var body strings.Builder
	now := time.Now()
	for i := 0; i < 180; i++ {
		ts := now.Add(-time.Duration(i) * 10 * time.Second).UnixNano()
		for _, c := range []struct {
			comp, id string
			cores    float64
			mem      int
		}{{"DataManagement/FileCatalog", "fc1", 0.5, 400 << 20}, {"DataManagement/FileCatalog", "fc2", 0.25, 300 << 20}, {"RequestManagement/ReqProxy", "rp1", 0.1, 100 << 20}} {
			tags := fmt.Sprintf(`dirac_component=%s,docker_id=%s,host=node1`, c.comp, c.id)
			fmt.Fprintf(&body, "cpu,%s usage_cores=%g %d\nmemory,%s usage=%d %d\n", tags, c.cores, ts, tags, c.mem, ts)
		}
	}
	if err := (&metrics.Writer{Target: target}).Write(context.Background(), []byte(body.String())); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if d := settings.Read("REPORT_DIR"); d != "" {
		dir = d
	}
	res, err := Report(context.Background(), Options{Influx: target, Since: time.Hour, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pngPath, page, stats := res.PNG, res.Page, res.Stats
	if res.Refused != 0 {
		t.Errorf("%d rows refused: %s", res.Refused, res.FirstRefused)
	}
	if len(stats) != 2 {
		t.Fatalf("stats %+v", stats)
	}
	fc, rp := stats[0], stats[1]
	if fc.Component != "DataManagement/FileCatalog" || math.Abs(fc.CPUMean-0.75) > 0.01 || math.Abs(fc.MemMean-700) > 1 || fc.Containers != 2 {
		t.Errorf("file catalog %+v", fc)
	}
	if math.Abs(rp.CPUMean-0.1) > 0.01 || rp.Containers != 1 {
		t.Errorf("request proxy %+v", rp)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 500 {
		t.Fatalf("png: %v %v", err, img.Bounds())
	}
	html, _ := os.ReadFile(page)
	for _, want := range []string{`<img src="report.png"`, "DataManagement/FileCatalog", "<td>0.750</td>", "RequestManagement/ReqProxy"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Nothing in the period: an error saying so.
	in.CreateDatabase("empty")
	target.Database = "empty"
	if _, err := Report(context.Background(), Options{Influx: target, Since: time.Hour, Dir: dir}); err == nil || !strings.Contains(err.Error(), `database "empty": no points`) {
		t.Errorf("an empty period: %v", err)
	}
}
