//go:build !linux

package dips

import "net"

// quickAck is Linux-only (TCP_QUICKACK); elsewhere the connection is as is.
func quickAck(c net.Conn) net.Conn { return c }
