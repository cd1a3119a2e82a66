package dips_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
)

const svc = "Framework/SystemAdministrator"

// fixture is a PKI with a host certificate for localhost, a user, its proxy,
// and a foreign CA's user, made once for the package (RSA keys are slow).
type fixture struct {
	pki                 *dipstest.PKI
	host, user, foreign dipstest.KeyPair
	proxy, expiredProxy string
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func getFixture(t testing.TB) fixture {
	t.Helper()
	fixOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dips-pki")
		if err != nil {
			fixErr = err
			return
		}
		f := fixture{}
		if f.pki, fixErr = dipstest.NewPKI(dir, "Test CA"); fixErr != nil {
			return
		}
		if f.host, fixErr = f.pki.Host("host", "localhost", "127.0.0.1"); fixErr != nil {
			return
		}
		if f.user, fixErr = f.pki.User("user", "ciuser"); fixErr != nil {
			return
		}
		if f.proxy, fixErr = dipstest.Proxy(f.user, filepath.Join(dir, "x509up_u0"), 12*time.Hour); fixErr != nil {
			return
		}
		if f.expiredProxy, fixErr = dipstest.Proxy(f.user, filepath.Join(dir, "expired"), -time.Hour); fixErr != nil {
			return
		}
		other, err := f.pki.Other(filepath.Join(dir, "other"))
		if err == nil {
			err = os.MkdirAll(other.Dir, 0o755)
		}
		if err != nil {
			fixErr = err
			return
		}
		f.foreign, fixErr = other.User("foreign", "intruder")
		fix = f
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func startServer(t testing.TB, maxTLS uint16) *dipstest.Server {
	t.Helper()
	f := getFixture(t)
	s, err := dipstest.Start(dipstest.Options{HostCert: f.host.CertFile, HostKey: f.host.KeyFile, CADir: f.pki.CADir(), Services: []string{svc}, MaxTLSVersion: maxTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func client(t testing.TB, cred string) *dips.Client {
	t.Helper()
	f := getFixture(t)
	var cert tls.Certificate
	var err error
	switch cred {
	case "host":
		cert, err = dips.LoadCertificate(f.host.CertFile, f.host.KeyFile)
	case "proxy":
		cert, err = dips.LoadProxy(f.proxy)
	case "expired":
		cert, err = dips.LoadProxy(f.expiredProxy)
	case "foreign":
		cert, err = dips.LoadCertificate(f.foreign.CertFile, f.foreign.KeyFile)
	}
	if err != nil {
		t.Fatal(err)
	}
	roots, err := dips.LoadCADir(f.pki.CADir())
	if err != nil {
		t.Fatal(err)
	}
	return &dips.Client{Certificate: &cert, RootCAs: roots, HostCredentials: cred == "host", CallTimeout: 5 * time.Second}
}

func checkPingValue(t *testing.T, v *dips.Dict) {
	t.Helper()
	keys := []string{"version", "time", "host uptime", "service start time", "service uptime", "load", "name", "URL", "cpu times"} // DIRAC v9.1's export_ping
	if v.Len() != len(keys) {
		t.Errorf("ping Value has %d keys, want %d", v.Len(), len(keys))
	}
	for i, k := range keys {
		if i < len(v.Items) && v.Items[i].Key != k {
			t.Errorf("key %d is %v, want %q (DIRAC's order)", i, v.Items[i].Key, k)
		}
	}
	if v.String("name") != svc {
		t.Errorf("name = %q", v.String("name"))
	}
	if tm, _ := v.Get("time"); !isRecent(tm) {
		t.Errorf("time = %#v, want a recent datetime", tm)
	}
	if ct, _ := v.Get("cpu times"); ct.(*dips.Dict).Len() != 5 {
		t.Errorf("cpu times = %#v", ct)
	}
}

func isRecent(v any) bool {
	tm, ok := v.(time.Time)
	return ok && time.Since(tm) < time.Minute && time.Since(tm) > -time.Minute
}

// TestPingInteroperates covers the matrix the issue asks for: TLS 1.2 and
// 1.3, host certificate and proxy, DEncode and JSON (both directions).
func TestPingInteroperates(t *testing.T) {
	for _, tlsv := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		s := startServer(t, tlsv)
		for _, cred := range []string{"host", "proxy"} {
			for _, enc := range []string{"dencode", "json"} {
				t.Run(fmt.Sprintf("%s/%s/%s", tls.VersionName(tlsv), cred, enc), func(t *testing.T) {
					s.SetJSON(enc == "json")
					c := client(t, cred)
					c.JSON = enc == "json"
					v, err := c.Ping(context.Background(), s.URL("localhost", svc))
					if err != nil {
						t.Fatal(err)
					}
					checkPingValue(t, v)
					peers := s.Peers()
					want := "/C=ch/O=DIRAC/OU=Pipeline Test/CN=localhost"
					if cred == "proxy" {
						want = "/C=ch/O=DIRAC/OU=Pipeline Test/CN=ciuser" // the identity behind the proxy
					}
					if got := peers[len(peers)-1]; got != want {
						t.Errorf("server saw peer %q, want %q", got, want)
					}
				})
			}
		}
	}
}

func TestPlainDipPing(t *testing.T) {
	s, err := dipstest.Start(dipstest.Options{Plain: true, Services: []string{svc}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := (&dips.Client{}).Ping(context.Background(), s.URL("127.0.0.1", svc))
	if err != nil {
		t.Fatal(err)
	}
	checkPingValue(t, v)
}

func TestGenericRPC(t *testing.T) {
	s := startServer(t, 0)
	arg := dips.NewDict("a", []any{int64(1), 2.5, nil}, int64(7), dips.Tuple{"x", true})
	got, err := client(t, "proxy").Call(context.Background(), s.URL("localhost", svc), "echo", arg)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := got.(*dips.Dict)
	if !ok || d.Len() != 2 {
		t.Fatalf("echo returned %#v", got)
	}
	if v, _ := d.Get(int64(7)); fmt.Sprint(v) != "[x true]" {
		t.Fatalf("int key lost: %#v", d)
	}
	_, err = client(t, "proxy").Call(context.Background(), s.URL("localhost", svc), "nosuch")
	var re *dips.RemoteError
	if !errors.As(err, &re) || re.Stage != "call" || re.Message != "Unknown method nosuch" {
		t.Fatalf("unknown method: %v", err)
	}
}

func TestClientCertificateRejected(t *testing.T) {
	for _, tlsv := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(tlsv), func(t *testing.T) {
			s := startServer(t, tlsv)
			for _, cred := range []string{"foreign", "expired"} {
				_, err := client(t, cred).Ping(context.Background(), s.URL("localhost", svc))
				var te *dips.TLSError
				if !errors.As(err, &te) {
					t.Fatalf("%s certificate: want a TLSError, got %T %v", cred, err, err)
				}
			}
			if s.Calls() != 0 {
				t.Fatalf("server answered %d calls from rejected peers", s.Calls())
			}
		})
	}
}

func TestServerHostnameIsCheckedEvenWithSkipCACheck(t *testing.T) {
	s := startServer(t, 0)
	c := client(t, "proxy")
	c.SkipCACheck = true
	c.RootCAs = nil
	_, err := c.Ping(context.Background(), s.URL("127.0.0.1", svc))
	if err != nil {
		t.Fatalf("skipCACheck with a matching IP SAN should work: %v", err)
	}
	// A server whose certificate names another host, reached as 127.0.0.1.
	other := startServerNamed(t, "elsewhere.example")
	_, err = c.Ping(context.Background(), other.URL("127.0.0.1", svc))
	var te *dips.TLSError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("skipCACheck must still check the host name: %v", err)
	}
	// And with chain verification on, an unknown server CA is refused.
	c2 := client(t, "proxy")
	f := getFixture(t)
	otherPKI, err := dipstest.NewPKI(t.TempDir(), "Server CA")
	if err != nil {
		t.Fatal(err)
	}
	h, err := otherPKI.Host("h", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s3, err := dipstest.Start(dipstest.Options{HostCert: h.CertFile, HostKey: h.KeyFile, CADir: f.pki.CADir(), Services: []string{svc}})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	_, err = c2.Ping(context.Background(), s3.URL("localhost", svc))
	if !errors.As(err, &te) {
		t.Fatalf("unknown server CA: want TLSError, got %v", err)
	}
	c2.SkipCACheck = true
	if _, err := c2.Ping(context.Background(), s3.URL("localhost", svc)); err != nil {
		t.Fatalf("skipCACheck should accept an unknown CA with the right name: %v", err)
	}
}

func startServerNamed(t *testing.T, name string) *dipstest.Server {
	t.Helper()
	f := getFixture(t)
	kp, err := f.pki.Host("named-"+name, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dipstest.Start(dipstest.Options{HostCert: kp.CertFile, HostKey: kp.KeyFile, CADir: f.pki.CADir(), Services: []string{svc}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRemoteErrors(t *testing.T) {
	s := startServer(t, 0)
	c := client(t, "proxy")
	ctx := context.Background()

	s.SetFailure(dipstest.RejectProposal)
	_, err := c.Ping(ctx, s.URL("localhost", svc))
	var re *dips.RemoteError
	if !errors.As(err, &re) || !re.Unauthorized() || re.Stage != "proposal" || re.Message != "Unauthorized query ( 1111 : Unauthorized query)" {
		t.Fatalf("rejected proposal: %#v", err)
	}
	s.SetFailure(dipstest.ServiceError)
	_, err = c.Ping(ctx, s.URL("localhost", svc))
	if !errors.As(err, &re) || re.Unauthorized() || re.Stage != "call" || !strings.Contains(re.Message, "injected failure") {
		t.Fatalf("service error: %#v", err)
	}
	s.SetFailure(dipstest.Healthy)
	_, err = c.Ping(ctx, s.URL("localhost", "Framework/Nope"))
	if !errors.As(err, &re) || re.Message != "Framework/Nope is not up in this server" {
		t.Fatalf("unknown service: %v", err)
	}
}

func TestProtocolErrorsAndTimeouts(t *testing.T) {
	s := startServer(t, 0)
	c := client(t, "proxy")
	var pe *dips.ProtocolError

	s.SetFailure(dipstest.CloseMidFrame)
	_, err := c.Ping(context.Background(), s.URL("localhost", svc))
	if !errors.As(err, &pe) || pe.Stage != "call" {
		t.Fatalf("close mid-frame: want ProtocolError at call, got %v", err)
	}

	// The server answers S_OK after its delay: a client that waited for it
	// would succeed, one that gave up late would take about the delay. The
	// bounds are half the server's delay (what the tests are about), not a
	// speed a loaded machine might miss.
	const delay = 20 * time.Second
	s.SetFailure(dipstest.Slow)
	s.SetDelay(delay)
	c.CallTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err = c.Ping(context.Background(), s.URL("localhost", svc))
	if took := time.Since(start); !errors.As(err, &pe) || took > delay/2 {
		t.Fatalf("slow server: want ProtocolError after the 300ms call timeout, well before the server's %s answer; got %v after %s", delay, err, took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c.CallTimeout = time.Minute
	start = time.Now()
	_, err = c.Ping(ctx, s.URL("localhost", svc))
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > delay/2 {
		t.Fatalf("context deadline: want DeadlineExceeded after the context's 200ms, well before the server's %s answer; got %v after %s", delay, err, took)
	}
}

func TestConnectErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := client(t, "proxy").Ping(context.Background(), "dips://"+addr+"/"+svc)
	var ce *dips.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("closed port: want ConnectError, got %v", err)
	}

	// A peer that accepts but never speaks TLS: the handshake deadline fires.
	mute, _ := net.Listen("tcp", "127.0.0.1:0")
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// Ignored, ConnectTimeout would leave the default's 10 s: the bound is
	// half of that, not a speed a loaded machine might miss.
	c := client(t, "proxy")
	c.ConnectTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err = c.Ping(context.Background(), "dips://localhost:"+strings.Split(mute.Addr().String(), ":")[1]+"/"+svc)
	var te *dips.TLSError
	if took := time.Since(start); !errors.As(err, &te) || took > dips.DefaultConnectTimeout/2 {
		t.Fatalf("mute peer: want TLSError after the 300ms connect timeout, well before the default %s; got %v after %s", dips.DefaultConnectTimeout, err, took)
	}
}

func TestURLs(t *testing.T) {
	u, err := dips.ParseURL("dips://lbvobox.cern.ch:9162/Framework//SystemAdministrator")
	if err == nil {
		t.Fatalf("a path with an empty component should be refused: %+v", u)
	}
	u, err = dips.ParseURL("dips://host:9162///DataManagement/FileCatalog")
	if err != nil || u.Service != "DataManagement/FileCatalog" || u.Port != 9162 {
		t.Fatalf("%+v %v", u, err)
	}
	for _, bad := range []string{"https://h:1/A/B", "dips://h/A/B", "dips://h:0/A/B", "dips://h:70000/A/B", "dips://:1/A/B", "dips://h:1/A"} {
		if _, err := dips.ParseURL(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: error %v should refuse and name it", bad, err)
		}
	}
}

func TestCADirHashMatchesOpenSSL(t *testing.T) {
	f := getFixture(t)
	entries, _ := os.ReadDir(f.pki.CADir())
	var hashed string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".0") {
			hashed = e.Name()
		}
	}
	out, err := exec.Command("openssl", "x509", "-noout", "-hash", "-in", filepath.Join(f.pki.CADir(), hashed)).Output()
	if err != nil {
		t.Fatalf("openssl (a CI dependency) failed: %v", err)
	}
	if got := strings.TrimSpace(string(out)) + ".0"; got != hashed {
		t.Fatalf("CA file named %s, OpenSSL's hash gives %s", hashed, got)
	}
}
