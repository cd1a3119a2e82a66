package marathontest

import (
	"cmp"
	"fmt"
	"net/http"
	"time"
)

// version is one stored version of an app: "Every config change and scale
// creates a version" (reference §1.5), an identical PUT too (§1.3: "a
// deployment id is still returned", and the app carries the new plan's
// version).
type version struct {
	ts  string
	def map[string]any // normalized: as Marathon answers it
	// configChange is versionInfo.lastConfigChangeAt as of this version:
	// the last version that restarted tasks. lastScalingAt is ts.
	configChange string
}

func (s *Server) maxVersions() int { return cmp.Or(s.MaxVersions, DefaultMaxVersions) }

// addVersionLocked stores def as app id's new current version; restart
// says whether it is a configuration change (tasks restart) rather than a
// scale or an identical definition. Beyond MaxVersions the oldest version
// goes ("Retention is bounded by the zk_max_versions setting", reference
// §1.5). Called with s.mu held.
func (s *Server) addVersionLocked(id string, a *appState, def map[string]any, restart bool) version {
	v := version{ts: s.newVersion(), def: def}
	v.def["id"] = id
	v.configChange = v.ts
	if !restart && len(a.versions) > 0 {
		v.configChange = a.current().configChange
	}
	a.versions = append(a.versions, v)
	if n := s.maxVersions(); len(a.versions) > n {
		a.versions = append([]version(nil), a.versions[len(a.versions)-n:]...)
	}
	return v
}

// findVersion is app a's version ts, if Marathon still keeps it.
func (a *appState) findVersion(ts string) (version, bool) {
	for _, v := range a.versions {
		if v.ts == ts {
			return v, true
		}
	}
	return version{}, false
}

// versions serves GET /v2/apps/{id}/versions — `{"versions": […]}`, newest
// first — and GET /v2/apps/{id}/versions/{version}, "the full app
// definition at that time" (reference §1.5). An app's versions go with it
// (§1.5: "Versions are dropped when the app is deleted").
func (s *Server) versions(w http.ResponseWriter, r *http.Request, id, ver string) {
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "method not allowed"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		appNotFound(w, id)
		return
	}
	if ver == "" {
		vs := make([]string, 0, len(a.versions))
		for i := len(a.versions) - 1; i >= 0; i-- {
			vs = append(vs, a.versions[i].ts)
		}
		writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
		return
	}
	v, ok := a.findVersion(ver)
	if !ok {
		versionNotFound(w, id, ver)
		return
	}
	def := clone(v.def)
	def["version"] = v.ts
	def["versionInfo"] = map[string]any{"lastConfigChangeAt": v.configChange, "lastScalingAt": v.ts}
	writeJSON(w, http.StatusOK, def)
}

func versionNotFound(w http.ResponseWriter, id, ver string) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": fmt.Sprintf("Version '%s' of app '%s' does not exist", ver, id)})
}

// newVersion is a new version's timestamp: ISO 8601 UTC with milliseconds
// (examples/app_list.json "2015-09-25T15:13:48.343Z"), each later than
// the last. Called with s.mu held.
func (s *Server) newVersion() string {
	t := time.Now().UTC().Truncate(time.Millisecond)
	if !t.After(s.lastVersion) {
		t = s.lastVersion.Add(time.Millisecond)
	}
	s.lastVersion = t
	return stamp(t)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
