// Package entry is what the registrator keeps in etcd for every running
// task, and where: the layout the registrator writes and dirac-discover
// reads.
package entry

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// DefaultPrefix is where entries live unless configured otherwise.
const DefaultPrefix = "/lhcbdirac/discovery"

// Port is one of a task's ports.
type Port struct {
	Name      string `json:"name"`      // the port's name in the app ("dips"), or "port<index>"
	Host      int    `json:"host"`      // the agent's port
	Container int    `json:"container"` // the port inside the container (0 with host networking)
}

// Entry is one running task.
type Entry struct {
	App       string `json:"app"`       // Marathon app id, "/datamanagement/filecatalog"
	Task      string `json:"task"`      // Marathon task id
	Component string `json:"component"` // the app's dirac_component label, "DataManagement/FileCatalog"
	Host      string `json:"host"`      // the agent
	Ports     []Port `json:"ports"`     // in the app's order
	Healthy   *bool  `json:"healthy"`   // every health check alive; nil when the app has none
	Version   string `json:"version"`   // the app version the task runs
	StartedAt string `json:"startedAt"`
}

// Port returns the task's port named name.
func (e Entry) Port(name string) (Port, bool) {
	for _, p := range e.Ports {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return Port{}, false
}

// MaxID bounds an app or task id (Marathon's are far shorter); a longer
// one is refused, never cut.
const MaxID = 512

// A Marathon app id: "/" and path segments, each dot-separated labels of
// lower-case letters, digits and '-' not at either end (Marathon's PathId,
// absolute; "." and ".." only ever appear in relative ids).
var appIDRE = regexp.MustCompile(`^(/([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])(\.([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9]))*)+$`)

// A task id as Marathon makes them ("lhcb_web.instance-<uuid>._app.1",
// "lhcb_web.<uuid>"): one key segment, so never '/', and nothing a URL
// path (Consul's agent API) would need to escape.
var taskIDRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]*$`)

// CheckApp tells whether id is an absolute Marathon app id.
func CheckApp(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty app id")
	case len(id) > MaxID:
		return fmt.Errorf("app id of %d bytes (at most %d)", len(id), MaxID)
	case !appIDRE.MatchString(id):
		return fmt.Errorf("app id %q: want /segment[/segment…] of lower-case letters, digits, '-' and '.'", id)
	}
	return nil
}

// CheckTask tells whether id can be a task id: one key segment (no '/'),
// not empty.
func CheckTask(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty task id")
	case len(id) > MaxID:
		return fmt.Errorf("task id of %d bytes (at most %d)", len(id), MaxID)
	case !taskIDRE.MatchString(id):
		return fmt.Errorf("task id %q: want letters, digits, '_', '.', ':' and '-' only (no '/')", id)
	}
	return nil
}

// SplitKey is the app and task a key names: under AppsKey(prefix), the
// last segment is the task and the segments before it the app. A key of
// /foo/bar's task is never /foo's: scopes match whole segments.
func SplitKey(prefix, key string) (app, task string, ok bool) {
	rest, ok := strings.CutPrefix(key, AppsKey(prefix))
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", "", false
	}
	app, task = "/"+rest[:i], rest[i+1:]
	if CheckApp(app) != nil || CheckTask(task) != nil {
		return "", "", false
	}
	return app, task, true
}

// AppsKey is the prefix of every app's entries.
func AppsKey(prefix string) string { return strings.TrimRight(prefix, "/") + "/apps/" }

// AppKey is the prefix of one app's entries ("…/apps/datamanagement/filecatalog/").
// It is also the prefix of its sub-apps' entries ("…/filecatalog/replicas/…"):
// a reader keeps the keys whose SplitKey names the app.
func AppKey(prefix, app string) string { return AppsKey(prefix) + strings.Trim(app, "/") + "/" }

// Key is where a task's entry lives.
func Key(prefix, app, task string) string { return AppKey(prefix, app) + task }

// AppID is the Marathon app id a service is deployed as: an app id
// ("/lhcb/web") as it is, a DIRAC component ("DataManagement/FileCatalog")
// lower-cased, as the rendered apps name it.
func AppID(service string) string {
	return "/" + strings.ToLower(strings.Trim(service, "/"))
}

// Encode is an entry's stored form (JSON).
func (e Entry) Encode() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// Decode reads a stored entry; key names it in errors.
func Decode(key string, value []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(value, &e); err != nil {
		return e, fmt.Errorf("etcd key %s: %w", key, err)
	}
	return e, nil
}

// Sort orders entries by host, then task, so listings are stable.
func Sort(es []Entry) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].Host != es[j].Host {
			return es[i].Host < es[j].Host
		}
		return es[i].Task < es[j].Task
	})
}
