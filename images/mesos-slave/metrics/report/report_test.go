package metricsreport

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave/metrics"
)

// The servers below are stand-ins on purpose: no real InfluxDB answers odd
// rows or a 20 MB error page, but a proxy or a broken server may. They
// listen on loopback.

// oddAnswer answers the report's queries as InfluxDB would, but with odd
// rows among the honest ones.
func oddAnswer(w http.ResponseWriter, r *http.Request) {
	q := r.FormValue("q")
	now := time.Now().UnixNano()
	switch {
	case strings.Contains(q, "count("):
		fmt.Fprint(w, `{"results":[{"statement_id":0,"series":[{"name":"memory","tags":{"dirac_component":"A/B","docker_id":"x"},"columns":["time","count"],"values":[[0,3]]},{"name":"memory","columns":["time","count"],"values":[[0,1]]}]}]}`)
	default:
		fmt.Fprintf(w, `{"results":[{"statement_id":0,"series":[
			{"name":"cpu","tags":{"dirac_component":"A/B"},"columns":["time","v"],"values":[[%d,0.5],[%d],[%d,"0.5"],["yesterday",1],[%d,null],5,[%d,true],[%d,0.7,1],[%d,1e999]]},
			{"name":"cpu","columns":["time","v"],"values":[[%d,1]]},
			{"name":"cpu","tags":{"dirac_component":"C/D"},"values":[]}]}]}`, now, now, now, now, now, now, now, now)
	}
}

// metrics:report refuses and counts the odd rows (naming the first), and
// reports the rest; it does not panic.
func TestReportOddRows(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(oddAnswer))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	res, err := Report(context.Background(), Options{Influx: metrics.Influx{Host: "127.0.0.1", Port: port, Database: "dirac"}, Since: time.Hour, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d refused, the first: %s", res.Refused, res.FirstRefused)
	// Per query (cpu, memory): 7 odd rows of A/B, 1 row of a series with
	// no component; the null is no value.
	if res.Refused != 16 || !strings.Contains(res.FirstRefused, "the cpu query, series cpu map[dirac_component:A/B], row 1 [") || !strings.Contains(res.FirstRefused, "1 values, want 2") {
		t.Errorf("refused %d, first %q", res.Refused, res.FirstRefused)
	}
	if len(res.Stats) != 1 || res.Stats[0].Component != "A/B" || res.Stats[0].CPUMean != 0.5 || res.Stats[0].Containers != 1 {
		t.Errorf("stats %+v", res.Stats)
	}
	html, _ := os.ReadFile(res.Page)
	if !strings.Contains(string(html), "<strong>16 rows of InfluxDB") {
		t.Errorf("the page does not say rows were refused")
	}
}

// A 500 with a 20 MB body (echoing the credentials) gives a short error
// without them; an answer over 64 MiB is refused, saying so.
func TestReportServerErrors(t *testing.T) {
	const pass = "s3cr3t-report-pw"
	token := base64.StdEncoding.EncodeToString([]byte("admin:" + pass))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.FormValue("q"), "count(") { // the report's queries: a 500; the container count: 70 MiB
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "password %s Authorization: %s\n", pass, r.Header.Get("Authorization"))
			w.Write(bytes.Repeat([]byte("stack trace line\n"), 20<<20/17))
			return
		}
		fmt.Fprint(w, `{"results":[{"series":[{"name":"x","values":[`)
		row := []byte(`[1,1],`)
		for range 70 << 20 / len(row) {
			if _, err := w.Write(row); err != nil {
				return
			}
		}
		fmt.Fprint(w, `[1,1]]}]}]}`)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	o := Options{Influx: metrics.Influx{Host: "127.0.0.1", Port: port, Username: "admin", Password: pass, Database: "dirac"}, Since: time.Hour, Dir: t.TempDir()}
	_, err := Report(context.Background(), o)
	if err == nil || len(err.Error()) > 700 || strings.Contains(err.Error(), pass) || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "500 Internal Server Error: password *** Authorization: Basic ***") {
		t.Errorf("%d bytes: %.800v", len(fmt.Sprint(err)), err)
	}
	_, err = o.containers(context.Background())
	if err == nil || !strings.Contains(err.Error(), "answer larger than 64 MiB: refused") {
		t.Errorf("a 70 MiB answer: %v", err)
	}
}
