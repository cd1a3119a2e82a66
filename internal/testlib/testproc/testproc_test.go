package testproc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// The test binary doubles as the server: with TESTPROC_LISTEN set it
// serves HTTP there, or exits as a real server does when the port is taken.
func TestMain(m *testing.M) {
	if addr := settings.Read("TESTPROC_LISTEN"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		return
	}
	os.Exit(m.Run())
}

func serverSpec(port int) Spec {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return Spec{Name: "server", Path: os.Args[0], Timeout: 20 * time.Second,
		Args: []string{"-test.run=^$"}, Ready: func() bool {
			resp, err := Get("http://" + addr)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return true
		}}
}

func withEnv(s Spec, port int) Spec {
	s.Path = "/usr/bin/env"
	s.Args = append([]string{fmt.Sprintf("TESTPROC_LISTEN=127.0.0.1:%d", port), os.Args[0]}, s.Args...)
	return s
}

func TestPortsAreBelowTheEphemeralRangeDistinctAndFree(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for _, p := range Ports(t, 200) {
		if p >= low && low-10000 >= 1000 {
			t.Errorf("port %d is in the ephemeral range (from %d)", p, low)
		}
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		if !free(p) {
			t.Errorf("port %d is not free", p)
		}
	}
}

func TestServerThatLosesItsPortStartsAgainOnOthers(t *testing.T) {
	var tried []int
	var squatter net.Listener
	t.Cleanup(func() {
		if squatter != nil {
			squatter.Close()
		}
	})
	p, ports := StartOnPorts(t, 1, func(ports []int) Spec {
		tried = append(tried, ports[0])
		if len(tried) == 1 {
			// Another process takes the port between the pick and the bind.
			var err error
			if squatter, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0])); err != nil {
				t.Fatal(err)
			}
		}
		return withEnv(serverSpec(ports[0]), ports[0])
	})
	if len(tried) != 2 || ports[0] != tried[1] || tried[0] == tried[1] {
		t.Fatalf("attempts on %v, running on %v; want a second attempt on another port", tried, ports)
	}
	// Stop and Restart keep the port.
	p.Stop()
	if serverSpec(ports[0]).Ready() {
		t.Fatal("server still answers after Stop")
	}
	p.Restart(t)
	if !serverSpec(ports[0]).Ready() {
		t.Fatal("server does not answer after Restart")
	}
}

func TestServerThatExitsIsReportedAtOnceWithItsOutput(t *testing.T) {
	p := &Proc{spec: Spec{Name: "sh", Path: "/bin/sh", Args: []string{"-c", "echo bad config >&2; exit 3"},
		Timeout: time.Minute, Ready: func() bool { return false }}}
	start := time.Now()
	err := p.start()
	if err == nil || !strings.Contains(err.Error(), "exited (exit status 3) before it answered") || !strings.Contains(err.Error(), "bad config") {
		t.Fatalf("err = %v", err)
	}
	if waited := time.Since(start); waited > 30*time.Second {
		t.Errorf("an exited server was waited on for %s, as if it might still answer", waited)
	}
}
