package registrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
)

// The labels that ask for a Consul check, as LHCbDIRAC's apps set them
// for mesos-consul (seed 000): check_http with {host} and {port} filled
// from the task, every check_interval.
const (
	LabelCheckHTTP     = "check_http"
	LabelCheckInterval = "check_interval"
	LabelComponent     = "dirac_component"
)

// app is the part of a Marathon app (with embedded tasks) the registrator
// reads.
type app struct {
	ID           string            `json:"id"`
	Labels       map[string]string `json:"labels"`
	HealthChecks []json.RawMessage `json:"healthChecks"`
	PortDefs     []struct {
		Name string `json:"name"`
	} `json:"portDefinitions"`
	Container *struct {
		PortMappings []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"portMappings"`
		Docker *struct {
			PortMappings []struct {
				Name          string `json:"name"`
				ContainerPort int    `json:"containerPort"`
			} `json:"portMappings"`
		} `json:"docker"`
	} `json:"container"`
	Tasks []task `json:"tasks"`
}

type task struct {
	ID           string `json:"id"`
	Host         string `json:"host"`
	Ports        []int  `json:"ports"`
	State        string `json:"state"`
	StartedAt    string `json:"startedAt"`
	Version      string `json:"version"`
	HealthChecks []struct {
		Alive bool `json:"alive"`
	} `json:"healthCheckResults"`
}

// Want is a task as the sinks should hold it: its entry, and the Consul
// check its app's labels ask for — or why it is kept out.
type Want struct {
	entry.Entry
	CheckHTTP     string `json:"checkHTTP,omitempty"` // the check's URL with {host} and {port} filled in
	CheckInterval string `json:"checkInterval,omitempty"`
	CheckTimeout  string `json:"checkTimeout,omitempty"`
	CheckErr      string `json:"checkError,omitempty"` // why the labels' check cannot be made: no Consul instance
	Refused       string `json:"refused,omitempty"`    // why no sink holds the task at all

	checkReason, refusedReason string // the reasons counted
}

// wants are the running tasks of an app. A task counts once Mesos runs
// it: state TASK_RUNNING (or, from a Marathon that omits the state, a
// start time), as the seed's resync skipped staged tasks. Every task is
// admitted here (admit.go): one that cannot be written is marked Refused,
// one whose check cannot be made gets CheckErr; none stops the others.
func (a app) wants(policy *checkRules) []Want {
	names, containerPorts := a.portNames()
	component, _, componentErr := label(a, LabelComponent)
	var out []Want
	for _, t := range a.Tasks {
		if t.State != "TASK_RUNNING" && (t.State != "" || t.StartedAt == "") {
			continue
		}
		e := entry.Entry{App: a.ID, Task: t.ID, Component: component, Host: t.Host, Version: t.Version, StartedAt: t.StartedAt}
		w := Want{Entry: e}
		if reason, err := admitTask(a, t); err != nil {
			w.App, w.Task = shorten(a.ID, 128), shorten(t.ID, 128)
			w.Refused, w.refusedReason = err.Error(), reason
			out = append(out, w)
			continue
		}
		if componentErr != nil {
			w.Refused, w.refusedReason = componentErr.Error(), ReasonBadLabel
			out = append(out, w)
			continue
		}
		for i, hp := range t.Ports {
			p := entry.Port{Name: "port" + strconv.Itoa(i), Host: hp}
			if i < len(names) && names[i] != "" {
				p.Name = names[i]
			}
			if i < len(containerPorts) {
				p.Container = containerPorts[i]
				if p.Container == 0 {
					p.Container = hp // containerPort 0: the host port's number
				}
			}
			e.Ports = append(e.Ports, p)
		}
		if len(a.HealthChecks) > 0 {
			// Healthy when Marathon has a result for every check and all are alive.
			ok := len(t.HealthChecks) >= len(a.HealthChecks)
			for _, r := range t.HealthChecks {
				ok = ok && r.Alive
			}
			e.Healthy = &ok
		}
		w.Entry = e
		if c, reason, err := policy.check(a, e); err != nil {
			w.CheckErr, w.checkReason = err.Error(), reason
		} else {
			w.CheckHTTP, w.CheckInterval, w.CheckTimeout = c.url, c.interval, c.timeout
		}
		out = append(out, w)
	}
	return out
}

// portNames are the names (and container ports) of the app's ports in
// index order: port mappings with container networking, port definitions
// with host networking.
func (a app) portNames() (names []string, containerPorts []int) {
	if c := a.Container; c != nil {
		pms := c.PortMappings
		if len(pms) == 0 && c.Docker != nil {
			for _, pm := range c.Docker.PortMappings {
				names, containerPorts = append(names, pm.Name), append(containerPorts, pm.ContainerPort)
			}
			if len(names) > 0 {
				return names, containerPorts
			}
		}
		for _, pm := range pms {
			names, containerPorts = append(names, pm.Name), append(containerPorts, pm.ContainerPort)
		}
		if len(names) > 0 {
			return names, containerPorts
		}
	}
	for _, pd := range a.PortDefs {
		names = append(names, pd.Name)
	}
	return names, nil
}

var durationLabel = regexp.MustCompile(`^[0-9]+(ms|s|m|h)$`)

// checkRules is the parsed CheckPolicy.
type checkRules struct {
	prefixes    []checkPrefix
	minInterval time.Duration
	pinger      bool // a pinger is configured
}

type httpCheck struct{ url, interval, timeout string }

// check fills the app's check_http label for one task ({host} is the
// agent, {port} the task's first port: mesos-consul's substitution) and
// admits it: an http(s) URL under the pinger or the allow-list, every
// check_interval of at least the floor.
func (p *checkRules) check(a app, e entry.Entry) (c httpCheck, reason string, err error) {
	raw, ok, err := label(a, LabelCheckHTTP)
	if err != nil || !ok {
		return c, ReasonBadLabel, err
	}
	interval, _, err := label(a, LabelCheckInterval)
	if err != nil {
		return c, ReasonBadLabel, err
	}
	if interval == "" {
		interval = "10s" // mesos-consul's default
	}
	d, derr := time.ParseDuration(interval)
	if !durationLabel.MatchString(interval) || derr != nil {
		return c, ReasonBadCheck, fmt.Errorf("label %s=%q: want a duration such as 20s", LabelCheckInterval, interval)
	}
	if d < p.minInterval {
		return c, ReasonCheckInterval, fmt.Errorf("label %s=%q: at least %s (the registrator's floor)", LabelCheckInterval, interval, p.minInterval)
	}
	if strings.Contains(raw, "{port}") && len(e.Ports) == 0 {
		return c, ReasonBadCheck, fmt.Errorf("label %s uses {port} but the task has no port", LabelCheckHTTP)
	}
	port := 0
	if len(e.Ports) > 0 {
		port = e.Ports[0].Host
	}
	s := fill(raw, e.Host, port)
	u, perr := url.Parse(s)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(s, "{}") {
		return c, ReasonBadCheck, fmt.Errorf("label %s=%q: not an http(s) URL once {host} and {port} are filled in", LabelCheckHTTP, raw)
	}
	if !allowedCheck(s, p.prefixes, e.Host, port) {
		if !p.pinger {
			return c, ReasonCheckNotAllowed, fmt.Errorf("label %s=%q: no pinger is configured (%s) and the URL is not in %s", LabelCheckHTTP, raw, EnvPinger, EnvCheckAllow)
		}
		return c, ReasonCheckNotAllowed, fmt.Errorf("label %s=%q: not the pinger's /ping (%s) nor under %s", LabelCheckHTTP, raw, EnvPinger, EnvCheckAllow)
	}
	timeout := min(d, maxCheckTimeout)
	return httpCheck{url: s, interval: interval, timeout: timeout.String()}, "", nil
}

// listApps reads every app with its tasks: the full truth.
func listApps(ctx context.Context, c *client.Client) ([]app, error) {
	var out struct {
		Apps []app `json:"apps"`
	}
	err := c.Get(ctx, "/v2/apps?embed=apps.tasks", &out)
	return out.Apps, err
}

// getApp reads one app with its tasks; nil when Marathon has none.
func getApp(ctx context.Context, c *client.Client, id string) (*app, error) {
	var out struct {
		App app `json:"app"`
	}
	err := c.Get(ctx, "/v2/apps"+id+"?embed=app.tasks", &out)
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &out.App, nil
}

// event is the part of a Marathon event that says which app it concerns.
// Marathon 0.5 wrote appID; later versions appId.
type event struct {
	Type     string `json:"eventType"`
	AppID    string `json:"appId"`
	OldAppID string `json:"appID"`
}

// appEvents are the events that change an app's tasks or their health.
var appEvents = map[string]bool{
	"status_update_event":           true,
	"health_status_changed_event":   true,
	"instance_health_changed_event": true,
	"instance_changed_event":        true,
	"failed_health_check_event":     true,
	"unhealthy_task_kill_event":     true,
	"unhealthy_instance_kill_event": true,
	"app_terminated_event":          true,
	"api_post_event":                true,
}

// wholeEvents change what apps exist, or several at once: the registrator
// then reads everything again.
var wholeEvents = map[string]bool{
	"deployment_success":      true,
	"deployment_failed":       true,
	"group_change_success":    true,
	"deployment_step_success": true,
}

// classify tells what an SSE event invalidates: one app, everything, or
// nothing (ok false).
func classify(kind, data string) (appID string, all bool, ok bool, err error) {
	var ev event
	if data != "" {
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return "", false, false, fmt.Errorf("event %s: %w", kind, err)
		}
	}
	if kind == "" {
		kind = ev.Type
	}
	id := ev.AppID
	if id == "" {
		id = ev.OldAppID
	}
	if id != "" {
		id = "/" + strings.Trim(id, "/")
		if entry.CheckApp(id) != nil {
			id = "" // not an app id Marathon makes: read everything rather than guess
		}
	}
	switch {
	case appEvents[kind] && id != "":
		return id, false, true, nil
	case appEvents[kind], wholeEvents[kind]:
		return "", true, true, nil
	}
	return "", false, false, nil
}
