// Package influxtest runs a real InfluxDB 1.x for tests: Debian's influxdb
// (`mage test` installs it), on loopback ports of its own, its data in the
// test's temporary directory, with authentication on and one admin user.
// A missing influxd fails the test.
package influxtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
)

// Binary is Debian's influxd.
const Binary = "/usr/bin/influxd"

// Server is one running influxd.
type Server struct {
	URL            string // http://127.0.0.1:<port>
	Port           int
	User, Password string
	t              testing.TB
	proc           *testproc.Proc
}

// Start runs influxd until the test ends, with an admin user.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath(Binary); err != nil {
		t.Fatalf("InfluxDB is not installed (%s): run `go run mage.go test`, which installs Debian's influxdb, or apt-get install influxdb", Binary)
	}
	s := &Server{User: "admin", Password: "t3st-" + fmt.Sprint(time.Now().UnixNano()), t: t}
	s.proc, _ = testproc.StartOnPorts(t, 2, func(ports []int) testproc.Spec {
		dir := t.TempDir()
		s.Port = ports[0]
		s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.Port)
		config := filepath.Join(dir, "influxdb.conf")
		conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:%d"
  auth-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
`, ports[1], filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), s.Port)
		if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return testproc.Spec{Name: "influxd", Path: Binary, Args: []string{"-config", config}, Timeout: 30 * time.Second, Ready: s.pings}
	})
	// With no user yet, InfluxDB lets the first admin be created.
	if _, err := s.query("", "CREATE USER "+s.User+" WITH PASSWORD '"+s.Password+"' WITH ALL PRIVILEGES", false); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Server) pings() bool {
	resp, err := testproc.Get(s.URL + "/ping")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusNoContent
}

// Stop ends influxd (its data stays for Restart).
func (s *Server) Stop() { s.proc.Stop() }

// Restart starts a stopped influxd again on the same port and data.
func (s *Server) Restart() { s.t.Helper(); s.proc.Restart(s.t) }

// CreateDatabase creates db.
func (s *Server) CreateDatabase(db string) {
	s.t.Helper()
	if _, err := s.query("", "CREATE DATABASE "+db, true); err != nil {
		s.t.Fatal(err)
	}
}

// Series is one series of a query's result.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Query runs InfluxQL against db and returns the first statement's series.
func (s *Server) Query(db, q string) []Series {
	s.t.Helper()
	out, err := s.query(db, q, true)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *Server) query(db, q string, auth bool) ([]Series, error) {
	form := url.Values{"q": {q}, "epoch": {"ns"}}
	if db != "" {
		form.Set("db", db)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewBufferString(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth {
		req.SetBasicAuth(s.User, s.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Results []struct {
			Series []Series `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("query %q: %s: %v", q, resp.Status, err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	if len(r.Results) == 0 {
		return nil, nil
	}
	if r.Results[0].Error != "" {
		return nil, fmt.Errorf("query %q: %s", q, r.Results[0].Error)
	}
	return r.Results[0].Series, nil
}
