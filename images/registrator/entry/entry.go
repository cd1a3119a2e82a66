// Package entry is what the registrator keeps in etcd for every running
// task, and where: the layout the registrator writes and dirac-discover
// reads.
package entry

import (
	"encoding/json"
	"fmt"
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

// AppsKey is the prefix of every app's entries.
func AppsKey(prefix string) string { return strings.TrimRight(prefix, "/") + "/apps/" }

// AppKey is the prefix of one app's entries ("…/apps/datamanagement/filecatalog/").
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
