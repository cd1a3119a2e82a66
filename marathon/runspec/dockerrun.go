package runspec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kballard/go-shellquote"
)

// DockerSocket is where Mesos's docker executor reaches Docker
// (--docker_socket, with DEFAULT_DOCKER_HOST_PREFIX).
const DockerSocket = "unix:///var/run/docker.sock"

// DockerRun is the argv of the `docker run` that starts the task: the
// Mesos docker executor's (Docker::run) or deimos's (docker.py run).
func (s Spec) DockerRun() []string {
	if s.Runner == Deimos {
		return s.deimosRun()
	}
	argv := []string{"docker", "-H", DockerSocket, "run",
		"--cpu-shares", strconv.FormatInt(s.CPUShares, 10),
		"--memory", strconv.FormatInt(s.MemoryBytes, 10)}
	for _, kv := range s.EnvList() { // a std::map: sorted by name
		argv = append(argv, "-e", kv)
	}
	for _, m := range s.Mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		argv = append(argv, "-v", m.HostPath+":"+m.ContainerPath+":"+mode)
	}
	argv = append(argv, "-v", s.Sandbox.HostPath+":"+s.Sandbox.ContainerPath)
	// A "net" or "network" parameter replaces the network mode; the
	// other parameters become --key=value options.
	network, params := s.Network, []string(nil)
	netSet := false
	for _, p := range s.Params {
		if !netSet && (p.Key == "net" || p.Key == "network") {
			network, netSet = p.Value, true
			continue
		}
		params = append(params, "--"+p.Key+"="+p.Value)
	}
	argv = append(argv, "--net", network)
	if s.Network == "bridge" {
		for _, p := range s.Ports {
			for _, proto := range strings.Split(p.Protocol, ",") {
				argv = append(argv, "-p", fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, strings.ToLower(proto)))
			}
		}
	}
	var args []string
	if len(s.Entrypoint) > 0 {
		argv = append(argv, "--entrypoint", s.Entrypoint[0])
		args = append(args, s.Entrypoint[1:]...)
	}
	argv = append(argv, "--name", s.ContainerName)
	argv = append(argv, params...)
	argv = append(argv, s.Image)
	return append(append(argv, args...), s.Args...)
}

func (s Spec) deimosRun() []string {
	argv := []string{"docker", "run", "--sig-proxy", "--rm", "--cidfile", s.CIDFile,
		"-w", s.Sandbox.ContainerPath, "-v", s.Sandbox.HostPath + ":" + s.Sandbox.ContainerPath}
	argv = append(argv, s.Options...)
	for _, p := range s.Ports {
		argv = append(argv, "-p", fmt.Sprintf("%d:%d", p.HostPort, p.ContainerPort))
	}
	if s.CPUShares > 0 {
		argv = append(argv, "-c", strconv.FormatInt(s.CPUShares, 10))
	}
	if s.MemoryBytes > 0 {
		argv = append(argv, "-m", strconv.FormatInt(s.MemoryBytes>>20, 10)+"m")
	}
	// The task's variables, then the task's name.
	for _, kv := range s.EnvList() {
		if !strings.HasPrefix(kv, deimosTaskInfo+"=") {
			argv = append(argv, "-e", kv)
		}
	}
	if v, ok := s.Env[deimosTaskInfo]; ok {
		argv = append(argv, "-e", deimosTaskInfo+"="+v)
	}
	argv = append(argv, s.Image)
	return append(argv, s.Args...)
}

// DockerRunLine is DockerRun quoted for a POSIX shell.
func (s Spec) DockerRunLine() string { return shellquote.Join(s.DockerRun()...) }
