package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/httpbody"
)

// Docker reads the Docker Engine API on its unix socket: the containers
// labelled dirac_component and one stats reading of each. The API is two
// documented endpoints; its Go client module would bring much of Docker
// along for them.
type Docker struct {
	Socket string // default /var/run/docker.sock
	// Concurrency bounds the stats calls in flight (default 64). Docker
	// answers a one-shot stats call at its collector's next tick (every
	// second), so calls made together all return at that tick: a round
	// costs about a second whatever the count, if they are in flight at once.
	Concurrency int

	once   sync.Once
	client *http.Client
	mu     sync.Mutex
	envs   map[string][2]string // id → MARATHON_APP_ID, MESOS_TASK_ID (a container's env does not change)
}

func (d *Docker) init() {
	d.once.Do(func() {
		sock := d.Socket
		if sock == "" {
			sock = "/var/run/docker.sock"
		}
		sock = strings.TrimPrefix(sock, "unix://")
		d.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			},
			MaxIdleConnsPerHost: 16,
		}}
		d.envs = map[string][2]string{}
		if d.Concurrency <= 0 {
			d.Concurrency = 64
		}
	})
}

type dockerStats struct {
	Read     time.Time `json:"read"`
	CPUStats struct {
		CPUUsage struct {
			Total  uint64   `json:"total_usage"`
			PerCPU []uint64 `json:"percpu_usage"`
			User   uint64   `json:"usage_in_usermode"`
			Kernel uint64   `json:"usage_in_kernelmode"`
		} `json:"cpu_usage"`
	} `json:"cpu_stats"`
	MemoryStats struct {
		Usage    float64            `json:"usage"`
		MaxUsage float64            `json:"max_usage"`
		Limit    float64            `json:"limit"`
		Stats    map[string]float64 `json:"stats"`
	} `json:"memory_stats"`
	Networks  map[string]map[string]uint64 `json:"networks"`
	PidsStats struct {
		Current float64 `json:"current"`
	} `json:"pids_stats"`
}

// Containers returns one sample of every running container labelled
// dirac_component.
func (d *Docker) Containers(ctx context.Context) ([]*Sample, error) {
	d.init()
	filters, _ := json.Marshal(map[string][]string{"label": {LabelComponent}})
	var list []struct {
		ID     string            `json:"Id"`
		Labels map[string]string `json:"Labels"`
	}
	if err := d.get(ctx, "/containers/json?filters="+url.QueryEscape(string(filters)), dockerListMax, &list); err != nil {
		return nil, err
	}
	d.mu.Lock()
	live := map[string]bool{}
	for _, c := range list {
		live[c.ID] = true
	}
	for id := range d.envs {
		if !live[id] {
			delete(d.envs, id) // gone: the cache follows the node's containers
		}
	}
	d.mu.Unlock()
	out := make([]*Sample, len(list))
	errs := make([]error, len(list))
	sem := make(chan struct{}, d.Concurrency)
	var wg sync.WaitGroup
	for i, c := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = d.sample(ctx, c.ID, c.Labels[LabelComponent])
		}()
	}
	wg.Wait()
	var samples []*Sample
	var failed []string
	for i, s := range out {
		switch {
		case s != nil:
			samples = append(samples, s)
		case errs[i] != nil && !strings.Contains(errs[i].Error(), "404"):
			// A container that stopped meanwhile is no error.
			failed = append(failed, errs[i].Error())
		}
	}
	if len(failed) > 0 {
		return samples, fmt.Errorf("docker: %d of %d containers unread: %s", len(failed), len(list), failed[0])
	}
	return samples, nil
}

func (d *Docker) sample(ctx context.Context, id, component string) (*Sample, error) {
	env, err := d.env(ctx, id)
	if err != nil {
		return nil, err
	}
	var st dockerStats
	if err := d.get(ctx, "/containers/"+id+"/stats?stream=false&one-shot=true", dockerAnswerMax, &st); err != nil {
		return nil, err
	}
	s := &Sample{ID: id, Component: component, AppID: env[0], TaskID: env[1], Time: st.Read,
		CPUTotal: st.CPUStats.CPUUsage.Total, CPUUser: st.CPUStats.CPUUsage.User, CPUSystem: st.CPUStats.CPUUsage.Kernel,
		PerCPU: st.CPUStats.CPUUsage.PerCPU, HasCPU: true, Memory: map[string]float64{}, Tasks: map[string]float64{"pids": st.PidsStats.Current}}
	m := st.MemoryStats
	s.Memory["usage"], s.Memory["max_usage"] = m.Usage, m.MaxUsage
	for _, k := range []string{"rss", "cache", "mapped_file", "swap"} {
		if v, ok := m.Stats[k]; ok {
			s.Memory[k] = v
		}
	}
	// working_set as cAdvisor and the docker CLI count it: usage less the
	// inactive file cache (cgroup v1: total_inactive_file; v2: inactive_file).
	inactive, ok := m.Stats["total_inactive_file"]
	if !ok {
		inactive = m.Stats["inactive_file"]
	}
	if m.Usage >= inactive {
		s.Memory["working_set"] = m.Usage - inactive
	}
	for name, c := range st.Networks {
		in := Interface{Name: name, Counters: map[string]uint64{}}
		for _, k := range NetworkCounters {
			in.Counters[k] = c[k]
		}
		s.Network = append(s.Network, in)
	}
	return s, nil
}

// env reads the Marathon task's identity from the container's environment,
// once per container.
func (d *Docker) env(ctx context.Context, id string) ([2]string, error) {
	d.mu.Lock()
	e, ok := d.envs[id]
	d.mu.Unlock()
	if ok {
		return e, nil
	}
	var inspect struct {
		Config struct {
			Env []string `json:"Env"`
		} `json:"Config"`
	}
	if err := d.get(ctx, "/containers/"+id+"/json", dockerAnswerMax, &inspect); err != nil {
		return e, err
	}
	for _, kv := range inspect.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "MARATHON_APP_ID":
			e[0] = v
		case "MESOS_TASK_ID":
			e[1] = v
		}
	}
	d.mu.Lock()
	d.envs[id] = e
	d.mu.Unlock()
	return e, nil
}

// Bounds of Docker's answers: the list of the node's DIRAC containers, and
// one container's stats or inspection (a few KiB; a large label or
// environment makes tens). A larger answer is refused, not decoded.
const (
	dockerListMax   = 32 << 20
	dockerAnswerMax = 2 << 20
)

func (d *Docker) get(ctx context.Context, path string, limit int64, out any) error {
	name := strings.SplitN(path, "?", 2)[0]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("docker %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker %s: %s: %s", name, resp.Status, httpbody.Snippet(resp.Body, 512))
	}
	if err := httpbody.DecodeJSON(resp.Body, limit, out, false); err != nil {
		return fmt.Errorf("docker %s: %w", name, err)
	}
	return nil
}
