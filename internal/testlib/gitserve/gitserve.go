// Package gitserve serves bare git repositories over smart HTTP with basic
// authentication, for tests of what happens to credentials in a repository
// URL: it is git's own server side (git http-backend) behind Go's CGI
// handler, on loopback.
package gitserve

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
)

// Server serves the bare repositories under Root.
type Server struct {
	Root           string
	User, Password string // required when User is set
	srv            *http.Server
	addr           string
}

// backend finds git http-backend (git's exec path holds it).
func backend() (string, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return "", fmt.Errorf("git --exec-path: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"), nil
}

// Start listens on a loopback port of bindHost ("127.0.0.1" by default).
func (s *Server) Start(bindHost string) error {
	be, err := backend()
	if err != nil {
		return err
	}
	if bindHost == "" {
		bindHost = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bindHost, "0"))
	if err != nil {
		return err
	}
	h := &cgi.Handler{Path: be, Env: []string{"GIT_PROJECT_ROOT=" + s.Root, "GIT_HTTP_EXPORT_ALL=1"}}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.User != "" {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(s.User)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(s.Password)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})}
	s.addr = ln.Addr().String()
	go s.srv.Serve(ln)
	return nil
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// URL of the repository named repo (e.g. "DIRAC.git"), with userinfo when
// user is not empty.
func (s *Server) URL(repo, user, password string) string {
	cred := ""
	if user != "" {
		cred = user + ":" + password + "@"
	}
	return "http://" + cred + s.addr + "/" + repo
}

// Close stops the server.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}
