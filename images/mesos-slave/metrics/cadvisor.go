package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/httpbody"
)

// CAdvisor reads cAdvisor's v1.3 API (seed: port 8080, plain HTTP).
type CAdvisor struct {
	URL    string // http://<target>:8080
	Client *http.Client
}

type cadvisorContainer struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Aliases []string          `json:"aliases"`
	Labels  map[string]string `json:"labels"` // where the seed looked (older cAdvisor)
	Spec    struct {
		Labels map[string]string `json:"labels"`
		Envs   map[string]string `json:"envs"` // with -docker_env_metadata_whitelist
	} `json:"spec"`
	Stats []cadvisorStats `json:"stats"`
}

type cadvisorStats struct {
	Timestamp time.Time `json:"timestamp"`
	CPU       struct {
		Usage struct {
			Total  uint64   `json:"total"`
			PerCPU []uint64 `json:"per_cpu_usage"`
			User   uint64   `json:"user"`
			System uint64   `json:"system"`
		} `json:"usage"`
		LoadAverage float64 `json:"load_average"`
	} `json:"cpu"`
	Memory  map[string]any `json:"memory"`
	Network struct {
		Interfaces []map[string]any `json:"interfaces"`
	} `json:"network"`
	TaskStats  map[string]any   `json:"task_stats"`
	Filesystem []map[string]any `json:"filesystem"`
}

// Containers returns, for every DIRAC container cAdvisor knows (an alias
// with "mesos", as the Mesos docker containerizer names them, and a
// dirac_component label in spec.labels — the seed read the top level,
// which newer cAdvisors leave empty), its two newest samples (the seed
// used the oldest).
func (c CAdvisor) Containers(ctx context.Context) ([][2]*Sample, error) {
	var all map[string]cadvisorContainer
	if err := c.get(ctx, "/api/v1.3/docker", &all); err != nil {
		return nil, err
	}
	var out [][2]*Sample
	for _, ct := range all {
		labels := ct.Spec.Labels
		if labels[LabelComponent] == "" {
			labels = ct.Labels
		}
		if labels[LabelComponent] == "" || !anyContains(ct.Aliases, "mesos") {
			continue
		}
		out = append(out, newest(ct, labels))
	}
	return out, nil
}

// Machine returns the machine's (root container's) two newest samples.
func (c CAdvisor) Machine(ctx context.Context) ([2]*Sample, error) {
	var root cadvisorContainer
	if err := c.get(ctx, "/api/v1.3/containers", &root); err != nil {
		return [2]*Sample{}, err
	}
	root.ID = "/"
	return newest(root, nil), nil
}

func newest(ct cadvisorContainer, labels map[string]string) [2]*Sample {
	var out [2]*Sample
	n := len(ct.Stats)
	for i := 0; i < 2 && n-1-i >= 0; i++ {
		out[1-i] = fromCAdvisor(ct, labels, ct.Stats[n-1-i])
	}
	if out[1] == nil && out[0] != nil {
		out[0], out[1] = nil, out[0]
	}
	return out
}

func fromCAdvisor(ct cadvisorContainer, labels map[string]string, st cadvisorStats) *Sample {
	id := ct.ID
	if id == "" {
		id = ct.Name[strings.LastIndex(ct.Name, "/")+1:]
	}
	s := &Sample{ID: id, Component: labels[LabelComponent], AppID: ct.Spec.Envs["MARATHON_APP_ID"], TaskID: ct.Spec.Envs["MESOS_TASK_ID"], Time: st.Timestamp,
		CPUTotal: st.CPU.Usage.Total, CPUUser: st.CPU.Usage.User, CPUSystem: st.CPU.Usage.System, PerCPU: st.CPU.Usage.PerCPU,
		LoadAverage: st.CPU.LoadAverage, HasCPU: true, Memory: scalars(st.Memory), Tasks: scalars(st.TaskStats)}
	for _, iface := range st.Network.Interfaces {
		in := Interface{Counters: map[string]uint64{}}
		in.Name, _ = iface["name"].(string)
		for _, k := range NetworkCounters {
			if v, ok := iface[k].(float64); ok {
				in.Counters[k] = uint64(v)
			}
		}
		s.Network = append(s.Network, in)
	}
	for _, fs := range st.Filesystem {
		if ct.ID != "/" {
			break // filesystem points are the machine's (as the seed wrote them)
		}
		dev, _ := fs["device"].(string)
		if strings.Contains(dev, "docker") {
			continue // the seed skipped docker's own devices
		}
		f := Filesystem{Device: dev, Fields: map[string]any{}}
		for k, v := range fs {
			switch v := v.(type) {
			case float64, bool, string:
				if k != "device" {
					f.Fields[k] = v
				}
			}
		}
		s.Disks = append(s.Disks, f)
	}
	return s
}

// scalars keeps the numeric fields of a JSON object (the seed skipped
// nested objects).
func scalars(m map[string]any) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if f, ok := v.(float64); ok {
			out[k] = f
		}
	}
	return out
}

// cadvisorAnswerMax bounds a cAdvisor answer: with two samples a container (what
// the collector asks for), 32 MiB is thousands of containers; a larger
// answer is refused rather than decoded into memory.
const cadvisorAnswerMax = 32 << 20

// statsRequest asks for the two newest samples of each container (v1.3's
// request body; cAdvisor's default is 60, thirty times the answer).
const statsRequest = `{"num_stats":2}`

func (c CAdvisor) get(ctx context.Context, path string, out any) error {
	cl := c.Client
	if cl == nil {
		cl = &http.Client{Timeout: 20 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+path, strings.NewReader(statsRequest))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("cAdvisor: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cAdvisor %s: %s: %s", path, resp.Status, httpbody.Snippet(resp.Body, 512))
	}
	if err := httpbody.DecodeJSON(resp.Body, cadvisorAnswerMax, out, false); err != nil {
		return fmt.Errorf("cAdvisor %s: %w", path, err)
	}
	return nil
}

func anyContains(xs []string, sub string) bool {
	for _, x := range xs {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}
