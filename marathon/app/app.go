// Package app is a Marathon app definition, typed: the one shape in which
// the project reads an app, whether rendered (render.App.Definition) or as
// Marathon answers it (marathon/client), so that no package digs fields out
// of a map[string]any with helpers of its own.
//
// A Definition keeps the JSON it was parsed from as Doc (numbers as
// json.Number): the deploy plan compares whole documents, fields the types
// here do not name included, and a partial update sends back what Marathon
// sent. Everything else reads the typed fields.
//
// The fields are Marathon 1.5+'s (networks, container.portMappings), with
// the legacy container.docker.portMappings and container.docker.network
// still read, as Marathon itself still accepts them. Where a field is
// absent, the zero value is read, except Instances (Marathon's default, 1)
// and PortDefinitions (nil: absent, which is not "none").
package app

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
)

// Definition is an app: what it asks of Marathon, and — in Marathon's
// answers — the version it is and what runs of it (Status).
type Definition struct {
	ID        string   `json:"id"`
	Cmd       *string  `json:"cmd"`
	Args      []string `json:"args"`
	User      *string  `json:"user"`
	CPUs      float64  `json:"cpus"`
	Mem       float64  `json:"mem"`
	Disk      float64  `json:"disk"`
	GPUs      int      `json:"gpus"`
	Instances int      `json:"instances"` // 1 when absent, as Marathon

	Container       *Container          `json:"container"`
	Env             map[string]EnvValue `json:"env"`
	Labels          map[string]string   `json:"labels"`
	HealthChecks    []HealthCheck       `json:"healthChecks"`
	Constraints     [][]string          `json:"constraints"`
	Networks        []Network           `json:"networks"`
	PortDefinitions *[]PortDefinition   `json:"portDefinitions"` // nil: absent
	RequirePorts    bool                `json:"requirePorts"`
	UpgradeStrategy *UpgradeStrategy    `json:"upgradeStrategy"`

	// Version is the version Marathon gave this definition ("" for a
	// rendered app); VersionInfo tells a scale from a configuration change.
	Version     string       `json:"version"`
	VersionInfo *VersionInfo `json:"versionInfo"`

	Status

	// Doc is the whole JSON object the definition was parsed from.
	Doc map[string]any `json:"-"`
}

// Container is container (Docker apps).
type Container struct {
	Type         string        `json:"type"`
	Docker       *Docker       `json:"docker"`
	PortMappings []PortMapping `json:"portMappings"`
	Volumes      []Volume      `json:"volumes"`
}

// Docker is container.docker.
type Docker struct {
	Image          string        `json:"image"`
	Network        string        `json:"network"` // legacy: BRIDGE, HOST, USER
	Privileged     bool          `json:"privileged"`
	ForcePullImage bool          `json:"forcePullImage"`
	Parameters     []Parameter   `json:"parameters"`
	PortMappings   []PortMapping `json:"portMappings"` // legacy (before 1.5)
}

// Parameter is one docker run option (--key=value).
type Parameter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// PortMapping is a port of an app on container networking.
type PortMapping struct {
	ContainerPort int               `json:"containerPort"`
	HostPort      int               `json:"hostPort"`
	ServicePort   int               `json:"servicePort"`
	Protocol      string            `json:"protocol"`
	Name          string            `json:"name"`
	Labels        map[string]string `json:"labels"`
}

// PortDefinition is a port of an app on host networking.
type PortDefinition struct {
	Port     int               `json:"port"`
	Protocol string            `json:"protocol"`
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels"`
}

// Volume is a host path mounted into the container.
type Volume struct {
	ContainerPath string `json:"containerPath"`
	HostPath      string `json:"hostPath"`
	Mode          string `json:"mode"` // RO or RW
}

// Network is one entry of networks.
type Network struct {
	Mode   string            `json:"mode"` // host, container, container/bridge
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

// HealthCheck is one health check. Numbers are nil when absent, for
// Marathon's defaults differ from zero (maxConsecutiveFailures 0 means
// "never kill").
type HealthCheck struct {
	Protocol               string   `json:"protocol"`
	Command                *Command `json:"command"`
	Path                   string   `json:"path"`
	PortIndex              *int     `json:"portIndex"`
	Port                   *int     `json:"port"`
	GracePeriodSeconds     *int     `json:"gracePeriodSeconds"`
	IntervalSeconds        *int     `json:"intervalSeconds"`
	TimeoutSeconds         *int     `json:"timeoutSeconds"`
	MaxConsecutiveFailures *int     `json:"maxConsecutiveFailures"`
	DelaySeconds           *int     `json:"delaySeconds"`
	IgnoreHTTP1xx          *bool    `json:"ignoreHttp1xx"`
}

// WithDefaults is the check with Marathon's defaults where it leaves a
// field out (reference §1.6: protocol HTTP, gracePeriodSeconds 300,
// intervalSeconds 60, timeoutSeconds 20, maxConsecutiveFailures 3,
// delaySeconds 15; path "/" for HTTP(S) checks; portIndex 0 for a check
// of a port that names neither port nor portIndex). A 0 given stays.
func (h HealthCheck) WithDefaults() HealthCheck {
	def := func(p **int, v int) {
		if *p == nil {
			*p = &v
		}
	}
	h.Protocol = cmp.Or(h.Protocol, "HTTP")
	def(&h.GracePeriodSeconds, 300)
	def(&h.IntervalSeconds, 60)
	def(&h.TimeoutSeconds, 20)
	def(&h.MaxConsecutiveFailures, 3)
	def(&h.DelaySeconds, 15)
	switch h.Protocol {
	case "HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS":
		h.Path = cmp.Or(h.Path, "/")
	}
	if h.Protocol != "COMMAND" && h.Port == nil {
		def(&h.PortIndex, 0)
	}
	return h
}

// Command is a COMMAND health check's command.
type Command struct {
	Value string `json:"value"`
}

// UpgradeStrategy is upgradeStrategy.
type UpgradeStrategy struct {
	MinimumHealthCapacity float64 `json:"minimumHealthCapacity"`
	MaximumOverCapacity   float64 `json:"maximumOverCapacity"`
}

// VersionInfo is versionInfo: the last scale and the last change that
// restarted tasks (a configuration change).
type VersionInfo struct {
	LastScalingAt      string `json:"lastScalingAt"`
	LastConfigChangeAt string `json:"lastConfigChangeAt"`
}

// Status is what Marathon reports about an app besides its definition.
// Tasks is nil when the answer has no task list (GET without
// embed=app.tasks), and empty when the app runs none.
type Status struct {
	TasksStaged     int             `json:"tasksStaged"`
	TasksRunning    int             `json:"tasksRunning"`
	TasksHealthy    int             `json:"tasksHealthy"`
	TasksUnhealthy  int             `json:"tasksUnhealthy"`
	Tasks           []Task          `json:"tasks"`
	Deployments     []DeploymentRef `json:"deployments"`
	LastTaskFailure *TaskFailure    `json:"lastTaskFailure"`
}

// Task is one task, as GET …?embed=app.tasks lists it; its Version is the
// app version it was started with.
type Task struct {
	ID                 string              `json:"id"`
	AppID              string              `json:"appId"`
	Host               string              `json:"host"`
	Ports              []int               `json:"ports"`
	State              string              `json:"state"`
	Version            string              `json:"version"`
	StagedAt           string              `json:"stagedAt"`
	StartedAt          string              `json:"startedAt"`
	HealthCheckResults []HealthCheckResult `json:"healthCheckResults"`
}

// HealthCheckResult is one health check's last result for a task.
type HealthCheckResult struct {
	Alive bool `json:"alive"`
}

// DeploymentRef names a deployment under way on the app.
type DeploymentRef struct {
	ID string `json:"id"`
}

// TaskFailure is lastTaskFailure.
type TaskFailure struct {
	TaskID  string `json:"taskId"`
	State   string `json:"state"`
	Message string `json:"message"`
	Version string `json:"version"`
}

// EnvValue is one env entry: a value, or a reference to a secret
// ({"secret": "<name>"}).
type EnvValue struct {
	Value  string
	Secret string // the secret's name; Value is then ""
}

// UnmarshalJSON reads a string or {"secret": …}.
func (e *EnvValue) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*e = EnvValue{}
		return json.Unmarshal(b, &e.Value)
	}
	var ref struct {
		Secret *string `json:"secret"`
	}
	if err := json.Unmarshal(b, &ref); err != nil || ref.Secret == nil {
		// The value is not quoted: it may be a credential put in by mistake.
		return &json.UnmarshalTypeError{Value: "value that is neither a string nor {\"secret\": name}", Type: reflect.TypeFor[EnvValue]()}
	}
	*e = EnvValue{Secret: *ref.Secret}
	return nil
}

// MarshalJSON writes what UnmarshalJSON reads.
func (e EnvValue) MarshalJSON() ([]byte, error) {
	if e.Secret != "" {
		return json.Marshal(map[string]string{"secret": e.Secret})
	}
	return json.Marshal(e.Value)
}

// Parse reads one app definition (a JSON object). Errors name the app and
// the field.
func Parse(b []byte) (*Definition, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("app definition: %w", err)
	}
	if doc == nil {
		return nil, errors.New("app definition: not a JSON object")
	}
	return parse(b, doc)
}

// FromDoc reads an app definition already decoded (as Parse's Doc is).
// The Definition's Doc is doc itself.
func FromDoc(doc map[string]any) (*Definition, error) {
	if doc == nil {
		return nil, errors.New("app definition: nil")
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("app definition: %w", err)
	}
	return parse(b, doc)
}

func parse(b []byte, doc map[string]any) (*Definition, error) {
	d := &Definition{Instances: 1}
	if err := json.Unmarshal(b, d); err != nil {
		id, _ := doc["id"].(string)
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, fmt.Errorf("app %s: field %s: a JSON %s where %s is wanted", id, te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("app %s: %w", id, err)
	}
	d.Doc = doc
	return d, nil
}

// Image is container.docker.image, the whole reference ("" for none).
func (d Definition) Image() string {
	if d.Container == nil || d.Container.Docker == nil {
		return ""
	}
	return d.Container.Docker.Image
}

// ImageRepo is the image's repository (registry host and port included).
func (d Definition) ImageRepo() string { return ParseImage(d.Image()).Repo }

// ImageTag is the image's tag ("" when the reference has none).
func (d Definition) ImageTag() string { return ParseImage(d.Image()).Tag }

// ImageDigest is the image's digest, "sha256:…" ("" when not pinned).
func (d Definition) ImageDigest() string { return ParseImage(d.Image()).Digest }

// DockerLabels are the docker labels the app sets through docker
// parameters (key "label", value "name=value"), as the seed's apps did.
func (d Definition) DockerLabels() map[string]string {
	out := map[string]string{}
	if d.Container == nil || d.Container.Docker == nil {
		return out
	}
	for _, p := range d.Container.Docker.Parameters {
		if p.Key == "label" {
			k, v, _ := strings.Cut(p.Value, "=")
			out[k] = v
		}
	}
	return out
}

// ContainerWithImage is the app's container object, as Doc holds it (every
// field, those not typed here too), with container.docker.image set to
// image: the body of a partial update that changes the image alone.
func (d Definition) ContainerWithImage(image string) (map[string]any, error) {
	c, ok := d.Doc["container"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("app %s: no container", d.ID)
	}
	docker, ok := c["docker"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("app %s: no container.docker", d.ID)
	}
	c, docker = maps.Clone(c), maps.Clone(docker)
	docker["image"] = image
	c["docker"] = docker
	return c, nil
}

// ImageRef is an image reference: repository[:tag][@digest].
type ImageRef struct {
	Repo   string // registry host (and port) and path: host:5000/lhcb-dirac/lhcbdirac
	Tag    string
	Digest string // sha256:…
}

// ParseImage splits an image reference. A colon belongs to the tag only
// after the last slash, so a registry port (host:5000/repo) is not a tag.
func ParseImage(ref string) ImageRef {
	var r ImageRef
	ref, r.Digest, _ = strings.Cut(ref, "@")
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		ref, r.Tag = ref[:colon], ref[colon+1:]
	}
	r.Repo = ref
	return r
}

// String writes the reference back.
func (r ImageRef) String() string {
	s := r.Repo
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// WithTag is the reference with its tag replaced and no digest: the digest
// pinned the old tag's content, which the new tag does not have.
func (r ImageRef) WithTag(tag string) ImageRef {
	return ImageRef{Repo: r.Repo, Tag: tag}
}
