// Package dipstest provides what DIPS tests need and that no real DIRAC
// server can give here: a DIPS test server that answers ping like DIRAC's
// RequestHandler, with switchable failure modes, over the test CA of
// dips/pki.
package dipstest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
)

// Failure selects a misbehaviour of the test server.
type Failure int32

const (
	// Healthy answers every call as DIRAC does.
	Healthy Failure = iota
	// RejectProposal answers the proposal with S_ERROR(1111, "Unauthorized query").
	RejectProposal
	// ServiceError answers the call with an S_ERROR (as an exception in the handler would).
	ServiceError
	// Slow waits Delay before answering the call.
	Slow
	// CloseMidFrame sends half a result frame and closes.
	CloseMidFrame
)

// Options configure a Server.
type Options struct {
	// Addr to listen on; default 127.0.0.1:0 (loopback only).
	Addr string
	// Plain serves dip (no TLS); otherwise HostCert/HostKey/CADir are needed.
	Plain             bool
	HostCert, HostKey string
	CADir             string
	// Services this server answers for (System/Component).
	Services []string
	// Version is the DIRAC version it claims (default 9.0.0).
	Version string
	// MaxTLSVersion caps TLS (tls.VersionTLS12 to test 1.2); 0 = 1.3.
	MaxTLSVersion uint16
}

// Server is a DIPS server on loopback for tests.
type Server struct {
	opts     Options
	ln       net.Listener
	started  time.Time
	failure  atomic.Int32
	json     atomic.Bool
	delay    atomic.Int64
	calls    atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	peers    []string // DNs of authenticated peers, in order
	closed   chan struct{}
	connsMu  sync.Mutex
	conns    map[net.Conn]struct{}
	hostname string
}

// Start listens and serves in the background until Close.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Version == "" {
		opts.Version = "9.0.0"
	}
	s := &Server{opts: opts, started: time.Now().UTC(), closed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.hostname, _ = os.Hostname()
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	if !opts.Plain {
		cfg, err := s.tlsConfig()
		if err != nil {
			ln.Close()
			return nil, err
		}
		ln = tls.NewListener(ln, cfg)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *Server) tlsConfig() (*tls.Config, error) {
	cert, err := dips.LoadCertificate(s.opts.HostCert, s.opts.HostKey)
	if err != nil {
		return nil, err
	}
	roots, err := dips.LoadCADir(s.opts.CADir)
	if err != nil {
		return nil, err
	}
	max := s.opts.MaxTLSVersion
	if max == 0 {
		max = tls.VersionTLS13
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   max,
		// DIRAC requires a client certificate and allows proxies, which Go's
		// own verification refuses: take any certificate, verify it here.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			chain := make([]*x509.Certificate, 0, len(raw))
			for _, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				chain = append(chain, c)
			}
			peer, err := dips.VerifyChain(chain, roots, time.Now())
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.peers = append(s.peers, peer.DN)
			s.mu.Unlock()
			return nil
		},
		SessionTicketsDisabled: true,
	}, nil
}

// Addr is host:port of the listener.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the listening port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// URL of one of its services, with the given host name (the one in the
// server certificate).
func (s *Server) URL(host, service string) string {
	scheme := "dips"
	if s.opts.Plain {
		scheme = "dip"
	}
	return fmt.Sprintf("%s://%s/%s", scheme, net.JoinHostPort(host, strconv.Itoa(s.Port())), service)
}

// SetFailure switches the failure mode.
func (s *Server) SetFailure(f Failure) { s.failure.Store(int32(f)) }

// SetJSON makes replies JSON, as DIRAC v9 sends them.
func (s *Server) SetJSON(on bool) { s.json.Store(on) }

// SetDelay sets the answer delay of the Slow mode.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Calls counts calls answered.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Peers returns the DNs of authenticated peers.
func (s *Server) Peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.peers...)
}

// Close stops the server and waits for its connections; closing twice is
// harmless.
func (s *Server) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	err := s.ln.Close()
	s.connsMu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.connsMu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.connsMu.Lock()
		s.conns[c] = struct{}{}
		s.connsMu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.connsMu.Lock()
				delete(s.conns, c)
				s.connsMu.Unlock()
				c.Close()
			}()
			s.handle(c)
		}()
	}
}

// handle runs one action on one connection, as DIRAC's Service does.
func (s *Server) handle(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second)) // DIRAC's handshake limit
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return
		}
	}
	c.SetDeadline(time.Now().Add(600 * time.Second))
	dc := dips.NewConn(c, s.json.Load())
	msg, err := dc.Receive(dips.ProposalLimit)
	if err != nil {
		dc.Send(dips.Error(0, "Invalid action proposal"))
		return
	}
	svc, action, method, errReply := s.checkProposal(msg)
	if errReply != nil {
		errReply.Set("CallStack", []any{`  File "dipstest/server.go", in handle` + "\n"})
		dc.Send(errReply)
		return
	}
	if Failure(s.failure.Load()) == RejectProposal {
		dc.Send(dips.Error(dips.ENOAUTH, "Unauthorized query"))
		return
	}
	if err := dc.Send(dips.OK(nil)); err != nil {
		return
	}
	argMsg, err := dc.Receive(0)
	if err != nil {
		return
	}
	r, err := dips.ParseResult(argMsg)
	if err != nil || !r.OK {
		return
	}
	args, _ := asSeq(r.Value)
	s.calls.Add(1)
	reply := s.call(svc, action, method, args)
	switch Failure(s.failure.Load()) {
	case ServiceError:
		reply = dips.NewDict("OK", false, "Errno", int64(0), "Message", "Server error while serving "+method+": injected failure")
	case Slow:
		select {
		case <-time.After(time.Duration(s.delay.Load())):
		case <-s.closed:
			return
		}
	case CloseMidFrame:
		b, _ := dips.Encode(reply)
		fmt.Fprintf(c, "%d:%s", len(b), b[:len(b)/2])
		return
	}
	dc.Send(reply)
}

// checkProposal validates a proposal as Service._receiveAndCheckProposal
// does, in the same order, with the same messages.
func (s *Server) checkProposal(msg any) (svc, action, method string, errReply *dips.Dict) {
	r, err := dips.ParseResult(msg)
	if err != nil || !r.OK {
		return "", "", "", dips.Error(0, "Invalid action proposal")
	}
	p, ok := asSeq(r.Value)
	if !ok || len(p) < 3 || len(p) > 4 {
		return "", "", "", dips.Error(0, "Invalid action proposal")
	}
	tuple, ok1 := asSeq(p[0])
	act, ok2 := asSeq(p[1])
	if !ok1 || !ok2 || len(tuple) < 1 || len(act) != 2 {
		return "", "", "", dips.Error(0, "Invalid action proposal")
	}
	svc, _ = tuple[0].(string)
	action, _ = act[0].(string)
	method, _ = act[1].(string)
	known := false
	for _, name := range s.opts.Services {
		known = known || name == svc
	}
	if !known {
		return "", "", "", dips.Error(0, svc+" is not up in this server")
	}
	switch action {
	case "RPC", "FileTransfer", "Message", "Connection":
	default:
		return "", "", "", dips.Error(0, action+" is not a known action type")
	}
	// A [DN, group] pair is honoured only from trusted hosts; this server
	// has none, so it fails authorization, even for ping.
	if _, isString := p[2].(string); !isString {
		return "", "", "", dips.Error(dips.ENOAUTH, "Unauthorized query")
	}
	return svc, action, method, nil
}

func (s *Server) call(svc, action, method string, args []any) *dips.Dict {
	if action != "RPC" {
		return dips.NewDict("OK", false, "Errno", int64(0), "Message", "Unknown action "+action)
	}
	switch method {
	case "ping":
		if len(args) != 0 {
			return dips.NewDict("OK", false, "Errno", int64(0), "Message", "Server error while serving ping: export_ping() takes no arguments")
		}
		return dips.OK(s.pingInfo(svc))
	case "echo":
		if len(args) != 1 {
			return dips.NewDict("OK", false, "Errno", int64(0), "Message", "Function echo expects 1 argument")
		}
		return dips.OK(args[0])
	}
	return dips.NewDict("OK", false, "Errno", int64(0), "Message", "Unknown method "+method)
}

// pingInfo is RequestHandler.export_ping's Value (DIRAC v9.1): its keys in
// its order, each value in the form DIRAC gives it — os.times() for the
// cpu times (clock ticks in seconds; the real elapsed time counts from
// boot), os.getloadavg() joined as Python prints floats.
func (s *Server) pingInfo(svc string) *dips.Dict {
	now := time.Now().UTC().Truncate(time.Microsecond)
	user, sys, cuser, csys, elapsed := osTimes()
	scheme := "dips"
	if s.opts.Plain {
		scheme = "dip"
	}
	return dips.NewDict(
		"version", s.opts.Version,
		"time", now,
		"host uptime", hostUptime(),
		"service start time", s.started.Truncate(time.Microsecond),
		"service uptime", int64(now.Sub(s.started).Seconds()),
		"load", loadAvg(),
		"name", svc,
		"URL", fmt.Sprintf("%s://%s/%s", scheme, s.Addr(), svc),
		"cpu times", dips.NewDict(
			"user time", user,
			"system time", sys,
			"children user time", cuser,
			"children system time", csys,
			"elapsed real time", elapsed,
		),
	)
}

// clockTick is Linux's USER_HZ, the unit of times(2).
const clockTick = 100

// osTimes is Python's os.times() on Linux: times(2), in seconds.
func osTimes() (user, sys, cuser, csys, elapsed float64) {
	var t syscall.Tms
	ticks, err := syscall.Times(&t)
	if err != nil {
		return
	}
	sec := func(v int64) float64 { return float64(v) / clockTick }
	return sec(t.Utime), sec(t.Stime), sec(t.Cutime), sec(t.Cstime), sec(int64(ticks))
}

func hostUptime() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return si.Uptime
}

// loadAvg is " ".join(str(x) for x in os.getloadavg()): the kernel's
// fixed-point averages (1/65536ths), printed as Python prints floats.
func loadAvg() string {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return "0.0 0.0 0.0"
	}
	out := make([]string, 3)
	for i, l := range si.Loads {
		out[i] = dips.FormatFloat(float64(l) / 65536)
	}
	return strings.Join(out, " ")
}

func asSeq(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case dips.Tuple:
		return x, true
	}
	return nil, false
}
