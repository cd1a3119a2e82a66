package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/server"
)

// fakeDNS answers names from a table; a name with several answers gives
// them in turn (the last one from then on), as a record an attacker
// changes between two lookups does.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][][]string
	lookups map[string]int
}

func newDNS(answers map[string][][]string) *fakeDNS {
	return &fakeDNS{answers: answers, lookups: map[string]int{}}
}

func (d *fakeDNS) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if network != "ip" {
		return nil, fmt.Errorf("network %q", network)
	}
	seq, ok := d.answers[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	n := d.lookups[host]
	d.lookups[host]++
	var out []netip.Addr
	for _, a := range seq[min(n, len(seq)-1)] {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func (d *fakeDNS) count(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups[host]
}

// dialRecorder is a DIPS client that dials nothing: it records what it was
// asked to dial, and fails as an unreachable host does.
type dialRecorder struct {
	mu    sync.Mutex
	calls []string // "url serverName"
}

func (r *dialRecorder) Ping(ctx context.Context, u string) (*dips.Dict, error) {
	return r.PingNamed(ctx, u, "")
}

func (r *dialRecorder) PingNamed(_ context.Context, u, serverName string) (*dips.Dict, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, strings.TrimSpace(u+" "+serverName))
	return nil, &dips.ConnectError{Addr: u, Err: errors.New("no route (recorded, not dialled)")}
}

func (r *dialRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func pingURL(base, host string, port int) string {
	return base + "/ping?" + url.Values{"host": {host}, "port": {strconv.Itoa(port)}, "service": {svc}}.Encode()
}

// A name under an allowed domain is resolved once, and every address it
// resolves to is checked before anything is dialled: loopback, link-local
// (with the cloud metadata address), unspecified, multicast and their
// IPv6, IPv4-mapped and NAT64 forms are refused with 403 naming the
// address, also when mixed with a good one. Private addresses (where
// DIRAC services live) are dialled — the address itself, with the name
// kept for the certificate.
func TestResolvedAddressesAreCheckedBeforeDialling(t *testing.T) {
	e := setup(t)
	dns := newDNS(map[string][][]string{
		"loop4.cern.ch":   {{"127.0.0.1"}},
		"loop8.cern.ch":   {{"127.8.9.10"}},
		"loop6.cern.ch":   {{"::1"}},
		"mapped.cern.ch":  {{"::ffff:127.0.0.1"}},
		"meta.cern.ch":    {{"169.254.169.254"}},
		"ll4.cern.ch":     {{"169.254.10.1"}},
		"ll6.cern.ch":     {{"fe80::1"}},
		"zero4.cern.ch":   {{"0.0.0.0"}},
		"zero6.cern.ch":   {{"::"}},
		"mcast.cern.ch":   {{"224.0.0.251"}},
		"mcast6.cern.ch":  {{"ff02::1"}},
		"nat64.cern.ch":   {{"64:ff9b::a9fe:a9fe"}},
		"bcast.cern.ch":   {{"255.255.255.255"}},
		"mixed.cern.ch":   {{"10.1.2.3", "127.0.0.1"}},
		"mixed6.cern.ch":  {{"2001:db8::5", "::1"}},
		"good.cern.ch":    {{"10.1.2.3"}},
		"public.cern.ch":  {{"188.184.21.108", "2001:1458:201:e4::100:6"}},
		"nothing.cern.ch": {{}},
	})
	rec := &dialRecorder{}
	al, err := server.ParseAllowList("*.cern.ch:1-65535")
	if err != nil {
		t.Fatal(err)
	}
	ts := handler(t, e, server.Config{Client: rec, Allow: al, Resolver: dns})
	for host, want := range map[string]string{
		"loop4.cern.ch": "127.0.0.1 (loopback)", "loop8.cern.ch": "127.8.9.10 (loopback)", "loop6.cern.ch": "::1 (loopback)",
		"mapped.cern.ch": "127.0.0.1 (loopback)", "meta.cern.ch": "169.254.169.254 (cloud metadata)", "ll4.cern.ch": "169.254.10.1 (link-local)",
		"ll6.cern.ch": "fe80::1 (link-local)", "zero4.cern.ch": "0.0.0.0 (unspecified)", "zero6.cern.ch": ":: (unspecified)",
		"mcast.cern.ch": "224.0.0.251 (multicast)", "mcast6.cern.ch": "ff02::1 (multicast)", "nat64.cern.ch": "64:ff9b::a9fe:a9fe (NAT64 form of a cloud metadata address)",
		"bcast.cern.ch": "255.255.255.255 (reserved or broadcast)", "mixed.cern.ch": "127.0.0.1 (loopback)", "mixed6.cern.ch": "::1 (loopback)",
	} {
		code, body := get(t, pingURL(ts.URL, host, e.srv.Port()))
		if code != 403 || !strings.Contains(body, host+" resolves to "+want) {
			t.Errorf("%s: %d %s, want 403 naming %q", host, code, body, want)
		}
	}
	if got := rec.take(); len(got) > 0 {
		t.Fatalf("denied addresses were dialled: %q", got)
	}
	for host, dialled := range map[string][]string{
		"good.cern.ch":   {"dips://10.1.2.3:9197/" + svc + " good.cern.ch"},
		"public.cern.ch": {"dips://188.184.21.108:9197/" + svc + " public.cern.ch", "dips://[2001:1458:201:e4::100:6]:9197/" + svc + " public.cern.ch"},
	} {
		code, body := get(t, pingURL(ts.URL, host, 9197))
		if got := rec.take(); code != 418 || strings.Join(got, "\n") != strings.Join(dialled, "\n") {
			t.Errorf("%s: %d %s; dialled %q, want %q", host, code, body, got, dialled)
		}
	}
	for _, host := range []string{"nx.cern.ch", "nothing.cern.ch"} {
		code, body := get(t, pingURL(ts.URL, host, 9197))
		if code != 418 || !strings.Contains(body, `"kind":"resolve"`) || !strings.Contains(body, "resolving "+host) {
			t.Errorf("%s: %d %s, want 418 of kind resolve", host, code, body)
		}
	}
	if got := rec.take(); len(got) > 0 {
		t.Fatalf("unresolved names were dialled: %q", got)
	}
}

// A denied range opens only to an address entry at least as narrow as the
// range, for the port asked: 127.0.0.1:9197 admits loopback there, the
// link-local /16 admits link-local but not the metadata address, and
// 0.0.0.0/0 admits neither — for names and addresses alike.
func TestAddressEntriesAdmitDeniedRangesExplicitly(t *testing.T) {
	e := setup(t)
	dns := newDNS(map[string][][]string{
		"loop.cern.ch": {{"127.0.0.1"}}, "loop2.cern.ch": {{"127.0.0.2"}},
		"ll.cern.ch": {{"169.254.3.4"}}, "meta.cern.ch": {{"169.254.169.254"}},
	})
	for _, c := range []struct {
		allow, host string
		port        int
		dialled     bool
	}{
		{"*.cern.ch:9197,127.0.0.1:9197", "loop.cern.ch", 9197, true},
		{"*.cern.ch:9197,127.0.0.1:9197", "127.0.0.1", 9197, true},
		{"*.cern.ch,127.0.0.1:9198", "loop.cern.ch", 9197, false},
		{"*.cern.ch:9197,127.0.0.1:9197", "loop2.cern.ch", 9197, false},
		{"*.cern.ch,127.0.0.0/8", "loop2.cern.ch", 9197, true},
		{"*.cern.ch,169.254.0.0/16", "ll.cern.ch", 9197, true},
		{"*.cern.ch,169.254.0.0/16", "meta.cern.ch", 9197, false},
		{"*.cern.ch,169.254.169.254", "meta.cern.ch", 9197, true},
		{"*.cern.ch,0.0.0.0/0", "loop.cern.ch", 9197, false},
		{"0.0.0.0/0", "127.0.0.1", 9197, false},
		{"::/0", "::1", 9197, false},
		{"[::1]:9197", "::1", 9197, true},
	} {
		rec := &dialRecorder{}
		al, err := server.ParseAllowList(c.allow)
		if err != nil {
			t.Fatal(err)
		}
		ts := handler(t, e, server.Config{Client: rec, Allow: al, Resolver: dns})
		code, body := get(t, pingURL(ts.URL, c.host, c.port))
		got := rec.take()
		if (len(got) == 1) != c.dialled || (c.dialled && code != 418) || (!c.dialled && code != 403) {
			t.Errorf("PINGER_ALLOW=%s, host %s: %d %s, dialled %q; want dialled=%v", c.allow, c.host, code, body, got, c.dialled)
		}
	}
}

// DNS rebinding: the name resolves to an allowed address when checked and
// to the metadata address a moment later. The pinger resolves once per
// ping and dials the address it checked — reaching the real DIPS server,
// whose certificate is checked for the name (it carries no IP address), —
// and refuses the next ping once the record points elsewhere.
func TestResolvedOnceAndDialledAsResolved(t *testing.T) {
	dir := t.TempDir()
	pki, err := dipstest.NewPKI(dir, "Test CA")
	if err != nil {
		t.Fatal(err)
	}
	host, err := pki.Host("host", "dirac.cern.ch") // no IP address in the certificate
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dipstest.Start(dipstest.Options{HostCert: host.CertFile, HostKey: host.KeyFile, CADir: pki.CADir(), Services: []string{svc}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := env{pki, host, srv}
	dns := newDNS(map[string][][]string{
		"dirac.cern.ch": {{"127.0.0.1"}, {"169.254.169.254"}},
		"other.cern.ch": {{"127.0.0.1"}},
	})
	al, err := server.ParseAllowList(fmt.Sprintf("*.cern.ch:%[1]d,127.0.0.1:%[1]d", srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	ts := handler(t, e, server.Config{Allow: al, Resolver: dns})
	code, body := get(t, pingURL(ts.URL, "dirac.cern.ch", srv.Port()))
	if code != 200 || !strings.Contains(body, `"name":"`+svc+`"`) || dns.count("dirac.cern.ch") != 1 || srv.Calls() != 1 {
		t.Fatalf("first ping: %d %s (%d lookups, %d calls), want 200 after one lookup", code, body, dns.count("dirac.cern.ch"), srv.Calls())
	}
	code, body = get(t, pingURL(ts.URL, "dirac.cern.ch", srv.Port()))
	if code != 403 || !strings.Contains(body, "169.254.169.254") || srv.Calls() != 1 {
		t.Fatalf("after the record changed: %d %s (%d calls)", code, body, srv.Calls())
	}
	// The certificate is checked for the name asked for, not the address.
	code, body = get(t, pingURL(ts.URL, "other.cern.ch", srv.Port()))
	if code != 418 || !strings.Contains(body, `"kind":"tls"`) || !strings.Contains(body, "other.cern.ch (127.0.0.1)") {
		t.Fatalf("a name the certificate does not carry: %d %s, want a TLS failure naming it", code, body)
	}
}

// With the system's resolver: PINGER_ALLOW=localhost:PORT names a host
// that resolves to loopback, so it is refused unless an address entry
// admits loopback too (before, the name was matched and whatever it
// resolved to dialled).
func TestANameThatResolvesToLoopbackIsRefused(t *testing.T) {
	e := setup(t)
	al, err := server.ParseAllowList(fmt.Sprintf("localhost:%d", e.srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	ts := handler(t, e, server.Config{Allow: al})
	code, body := get(t, pingURL(ts.URL, "localhost", e.srv.Port()))
	if code != 403 || !strings.Contains(body, "loopback") || e.srv.Calls() != 0 {
		t.Fatalf("localhost with a name entry only: %d %s (%d calls reached the DIPS server)", code, body, e.srv.Calls())
	}
}

// A client the handler cannot give the host name to is refused at start.
func TestTheClientMustTakeAServerName(t *testing.T) {
	al, _ := server.ParseAllowList("*.cern.ch")
	if _, err := server.NewHandler(server.Config{Client: plainPinger{}, Allow: al}); err == nil || !strings.Contains(err.Error(), "NamedPinger") {
		t.Fatalf("got %v", err)
	}
}

type plainPinger struct{}

func (plainPinger) Ping(context.Context, string) (*dips.Dict, error) { return nil, errors.New("no") }
