//go:build integration

package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/server"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
)

func goClient(t testing.TB, d *DIRAC) *dips.Client {
	t.Helper()
	c, err := dips.LoadCertificate(d.Host.CertFile, d.Host.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := dips.LoadCADir(d.PKI.CADir())
	if err != nil {
		t.Fatal(err)
	}
	return &dips.Client{Certificate: &c, RootCAs: roots, HostCredentials: true, CallTimeout: 30 * time.Second}
}

// TestProjectClientsPingRealDIRACService: the project's client, the
// dirac-self-ping binary (the Marathon health check) and the pinger ping
// DIRAC's own dirac-service, in DIRAC v9's JSON and in DEncode; DIRAC's
// echo answers what the Go client sends.
func TestProjectClientsPingRealDIRACService(t *testing.T) {
	for _, enc := range []string{"JSON", "DEncode"} {
		t.Run(enc, func(t *testing.T) {
			useJSON := "Yes"
			if enc == "DEncode" {
				useJSON = "No"
			}
			d, s := startService(t, "RequestManagement/ReqProxy", "DIRAC_USE_JSON_ENCODE="+useJSON)
			c := goClient(t, d)
			c.JSON = enc == "JSON"
			v, err := c.Ping(t.Context(), s.URL())
			if err != nil {
				t.Fatalf("%v\n%s", err, s.Log)
			}
			if v.String("name") != s.Name || !strings.HasPrefix(v.String("version"), "9.1.") {
				t.Fatalf("ping Value %v", v)
			}
			const text = "éé \x00 tab\t"
			got, err := c.Call(t.Context(), s.URL(), "echo", text)
			if err != nil || got != text {
				t.Fatalf("echo: %#v %v", got, err)
			}
			// dirac-self-ping, as Marathon runs it: port/System/Service.
			bin := selfPing(t)
			cmd := exec.CommandContext(t.Context(), bin, "-cert", d.Host.CertFile, "-key", d.Host.KeyFile, "-ca-dir", d.PKI.CADir(), fmt.Sprintf("%d/%s", s.Port, s.Name))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("dirac-self-ping: %v: %s", err, out)
			}
			// The pinger, as Consul calls it.
			al, err := server.ParseAllowList(fmt.Sprintf("localhost:%[1]d,127.0.0.1:%[1]d,[::1]:%[1]d", s.Port)) // localhost is loopback: address entries admit it
			if err != nil {
				t.Fatal(err)
			}
			h, err := server.NewHandler(server.Config{Client: c, Allow: al})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(h)
			defer ts.Close()
			resp, err := http.Get(ts.URL + "/ping?" + url.Values{"host": {"localhost"}, "port": {strconv.Itoa(s.Port)}, "service": {s.Name}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"`+s.Name+`"`) {
				t.Fatalf("pinger: %d %s", resp.StatusCode, body)
			}
		})
	}
}

var (
	selfPingOnce sync.Once
	selfPingBin  string
	selfPingErr  error
)

// selfPing builds dirac-self-ping once, into the package's scratch dir.
func selfPing(t testing.TB) string {
	t.Helper()
	selfPingOnce.Do(func() {
		root, err := hostimages.RepoRoot()
		if err != nil {
			selfPingErr = err
			return
		}
		bin := filepath.Join(scratch, "dirac-self-ping")
		cmd := exec.Command("go", "build", "-o", bin, "./images/lhcbdirac/dirac-self-ping")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			selfPingErr = fmt.Errorf("go build: %v %s", err, out)
			return
		}
		selfPingBin = bin
	})
	if selfPingErr != nil {
		t.Fatal(selfPingErr)
	}
	return selfPingBin
}

// rpcScript is DIRAC's own client: ping, then echo each argument.
const rpcScript = `
import json, sys
from DIRAC.Core.Base.Script import Script
Script.parseCommandLine(ignoreErrors=True)
from DIRAC.Core.DISET.RPCClient import RPCClient
url = sys.argv[1]
out = {}
r = RPCClient(url).ping()
out["ping"] = {"OK": r["OK"], "Message": r.get("Message"), "keys": list(r["Value"]) if r["OK"] else None,
               "types": {k: type(v).__name__ for k, v in r["Value"].items()} if r["OK"] else None,
               "cpu": {k: type(v).__name__ for k, v in r["Value"]["cpu times"].items()} if r["OK"] else None,
               "load": r["Value"]["load"] if r["OK"] else None}
out["echo"] = []
for a in sys.argv[2:]:
    r = RPCClient(url).echo(a)
    out["echo"].append([r["OK"], r.get("Value"), r.get("Message")])
print(json.dumps(out))
`

// TestDIRACClientCallsTheTestServer: DIRAC's RPC client (M2Crypto, its
// own TLS and DIPS) pings and calls the project's test server, in JSON
// and in DEncode.
func TestDIRACClientCallsTheTestServer(t *testing.T) {
	d := newDIRAC(t, clientCfg)
	srv, err := dipstest.Start(dipstest.Options{HostCert: d.Host.CertFile, HostKey: d.Host.KeyFile, CADir: d.PKI.CADir(), Services: []string{"Test/Echo"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, useJSON := range []string{"Yes", "No"} {
		srv.SetJSON(useJSON == "Yes")
		var got struct {
			Ping struct {
				OK      bool
				Message *string
				Keys    []string
			}
			Echo [][]any
		}
		cmd := d.Cmd(t.Context(), "python", "-c", rpcScript, srv.URL("localhost", "Test/Echo"), "hello", "ünïcode")
		cmd.Env = append(cmd.Env, "DIRAC_USE_JSON_ENCODE="+useJSON)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("DIRAC's client: %v", err)
		}
		if err := json.Unmarshal(lastLine(b), &got); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if !got.Ping.OK || strings.Join(got.Ping.Keys, ",") != "version,time,host uptime,service start time,service uptime,load,name,URL,cpu times" {
			t.Errorf("JSON=%s: DIRAC's ping of the test server: %+v", useJSON, got.Ping)
		}
		if len(got.Echo) != 2 || got.Echo[0][0] != true || got.Echo[0][1] != "hello" || got.Echo[1][1] != "ünïcode" {
			t.Errorf("JSON=%s: echo %v", useJSON, got.Echo)
		}
	}
	if srv.Calls() < 6 {
		t.Errorf("the test server saw %d calls", srv.Calls())
	}
}

func lastLine(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return []byte(lines[len(lines)-1])
}

var pyFloat = regexp.MustCompile(`^-?[0-9]+\.[0-9]+(e[-+][0-9]+)?$`)

// TestTestServerPingReplyIsDIRACs: DIRAC's own client sees the same keys,
// in the same order, with the same types, from the test server as from a
// real dirac-service — the load as three Python floats, the cpu times as
// os.times() floats.
func TestTestServerPingReplyIsDIRACs(t *testing.T) {
	d, s := startService(t, "RequestManagement/ReqProxy")
	srv, err := dipstest.Start(dipstest.Options{HostCert: d.Host.CertFile, HostKey: d.Host.KeyFile, CADir: d.PKI.CADir(), Services: []string{s.Name}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	type view struct {
		Ping struct {
			OK    bool
			Keys  []string
			Types map[string]string
			CPU   map[string]string
			Load  string
		}
	}
	see := func(url string) view {
		cmd := d.Cmd(t.Context(), "python", "-c", rpcScript, url)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("DIRAC's client on %s: %v", url, err)
		}
		var v view
		if err := json.Unmarshal(lastLine(b), &v); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return v
	}
	real, test := see(s.URL()), see(srv.URL("localhost", s.Name))
	if !real.Ping.OK || !test.Ping.OK {
		t.Fatalf("real %+v\ntest %+v", real, test)
	}
	if strings.Join(real.Ping.Keys, ",") != strings.Join(test.Ping.Keys, ",") {
		t.Errorf("keys: DIRAC %v, test server %v", real.Ping.Keys, test.Ping.Keys)
	}
	for k, typ := range real.Ping.Types {
		if test.Ping.Types[k] != typ {
			t.Errorf("%s: DIRAC gives a %s, the test server a %s", k, typ, test.Ping.Types[k])
		}
	}
	for k, typ := range real.Ping.CPU {
		if test.Ping.CPU[k] != typ {
			t.Errorf("cpu times %s: DIRAC gives a %s, the test server a %s", k, typ, test.Ping.CPU[k])
		}
	}
	for _, load := range []string{real.Ping.Load, test.Ping.Load} {
		f := strings.Fields(load)
		if len(f) != 3 || !pyFloat.MatchString(f[0]) || !pyFloat.MatchString(f[1]) || !pyFloat.MatchString(f[2]) {
			t.Errorf("load %q is not three Python floats", load)
		}
	}
}
