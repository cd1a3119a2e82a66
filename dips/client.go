package dips

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults from DIRAC's DISET.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultCallTimeout    = 600 * time.Second
	ClientVersion         = "lhcbdirac-pipeline"
)

// URL is a parsed dips:// (TLS) or dip:// (plain) service address.
type URL struct {
	Scheme  string
	Host    string
	Port    int
	Service string // System/Component
}

func (u URL) String() string {
	return fmt.Sprintf("%s://%s/%s", u.Scheme, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)), u.Service)
}

// Addr is host:port.
func (u URL) Addr() string { return net.JoinHostPort(u.Host, strconv.Itoa(u.Port)) }

// ParseURL parses dips://host:port/System/Component.
func ParseURL(raw string) (URL, error) {
	p, err := url.Parse(raw)
	if err != nil {
		return URL{}, fmt.Errorf("DIPS URL %q: %w", raw, err)
	}
	if p.Scheme != "dips" && p.Scheme != "dip" {
		return URL{}, fmt.Errorf("DIPS URL %q: scheme must be dips or dip", raw)
	}
	if p.Hostname() == "" {
		return URL{}, fmt.Errorf("DIPS URL %q: no host", raw)
	}
	port, err := strconv.Atoi(p.Port())
	if err != nil || port < 1 || port > 65535 {
		return URL{}, fmt.Errorf("DIPS URL %q: port must be 1-65535", raw)
	}
	svc := strings.TrimLeft(p.Path, "/")
	if sys, comp, ok := strings.Cut(svc, "/"); !ok || sys == "" || comp == "" || strings.Contains(comp, "/") {
		return URL{}, fmt.Errorf("DIPS URL %q: path must be /System/Component", raw)
	}
	return URL{Scheme: p.Scheme, Host: p.Hostname(), Port: port, Service: svc}, nil
}

// Client makes DIPS calls. The zero value speaks plain dip; dips needs a
// Certificate and, unless SkipCACheck, RootCAs.
type Client struct {
	// Certificate is the client's chain: a host certificate or a proxy.
	Certificate *tls.Certificate
	// HostCredentials sends extraCredentials "hosts", as DIRAC clients do
	// when they authenticate with the host certificate.
	HostCredentials bool
	// RootCAs verifies the server (LoadCADir).
	RootCAs *x509.CertPool
	// SkipCACheck skips chain verification but still checks that the server
	// certificate matches the host, as DIRAC's skipCACheck does.
	SkipCACheck bool
	// Setup and VO go in the proposal; DIRAC servers do not check them.
	Setup, VO string
	// ConnectTimeout bounds TCP connect plus TLS handshake (default 10 s).
	ConnectTimeout time.Duration
	// CallTimeout bounds the exchange after the handshake (default 600 s).
	CallTimeout time.Duration
	// ServerName, when set, is the name the server certificate must carry
	// (and the SNI) instead of the URL's host: a self-ping dials localhost
	// but the service presents the host's own certificate.
	ServerName string
	// JSON sends JSON instead of DEncode (as DIRAC v9 does). Replies are
	// read in either form regardless.
	JSON bool
	// MaxReplySize bounds a reply's frame (default DefaultMaxReplySize): a
	// larger one is refused before it is read. A ping needs kilobytes.
	MaxReplySize int
}

// DefaultMaxReplySize is the reply limit when the client sets none.
const DefaultMaxReplySize = 16 << 20

// Ping calls the service's ping method and returns its Value dict.
func (c *Client) Ping(ctx context.Context, rawURL string) (*Dict, error) {
	v, err := c.Call(ctx, rawURL, "ping")
	if err != nil {
		return nil, err
	}
	d, ok := v.(*Dict)
	if !ok {
		return nil, &ProtocolError{Stage: "result", Err: fmt.Errorf("ping Value is a %s, not a dict", typeName(v))}
	}
	return d, nil
}

// Call makes one RPC: proposal, acknowledgement, arguments, result.
func (c *Client) Call(ctx context.Context, rawURL, method string, args ...any) (any, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := c.dial(ctx, u)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	callTimeout := c.CallTimeout
	if callTimeout <= 0 {
		callTimeout = DefaultCallTimeout
	}
	deadline := time.Now().Add(callTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	dc := NewConn(conn, c.JSON)
	dc.Deadline = deadline
	dc.Limit = c.MaxReplySize
	if dc.Limit <= 0 {
		dc.Limit = DefaultMaxReplySize
	}
	extra := ""
	if c.HostCredentials {
		extra = "hosts"
	}
	setup, vo := c.Setup, c.VO
	if setup == "" {
		setup = "None" // DIRAC v9 sends "None": setups are gone
	}
	if vo == "" {
		vo = "unknown"
	}
	proposal := OK([]any{[]any{u.Service, setup, vo}, []any{"RPC", method}, extra, ClientVersion})
	payload, err := dc.encode(proposal)
	if err != nil {
		return nil, err
	}
	if len(payload) >= ProposalLimit {
		return nil, fmt.Errorf("dips: proposal of %d bytes exceeds DIRAC's %d-byte limit (service name too long?)", len(payload), ProposalLimit)
	}
	if err := WriteFrame(conn, payload); err != nil {
		return nil, c.rejectedOr(ctx, u, conn, c.ioError(ctx, u, "proposal", err))
	}
	if _, err := c.expect(ctx, u, dc, "proposal"); err != nil {
		return nil, c.rejectedOr(ctx, u, conn, err)
	}
	if args == nil {
		args = []any{}
	}
	if err := dc.Send(OK(args)); err != nil {
		return nil, c.ioError(ctx, u, "arguments", err)
	}
	return c.expect(ctx, u, dc, "call")
}

func (c *Client) expect(ctx context.Context, u URL, dc *Conn, stage string) (any, error) {
	msg, err := dc.Receive(dc.Limit)
	if err != nil {
		return nil, c.ioError(ctx, u, stage, err)
	}
	r, err := ParseResult(msg)
	if err != nil {
		return nil, &ProtocolError{Stage: stage, Err: err}
	}
	if !r.OK {
		return nil, &RemoteError{Stage: stage, Errno: r.Errno, Message: r.Message}
	}
	return r.Value, nil
}

// rejectedOr tells a TLS 1.3 certificate rejection from a protocol failure.
// With TLS 1.3 the server checks our certificate after our side of the
// handshake is done: it answers the proposal with an alert and closes, so
// the first write or read fails — with the alert if it has arrived, or with
// a reset or end of stream if the close overtook it. Before any DIPS reply,
// a DIRAC server never closes without a message, so those mean rejection.
func (c *Client) rejectedOr(ctx context.Context, u URL, conn net.Conn, err error) error {
	var pe *ProtocolError
	tc, isTLS := conn.(*tls.Conn)
	if !errors.As(err, &pe) || !isTLS || tc.ConnectionState().Version != tls.VersionTLS13 || ctx.Err() != nil {
		return err
	}
	// The alert may be waiting in the socket: read it for a precise reason.
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, rerr := conn.Read(make([]byte, 1)); rerr != nil && isTLSRejection(rerr) {
		return &TLSError{Addr: u.Addr(), Err: rerr}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return &TLSError{Addr: u.Addr(), Err: fmt.Errorf("the server closed the connection right after the TLS 1.3 handshake, before any DIPS reply: it refused our certificate (%v)", pe.Err)}
	}
	return err
}

// ioError classifies a failure after the handshake.
func (c *Client) ioError(ctx context.Context, u URL, stage string, err error) error {
	// The socket deadline is the context's deadline when that is sooner, and
	// it can fire a moment before the context's own timer does.
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) && ctx.Err() == nil {
		return fmt.Errorf("dips: %s %s: %w", u, stage, context.DeadlineExceeded)
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("dips: %s %s: %w", u, stage, ctx.Err())
	case isTLSRejection(err):
		return &TLSError{Addr: u.Addr(), Err: err}
	case errors.Is(err, ErrDeadline):
		return fmt.Errorf("dips: %s %s: %w: %w", u, stage, context.DeadlineExceeded, err)
	case errors.Is(err, ErrDecode), errors.Is(err, ErrFrame):
		return &ProtocolError{Stage: stage, Err: err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &ProtocolError{Stage: stage, Err: fmt.Errorf("peer closed the connection: %w", err)}
	case isTimeout(err):
		return &ProtocolError{Stage: stage, Err: fmt.Errorf("no answer within the call timeout: %w", err)}
	default:
		return &ProtocolError{Stage: stage, Err: err}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) dial(ctx context.Context, u URL) (net.Conn, error) {
	timeout := c.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", u.Addr())
	if err != nil {
		return nil, &ConnectError{Addr: u.Addr(), Err: err}
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetKeepAlive(true) // as DIRAC does on both sides
	}
	raw = quickAck(raw)
	if u.Scheme == "dip" {
		return raw, nil
	}
	name := u.Host
	if c.ServerName != "" {
		name = c.ServerName
	}
	cfg, err := c.tlsConfig(name)
	if err != nil {
		raw.Close()
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(dctx); err != nil {
		raw.Close()
		if dctx.Err() != nil && ctx.Err() == nil {
			return nil, &TLSError{Addr: u.Addr(), Err: fmt.Errorf("handshake not done within %s: %w", timeout, err)}
		}
		return nil, &TLSError{Addr: u.Addr(), Err: err}
	}
	return tc, nil
}

func (c *Client) tlsConfig(host string) (*tls.Config, error) {
	if c.Certificate == nil {
		return nil, errors.New("dips: a dips:// call needs a client certificate or proxy (Client.Certificate)")
	}
	if c.RootCAs == nil && !c.SkipCACheck {
		return nil, errors.New("dips: no CA certificates to verify the server (Client.RootCAs), and SkipCACheck is off")
	}
	cert := c.Certificate
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: host, // SNI, and the name the certificate must match
		RootCAs:    c.RootCAs,
		// DIRAC's servers send no CA names, so always offer the chain.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
	}
	if c.SkipCACheck {
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			return cs.PeerCertificates[0].VerifyHostname(host)
		}
	}
	return cfg, nil
}

// Conn reads and writes DIPS messages on one connection, answering
// keep-alive pings and swallowing pongs as DIRAC's transports do.
type Conn struct {
	c    net.Conn
	r    *bufio.Reader
	json bool
	// Deadline, when set, bounds decoding too: the socket's deadline stops
	// at the socket, and a hostile reply must not cost more than it.
	Deadline time.Time
	// Limit is the frame size Receive callers use (0: MaxFrameLen).
	Limit int
}

// NewConn wraps a connection; json selects the encoding of what is sent.
func NewConn(c net.Conn, json bool) *Conn {
	return &Conn{c: c, r: bufio.NewReaderSize(c, 16384), json: json}
}

func (dc *Conn) encode(v any) ([]byte, error) {
	if dc.json {
		return EncodeJSON(v)
	}
	return Encode(v)
}

// Send writes one message.
func (dc *Conn) Send(v any) error {
	b, err := dc.encode(v)
	if err != nil {
		return err
	}
	return WriteFrame(dc.c, b)
}

// Receive reads the next data message (limit bounds its size; 0 for none),
// handling keep-alives on the way.
func (dc *Conn) Receive(limit int) (any, error) {
	for {
		payload, ka, err := readFrame(dc.r, limit)
		if err != nil {
			return nil, err
		}
		v, err := DecodeMixedBefore(payload, dc.Deadline)
		if err != nil {
			return nil, err
		}
		if !ka {
			return v, nil
		}
		if err := dc.keepAlive(v); err != nil {
			return nil, err
		}
	}
}

// keepAlive answers a PING with a PONG carrying the same id.
func (dc *Conn) keepAlive(v any) error {
	r, err := ParseResult(v)
	if err != nil {
		return err
	}
	d, ok := r.Value.(*Dict)
	if !ok {
		return fmt.Errorf("%w: keep-alive Value is a %s", ErrDecode, typeName(r.Value))
	}
	if ping, _ := d.Get("kaping"); ping != true {
		return nil // a PONG: nothing to do
	}
	id, _ := d.Get("id")
	b, err := dc.encode(OK(NewDict("id", id, "kaping", false)))
	if err != nil {
		return err
	}
	return writeKeepAlive(dc.c, b)
}

// SendKeepAlive sends a keep-alive PING with the given id.
func (dc *Conn) SendKeepAlive(id string) error {
	b, err := dc.encode(OK(NewDict("id", id, "kaping", true)))
	if err != nil {
		return err
	}
	return writeKeepAlive(dc.c, b)
}
