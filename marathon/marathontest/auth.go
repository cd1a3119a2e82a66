package marathontest

import "net/http"

// authorized checks the credentials Marathon's `secured` trait asks for
// (reference §1.3: 401/403 from the secured trait): HTTP Basic, or
// "Authorization: token=…" (go-marathon's DCOSToken form, reference §2.2).
func (s *Server) authorized(r *http.Request) bool {
	switch {
	case s.Token != "":
		return r.Header.Get("Authorization") == "token="+s.Token
	case s.User != "":
		u, p, ok := r.BasicAuth()
		return ok && u == s.User && p == s.Password
	}
	return true
}

func unauthorized(w http.ResponseWriter) {
	writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Invalid username or password."})
}
