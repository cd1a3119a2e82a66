// Package runspec turns a Marathon app definition into the container a
// Mesos agent starts for one of its tasks, as Marathon 1.10's TaskBuilder
// and Mesos's Docker containerizer (src/docker/docker.cpp,
// RunOptions::create) build it:
//
//   - the task id <app>.instance-<uuid>._app.1 and its MESOS_TASK_ID docker
//     label;
//   - host ports from the agent's range, exposed as PORT, PORT0…N, PORTS,
//     PORT_<NAME> and PORT_<requested port> (EnvironmentHelper.portsEnv);
//   - HOST, MESOS_TASK_ID and MARATHON_APP_* (TaskBuilder.taskContextEnv),
//     then the app's env, which wins; then MESOS_SANDBOX,
//     MESOS_CONTAINER_NAME and MESOS_ALLOCATION_ROLE, which Mesos sets last;
//   - the sandbox mounted at /mnt/mesos/sandbox;
//   - `args` after the image's entrypoint, or `cmd` run by /bin/sh -c;
//   - CPU shares and a memory limit for the task plus its executor's
//     allowance (0.1 CPU, 32 MB), as the agent sizes the container;
//   - the health checks to execute.
//
// Apps in the format of deimos's era (container.image "docker:///…",
// container.options) get the container deimos 0.4.3 starts (deimos.go).
// The smoke tests run this spec in Dagger; DockerRun prints it as the
// `docker run` line of the agent.
package runspec

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
)

// Runner is what turns the spec into a container on the agent.
type Runner string

const (
	// Mesos is Mesos's Docker containerizer (the docker executor).
	Mesos Runner = "mesos"
	// Deimos is deimos, the external containerizer of Mesos 0.19.
	Deimos Runner = "deimos"
)

// Mesos's defaults (src/slave/constants.hpp, src/slave/flags.cpp).
const (
	// SandboxPath is where the docker executor mounts the sandbox
	// (--sandbox_directory).
	SandboxPath = "/mnt/mesos/sandbox"
	// executorCPUs and executorMemMB are the allowance the agent adds for
	// the command (or docker) executor (DEFAULT_EXECUTOR_CPUS/MEM).
	executorCPUs  = 0.1
	executorMemMB = 32
	// minCPUShares and minMemory are Docker's floors (MIN_CPU_SHARES,
	// MIN_MEMORY in src/slave/containerizer/mesos/isolators/cgroups).
	minCPUShares = 2
	minMemory    = 32 << 20
)

// Options describe the agent the task lands on and the ids Mesos and
// Marathon would draw for it.
type Options struct {
	Host      string // agent host name (HOST); default localhost
	PortRange [2]int // ports the agent offers; default Mesos' 31000-32000
	Taken     []int  // host ports already in use on the agent
	Version   string // MARATHON_APP_VERSION; default "1970-01-01T00:00:00.000Z"
	EnvPrefix string // Marathon's --env_vars_prefix, applied to PORT*/HOST

	// InstanceID is the instance's UUID in the task id; default random.
	InstanceID string
	// ContainerID is Mesos's container id (the container is named
	// mesos-<id>); default random.
	ContainerID string
	// Role is the role of the offer's resources (MESOS_ALLOCATION_ROLE);
	// default "*".
	Role string
	// EnforceRole is Marathon's MARATHON_APP_ENFORCE_GROUP_ROLE (TRUE when
	// the app's top-level group enforces its role).
	EnforceRole bool
	// WorkDir, AgentID and FrameworkID place the sandbox on the agent:
	// <work_dir>/slaves/<agent>/frameworks/<framework>/executors/<task>/runs/<container>.
	WorkDir, AgentID, FrameworkID string
	// ServicePortMin is Marathon's --local_port_min, where service ports
	// for port definitions with port 0 are drawn from (default 10000).
	ServicePortMin int

	// ExposedPorts are the image's EXPOSEd ports, which deimos reads from
	// the pulled image and pairs with the allocated ones (deimos only).
	ExposedPorts []int
	// DeimosRoot is deimos's [state] root (default /tmp/deimos).
	DeimosRoot string
}

// Port is one published port.
type Port struct {
	Name          string
	ContainerPort int
	HostPort      int
	Protocol      string
}

// Mount is one volume.
type Mount struct {
	HostPath, ContainerPath string
	ReadOnly                bool
}

// Param is one docker parameter (docker run --<key>=<value>).
type Param struct{ Key, Value string }

// HealthCheck is one check to run against the task.
type HealthCheck struct {
	Protocol               string
	Command                string // COMMAND checks: run with /bin/sh -c inside the container
	PortIndex              int
	Path                   string
	GracePeriodSeconds     int
	IntervalSeconds        int
	TimeoutSeconds         int
	MaxConsecutiveFailures int
}

// Spec is a container to run.
type Spec struct {
	Runner        Runner
	AppID         string
	TaskID        string
	ContainerName string // docker's --name
	Image         string
	Entrypoint    []string // nil: keep the image's
	Args          []string // appended to the entrypoint
	Env           map[string]string
	Ports         []Port
	Mounts        []Mount           // the app's volumes
	Sandbox       Mount             // the task's sandbox
	Params        []Param           // docker.parameters, Marathon's MESOS_TASK_ID label last
	Labels        map[string]string // the docker labels among Params
	Options       []string          // deimos: container.options before "//"
	CIDFile       string            // deimos: --cidfile
	CPUShares     int64
	MemoryBytes   int64
	Network       string // bridge or host
	Health        []HealthCheck
	// Warnings say where the spec guessed what the agent would know.
	Warnings []string
}

// EnvList returns the environment as KEY=VALUE pairs sorted by name, as
// Mesos's std::map and deimos's Marathon listed them.
func (s Spec) EnvList() []string {
	out := make([]string, 0, len(s.Env))
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		out = append(out, k+"="+s.Env[k])
	}
	return out
}

// TaskID is Marathon 1.10's id of an app's task: the app id's path
// joined by "_", the instance, the anonymous container "_app" and the
// incarnation (Task.TaskIdWithIncarnation).
func TaskID(appID, instanceUUID string) string {
	return safePath(appID) + ".instance-" + instanceUUID + "._app.1"
}

// safePath is PathId.safePath: the path's segments joined by "_".
func safePath(appID string) string {
	return strings.ReplaceAll(strings.Trim(appID, "/"), "/", "_")
}

// FromApp maps an app definition (JSON) to the spec of one task.
func FromApp(appJSON []byte, o Options) (Spec, error) {
	if isDeimosApp(appJSON) {
		return fromDeimosApp(appJSON, o)
	}
	a, err := app.Parse(appJSON)
	if err != nil {
		return Spec{}, err
	}
	if a.Image() == "" {
		return Spec{}, fmt.Errorf("app %s: no container.docker.image: only Docker apps can be run", a.ID)
	}
	if a.Cmd != nil && len(a.Args) > 0 {
		return Spec{}, fmt.Errorf("app %s: both cmd and args are set; Marathon refuses that", a.ID)
	}
	o.defaults()
	appID := "/" + strings.Trim(a.ID, "/")
	s := Spec{
		Runner: Mesos, AppID: appID, TaskID: TaskID(appID, o.InstanceID),
		ContainerName: "mesos-" + o.ContainerID,
		Image:         a.Image(),
		Env:           map[string]string{}, Labels: map[string]string{},
		Network: network(*a),
	}
	// The agent sizes the container for the task and its executor.
	s.CPUShares = max(int64(1024*(a.CPUs+executorCPUs)), minCPUShares)
	s.MemoryBytes = max(int64(uint64(a.Mem+executorMemMB))<<20, minMemory)
	s.Sandbox = Mount{
		HostPath: fmt.Sprintf("%s/slaves/%s/frameworks/%s/executors/%s/runs/%s",
			o.WorkDir, o.AgentID, o.FrameworkID, s.TaskID, o.ContainerID),
		ContainerPath: SandboxPath,
	}

	// Ports: what the app requests (container ports with port mappings,
	// service ports with port definitions) and the host ports of the offer.
	alloc := newAllocator(o.PortRange, o.Taken)
	mappings := a.Container.PortMappings
	if len(mappings) == 0 {
		mappings = a.Container.Docker.PortMappings // Marathon < 1.5 layout
	}
	var requested []portRequest
	if s.Network == "host" {
		mappings = nil
		defs := hostPortDefinitions(a.PortDefinitions)
		servicePorts := assignServicePorts(defs, o.ServicePortMin)
		// In host mode the host ports are dynamic unless requirePorts
		// makes them the service ports.
		for i, pd := range defs {
			hp := 0
			if a.RequirePorts {
				hp = servicePorts[i]
			}
			mappings = append(mappings, app.PortMapping{ContainerPort: 0, HostPort: hp, Protocol: pd.Protocol, Name: pd.Name})
			requested = append(requested, portRequest{name: pd.Name, port: servicePorts[i]})
		}
	} else {
		for _, m := range mappings {
			requested = append(requested, portRequest{name: m.Name, port: m.ContainerPort})
		}
	}
	for _, m := range mappings {
		hp, err := alloc.take(m.HostPort)
		if err != nil {
			return Spec{}, fmt.Errorf("app %s: %w", appID, err)
		}
		cp := m.ContainerPort
		if cp == 0 {
			cp = hp // containerPort 0 means "the same as the host port" (TaskBuilder.boundPortMappings)
		}
		proto := m.Protocol
		if proto == "" {
			proto = "tcp"
		}
		s.Ports = append(s.Ports, Port{Name: m.Name, ContainerPort: cp, HostPort: hp, Protocol: proto})
	}

	// Marathon's task environment, then the ports and HOST (prefixable),
	// then the app's own env, which wins (TaskBuilder.commandInfo).
	taskContextEnv(s.Env, s, *a, o)
	hostPorts := make([]int, len(s.Ports))
	for i, p := range s.Ports {
		hostPorts[i] = p.HostPort
	}
	for k, v := range portsEnv(requested, hostPorts) {
		s.Env[o.EnvPrefix+k] = v
	}
	s.Env[o.EnvPrefix+"HOST"] = o.Host
	for k, v := range a.Env {
		if v.Secret != "" {
			return Spec{}, fmt.Errorf("app %s: env %s refers to a secret; secrets need Marathon's secret store and cannot be run here", appID, k)
		}
		s.Env[k] = v.Value
	}
	// Mesos sets these last, over the task's (Docker::RunOptions::create).
	s.Env["MESOS_SANDBOX"] = SandboxPath
	s.Env["MESOS_CONTAINER_NAME"] = s.ContainerName
	s.Env["MESOS_ALLOCATION_ROLE"] = o.Role

	for _, v := range a.Container.Volumes {
		if v.HostPath == "" || v.ContainerPath == "" {
			return Spec{}, fmt.Errorf("app %s: volume %q needs hostPath and containerPath", appID, v.ContainerPath)
		}
		s.Mounts = append(s.Mounts, Mount{HostPath: v.HostPath, ContainerPath: v.ContainerPath, ReadOnly: strings.EqualFold(v.Mode, "RO")})
	}
	// Marathon labels every Docker task with its id (TaskBuilder.computeContainerInfo).
	for _, p := range a.Container.Docker.Parameters {
		s.Params = append(s.Params, Param{p.Key, p.Value})
	}
	s.Params = append(s.Params, Param{"label", "MESOS_TASK_ID=" + s.TaskID})
	for _, prm := range s.Params {
		if prm.Key == "label" {
			k, v, _ := strings.Cut(prm.Value, "=")
			s.Labels[k] = v
		}
	}

	// The Docker containerizer: args go after the image's entrypoint; cmd
	// replaces it with a shell (MESOS-1770).
	switch {
	case a.Cmd != nil && *a.Cmd != "":
		s.Entrypoint = []string{"/bin/sh", "-c"}
		s.Args = []string{*a.Cmd}
	default:
		s.Args = append([]string(nil), a.Args...)
	}

	for i, h := range a.HealthChecks {
		// Marathon's defaults for what the check leaves out; a 0 given is
		// kept (maxConsecutiveFailures 0 means "never kill").
		h = h.WithDefaults()
		hc := HealthCheck{Protocol: h.Protocol, Path: h.Path, GracePeriodSeconds: *h.GracePeriodSeconds, IntervalSeconds: *h.IntervalSeconds,
			TimeoutSeconds: *h.TimeoutSeconds, MaxConsecutiveFailures: *h.MaxConsecutiveFailures}
		if h.PortIndex != nil {
			hc.PortIndex = *h.PortIndex
		}
		if hc.Protocol == "COMMAND" {
			if h.Command == nil || h.Command.Value == "" {
				return Spec{}, fmt.Errorf("app %s: healthChecks[%d]: COMMAND without command.value", appID, i)
			}
			hc.Command = h.Command.Value
		} else if hc.PortIndex >= len(s.Ports) {
			return Spec{}, fmt.Errorf("app %s: healthChecks[%d]: portIndex %d but only %d ports", appID, i, hc.PortIndex, len(s.Ports))
		}
		s.Health = append(s.Health, hc)
	}
	return s, nil
}

func (o *Options) defaults() {
	if o.PortRange == [2]int{} {
		o.PortRange = [2]int{31000, 32000}
	}
	if o.Host == "" {
		o.Host = "localhost"
	}
	if o.Version == "" {
		o.Version = "1970-01-01T00:00:00.000Z"
	}
	if o.InstanceID == "" {
		o.InstanceID = uuid()
	}
	if o.ContainerID == "" {
		o.ContainerID = uuid()
	}
	if o.Role == "" {
		o.Role = "*"
	}
	if o.WorkDir == "" {
		o.WorkDir = "/var/lib/mesos"
	}
	if o.AgentID == "" {
		o.AgentID = "00000000-0000-0000-0000-000000000000-S0"
	}
	if o.FrameworkID == "" {
		o.FrameworkID = "00000000-0000-0000-0000-000000000000-0000"
	}
	if o.ServicePortMin == 0 {
		o.ServicePortMin = 10000
	}
	if o.DeimosRoot == "" {
		o.DeimosRoot = "/tmp/deimos"
	}
}

// hostPortDefinitions are the app's port definitions; an app that sets
// none gets Marathon's default, one dynamic port named "default"
// (AppNormalization.applyDefaultPortDefinitions).
func hostPortDefinitions(defs *[]app.PortDefinition) []app.PortDefinition {
	if defs == nil {
		return []app.PortDefinition{{Name: "default"}}
	}
	return *defs
}

// assignServicePorts gives each port definition with port 0 the next
// unused port from Marathon's --local_port_min
// (AssignDynamicServiceLogic).
func assignServicePorts(defs []app.PortDefinition, from int) []int {
	used := map[int]bool{}
	for _, d := range defs {
		used[d.Port] = true
	}
	out := make([]int, len(defs))
	next := from
	for i, d := range defs {
		if d.Port != 0 {
			out[i] = d.Port
			continue
		}
		for used[next] {
			next++
		}
		out[i], used[next] = next, true
	}
	return out
}

func network(a app.Definition) string {
	if len(a.Networks) > 0 {
		if a.Networks[0].Mode == "host" {
			return "host"
		}
		return "bridge"
	}
	if a.Container.Docker.Network == "HOST" || (a.Container.Docker.Network == "" && len(a.Container.PortMappings) == 0 && len(a.Container.Docker.PortMappings) == 0) {
		return "host"
	}
	return "bridge"
}

type allocator struct {
	lo, hi int
	used   map[int]bool
	next   int
}

func newAllocator(r [2]int, taken []int) *allocator {
	a := &allocator{lo: r[0], hi: r[1], used: map[int]bool{}, next: r[0]}
	for _, p := range taken {
		a.used[p] = true
	}
	return a
}

// take returns want when it is a fixed port, else the next free one of the
// range (what an offer gives; Marathon picks from the offered ranges).
func (a *allocator) take(want int) (int, error) {
	if want != 0 {
		if a.used[want] {
			return 0, fmt.Errorf("host port %d is already taken on the agent", want)
		}
		a.used[want] = true
		return want, nil
	}
	for ; a.next <= a.hi; a.next++ {
		if !a.used[a.next] {
			a.used[a.next] = true
			return a.next, nil
		}
	}
	return 0, errors.New("no free host port left in the agent's range")
}

func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return FormatUUID(b)
}

// FormatUUID writes 16 bytes in the 8-4-4-4-12 form.
func FormatUUID(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
