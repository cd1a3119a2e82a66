package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// Action is what deploying an app does.
type Action string

const (
	Create    Action = "create"
	Update    Action = "update"
	Unchanged Action = "unchanged"
)

// Change is one line of a plan.
type Change struct {
	ID      string
	Action  Action
	Version string // the running version, for updates and unchanged apps
	// Diff is a unified diff, running → rendered, for updates.
	Diff string
	// Fields are the same changes field by field, for updates, in path
	// order: what a report or a promote command shows.
	Fields []FieldChange
}

// FieldChange is one field that a deploy changes. Path is the field's
// path in the app ("container.docker.image", "healthChecks[0].path"); Old
// and New are its value running and rendered as compact JSON ("" where the
// field is absent, so an absent field and an empty string, `""`, differ).
// A list whose length changes is one FieldChange, the whole list.
type FieldChange struct {
	Path, Old, New string
}

// Plan compares the rendered apps with what Marathon runs. Only the fields
// the rendered app sets are compared, so the defaults Marathon fills in do
// not show up as changes. Transient failures are retried for the client's
// Retry.
func Plan(ctx context.Context, c *client.Client, apps []render.App) ([]Change, error) {
	deadline := time.Now().Add(c.Retry)
	var out []Change
	for _, a := range apps {
		cur, err := client.Retry(ctx, deadline, nil, a.ID+": reading the app", func(ctx context.Context) (*app.Definition, error) { return c.GetApp(ctx, a.ID) })
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", a.ID, err)
		}
		out = append(out, compare(a, cur))
	}
	return out, nil
}

// compare is the change that deploying a makes to cur (nil: absent).
func compare(a render.App, cur *app.Definition) Change {
	if cur == nil {
		return Change{ID: a.ID, Action: Create}
	}
	shown := project(cur.Doc, a.Doc).(map[string]any)
	keepChosenPorts(shown, a.Doc)
	// A field the rendered app does not set is reset to Marathon's default
	// by the full PUT; one that differs from that default is a change.
	for k, v := range cur.Doc {
		if _, set := a.Doc[k]; set || statusFields[k] || isDefault(k, v) {
			continue
		}
		shown[k] = v
	}
	running, want := asSets(normalize(shown)), asSets(normalize(a.Doc))
	if pretty(running) == pretty(want) {
		return Change{ID: a.ID, Action: Unchanged, Version: cur.Version}
	}
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(pretty(running)), B: difflib.SplitLines(pretty(want)),
		FromFile: "running " + a.ID + " (version " + cur.Version + ")", ToFile: "rendered " + a.ID, Context: 2,
	})
	var fields []FieldChange
	fieldChanges(running, want, "", &fields)
	return Change{ID: a.ID, Action: Update, Diff: diff, Fields: fields, Version: cur.Version}
}

// FormatPlan prints a plan for people.
func FormatPlan(w io.Writer, plan []Change) {
	n := map[Action]int{}
	for _, c := range plan {
		n[c.Action]++
		fmt.Fprintf(w, "%-9s %s\n", c.Action, c.ID)
		if c.Diff != "" {
			for _, line := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	fmt.Fprintf(w, "plan: %d to create, %d to update, %d unchanged\n", n[Create], n[Update], n[Unchanged])
}

// absent stands for a field one side does not have.
type absent struct{}

// fieldChanges appends the leaves where old and new differ, walking maps
// by key (sorted) and lists of equal length by index.
func fieldChanges(old, new any, path string, out *[]FieldChange) {
	om, oIsMap := old.(map[string]any)
	nm, nIsMap := new.(map[string]any)
	if oIsMap && nIsMap {
		union := map[string]bool{}
		for k := range om {
			union[k] = true
		}
		for k := range nm {
			union[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(union)) {
			o, ok := om[k]
			if !ok {
				o = absent{}
			}
			n, ok := nm[k]
			if !ok {
				n = absent{}
			}
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			fieldChanges(o, n, sub, out)
		}
		return
	}
	ol, oIsList := old.([]any)
	nl, nIsList := new.([]any)
	if oIsList && nIsList && len(ol) == len(nl) {
		for i := range ol {
			fieldChanges(ol[i], nl[i], fmt.Sprintf("%s[%d]", path, i), out)
		}
		return
	}
	if o, n := compact(old), compact(new); o != n {
		*out = append(*out, FieldChange{Path: path, Old: o, New: n})
	}
}

func compact(v any) string {
	if _, ok := v.(absent); ok {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// project keeps, from what Marathon returns, the fields the rendered app
// sets, recursively.
func project(cur, want any) any {
	switch w := want.(type) {
	case map[string]any:
		c, ok := cur.(map[string]any)
		if !ok {
			return cur
		}
		out := map[string]any{}
		for k := range w {
			if v, ok := c[k]; ok {
				out[k] = project(v, w[k])
			}
		}
		return out
	case []any:
		c, ok := cur.([]any)
		if !ok || len(c) != len(w) {
			return cur
		}
		out := make([]any, len(w))
		for i := range w {
			out[i] = project(c[i], w[i])
		}
		return out
	}
	return cur
}

// chosenPorts are where a rendered port 0 asks Marathon to choose one,
// which it stores and answers (reference §1.8: "port: 0 → Marathon picks",
// "servicePort (0 = allocate from --local_port_min/max)"): the list, and
// the field of each entry.
var chosenPorts = []struct {
	path  []string
	field string
}{
	{[]string{"portDefinitions"}, "port"},
	{[]string{"container", "portMappings"}, "servicePort"},
	{[]string{"container", "docker", "portMappings"}, "servicePort"},
}

// keepChosenPorts makes a port Marathon chose where the rendered app asks
// for one (port 0) read as the rendered 0: no change — or every deploy of
// an unchanged app with such a port would be an update, and restart it.
func keepChosenPorts(running, rendered map[string]any) {
	for _, cp := range chosenPorts {
		r, _ := at(running, cp.path).([]any)
		w, _ := at(rendered, cp.path).([]any)
		if len(r) != len(w) { // a change anyway (and r is not project's copy)
			continue
		}
		for i := range r {
			re, _ := r[i].(map[string]any)
			we, _ := w[i].(map[string]any)
			if re == nil || we == nil {
				continue
			}
			if _, ok := normalize(re[cp.field]).(float64); ok && normalize(we[cp.field]) == 0.0 {
				re[cp.field] = we[cp.field]
			}
		}
	}
}

// at is the value at path in nested objects (nil when absent).
func at(doc map[string]any, path []string) any {
	var cur any = doc
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// statusFields are what Marathon reports about an app, not its definition.
var statusFields = map[string]bool{
	"version": true, "versionInfo": true, "deployments": true, "tasks": true, "tasksStaged": true,
	"tasksRunning": true, "tasksHealthy": true, "tasksUnhealthy": true, "lastTaskFailure": true,
	"taskStats": true, "readinessCheckResults": true, "counts": true, "ports": true, "id": true,
}

// isDefault says whether a field not in the rendered app holds what
// Marathon would give it anyway. A field unknown here counts as default
// when empty (a newer Marathon's addition, left alone); otherwise it is a
// change, shown in the plan and removed by the deploy.
func isDefault(k string, v any) bool {
	v = normalize(v)
	if d, ok := marathonDefaults[k]; ok {
		if k == "acceptedResourceRoles" { // 1.x returns the default role list
			if l, ok := v.([]any); ok && len(l) == 1 && l[0] == "*" {
				return true
			}
		}
		if k == "maxLaunchDelaySeconds" && v == 3600.0 { // the 1.x default before 1.10
			return true
		}
		return pretty(d) == pretty(v) || v == nil && d == nil
	}
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// setFields are the fields Marathon keeps as sets (AppDefinition:
// constraints Set[Constraint], healthChecks Set[HealthCheck]): it drops
// duplicates and returns them in an order of its own, so a plan compares
// them as sets — or every redeploy of an unchanged app would be an update.
var setFields = []string{"constraints", "healthChecks"}

// asSets sorts and dedupes the set-valued fields of an app.
func asSets(v any) any {
	a, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for _, k := range setFields {
		l, ok := a[k].([]any)
		if !ok {
			continue
		}
		byText := map[string]any{}
		for _, e := range l {
			byText[pretty(e)] = e
		}
		out := make([]any, 0, len(byText))
		for _, text := range slices.Sorted(maps.Keys(byText)) {
			out = append(out, byText[text])
		}
		a[k] = out
	}
	return a
}

// normalize makes numbers comparable: 1 and 1.0 are the same to Marathon.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	}
	return v
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b) + "\n"
}
