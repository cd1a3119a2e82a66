package slaveinit

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// Supervisorctl talks to the running supervisord.
type Supervisorctl interface {
	Status(ctx context.Context, program string) (string, error) // RUNNING, FATAL, …
	Shutdown(ctx context.Context) error                         // stops every program and supervisord: the container ends
}

// Watch is the redpill: every interval it checks the watched programs and,
// when one is FATAL (supervisord gave up restarting it), runs the cleanup
// script and shuts supervisord down, which stops the container so the
// orchestrator can replace it. When ctx ends (the container is stopping) the
// cleanup runs too, as in the seed. initialDelay lets programs start first
// (the seed waited 5 s).
func Watch(ctx context.Context, w Watchdog, sc Supervisorctl, initialDelay time.Duration, log io.Writer) error {
	logf := func(format string, a ...any) {
		fmt.Fprintf(log, "[%s][Redpill] %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, a...))
	}
	if len(w.Services) == 0 {
		logf("No services to monitor. Terminating.")
		return nil
	}
	cleanup := func() {
		if w.Cleanup == "" {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, w.Cleanup).CombinedOutput()
		if err != nil {
			logf("cleanup %s failed: %v: %s", w.Cleanup, err, strings.TrimSpace(string(out)))
		} else {
			logf("cleanup %s done", w.Cleanup)
		}
	}
	logf("monitoring %s every %s", strings.Join(w.Services, ", "), w.Interval)
	wait := initialDelay
	for {
		select {
		case <-ctx.Done():
			logf("stopping")
			cleanup()
			return nil
		case <-time.After(wait):
		}
		wait = w.Interval
		for _, s := range w.Services {
			st, err := sc.Status(ctx, s)
			if err != nil {
				logf("status of %s: %v", s, err)
				continue
			}
			if st == "FATAL" {
				logf("%s is FATAL: stopping the container", s)
				cleanup()
				if err := sc.Shutdown(context.Background()); err != nil {
					return fmt.Errorf("shutting supervisord down after %s turned FATAL: %w", s, err)
				}
				return fmt.Errorf("%s turned FATAL", s)
			}
		}
	}
}

// CLI is the real Supervisorctl: the supervisorctl command.
type CLI struct{ Config string }

// Status returns the state column of `supervisorctl status <program>`.
func (c CLI) Status(ctx context.Context, program string) (string, error) {
	out, err := exec.CommandContext(ctx, "supervisorctl", "-c", c.Config, "status", program).Output()
	// supervisorctl exits non-zero for non-RUNNING states; the text is what counts.
	fields := strings.Fields(string(out))
	if len(fields) >= 2 {
		return fields[1], nil
	}
	if err != nil {
		return "", fmt.Errorf("supervisorctl status %s: %w", program, err)
	}
	return "", fmt.Errorf("supervisorctl status %s: no state in %q", program, out)
}

// Shutdown stops supervisord and with it the container.
func (c CLI) Shutdown(ctx context.Context) error {
	return exec.CommandContext(ctx, "supervisorctl", "-c", c.Config, "shutdown").Run()
}
