package runspec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

func load(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A rendered DIRAC service app: bridge networking, one named port mapping
// with hostPort 0, read-only volumes, args after the image entrypoint.
func TestRenderedServiceApp(t *testing.T) {
	s, err := FromApp(load(t, "../render/testdata/golden/production/DataManagement_FileCatalog.json"),
		Options{Host: "agent1.cern.ch", Taken: []int{31000}, Version: "2026-11-21T10:00:00.000Z",
			InstanceID: "9a8b7c6d-0000-4000-8000-000000000001", ContainerID: "c0ffee00-0000-4000-8000-000000000002"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Image != "registry.example.org/lhcb-dirac/lhcbdirac:v9.1" || s.Network != "bridge" || s.Entrypoint != nil {
		t.Fatalf("spec %+v", s)
	}
	if !reflect.DeepEqual(s.Args, []string{"dirac-service", "DataManagement/FileCatalog"}) {
		t.Fatalf("args %v", s.Args)
	}
	if want := []Port{{Name: "dips", ContainerPort: 9197, HostPort: 31001, Protocol: "tcp"}}; !reflect.DeepEqual(s.Ports, want) {
		t.Fatalf("ports %+v: the first free port of the range, 31000 being taken", s.Ports)
	}
	// Marathon 1.10's task id; the container Mesos names after its id.
	const taskID = "datamanagement_filecatalog.instance-9a8b7c6d-0000-4000-8000-000000000001._app.1"
	for k, v := range map[string]string{
		"PORT0": "31001", "PORT": "31001", "PORTS": "31001", "PORT_DIPS": "31001", "PORT_9197": "31001",
		"HOST": "agent1.cern.ch", "MARATHON_APP_ID": "/datamanagement/filecatalog",
		"MARATHON_APP_VERSION": "2026-11-21T10:00:00.000Z", "MARATHON_APP_DOCKER_IMAGE": s.Image,
		// Scala's Double.toString; gpus is an Int.
		"MARATHON_APP_RESOURCE_CPUS": "0.5", "MARATHON_APP_RESOURCE_MEM": "800.0",
		"MARATHON_APP_RESOURCE_DISK": "0.0", "MARATHON_APP_RESOURCE_GPUS": "0",
		"MARATHON_APP_ENFORCE_GROUP_ROLE":    "FALSE",
		"MARATHON_APP_LABEL_DIRAC_COMPONENT": "DataManagement/FileCatalog", "MARATHON_APP_LABEL_OWNER": "dms",
		"MARATHON_APP_LABELS": "CHECK_HTTP CHECK_INTERVAL DIRAC_COMPONENT OWNER SYSTEM",
		"DIRAC_LOG_LEVEL":     "INFO",
		"MESOS_TASK_ID":       taskID,
		// Set by Mesos's docker executor.
		"MESOS_SANDBOX": "/mnt/mesos/sandbox", "MESOS_CONTAINER_NAME": "mesos-c0ffee00-0000-4000-8000-000000000002",
		"MESOS_ALLOCATION_ROLE": "*",
	} {
		if s.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, s.Env[k], v)
		}
	}
	if s.TaskID != taskID || s.Labels["MESOS_TASK_ID"] != taskID {
		t.Errorf("task id %q, docker label %q", s.TaskID, s.Labels["MESOS_TASK_ID"])
	}
	// Task plus the executor's allowance: 0.5+0.1 CPU, 800+32 MB.
	if s.CPUShares != 614 || s.MemoryBytes != 832<<20 {
		t.Errorf("resources: %d shares, %d bytes", s.CPUShares, s.MemoryBytes)
	}
	wantMounts := []Mount{{"/etc/grid-security", "/opt/dirac/etc/grid-security", true}, {"/etc/dirac/LHCb-Production.cfg", "/opt/dirac/etc/dirac.cfg", true}}
	if !reflect.DeepEqual(s.Mounts, wantMounts) {
		t.Errorf("mounts %+v", s.Mounts)
	}
	if want := "/var/lib/mesos/slaves/00000000-0000-0000-0000-000000000000-S0/frameworks/00000000-0000-0000-0000-000000000000-0000/executors/" + taskID + "/runs/c0ffee00-0000-4000-8000-000000000002"; s.Sandbox != (Mount{HostPath: want, ContainerPath: "/mnt/mesos/sandbox"}) {
		t.Errorf("sandbox %+v", s.Sandbox)
	}
	if s.Labels["dirac_component"] != "DataManagement/FileCatalog" {
		t.Errorf("docker labels %v", s.Labels)
	}
	if len(s.Health) != 1 || s.Health[0].Command != "/opt/dirac/dockerEntrypoint.sh dirac-self-ping 9197/DataManagement/FileCatalog" || s.Health[0].TimeoutSeconds != 20 {
		t.Errorf("health %+v", s.Health)
	}

	// The agent's docker run line for the task.
	line := strings.Join(s.DockerRun(), " ")
	for _, want := range []string{
		"docker -H unix:///var/run/docker.sock run --cpu-shares 614 --memory 872415232 ",
		" -e MESOS_TASK_ID=" + taskID + " ",
		" -v /etc/grid-security:/opt/dirac/etc/grid-security:ro -v /etc/dirac/LHCb-Production.cfg:/opt/dirac/etc/dirac.cfg:ro -v /var/lib/mesos/slaves/",
		":/mnt/mesos/sandbox --net bridge -p 31001:9197/tcp --name mesos-c0ffee00-0000-4000-8000-000000000002 ",
		" --label=MESOS_TASK_ID=" + taskID + " registry.example.org/lhcb-dirac/lhcbdirac:v9.1 dirac-service DataManagement/FileCatalog",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("docker run line lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "--entrypoint") || !strings.HasSuffix(line, " dirac-service DataManagement/FileCatalog") {
		t.Errorf("args go after the image's entrypoint: %s", line)
	}
}

// The app's env wins over Marathon's variables, as in TaskBuilder; the
// prefix applies to ports and HOST only.
func TestEnvPrecedenceAndPrefix(t *testing.T) {
	app := `{"id": "/a/b", "cmd": "sleep 1", "cpus": 0.001, "mem": 16, "env": {"PORT0": "mine", "HOST": "h"},
	  "container": {"type": "DOCKER", "docker": {"image": "x"}, "portMappings": [{"containerPort": 0, "hostPort": 0}, {"containerPort": 80, "hostPort": 31500}]},
	  "networks": [{"mode": "container/bridge"}]}`
	s, err := FromApp([]byte(app), Options{EnvPrefix: "APP_", PortRange: [2]int{31000, 31001}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Env["PORT0"] != "mine" || s.Env["APP_PORT0"] != "31000" || s.Env["APP_PORT1"] != "31500" || s.Env["APP_PORTS"] != "31000,31500" || s.Env["APP_PORT_80"] != "31500" {
		t.Fatalf("env %v", s.EnvList())
	}
	if s.Ports[0].ContainerPort != 31000 {
		t.Errorf("containerPort 0 should take the host port: %+v", s.Ports[0])
	}
	if s.Env["APP_PORT_31000"] != "31000" {
		t.Errorf("containerPort 0 gives PORT_<host port>: %v", s.EnvList())
	}
	// 0.001+0.1 CPU: 103 shares; 16+32 MB.
	if !reflect.DeepEqual(s.Entrypoint, []string{"/bin/sh", "-c"}) || !reflect.DeepEqual(s.Args, []string{"sleep 1"}) || s.CPUShares != 103 || s.MemoryBytes != 48<<20 {
		t.Errorf("cmd apps run through a shell: %v %v (shares %d)", s.Entrypoint, s.Args, s.CPUShares)
	}
}

// Marathon's own system-test apps and the seed's hand-written app, in their
// original layouts (legacy docker.portMappings, portIndex checks).
func TestMarathonAndSeedApps(t *testing.T) {
	td := testenv.Testdata(t)
	dfc, err := FromApp(load(t, filepath.Join(td, "seeds", "lhcbdirac", "dfc.json")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if dfc.Network != "bridge" || dfc.Ports[0].ContainerPort != 9197 || dfc.Env["PORT_9197"] == "" || dfc.Args[1] != "-ddd" {
		t.Errorf("dfc.json: %+v", dfc)
	}
	web, err := FromApp(load(t, filepath.Join(td, "marathon", "system-test-apps", "docker-http-server.json")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if web.Entrypoint == nil || len(web.Ports) != 1 || web.Ports[0].ContainerPort != 8080 {
		t.Errorf("docker-http-server: %+v", web)
	}
	if _, err := FromApp([]byte(`{"id": "/x", "cmd": "a", "args": ["b"], "container": {"docker": {"image": "i"}}}`), Options{}); err == nil {
		t.Error("cmd with args accepted")
	}
	if _, err := FromApp([]byte(`{"id": "/x", "cmd": "a"}`), Options{}); err == nil || !strings.Contains(err.Error(), "/x") {
		t.Errorf("no docker image: %v", err)
	}
	if _, err := FromApp([]byte(`{"id": "/x", "cmd": "a", "container": {"docker": {"image": "i"}, "portMappings": [{"containerPort": 1, "hostPort": 0}, {"containerPort": 2, "hostPort": 0}]}}`), Options{PortRange: [2]int{31000, 31000}}); err == nil {
		t.Error("two ports from a one-port range")
	}
}
