package metrics

import (
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
	n := Points(&enc, "node1", prev, cur)
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
	if n != 5 { // cpu, memory, tasks, network eth0, network total
		t.Errorf("%d points", n)
	}
	enc.Reset()
	if n := Points(&enc, "node1", nil, cur); n != 2 || strings.Contains(string(enc.Bytes()), "cpu,") {
		t.Errorf("first sample: %d points\n%s", n, enc.Bytes())
	}
}

// The buffer is bounded: the oldest points go first, and are counted.
func TestBufferDropsOldestFirst(t *testing.T) {
	b := Buffer{Max: 3}
	for _, l := range []string{"a\n", "b\n", "c\n", "d\n", "e\n"} {
		b.Add([][]byte{[]byte(l)})
	}
	if b.Len() != 3 || b.Dropped() != 2 || string(b.lines[0]) != "c\n" {
		t.Fatalf("len %d dropped %d first %q", b.Len(), b.Dropped(), b.lines[0])
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
