package runspec

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kballard/go-shellquote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

// Scala's Double.toString is Java's (TaskBuilder.taskContextEnv).
func TestJavaDouble(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0.0", 1: "1.0", 200: "200.0", 0.5: "0.5", 0.001: "0.001", 0.0001: "1.0E-4",
		1e7: "1.0E7", 9999999: "9999999.0", 12345678.9: "1.23456789E7", 0.30000000000000004: "0.30000000000000004",
		-2.5: "-2.5", math.Copysign(0, -1): "-0.0", 1.5e-5: "1.5E-5",
	} {
		if got := javaDouble(f); got != want {
			t.Errorf("javaDouble(%v) = %q, want %q", f, got, want)
		}
	}
}

// Port names are upper-cased as they are (EnvironmentHelper.portsEnv);
// label names collapse runs of other characters to one "_" and Marathon
// leaves out names of 493 characters or more and values of 512 or more.
func TestPortAndLabelNamesAsMarathon(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	app := `{"id": "/lhcb/web", "args": ["serve"], "cpus": 1, "mem": 64,
	  "labels": {"a..b--c": "1", "` + long(492) + `": "kept", "` + long(493) + `": "dropped", "v511": "` + long(511) + `", "v512": "` + long(512) + `"},
	  "container": {"type": "DOCKER", "docker": {"image": "x"}, "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "dips-tls"}, {"containerPort": 0, "hostPort": 0, "name": "Metrics.v2"}]},
	  "networks": [{"mode": "container/bridge"}]}`
	s, err := FromApp([]byte(app), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"PORT_DIPS-TLS": "31000", "PORT_METRICS.V2": "31001", "PORT_8080": "31000", "PORT_31001": "31001",
		"MARATHON_APP_LABEL_A_B_C": "1", "MARATHON_APP_LABEL_" + strings.ToUpper(long(492)): "kept", "MARATHON_APP_LABEL_V511": long(511),
		"MARATHON_APP_RESOURCE_CPUS": "1.0", "MARATHON_APP_RESOURCE_MEM": "64.0",
	} {
		if s.Env[k] != v {
			t.Errorf("%s = %.20q, want %.20q", k, s.Env[k], v)
		}
	}
	for _, k := range []string{"PORT_DIPS_TLS", "MARATHON_APP_LABEL_" + strings.ToUpper(long(493)), "MARATHON_APP_LABEL_V512", "PORT_0"} {
		if _, ok := s.Env[k]; ok {
			t.Errorf("%.40s should not be set", k)
		}
	}
	if got := s.Env["MARATHON_APP_LABELS"]; got != "A_B_C V511 "+strings.ToUpper(long(492)) {
		t.Errorf("MARATHON_APP_LABELS %.40q", got)
	}
}

// Host networking: the ports are the port definitions' (Marathon's
// default is one named "default"), PORT_<service port> names them, and
// service ports 0 are drawn from --local_port_min.
func TestHostNetworkingPorts(t *testing.T) {
	s, err := FromApp([]byte(`{"id": "/h", "args": ["x"], "container": {"type": "DOCKER", "docker": {"image": "i"}}, "networks": [{"mode": "host"}]}`), Options{EnforceRole: true, Role: "lhcb"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Env["PORT_DEFAULT"] != "31000" || s.Env["PORT_10000"] != "31000" || s.Env["MARATHON_APP_ENFORCE_GROUP_ROLE"] != "TRUE" || s.Env["MESOS_ALLOCATION_ROLE"] != "lhcb" {
		t.Errorf("env %v", s.EnvList())
	}
	if line := strings.Join(s.DockerRun(), " "); !strings.Contains(line, "--net host --name") || strings.Contains(line, " -p ") {
		t.Errorf("host networking publishes no ports: %s", line)
	}
	s, err = FromApp([]byte(`{"id": "/h", "args": ["x"], "container": {"type": "DOCKER", "docker": {"image": "i"}}, "networks": [{"mode": "host"}],
	  "portDefinitions": [{"port": 10000}, {"port": 0, "name": "b"}, {"port": 0}]}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Env["PORT_10000"] != "31000" || s.Env["PORT_10001"] != "31001" || s.Env["PORT_B"] != "31001" || s.Env["PORT_10002"] != "31002" || s.Env["PORTS"] != "31000,31001,31002" {
		t.Errorf("env %v", s.EnvList())
	}
}

// Seed 003: deimos turned the README's Marathon app into the README's
// docker run line. The line here differs only where deimos draws a value
// per task: the container id in --cidfile and in the sandbox's fs path,
// and TASK_INFO, which deimos 0.4.3 appends (the README predates it).
func TestDeimosReadmeExample(t *testing.T) {
	dir := filepath.Join(testenv.Testdata(t), "seeds", "deimos")
	app := load(t, filepath.Join(dir, "marathon_app_readme_example.json"))
	expected, err := os.ReadFile(filepath.Join(dir, "expected_docker_run_readme_example.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := shellquote.Split(string(expected))
	if err != nil {
		t.Fatal(err)
	}
	// The agent offered 31014 first; the image EXPOSEs 3000.
	s, err := FromApp(app, Options{PortRange: [2]int{31014, 32000}, ExposedPorts: []int{3000}, ContainerID: "c1d2"})
	if err != nil {
		t.Fatal(err)
	}
	got := s.DockerRun()
	perTask := map[string]string{
		"/tmp/deimos/mesos/c1d2/cid":                   "/tmp/deimos/mesos/10330424-95c2-4119-b2a5-df8e1d1eead9/cid",
		"/tmp/deimos/mesos/c1d2/fs:/tmp/mesos-sandbox": "/tmp/deimos/mesos/10330424-95c2-4119-b2a5-df8e1d1eead9/fs:/tmp/mesos-sandbox",
	}
	var norm []string
	for i := 0; i < len(got); i++ {
		if got[i] == "-e" && i+1 < len(got) && got[i+1] == "TASK_INFO=marketing" {
			i++
			continue
		}
		if r, ok := perTask[got[i]]; ok {
			norm = append(norm, r)
			continue
		}
		norm = append(norm, got[i])
	}
	if strings.Join(norm, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("docker run line\n got %q\nwant %q", norm, want)
	}
	if !strings.Contains(s.DockerRunLine(), "-e TASK_INFO=marketing registry.int/marketing:latest sh -c /webapp/script/start.sh") {
		t.Errorf("line %s", s.DockerRunLine())
	}

	// Options after "//" are the container's command; other URL schemes
	// are refused, naming the field.
	s, err = FromApp([]byte(`{"id": "x", "cmd": "ignored", "container": {"image": "docker://r/i", "options": ["--privileged", "//", "run", "--fast"]}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if line := strings.Join(s.DockerRun(), " "); !strings.Contains(line, " --privileged -p 31000:31000 -c 1024 -m 128m ") || !strings.HasSuffix(line, " r/i run --fast") {
		t.Errorf("line %s", line)
	}
	if _, err := FromApp([]byte(`{"id": "x", "container": {"image": "http://r/i"}}`), Options{}); err == nil || !strings.Contains(err.Error(), `container.image "http://r/i"`) {
		t.Errorf("http image: %v", err)
	}
}
