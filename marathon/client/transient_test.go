package client

import (
	"net"
	"net/http"
	"testing"
)

// A connection cut while the answer's header was being written (a proxy
// or a Marathon going away mid-reply) is transient: it is retried, as a
// reset is — the deploy's rollback waits for Marathon instead of giving up.
func TestAnAnswerCutMidHeaderIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			conn.Read(buf)
			conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type"))
			conn.Close()
		}
	}()
	_, err = http.Get("http://" + l.Addr().String() + "/v2/apps")
	if err == nil {
		t.Fatal("a cut answer was read as whole")
	}
	if !Transient(err) {
		t.Errorf("not transient: %v", err)
	}
}
