package marathontest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Fault is what a Proxy does to the connections it accepts.
type Fault int

const (
	// Pass forwards every byte both ways.
	Pass Fault = iota
	// Refuse closes the listening socket: connects fail with "connection
	// refused", as when Marathon (or the load balancer in front of it)
	// restarts or a leader has just gone.
	Refuse
	// Reset accepts and answers with a TCP reset: "connection reset by peer".
	Reset
	// Close accepts, reads the request and closes without an answer: the
	// client reads EOF, as from a proxy that drops its upstream.
	Close
	// LoseAnswer forwards the request to Marathon, which acts on it, and
	// closes the client's connection before any answer: the change is made
	// and the client cannot know.
	LoseAnswer
	// Hang accepts and reads, and never answers: a Marathon that hangs.
	Hang
)

// Proxy is an HTTP proxy on loopback in front of a Server that fails
// requests on demand, as the network between a client and Marathon does
// during a leader election, a restart or an overload. Marathon itself is
// never unreliable here: only the path to it is. It reads each request on a
// connection and decides its fault then, so a fault can hit one chosen
// request (the second PUT, every GET of the deployments) on a connection
// the client keeps alive.
type Proxy struct {
	URL  string
	addr string
	to   string

	mu     sync.Mutex
	fault  Fault
	decide func(*http.Request) Fault
	l      net.Listener
	conns  map[net.Conn]struct{}
	n      map[Fault]int // requests met with each fault
	done   bool
	wg     sync.WaitGroup
}

// NewProxy starts a proxy on a loopback port in front of upstream
// (host:port or an http:// URL of a Server).
func NewProxy(upstream string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{addr: l.Addr().String(), to: strings.TrimPrefix(upstream, "http://"), conns: map[net.Conn]struct{}{}, n: map[Fault]int{}}
	p.URL = "http://" + p.addr
	p.mu.Lock()
	p.serveLocked(l)
	p.mu.Unlock()
	return p, nil
}

// Set makes every request from now on meet f (and forgets Decide). Refuse
// also drops the connections open, as a restart does; anything else lets
// the port accept connections again, the same port as before.
func (p *Proxy) Set(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.decide = f, nil
	p.listenLocked(f != Refuse)
}

// Decide picks each request's fault with f (Refuse counts as Reset: a
// request that has arrived cannot be refused).
func (p *Proxy) Decide(f func(*http.Request) Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.decide = f
	p.listenLocked(true)
}

func (p *Proxy) listenLocked(on bool) {
	switch {
	case p.done:
	case !on && p.l != nil:
		p.l.Close()
		p.l = nil
		for c := range p.conns {
			c.Close()
		}
	case on && p.l == nil:
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			panic("marathontest: the proxy cannot listen on its port again: " + err.Error())
		}
		p.serveLocked(l)
	}
}

// Met counts the requests that met fault f (refused connections carry no
// request: they are not counted).
func (p *Proxy) Met(f Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[f]
}

// Close stops the proxy and drops every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.done = true
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) serveLocked(l net.Listener) {
	p.l = l
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !p.track(c) {
				c.Close()
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer p.forget(c)
				p.handle(c)
			}()
		}
	}()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) faultFor(r *http.Request) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	if p.decide != nil {
		f = p.decide(r)
	}
	if f == Refuse {
		f = Reset
	}
	p.n[f]++
	return f
}

// handle serves the requests of one client connection, each over one
// upstream connection kept for the client's.
func (p *Proxy) handle(c net.Conn) {
	br := bufio.NewReader(c)
	var up net.Conn
	var ubr *bufio.Reader
	defer func() {
		if up != nil {
			p.forget(up)
		}
	}()
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		switch p.faultFor(req) {
		case Reset:
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // close sends RST
			}
			return
		case Close:
			return
		case Hang:
			io.Copy(io.Discard, br) // until the client gives up, or Close
			return
		case LoseAnswer:
			if up == nil {
				if up, ubr = p.dial(); up == nil {
					return
				}
			}
			if req.Write(up) == nil {
				if resp, err := http.ReadResponse(ubr, req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			return
		default: // Pass
			if up == nil {
				if up, ubr = p.dial(); up == nil {
					return
				}
			}
			if req.Write(up) != nil {
				return
			}
			resp, err := http.ReadResponse(ubr, req)
			if err != nil {
				return
			}
			err = resp.Write(c) // streams (the event stream too)
			resp.Body.Close()
			if err != nil || resp.Close || req.Close {
				return
			}
		}
	}
}

func (p *Proxy) dial() (net.Conn, *bufio.Reader) {
	up, err := net.Dial("tcp", p.to)
	if err != nil || !p.track(up) {
		return nil, nil
	}
	return up, bufio.NewReader(up)
}
