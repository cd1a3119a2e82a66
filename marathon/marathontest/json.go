package marathontest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// storeSets stores constraints and health checks as Marathon does, as
// sets (AppDefinition's Set[Constraint] and Set[HealthCheck], read in its
// sources; reference §1.6 lists health checks, not their order):
// duplicates go, and they come back in an order of their own — here,
// reverse JSON order, so that a client that relies on the order it sent
// is caught.
func storeSets(def map[string]any) map[string]any {
	def = clone(def)
	for _, k := range []string{"constraints", "healthChecks"} {
		l, ok := def[k].([]any)
		if !ok {
			continue
		}
		seen := map[string]any{}
		for _, e := range l {
			b, _ := json.Marshal(e)
			seen[string(b)] = e
		}
		out := make([]any, 0, len(seen))
		for _, text := range slices.Backward(slices.Sorted(maps.Keys(seen))) {
			out = append(out, seen[text])
		}
		def[k] = out
	}
	return def
}

// embeds says whether the request asks for an embedded field
// (?embed=app.tasks, repeatable; reference §1.3).
func embeds(r *http.Request, what string) bool {
	return slices.Contains(r.URL.Query()["embed"], what)
}

func normID(id string) string { return "/" + strings.Trim(id, "/") }

// newID is a deployment's or instance's UUID.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// instances is an app's instance count (1 when absent: Marathon's default).
func instances(def map[string]any) int {
	if v, ok := def["instances"]; ok && v != nil {
		return num(v)
	}
	return 1
}

func hasHealthChecks(def map[string]any) bool {
	hc, _ := def["healthChecks"].([]any)
	return len(hc) > 0
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// clone copies a definition deeply, numbers as json.Number.
func clone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, _ := json.Marshal(m)
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.Decode(&out)
	return out
}

// canon is a definition's text without its version, for comparing.
func canon(m map[string]any) string {
	c := clone(m)
	delete(c, "version")
	b, _ := json.Marshal(c)
	return string(b)
}

// appNotFound is Marathon's 404 for an unknown app id.
func appNotFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": fmt.Sprintf("App '%s' does not exist", id)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
