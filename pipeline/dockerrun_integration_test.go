//go:build integration

package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/runspec"
)

// agentDockerRunServes runs the docker run line `mage marathon:dockerRun`
// prints for the rendered app of service in the machine's Docker, as a
// Mesos agent's docker executor would: the image pulled from the registry
// first, the smoke kit where the agent has its dirac.cfg and
// grid-security, a fresh sandbox. The app's COMMAND health check must then
// pass inside the container (docker exec) and the DIPS port answer on the
// host port the line publishes. Mesos itself is the stand-in here: the
// line is the one it would run, executed by hand.
func agentDockerRunServes(t *testing.T, apps []render.App, service string) {
	t.Helper()
	ctx := t.Context()
	var app *render.App
	for i := range apps {
		if apps[i].Service.Name == service {
			app = &apps[i]
		}
	}
	if app == nil {
		t.Fatalf("no app for %s", service)
	}
	kit, err := lhcbdirac.NewKit(apps)
	if err != nil {
		t.Fatal(err)
	}
	// Docker binds the port later: one from below the ephemeral range,
	// where no outgoing connection takes it meanwhile.
	hostPort := testproc.Ports(t, 1)[0]
	spec, err := runspec.FromApp(app.JSON, runspec.Options{Host: "localhost", PortRange: [2]int{hostPort, hostPort}})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range spec.Mounts {
		switch m.HostPath {
		case app.Service.DiracCfg:
			spec.Mounts[i].HostPath = kit.DiracCfg
		case app.Service.GridSecurity:
			spec.Mounts[i].HostPath = kit.GridSecurity
		default:
			t.Fatalf("volume %s has no stand-in", m.HostPath)
		}
	}
	spec.Sandbox.HostPath = t.TempDir()
	var hc *runspec.HealthCheck
	for i := range spec.Health {
		if spec.Health[i].Protocol == "COMMAND" {
			hc = &spec.Health[i]
		}
	}
	if hc == nil {
		t.Fatal("no COMMAND health check")
	}

	if _, err := dockercli.Run(ctx, "pull", "--quiet", spec.Image); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is cancelled before cleanups run.
		dockercli.RemoveContainer(context.Background(), spec.ContainerName)
		dockercli.Run(context.Background(), "image", "rm", spec.Image)
	})
	argv := spec.DockerRun()
	t.Logf("the agent's line: %s", spec.DockerRunLine())
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out testproc.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.Now().Add(3 * time.Minute)
	var last string
	for {
		select {
		case err := <-exited:
			t.Fatalf("the task exited (%v) before its health check passed:\n%s", err, out.String())
		default:
		}
		res, err := dockercli.Run(ctx, "exec", spec.ContainerName, "/bin/sh", "-c", hc.Command)
		if err == nil {
			t.Logf("healthy: %s", res)
			break
		}
		last = err.Error()
		if time.Now().After(deadline) {
			t.Fatalf("not healthy within 3 min; last check: %s\nservice output:\n%s", last, out.String())
		}
		time.Sleep(2 * time.Second)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", spec.Ports[0].HostPort), 5*time.Second)
	if err != nil {
		t.Fatalf("the published port: %v", err)
	}
	c.Close()
	if !strings.Contains(out.String(), "Listening at dips://") {
		t.Errorf("the service's log lacks DIRAC's listening line:\n%s", out.String())
	}
	// Marathon's and Mesos's variables reached the task.
	env, err := dockercli.Run(ctx, "exec", spec.ContainerName, "env")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MESOS_TASK_ID=" + spec.TaskID, "MESOS_SANDBOX=/mnt/mesos/sandbox", "MARATHON_APP_RESOURCE_MEM=" + spec.Env["MARATHON_APP_RESOURCE_MEM"]} {
		if !strings.Contains(env, want) {
			t.Errorf("the task's environment lacks %s", want)
		}
	}
}
