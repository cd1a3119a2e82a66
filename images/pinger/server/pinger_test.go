package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/server"
)

const svc = "DataManagement/FileCatalog"

type env struct {
	pki  *dipstest.PKI
	host dipstest.KeyPair
	srv  *dipstest.Server
}

func setup(t testing.TB) env {
	t.Helper()
	dir := t.TempDir()
	pki, err := dipstest.NewPKI(dir, "Test CA")
	if err != nil {
		t.Fatal(err)
	}
	host, err := pki.Host("host", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dipstest.Start(dipstest.Options{HostCert: host.CertFile, HostKey: host.KeyFile, CADir: pki.CADir(), Services: []string{svc}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return env{pki, host, srv}
}

func (e env) client(t testing.TB) *dips.Client {
	c, err := dips.LoadCertificate(e.host.CertFile, e.host.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := dips.LoadCADir(e.pki.CADir())
	if err != nil {
		t.Fatal(err)
	}
	return &dips.Client{Certificate: &c, RootCAs: roots, HostCredentials: true}
}

func handler(t testing.TB, e env, cfg server.Config) *httptest.Server {
	t.Helper()
	if cfg.Client == nil {
		cfg.Client = e.client(t)
	}
	if cfg.Allow == nil {
		// localhost resolves to loopback, which takes address entries too
		al, err := server.ParseAllowList(fmt.Sprintf("localhost:%[1]d,127.0.0.1:%[1]d,[::1]:%[1]d", e.srv.Port()))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Allow = al
	}
	h, err := server.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSeedCompatibleAPI(t *testing.T) {
	e := setup(t)
	ts := handler(t, e, server.Config{})
	port := e.srv.Port()

	if code, body := get(t, ts.URL+"/self"); code != 200 || body != "I am good thanks" {
		t.Fatalf("/self: %d %q", code, body)
	}
	code, body := get(t, fmt.Sprintf("%s/ping?host=localhost&port=%d&service=%s", ts.URL, port, svc))
	if code != 200 {
		t.Fatalf("ping: %d %s", code, body)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("ping body is not JSON: %v: %s", err, body)
	}
	if v["name"] != svc || v["version"] == nil || v["cpu times"] == nil {
		t.Fatalf("ping result lacks DIRAC's keys: %v", v)
	}
	for query, want := range map[string]string{
		"":                                   "Missing Param ! host",
		"?host=localhost":                    "Missing Param ! port",
		"?port=1&service=A/B":                "Missing Param ! host",
		"?host=localhost&port=1":             "Missing Param ! service",
		"?host=localhost&port=x&service=A/B": "port",
	} {
		if code, body := get(t, ts.URL+"/ping"+query); code != 400 || !strings.Contains(body, want) {
			t.Errorf("/ping%s: %d %s, want 400 with %q", query, code, body, want)
		}
	}
	if code, _ := get(t, ts.URL+"/nothing"); code != 404 {
		t.Errorf("/nothing: %d, want 404", code)
	}
	e.srv.SetFailure(dipstest.ServiceError)
	code, body = get(t, fmt.Sprintf("%s/ping?host=localhost&port=%d&service=%s", ts.URL, port, svc))
	if code != 418 || !strings.Contains(body, "injected failure") {
		t.Fatalf("failed ping: %d %s, want 418 with the service's message", code, body)
	}
	e.srv.SetFailure(dipstest.RejectProposal)
	code, body = get(t, fmt.Sprintf("%s/ping?host=localhost&port=%d&service=%s", ts.URL, port, svc))
	if code != 418 || !strings.Contains(body, `"errno":1111`) {
		t.Fatalf("unauthorized ping: %d %s", code, body)
	}
}

func TestAllowListRefusesOtherTargets(t *testing.T) {
	e := setup(t)
	al, err := server.ParseAllowList(fmt.Sprintf("localhost:%d", e.srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	ts := handler(t, e, server.Config{Allow: al})
	for _, q := range []string{
		fmt.Sprintf("host=localhost&port=%d", e.srv.Port()+1), // another port
		fmt.Sprintf("host=127.0.0.1&port=%d", e.srv.Port()),   // another spelling of the host
		"host=169.254.169.254&port=80",
	} {
		code, body := get(t, ts.URL+"/ping?"+q+"&service=A/B")
		if code != 403 || !strings.Contains(body, "allow-list") {
			t.Errorf("%s: %d %s, want 403", q, code, body)
		}
	}
	if e.srv.Calls() != 0 {
		t.Fatal("a refused target was contacted")
	}
}

func TestAllowListParsing(t *testing.T) {
	al, err := server.ParseAllowList("*.cern.ch:9100-9300, lbvobox01.cern.ch, 10.1.0.0/16:9162, [fd00::/8]:9000")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host string
		port int
		ok   bool
	}{
		{"lbvobox12.cern.ch", 9197, true}, {"LBVOBOX12.CERN.CH", 9197, true}, {"cern.ch", 9197, false},
		{"lbvobox12.cern.ch", 22, false}, {"lbvobox01.cern.ch", 22, true}, {"evilcern.ch", 9197, false},
		{"10.1.2.3", 9162, true}, {"10.1.2.3", 9163, false}, {"10.2.0.1", 9162, false},
		{"fd00::1", 9000, true}, {"example.org", 9197, false},
		{"::ffff:10.1.2.3", 9162, true}, // the mapped form of an allowed IPv4 address is that address
		{"lbvobox12.cern.ch.", 9197, true},
	} {
		target, err := server.ParseTarget(c.host)
		if err != nil {
			t.Fatalf("ParseTarget(%q): %v", c.host, err)
		}
		if got := al.Allows(target, c.port); got != c.ok {
			t.Errorf("Allows(%s, %d) = %v, want %v", c.host, c.port, got, c.ok)
		}
	}
	for _, bad := range []string{"", "*", "*:80", "h:0", "h:9-1", "h:x", "10.0.0.0/33", "[fd00::", "*.", "a_b.cern.ch", "[fe80::1%eth0]:9000"} {
		if _, err := server.ParseAllowList(bad); err == nil {
			t.Errorf("allow-list %q accepted", bad)
		}
	}
}

func TestTimeoutsConcurrencyAndMetrics(t *testing.T) {
	e := setup(t)
	const timeout = 2 * time.Second // a slot waits timeout/4 at most
	ts := handler(t, e, server.Config{Timeout: timeout, MaxConcurrent: 1})
	url := fmt.Sprintf("%s/ping?host=localhost&port=%d&service=%s", ts.URL, e.srv.Port(), svc)
	get(t, url) // one success for the metrics

	// One ping holds the only slot until it times out (418): the second,
	// sent once the service has the first's call (so the slot is taken,
	// whatever the machine's speed), cannot get a slot within its wait
	// (503). The service answers long after any of this.
	e.srv.SetFailure(dipstest.Slow)
	e.srv.SetDelay(time.Minute)
	calls := e.srv.Calls()
	first := make(chan int, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	for deadline := time.Now().Add(30 * time.Second); e.srv.Calls() == calls; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) { // a deadline, not a speed
			t.Fatal("the first ping never reached the service")
		}
	}
	second, body := get(t, url)
	codes := []int{<-first, second}
	if codes[0] != 418 || codes[1] != 503 || !strings.Contains(body, "no slot freed within") {
		t.Fatalf("codes %v (%s), want 418 (the first ping timed out) and 503 (no free slot for the second)", codes, body)
	}
	_, metrics := get(t, ts.URL+"/metrics")
	for _, want := range []string{`pinger_pings_total{result="ok"} 1`, `pinger_pings_total{result="timeout"} 1`, `pinger_pings_total{result="busy"} 1`, "pinger_ping_duration_seconds_count 2", "process_resident_memory_bytes"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestMainServesAndShutsDownGracefully(t *testing.T) {
	e := setup(t)
	var stderr bytes.Buffer
	getenv := func(k string) string {
		return map[string]string{
			"PINGER_LISTEN": "127.0.0.1:0", "PINGER_ALLOW": fmt.Sprintf("localhost:%[1]d,127.0.0.1:%[1]d,[::1]:%[1]d", e.srv.Port()),
			"DIRAC_X509_HOST_CERT": e.host.CertFile, "DIRAC_X509_HOST_KEY": e.host.KeyFile, "X509_CERT_DIR": e.pki.CADir(),
		}[k]
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() { done <- server.Main(ctx, nil, getenv, &stderr, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("pinger exited %d: %s", code, stderr.String())
	}
	e.srv.SetFailure(dipstest.Slow)
	e.srv.SetDelay(time.Second)
	result := make(chan int, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/ping?host=localhost&port=%d&service=%s", addr, e.srv.Port(), svc))
		if err != nil {
			result <- 0
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	// The ping is under way once the service has its call.
	for deadline := time.Now().Add(30 * time.Second); e.srv.Calls() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) { // a deadline, not a speed
			t.Fatal("the ping never reached the service")
		}
	}
	cancel()
	if code := <-result; code != 200 {
		t.Fatalf("a ping under way at shutdown got %d, want it to finish with 200", code)
	}
	if code := <-done; code != 0 {
		t.Fatalf("Main returned %d: %s", code, stderr.String())
	}
	// The ping's own log line comes after the shutdown's: it was still
	// under way when the shutdown began.
	logs := stderr.String()
	shut, ping := strings.Index(logs, `"msg":"pinger shutting down"`), strings.Index(logs, `"msg":"ping"`)
	if shut < 0 || ping < shut {
		t.Errorf("want the ping answered after the shutdown began, in structured JSON logs:\n%s", logs)
	}
	if code := server.Main(context.Background(), nil, func(string) string { return "" }, &stderr, nil); code != 1 || !strings.Contains(stderr.String(), "PINGER_ALLOW") {
		t.Fatalf("without an allow-list the pinger must refuse to start naming PINGER_ALLOW: %d", code)
	}
}

// TestHostIsParsedOnceAndDialledAsChecked: with PINGER_ALLOW=10.0.0.0/8,*.cern.ch
// an IPv6 literal whose zone ends in an allowed domain was matched as a
// name and dialled as loopback. Every host that is neither a plain IP nor a
// valid DNS name is refused with 400, and nothing is dialled.
func TestHostIsParsedOnceAndDialledAsChecked(t *testing.T) {
	e := setup(t)
	al, err := server.ParseAllowList("10.0.0.0/8,*.cern.ch")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing leaves loopback: names resolve from a table, and the client
	// records what it is asked to dial instead of dialling it.
	rec := &dialRecorder{}
	dns := newDNS(map[string][][]string{"x.cern.ch": {{"10.1.1.1"}}})
	ts := handler(t, e, server.Config{Client: rec, Allow: al, Resolver: dns, Timeout: time.Second})
	for _, host := range []string{
		"::ffff:127.0.0.1%.cern.ch", "::1%.cern.ch", "127.0.0.1%.cern.ch", "fe80::1%lo",
		"[::1]", "[::1].cern.ch", "127.1", "2130706433", "0x7f.0.0.1", "127.0.0.1.cern.ch:1",
		"localhost\x00.cern.ch", "a_b.cern.ch", "a b.cern.ch", "-x.cern.ch", ".cern.ch", "x..cern.ch",
		"x.cern.ch/..", strings.Repeat("a", 64) + ".cern.ch",
	} {
		q := url.Values{"host": {host}, "port": {strconv.Itoa(e.srv.Port())}, "service": {svc}}
		code, body := get(t, ts.URL+"/ping?"+q.Encode())
		if code != 400 || !strings.Contains(body, "Bad Param") {
			t.Errorf("host %q: %d %s, want 400", host, code, body)
		}
	}
	if got := rec.take(); len(got) > 0 {
		t.Fatalf("a refused host was dialled: %q", got)
	}
	// What passes the parse is what is dialled: an allowed address range
	// admits the mapped and the plain spelling of an address alike.
	for host, want := range map[string]struct {
		code    int
		dialled string
	}{
		"10.9.9.9": {418, "dips://10.9.9.9:1/" + svc}, "::ffff:10.9.9.9": {418, "dips://10.9.9.9:1/" + svc},
		"x.cern.ch": {418, "dips://10.1.1.1:1/" + svc + " x.cern.ch"},
		"127.0.0.1": {403, ""}, "::ffff:127.0.0.1": {403, ""}, "localhost": {403, ""},
	} {
		q := url.Values{"host": {host}, "port": {"1"}, "service": {svc}}
		code, body := get(t, ts.URL+"/ping?"+q.Encode())
		if got := strings.Join(rec.take(), ","); code != want.code || got != want.dialled {
			t.Errorf("host %q: %d %s, dialled %q; want %d, %q", host, code, body, got, want.code, want.dialled)
		}
	}
}
