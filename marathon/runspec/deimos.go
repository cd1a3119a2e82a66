package runspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// DeimosWorkdir is where deimos mounts the sandbox and starts the
// container (containerizer/docker.py, workdir).
const DeimosWorkdir = "/tmp/mesos-sandbox"

// deimosApp is an app in the format of Marathon 0.5, deimos's era:
// container.image is a docker:// URL and container.options are docker run
// options; ports are the number of host ports to allocate.
type deimosApp struct {
	ID        string `json:"id"`
	Cmd       string `json:"cmd"`
	CPUs      *float64
	Mem       *float64
	Env       map[string]string `json:"env"`
	Ports     *[]int            `json:"ports"`
	Container struct {
		Image   string   `json:"image"`
		Options []string `json:"options"`
	} `json:"container"`
}

// isDeimosApp tells the old format by container.image, which Marathon
// later moved to container.docker.image.
func isDeimosApp(appJSON []byte) bool {
	var probe struct {
		Container *struct {
			Image  *string         `json:"image"`
			Docker json.RawMessage `json:"docker"`
		} `json:"container"`
	}
	return json.Unmarshal(appJSON, &probe) == nil && probe.Container != nil && probe.Container.Image != nil && probe.Container.Docker == nil
}

// fromDeimosApp is the container deimos 0.4.3 starts for a task of the app
// (containerizer/docker.py launch, docker.py run, mesos.py).
func fromDeimosApp(appJSON []byte, o Options) (Spec, error) {
	var a deimosApp
	dec := json.NewDecoder(bytes.NewReader(appJSON))
	if err := dec.Decode(&a); err != nil {
		return Spec{}, fmt.Errorf("app definition (deimos format): %w", err)
	}
	o.defaults()
	appID := "/" + strings.Trim(a.ID, "/")
	// Only docker:// URLs run; the rest is the image (determine_image).
	image, ok := strings.CutPrefix(a.Container.Image, "docker:///")
	if !ok {
		image, ok = strings.CutPrefix(a.Container.Image, "docker://")
	}
	if !ok {
		return Spec{}, fmt.Errorf("app %s: container.image %q: deimos runs docker:// and docker:/// URLs only", appID, a.Container.Image)
	}
	if image == "" {
		return Spec{}, fmt.Errorf("app %s: container.image %q names no image: deimos would pick its configured or guessed default image", appID, a.Container.Image)
	}
	cpus, mem := 1.0, 128.0 // Marathon's defaults
	if a.CPUs != nil {
		cpus = *a.CPUs
	}
	if a.Mem != nil {
		mem = *a.Mem
	}
	state := o.DeimosRoot + "/mesos/" + o.ContainerID
	s := Spec{
		Runner: Deimos, AppID: appID,
		// Marathon of that era named tasks <app>.<uuid>.
		TaskID:      safePath(appID) + "." + o.InstanceID,
		Image:       image,
		Env:         map[string]string{},
		Labels:      map[string]string{},
		Network:     "bridge",
		CIDFile:     state + "/cid",
		Sandbox:     Mount{HostPath: state + "/fs", ContainerPath: DeimosWorkdir},
		CPUShares:   int64(cpus * 1024),
		MemoryBytes: int64(mem) << 20,
	}

	// Options before "//" go to docker run; after it, the container's
	// command, in place of the app's (split_on).
	opts := a.Container.Options
	var trailing []string
	if i := slices.Index(opts, "//"); i >= 0 {
		opts, trailing = opts[:i], opts[i+1:]
	}
	s.Options = append([]string(nil), opts...)
	switch {
	case trailing != nil:
		s.Args = append([]string{}, trailing...)
	case a.Cmd != "":
		s.Args = []string{"sh", "-c", a.Cmd}
	}

	// Marathon of that era gave every app one port unless it asked for more.
	ports := []int{0}
	if a.Ports != nil {
		ports = *a.Ports
	}
	alloc := newAllocator(o.PortRange, o.Taken)
	var hostPorts []int
	for range ports {
		hp, err := alloc.take(0)
		if err != nil {
			return Spec{}, fmt.Errorf("app %s: %w", appID, err)
		}
		hostPorts = append(hostPorts, hp)
	}
	// deimos pairs the allocated ports with the image's EXPOSEd ones,
	// sorted; an allocated port without a partner maps to itself, an
	// exposed port without one is not published (docker.py run).
	exposed := slices.Sorted(slices.Values(o.ExposedPorts))
	if len(exposed) == 0 {
		s.Warnings = append(s.Warnings, "deimos pairs the allocated ports with the image's EXPOSEd ports, read from the pulled image; none given ("+ExposedPortsEnv+"), so each allocated port maps to itself")
	}
	for i, hp := range hostPorts {
		cp := hp
		if i < len(exposed) {
			cp = exposed[i]
		}
		s.Ports = append(s.Ports, Port{ContainerPort: cp, HostPort: hp, Protocol: "tcp"})
	}

	// Marathon's PORT, PORT0… and PORTS, the app's env, and the task's
	// name, which deimos adds as TASK_INFO (mesos.py Launch.env).
	if len(hostPorts) > 0 {
		var all []string
		for i, hp := range hostPorts {
			all = append(all, fmt.Sprint(hp))
			s.Env[fmt.Sprintf("PORT%d", i)] = all[i]
		}
		s.Env["PORT"] = all[0]
		s.Env["PORTS"] = strings.Join(all, ",")
	}
	for k, v := range a.Env {
		s.Env[k] = v
	}
	s.Env[deimosTaskInfo] = safePath(appID)
	return s, nil
}

// deimosTaskInfo is the variable deimos appends after the task's own.
const deimosTaskInfo = "TASK_INFO"
