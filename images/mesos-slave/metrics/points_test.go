package metrics

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Counters become rates between consecutive samples; a first sample gives
// only gauges; a counter that went backwards (a restarted container) gives
// no rate rather than a huge one.
func TestPointsRates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := &Sample{ID: "abc", Component: "DataManagement/FileCatalog", AppID: "/datamanagement/filecatalog", Time: t0, HasCPU: true,
		CPUTotal: 1e9, CPUUser: 8e8, CPUSystem: 2e8, Memory: map[string]float64{"usage": 100},
		Network: []Interface{{Name: "eth0", Counters: map[string]uint64{"rx_bytes": 1000, "tx_bytes": 500}}}}
	cur := &Sample{ID: "abc", Component: "DataManagement/FileCatalog", AppID: "/datamanagement/filecatalog", Time: t0.Add(2 * time.Second), HasCPU: true,
		CPUTotal: 3e9, CPUUser: 2.6e9, CPUSystem: 1e8, Memory: map[string]float64{"usage": 200}, Tasks: map[string]float64{"pids": 3},
		Network: []Interface{{Name: "eth0", Counters: map[string]uint64{"rx_bytes": 3000, "tx_bytes": 700}}}}
	var enc lineprotocol.Encoder
	n, bad, why := Points(&enc, "node1", prev, cur)
	out := string(enc.Bytes())
	for _, want := range []string{
		"cpu,app_id=/datamanagement/filecatalog,dirac_component=DataManagement/FileCatalog,docker_id=abc,host=node1 load_average=0,usage_cores=1,user_cores=0.9 1002000000000\n",
		"memory,app_id=/datamanagement/filecatalog,dirac_component=DataManagement/FileCatalog,docker_id=abc,host=node1 usage=200 1002000000000\n",
		"network,app_id=/datamanagement/filecatalog,dirac_component=DataManagement/FileCatalog,docker_id=abc,host=node1,name=eth0 ",
		"rx_bytes_per_s=1000,", "tx_bytes_per_s=100",
		"tasks,app_id=/datamanagement/filecatalog,dirac_component=DataManagement/FileCatalog,docker_id=abc,host=node1 pids=3 ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "system_cores") {
		t.Errorf("a counter that went backwards gave a rate:\n%s", out)
	}
	if n != 5 || bad != 0 || why != nil { // cpu, memory, tasks, network eth0, network total
		t.Errorf("%d points, %d refused: %v", n, bad, why)
	}
	enc.Reset()
	if n, _, _ := Points(&enc, "node1", nil, cur); n != 2 || strings.Contains(string(enc.Bytes()), "cpu,") {
		t.Errorf("first sample: %d points\n%s", n, enc.Bytes())
	}
}

// The buffer is bounded in points and in bytes: the oldest points go
// first, and are counted.
func TestBufferDropsOldestFirst(t *testing.T) {
	b := Buffer{Max: 3}
	for _, l := range []string{"a\n", "b\n", "c\n", "d\n", "e\n"} {
		b.Add([][]byte{[]byte(l)})
	}
	if b.Len() != 3 || b.Dropped() != 2 || string(b.lines[0]) != "c\n" || b.Size() != 6 {
		t.Fatalf("len %d dropped %d first %q size %d", b.Len(), b.Dropped(), b.lines[0], b.Size())
	}
	// 1000 points of 100 bytes in a buffer of 10 KB: the newest 100 stay.
	b = Buffer{Max: 1 << 20, MaxBytes: 10000}
	line := []byte(strings.Repeat("x", 99) + "\n")
	for range 10 {
		var round [][]byte
		for range 100 {
			round = append(round, line)
		}
		b.Add(round)
	}
	if b.Len() != 100 || b.Size() != 10000 || b.Dropped() != 900 {
		t.Fatalf("len %d size %d dropped %d", b.Len(), b.Size(), b.Dropped())
	}
	// One point larger than the whole buffer cannot wait: it is dropped
	// (counted), and so are the others.
	b.Add([][]byte{make([]byte, 20000)})
	if b.Len() != 0 || b.Size() != 0 || b.Dropped() != 1001 {
		t.Fatalf("len %d size %d dropped %d", b.Len(), b.Size(), b.Dropped())
	}
}

// A container whose labels line protocol cannot carry — a control
// character, a trailing backslash, invalid UTF-8, over 1 KiB — gets none of
// its points written; the count and the reason say so, naming the
// container and never quoting more than a little of the label.
func TestPointsRefuseOddLabels(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sample := func(component string) (*Sample, *Sample) {
		p := &Sample{ID: "abc", Component: component, Time: t0, HasCPU: true, CPUTotal: 1e9, Memory: map[string]float64{"usage": 1}}
		c := &Sample{ID: "abc", Component: component, Time: t0.Add(time.Second), HasCPU: true, CPUTotal: 2e9, Memory: map[string]float64{"usage": 1}, Tasks: map[string]float64{"pids": 1}}
		return p, c
	}
	for component, want := range map[string]string{
		"Data\x01Management":        `tag dirac_component holds a control character: "Data\x01Management"`,
		`DataManagement\`:           `tag dirac_component ends in a backslash: "DataManagement\\"`,
		"Data\xffManagement":        "tag dirac_component is not valid UTF-8",
		strings.Repeat("D", 70<<10): "tag dirac_component is 71680 bytes long, over the 1024-byte limit",
	} {
		var enc lineprotocol.Encoder
		p, c := sample(component)
		n, bad, why := Points(&enc, "node1", p, c)
		if n != 0 || bad != 3 || len(enc.Bytes()) != 0 || why == nil || !strings.Contains(why.Error(), want) || !strings.HasPrefix(why.Error(), `container "abc"`) || len(why.Error()) > 400 {
			t.Errorf("%.20q: %d points, %d refused, %q: %v", component, n, bad, enc.Bytes(), why)
		}
	}
	// An odd interface name costs that interface's point only.
	p, c := sample("DataManagement/FileCatalog")
	p.Network = []Interface{{Name: "eth0", Counters: map[string]uint64{"rx_bytes": 1}}, {Name: "eth\n1", Counters: map[string]uint64{"rx_bytes": 1}}}
	c.Network = []Interface{{Name: "eth0", Counters: map[string]uint64{"rx_bytes": 2}}, {Name: "eth\n1", Counters: map[string]uint64{"rx_bytes": 2}}}
	var enc lineprotocol.Encoder
	n, bad, why := Points(&enc, "node1", p, c)
	if n != 5 || bad != 1 || why == nil || !strings.Contains(why.Error(), "network: tag name holds a control character") || strings.Count(string(enc.Bytes()), "\n") != 5 {
		t.Errorf("%d points, %d refused: %v\n%s", n, bad, why, enc.Bytes())
	}
}

// The seed's config file (every key null in its example), the variables
// over it; errors name the file and key, never a value.
func TestConfig(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "testConfig.json")
	os.WriteFile(seed, []byte(`{"host": null, "port": null, "username": null, "password": null, "database": null, "ssl": null}`), 0o600)
	in, err := LoadInflux(seed, func(k string) string {
		return map[string]string{"INFLUXDB_HOST": "influx.example", "INFLUXDB_PASSWORD": "s3cret", "INFLUXDB_DATABASE": "dirac"}[k]
	})
	if err != nil || in.Host != "influx.example" || in.Password != "s3cret" || in.URL() != "http://influx.example:8086" {
		t.Fatalf("%+v %v", in, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"port": "8086s3cret", "database": "x"}`), 0o600)
	if _, err := LoadInflux(bad, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), `bad.json: key "port" has the wrong type`) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad port: %v", err)
	}
	os.WriteFile(bad, []byte(`{"pasword": "x"}`), 0o600)
	if _, err := LoadInflux(bad, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), `unknown key "pasword"`) {
		t.Errorf("typo: %v", err)
	}
}

// A host given as a URL is taken apart where it enters: its credentials,
// scheme and port become the settings, and nothing printed shows them.
func TestConfigHostURL(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	in, err := LoadInflux("", env("INFLUXDB_HOST", "https://robot:s3cr3t-pw@influx.example:8087/"))
	if err != nil || in.Host != "influx.example" || in.Port != 8087 || !in.SSL || in.Username != "robot" || in.Password != "s3cr3t-pw" || in.URL() != "https://influx.example:8087" {
		t.Fatalf("%#v %v", in, err)
	}
	if s := fmt.Sprintf("%v %+v %s", in, in, in); strings.Contains(s, "s3cr3t") {
		t.Errorf("printed: %s", s)
	}
	// INFLUXDB_PORT still wins; name:port and user:pw@name without a scheme.
	in, err = LoadInflux("", env("INFLUXDB_HOST", "robot:s3cr3t-pw@influx.example:9000", "INFLUXDB_PORT", "8086"))
	if err != nil || in.Host != "influx.example" || in.Port != 8086 || in.SSL || in.Password != "s3cr3t-pw" {
		t.Fatalf("%#v %v", in, err)
	}
	in, err = LoadInflux("", env("INFLUXDB_HOST", "influx.example:9000"))
	if err != nil || in.URL() != "http://influx.example:9000" {
		t.Fatalf("%#v %v", in, err)
	}
	in, err = LoadInflux("", env("INFLUXDB_HOST", "::1"))
	if err != nil || in.URL() != "http://[::1]:8086" {
		t.Fatalf("%#v %v", in, err)
	}
	for _, bad := range []struct{ host, want string }{
		{"ftp://robot:s3cr3t-pw@influx.example", `INFLUXDB_HOST "ftp://influx.example": the scheme must be http or https`},
		{"http://robot:s3cr3t-pw@influx.example/db?x=1", "a path or query is not supported"},
		{"http://robot:other-s3cr3t@influx.example", "INFLUXDB_HOST holds credentials and the username/password keys give others"},
		{"http://robot:s3cr3t-pw@influx.example:99999", "bad port"},
	} {
		_, err := LoadInflux("", env("INFLUXDB_HOST", bad.host, "INFLUXDB_PASSWORD", "s3cr3t-pw"))
		if err == nil || !strings.Contains(err.Error(), bad.want) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: %v", bad.host, err)
		}
	}
}

// Redact removes the password, its URL-escaped form, the basic
// authentication token and any echoed Authorization value.
func TestRedact(t *testing.T) {
	in := Influx{Username: "admin", Password: "p@ss w0rd"}
	token := base64.StdEncoding.EncodeToString([]byte("admin:p@ss w0rd"))
	got := in.Redact("401 p@ss w0rd p%40ss+w0rd Authorization: Basic " + token + " echoed " + token + ", Bearer abcDEF123456")
	if strings.Contains(got, "w0rd") || strings.Contains(got, token) || strings.Contains(got, "abcDEF") {
		t.Errorf("%s", got)
	}
}
