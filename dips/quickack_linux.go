package dips

import (
	"net"
	"syscall"
)

// quickAck makes the connection acknowledge what it receives at once.
//
// A DIRAC service writes a reply in several small segments without
// TCP_NODELAY, so Nagle holds each segment after the first until the
// previous one is acknowledged — and a Linux receiver delays that
// acknowledgement up to 40 ms while it has nothing to send. Every ping to
// a real DIRAC service took ~48 ms, DIRAC's own client included. With
// TCP_QUICKACK, which the kernel clears again as it goes, set before each
// read, the client acknowledges at once and the reply arrives in a few
// milliseconds. DIRAC cannot be changed; the client can.
func quickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{TCPConn: tc, raw: raw}
}

type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *quickAckConn) set() {
	c.raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

func (c *quickAckConn) Read(b []byte) (int, error) {
	c.set()
	n, err := c.TCPConn.Read(b)
	c.set()
	return n, err
}
