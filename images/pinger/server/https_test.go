package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/server"
)

const tornadoSvc = "Framework/TornadoNotification"

// tornadoStandIn answers as a DIRAC Tornado service does on the wire: POST
// /<System>/<Component> with the form method=ping, a client certificate
// required, a JEncoded S_OK. It is a STAND-IN: the real Tornado services
// answer the pinger in the release's smoke test (images/lhcbdirac's
// SmokeServices, pipeline/allservices_integration_test.go).
func tornadoStandIn(t *testing.T, e env) (*httptest.Server, *[]string) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(e.host.CertFile, e.host.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	cas, _ := filepath.Glob(filepath.Join(e.pki.CADir(), "*.0"))
	for _, f := range cas {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(b)
	}
	var calls []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "401: Unauthorized", http.StatusUnauthorized)
			return
		}
		r.ParseForm()
		calls = append(calls, r.Method+" "+r.URL.Path+" "+r.PostForm.Get("method"))
		if r.Method != http.MethodPost || r.URL.Path != "/"+tornadoSvc {
			http.Error(w, "Nothing matches the given URI.", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"OK": true, "Value": {"version": "v9.1.22", "service uptime": 3, "name": "`+tornadoSvc+`"}}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &calls
}

// The pinger pings DIRAC's HTTPS (Tornado) services when the check says
// protocol=https: DIRAC's POST method=ping with the host certificate; the
// seed's checks, with no protocol, stay DIPS pings; any other protocol is
// refused before anything is dialled.
func TestPingsHTTPSServicesWithProtocolHTTPS(t *testing.T) {
	e := setup(t)
	tornado, calls := tornadoStandIn(t, e)
	port := tornado.Listener.Addr().(*net.TCPAddr).Port
	al, err := server.ParseAllowList(fmt.Sprintf("localhost:%d,127.0.0.1:%d,[::1]:%d,localhost:%d,127.0.0.1:%d", port, port, port, e.srv.Port(), e.srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	ts := handler(t, e, server.Config{Allow: al, Timeout: 3 * time.Second})

	code, body := get(t, fmt.Sprintf("%s/ping?host=localhost&port=%d&service=%s&protocol=https", ts.URL, port, tornadoSvc))
	if code != 200 {
		t.Fatalf("HTTPS ping: %d %s", code, body)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil || v["name"] != tornadoSvc || v["version"] != "v9.1.22" {
		t.Fatalf("HTTPS ping answer %s (%v)", body, err)
	}
	if len(*calls) != 1 || (*calls)[0] != "POST /"+tornadoSvc+" ping" {
		t.Fatalf("the Tornado stand-in saw %q, want one POST method=ping", *calls)
	}

	// Not a service of this server: the pinger says what HTTP answered.
	code, body = get(t, fmt.Sprintf("%s/ping?host=localhost&port=%d&service=Framework/Nothing&protocol=https", ts.URL, port))
	if code != http.StatusTeapot || !strings.Contains(body, "404") || !strings.Contains(body, `"kind":"http_status"`) {
		t.Fatalf("HTTPS ping of an unknown service: %d %s, want 418 naming HTTP 404", code, body)
	}
	// The seed's check (no protocol) and protocol=dips are DIPS pings.
	for _, q := range []string{"", "&protocol=dips"} {
		code, body = get(t, fmt.Sprintf("%s/ping?host=localhost&port=%d&service=%s%s", ts.URL, e.srv.Port(), svc, q))
		if code != 200 || !strings.Contains(body, svc) {
			t.Fatalf("DIPS ping (%q): %d %s", q, code, body)
		}
	}
	// A DIPS ping of the HTTPS server fails; it is not answered as HTTPS.
	code, _ = get(t, fmt.Sprintf("%s/ping?host=localhost&port=%d&service=%s", ts.URL, port, tornadoSvc))
	if code != http.StatusTeapot {
		t.Fatalf("DIPS ping of an HTTPS service: %d, want 418", code)
	}
	before := len(*calls)
	for _, p := range []string{"http", "HTTPS", "dips2", "https://x"} {
		code, body = get(t, fmt.Sprintf("%s/ping?host=localhost&port=%d&service=%s&protocol=%s", ts.URL, port, tornadoSvc, p))
		if code != 400 || !strings.Contains(body, "protocol") {
			t.Errorf("protocol=%s: %d %s, want 400 naming the protocol", p, code, body)
		}
	}
	if len(*calls) != before {
		t.Fatalf("a refused protocol reached the service: %q", (*calls)[before:])
	}
}
