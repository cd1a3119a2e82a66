package dips

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// ConnectError: the TCP connection could not be made.
type ConnectError struct {
	Addr string
	Err  error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("dips: cannot connect to %s: %v", e.Addr, e.Err)
}
func (e *ConnectError) Unwrap() error { return e.Err }

// TLSError: the TLS handshake failed, or the server rejected our certificate
// (with TLS 1.3 that arrives as an alert after the handshake, on first read).
type TLSError struct {
	Addr string
	Err  error
}

func (e *TLSError) Error() string { return fmt.Sprintf("dips: TLS with %s refused: %v", e.Addr, e.Err) }
func (e *TLSError) Unwrap() error { return e.Err }

// ProtocolError: the peer broke the protocol (bad frame, undecodable data,
// wrong message shape, closed mid-exchange) at the given stage.
type ProtocolError struct {
	Stage string // "proposal", "arguments", "result"
	Err   error
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("dips: protocol error at %s: %v", e.Stage, e.Err)
}
func (e *ProtocolError) Unwrap() error { return e.Err }

// RemoteError is an S_ERROR answered by the service.
type RemoteError struct {
	Stage   string // "proposal" (rejected before the call) or "call"
	Errno   int
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("dips: service answered S_ERROR at %s (Errno %d): %s", e.Stage, e.Errno, e.Message)
}

// Unauthorized reports DIRAC's ENOAUTH (1111).
func (e *RemoteError) Unauthorized() bool { return e.Errno == ENOAUTH }

// isTLSRejection tells a TLS alert or certificate failure from other I/O
// errors, so a read failure right after a TLS 1.3 handshake is reported as
// the certificate rejection it is.
func isTLSRejection(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return true
	}
	var ae tls.AlertError
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &ae) || errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}
