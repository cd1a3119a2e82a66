package dips_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
)

// tornadoStandIn answers as a DIRAC Tornado service does on the wire (a
// STAND-IN: the real service is exercised by
// images/lhcbdirac/selfping/https_integration_test.go): POST
// /<System>/<Component> with form method/args, a client certificate
// required, JEncoded S_OK/S_ERROR, 404 elsewhere, 401 without a
// certificate. reply chooses the body for a path.
func tornadoStandIn(t *testing.T, reply func(path string, form url.Values) (int, string)) *httptest.Server {
	t.Helper()
	f := getFixture(t)
	cert, err := tls.LoadX509KeyPair(f.host.CertFile, f.host.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(f.pki.CADir() + "/" + caFile(t, f.pki.CADir()))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "401: Unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "405", http.StatusMethodNotAllowed)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		code, body := reply(r.URL.Path, r.PostForm)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func caFile(t *testing.T, dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".0") {
			return e.Name()
		}
	}
	t.Fatal("no CA in " + dir)
	return ""
}

func TestPingHTTPSSendsDIRACsFormAndReadsJEncode(t *testing.T) {
	var got url.Values
	srv := tornadoStandIn(t, func(path string, form url.Values) (int, string) {
		got = form
		if path != "/Framework/TornadoNotification" {
			return 404, "<html>Nothing matches the given URI.</html>"
		}
		return 200, `{"OK": true, "Value": {"version": "9.1.22", "time": {"__dCls": "dt", "obj": "2026-12-02 05:13:31"}, "service uptime": 3, "name": "Framework/TornadoNotification"}}`
	})
	port := srv.Listener.Addr().String()[strings.LastIndex(srv.Listener.Addr().String(), ":")+1:]
	c := client(t, "host")
	v, err := c.PingHTTPS(context.Background(), "https://localhost:"+port+"/Framework/TornadoNotification")
	if err != nil {
		t.Fatal(err)
	}
	if v.String("version") != "9.1.22" || v.String("name") != "Framework/TornadoNotification" {
		t.Fatalf("ping value %v", v)
	}
	if got.Get("method") != "ping" || got.Get("args") != "[]" || got.Get("extraCredentials") != `"hosts"` {
		t.Fatalf("form sent %v", got)
	}

	_, err = c.PingHTTPS(context.Background(), "https://localhost:"+port+"/Framework/Nothing")
	var he *dips.HTTPError
	if !errors.As(err, &he) || he.Status != 404 || !strings.Contains(he.Error(), "Nothing matches") {
		t.Fatalf("unknown route: %v", err)
	}
}

func TestPingHTTPSErrors(t *testing.T) {
	srv := tornadoStandIn(t, func(path string, form url.Values) (int, string) {
		switch path {
		case "/S/Error":
			return 200, `{"OK": false, "Errno": 1111, "Message": "Unauthorized query"}`
		case "/S/NotDict":
			return 200, `{"OK": true, "Value": [1, 2]}`
		case "/S/Garbage":
			return 200, `not json`
		}
		return 200, `{"OK": true, "Value": {}}`
	})
	port := srv.Listener.Addr().String()[strings.LastIndex(srv.Listener.Addr().String(), ":")+1:]
	c := client(t, "host")
	base := "https://localhost:" + port
	var re *dips.RemoteError
	if _, err := c.PingHTTPS(context.Background(), base+"/S/Error"); !errors.As(err, &re) || !re.Unauthorized() {
		t.Errorf("S_ERROR: %v", err)
	}
	var pe *dips.ProtocolError
	for _, p := range []string{"/S/NotDict", "/S/Garbage"} {
		if _, err := c.PingHTTPS(context.Background(), base+p); !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a ProtocolError", p, err)
		}
	}
	small := *c
	small.MaxReplySize = 5
	if _, err := small.PingHTTPS(context.Background(), base+"/S/Ok"); !errors.As(err, &pe) || !strings.Contains(err.Error(), "larger than 5") {
		t.Errorf("a reply over MaxReplySize: %v", err)
	}
	other := *c
	other.ServerName = "not-the-host.example"
	var te *dips.TLSError
	if _, err := other.PingHTTPS(context.Background(), base+"/S/Ok"); !errors.As(err, &te) {
		t.Errorf("a certificate for another name: %v, want a TLSError", err)
	}
	var ce *dips.ConnectError
	if _, err := c.PingHTTPS(context.Background(), "https://127.0.0.1:1/S/Ok"); !errors.As(err, &ce) {
		t.Errorf("nothing listening: %v, want a ConnectError", err)
	}
	for _, bad := range []string{"dips://h:1/S/A", "https://h/S/A", "https://h:1/S", "https://:1/S/A"} {
		if _, err := c.PingHTTPS(context.Background(), bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
