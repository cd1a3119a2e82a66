package lhcbdirac

import (
	"testing"
	"time"
)

// The client's sections read back: the check's outcome and time, the
// ping's exit and answer, and the task's log, in which a line that looks
// like a marker is the log's own.
func TestSmokeOutputReadsTheClientsSections(t *testing.T) {
	out := "@@@health 0 1000000000 3500000000\nhealthy after 2s:\nS_OK\n@@@ping 0\n{\"Framework/Notification\": true}\n@@@log\nstarting\n@@@ping 1\ndone\n"
	r := readSmokeOutput(out)
	if !r.healthy || r.checked != 2500*time.Millisecond || r.health != "healthy after 2s:\nS_OK" {
		t.Errorf("health: %+v", r)
	}
	if r.pingExit != 0 || r.ping != `{"Framework/Notification": true}` {
		t.Errorf("ping: %d %q", r.pingExit, r.ping)
	}
	if r.log != "starting\n@@@ping 1\ndone" {
		t.Errorf("log: %q", r.log)
	}
	for _, c := range []struct{ out, health string }{
		{"@@@health 1 1 2\nthe task exited before its health check passed\n@@@log\nTraceback\n", "the task exited before its health check passed"},
		{"@@@health none\nthe task's container wrote no health check result within 70s\n@@@log\n", "the task's container wrote no health check result within 70s"},
		{"", ""},
	} {
		r := readSmokeOutput(c.out)
		if r.healthy || r.health != c.health || r.pingExit != -1 {
			t.Errorf("%q read as %+v", c.out, r)
		}
	}
}
