package slaveinit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSupervisorFilesFollowTheToggles(t *testing.T) {
	root := t.TempDir()
	c := resolve(t, map[string]string{"ENVIRONMENT": "prod", "SERVICE_MESOS_CMD": `mesos-slave --attributes=rack:1 --label=50%`})
	if err := WriteSupervisor(c, root); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, SupervisorDir, "*.conf"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if strings.Join(names, ",") != "300-mesos.conf,900-logstash-forwarder.conf,950-metrics.conf,999-redpill.conf" {
		t.Fatalf("prod programs: %v", names)
	}
	mesos, _ := os.ReadFile(filepath.Join(root, SupervisorDir, "300-mesos.conf"))
	for _, want := range []string{`command="mesos-slave" "--attributes=rack:1" "--label=50%%"`, "autorestart=unexpected", "startretries=10", "priority=300"} {
		if !strings.Contains(string(mesos), want) {
			t.Errorf("300-mesos.conf lacks %q:\n%s", want, mesos)
		}
	}
	met, _ := os.ReadFile(filepath.Join(root, SupervisorDir, "950-metrics.conf"))
	if !strings.Contains(string(met), `command="lhcbdirac-collector" "-i" "-q" "-c" "/etc/lhcbdirac/collector.json"`) {
		t.Errorf("the collector writes quietly with the node's settings:\n%s", met)
	}
	red, _ := os.ReadFile(filepath.Join(root, SupervisorDir, "999-redpill.conf"))
	if !strings.Contains(string(red), `command="/usr/local/bin/mesos-slave-init" "redpill"`) {
		t.Errorf("redpill runs the Go watchdog:\n%s", red)
	}

	debug := resolve(t, map[string]string{"ENVIRONMENT": "debug"})
	if err := WriteSupervisor(debug, root); err != nil {
		t.Fatal(err)
	}
	files, _ = filepath.Glob(filepath.Join(root, SupervisorDir, "*.conf"))
	if len(files) != 1 || filepath.Base(files[0]) != "300-mesos.conf" {
		t.Fatalf("debug runs the agent alone, and stale files go: %v", files)
	}
}

type fakeCtl struct {
	mu       sync.Mutex
	states   map[string]string
	asked    int // Status calls
	shutdown bool
}

func (f *fakeCtl) Status(_ context.Context, p string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	return f.states[p], nil
}

func (f *fakeCtl) statusCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked
}

func (f *fakeCtl) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdown = true
	return nil
}

func (f *fakeCtl) set(p, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[p] = s
}

func TestWatchdogStopsTheContainerOnFatal(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "cleaned")
	cleanup := filepath.Join(dir, "cleanup.sh")
	os.WriteFile(cleanup, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	ctl := &fakeCtl{states: map[string]string{"mesos": "RUNNING"}}
	var log bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Watch(context.Background(), Watchdog{Services: []string{"mesos"}, Interval: 20 * time.Millisecond, Cleanup: cleanup}, ctl, 0, &log)
	}()
	// It has looked at a RUNNING agent a few times (however long that
	// takes) and is still watching.
	for deadline := time.Now().Add(30 * time.Second); ctl.statusCalls() < 3; time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("the watchdog stopped while the agent ran: %v", err)
		default:
		}
		if time.Now().After(deadline) { // a deadline, not a speed
			t.Fatalf("the watchdog asked for the agent's state %d times in 30 s", ctl.statusCalls())
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the watchdog stopped while the agent ran: %v", err)
	default:
	}
	ctl.set("mesos", "FATAL")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "mesos turned FATAL") {
			t.Fatalf("err %v", err)
		}
	case <-time.After(30 * time.Second): // generous: a loaded machine may be slow to schedule the watchdog
		t.Fatal("the watchdog missed a FATAL agent")
	}
	if !ctl.shutdown {
		t.Fatal("supervisord was not shut down")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the cleanup script did not run")
	}
	if !strings.Contains(log.String(), "[Redpill] mesos is FATAL") {
		t.Fatalf("log: %s", log.String())
	}
}

func TestWatchdogCleansUpOnStop(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "cleaned")
	cleanup := filepath.Join(dir, "cleanup.sh")
	os.WriteFile(cleanup, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	ctl := &fakeCtl{states: map[string]string{"mesos": "RUNNING"}}
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, Watchdog{Services: []string{"mesos"}, Interval: time.Hour, Cleanup: cleanup}, ctl, 0, &bytes.Buffer{})
	}()
	cancel()
	if err := <-done; err != nil || ctl.shutdown {
		t.Fatalf("a container stop is not a failure: %v, shutdown %v", err, ctl.shutdown)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the cleanup did not run on stop, as the seed's trap did")
	}
}
