// Package runspec turns a Marathon app definition into the container Mesos
// would start for one of its tasks: host ports taken from the agent's port
// range and exposed as PORT, PORT0…N, PORTS, PORT_<NAME> and PORT_<container
// port>; HOST, MESOS_TASK_ID, MARATHON_APP_* variables; the app's env on top
// (it wins, as in Marathon's TaskBuilder); volumes; `args` appended to the
// image entrypoint, or `cmd` run by /bin/sh -c in its place; cpus as CPU
// shares (1024 per CPU) and mem as a memory limit; and the health checks to
// execute. The smoke tests feed this spec to Dagger.
package runspec

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Options describe the agent the task lands on.
type Options struct {
	Host      string // agent host name (HOST)
	PortRange [2]int // ports the agent offers; default Mesos' 31000-32000
	Taken     []int  // host ports already in use on the agent
	Version   string // MARATHON_APP_VERSION; default "1970-01-01T00:00:00.000Z"
	TaskID    string // MESOS_TASK_ID; default <app id with _>.<random uuid>
	EnvPrefix string // Marathon's --env_vars_prefix, applied to PORT*/HOST
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
	AppID       string
	TaskID      string
	Image       string
	Entrypoint  []string // nil: keep the image's
	Args        []string // appended to the entrypoint
	Env         map[string]string
	Ports       []Port
	Mounts      []Mount
	Labels      map[string]string // docker labels (from docker.parameters)
	CPUShares   int64
	MemoryBytes int64
	Network     string // bridge or host
	Health      []HealthCheck
}

// EnvList returns the environment as sorted KEY=VALUE pairs.
func (s Spec) EnvList() []string {
	out := make([]string, 0, len(s.Env))
	for k, v := range s.Env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// app is the part of an app definition that decides how a task runs; both
// the 1.5+ fields and the legacy docker ones are read.
type app struct {
	ID           string                  `json:"id"`
	Cmd          *string                 `json:"cmd"`
	Args         []string                `json:"args"`
	CPUs         float64                 `json:"cpus"`
	Mem          float64                 `json:"mem"`
	Disk         float64                 `json:"disk"`
	GPUs         int                     `json:"gpus"`
	Env          map[string]any          `json:"env"`
	Labels       map[string]string       `json:"labels"`
	Networks     []struct{ Mode string } `json:"networks"`
	RequirePorts bool                    `json:"requirePorts"`
	PortDefs     []struct {
		Port     int
		Name     string
		Protocol string
	} `json:"portDefinitions"`
	Container *struct {
		Type   string
		Docker *struct {
			Image        string
			Network      string
			Parameters   []struct{ Key, Value string }
			PortMappings []mapping `json:"portMappings"`
		}
		PortMappings []mapping `json:"portMappings"`
		Volumes      []struct {
			ContainerPath string
			HostPath      string
			Mode          string
		}
	}
	HealthChecks []struct {
		Protocol               string
		Command                *struct{ Value string }
		PortIndex              int
		Path                   string
		GracePeriodSeconds     *int
		IntervalSeconds        *int
		TimeoutSeconds         *int
		MaxConsecutiveFailures *int
	} `json:"healthChecks"`
}

type mapping struct {
	ContainerPort int
	HostPort      int
	Protocol      string
	Name          string
}

// FromApp maps an app definition (JSON) to the spec of one task.
func FromApp(appJSON []byte, o Options) (Spec, error) {
	var a app
	dec := json.NewDecoder(bytes.NewReader(appJSON))
	if err := dec.Decode(&a); err != nil {
		return Spec{}, fmt.Errorf("app definition: %w", err)
	}
	if a.Container == nil || a.Container.Docker == nil || a.Container.Docker.Image == "" {
		return Spec{}, fmt.Errorf("app %s: no container.docker.image: only Docker apps can be run", a.ID)
	}
	if a.Cmd != nil && len(a.Args) > 0 {
		return Spec{}, fmt.Errorf("app %s: both cmd and args are set; Marathon refuses that", a.ID)
	}
	if o.PortRange == [2]int{} {
		o.PortRange = [2]int{31000, 32000}
	}
	if o.Host == "" {
		o.Host = "localhost"
	}
	if o.Version == "" {
		o.Version = "1970-01-01T00:00:00.000Z"
	}
	appID := "/" + strings.TrimPrefix(a.ID, "/")
	if o.TaskID == "" {
		o.TaskID = strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_") + "." + uuid()
	}
	s := Spec{
		AppID: appID, TaskID: o.TaskID, Image: a.Container.Docker.Image,
		Env: map[string]string{}, Labels: map[string]string{},
		CPUShares:   int64(a.CPUs * 1024),
		MemoryBytes: int64(a.Mem * 1024 * 1024),
		Network:     network(a),
	}
	if s.CPUShares < 2 { // Docker's minimum share
		s.CPUShares = 2
	}

	// Ports: host ports from the offer, in mapping order.
	alloc := newAllocator(o.PortRange, o.Taken)
	mappings := a.Container.PortMappings
	if len(mappings) == 0 {
		mappings = a.Container.Docker.PortMappings // Marathon < 1.5 layout
	}
	if s.Network == "host" {
		mappings = nil
		// In host mode portDefinitions name service ports; the host ports
		// are dynamic unless requirePorts makes them the same.
		for _, pd := range a.PortDefs {
			hp := 0
			if a.RequirePorts {
				hp = pd.Port
			}
			mappings = append(mappings, mapping{ContainerPort: 0, HostPort: hp, Protocol: pd.Protocol, Name: pd.Name})
		}
	}
	for _, m := range mappings {
		hp, err := alloc.take(m.HostPort)
		if err != nil {
			return Spec{}, fmt.Errorf("app %s: %w", appID, err)
		}
		cp := m.ContainerPort
		if cp == 0 {
			cp = hp // containerPort 0 means "the same as the host port"
		}
		proto := m.Protocol
		if proto == "" {
			proto = "tcp"
		}
		s.Ports = append(s.Ports, Port{Name: m.Name, ContainerPort: cp, HostPort: hp, Protocol: proto})
	}

	// Marathon's task environment, then the ports and HOST (prefixable),
	// then the app's own env, which wins.
	s.Env["MESOS_TASK_ID"] = s.TaskID
	s.Env["MARATHON_APP_ID"] = appID
	s.Env["MARATHON_APP_VERSION"] = o.Version
	s.Env["MARATHON_APP_DOCKER_IMAGE"] = s.Image
	s.Env["MARATHON_APP_RESOURCE_CPUS"] = formatFloat(a.CPUs)
	s.Env["MARATHON_APP_RESOURCE_MEM"] = formatFloat(a.Mem)
	s.Env["MARATHON_APP_RESOURCE_DISK"] = formatFloat(a.Disk)
	s.Env["MARATHON_APP_RESOURCE_GPUS"] = strconv.Itoa(a.GPUs)
	var labelNames []string
	for _, k := range sortedKeys(a.Labels) {
		v := a.Labels[k]
		if len(k) > 512 || len(v) > 512 {
			continue // Marathon drops oversized labels from the environment
		}
		name := sanitize(k)
		labelNames = append(labelNames, name)
		s.Env["MARATHON_APP_LABEL_"+name] = v
	}
	s.Env["MARATHON_APP_LABELS"] = strings.Join(labelNames, " ")
	p := o.EnvPrefix
	var hostPorts []string
	for i, port := range s.Ports {
		hp := strconv.Itoa(port.HostPort)
		hostPorts = append(hostPorts, hp)
		s.Env[p+"PORT"+strconv.Itoa(i)] = hp
		if port.Name != "" {
			s.Env[p+"PORT_"+sanitize(port.Name)] = hp
		}
		if mappings[i].ContainerPort != 0 {
			s.Env[p+"PORT_"+strconv.Itoa(mappings[i].ContainerPort)] = hp
		}
	}
	if len(hostPorts) > 0 {
		s.Env[p+"PORT"] = hostPorts[0]
		s.Env[p+"PORTS"] = strings.Join(hostPorts, ",")
	}
	s.Env[p+"HOST"] = o.Host
	for k, v := range a.Env {
		str, ok := v.(string)
		if !ok {
			return Spec{}, fmt.Errorf("app %s: env %s refers to a secret; secrets need Marathon's secret store and cannot be run here", appID, k)
		}
		s.Env[k] = str
	}

	for _, v := range a.Container.Volumes {
		if v.HostPath == "" || v.ContainerPath == "" {
			return Spec{}, fmt.Errorf("app %s: volume %q needs hostPath and containerPath", appID, v.ContainerPath)
		}
		s.Mounts = append(s.Mounts, Mount{HostPath: v.HostPath, ContainerPath: v.ContainerPath, ReadOnly: strings.EqualFold(v.Mode, "RO")})
	}
	for _, prm := range a.Container.Docker.Parameters {
		if prm.Key == "label" {
			k, v, _ := strings.Cut(prm.Value, "=")
			s.Labels[k] = v
		}
	}

	// The Docker containerizer: args go after the image's entrypoint; cmd
	// replaces it with a shell.
	switch {
	case a.Cmd != nil:
		s.Entrypoint = []string{"/bin/sh", "-c"}
		s.Args = []string{*a.Cmd}
	default:
		s.Args = append([]string(nil), a.Args...)
	}

	for i, h := range a.HealthChecks {
		hc := HealthCheck{Protocol: h.Protocol, PortIndex: h.PortIndex, Path: h.Path,
			GracePeriodSeconds: or(h.GracePeriodSeconds, 300), IntervalSeconds: or(h.IntervalSeconds, 60),
			TimeoutSeconds: or(h.TimeoutSeconds, 20), MaxConsecutiveFailures: or(h.MaxConsecutiveFailures, 3)}
		if hc.Protocol == "" {
			hc.Protocol = "HTTP"
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

func network(a app) string {
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

var nonName = regexp.MustCompile(`[^A-Za-z0-9_]`)

// sanitize is Marathon's rule for env names from labels and port names.
func sanitize(s string) string { return strings.ToUpper(nonName.ReplaceAllString(s, "_")) }

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func or(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
