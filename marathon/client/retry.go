package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Retry runs f until it succeeds, fails for good (not Transient), or
// deadline passes, waiting between tries (0.25 s, doubling, at most 5 s,
// never past the deadline) and saying so on log (nil: silent). Every try
// gets the time left: f's ctx ends at the deadline. A persistent failure
// is returned with how long it lasted and how many tries it took.
func Retry[T any](ctx context.Context, deadline time.Time, log io.Writer, what string, f func(context.Context) (T, error)) (T, error) {
	tctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	wait := 250 * time.Millisecond
	start := time.Now()
	var last error // the last failure that says more than "deadline exceeded"
	for n := 1; ; n++ {
		v, err := f(tctx)
		if !Transient(err) || ctx.Err() != nil {
			return v, err
		}
		if last == nil || !errors.Is(err, context.DeadlineExceeded) {
			last = err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return v, fmt.Errorf("%s: Marathon kept failing for %s (%d tries): %w", what, time.Since(start).Round(100*time.Millisecond), n, last)
		}
		if log != nil {
			fmt.Fprintf(log, "%s: %v; retrying in %s\n", what, err, min(wait, left).Round(time.Millisecond))
		}
		if err := Sleep(ctx, min(wait, left)); err != nil {
			return v, err
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Sleep waits d, or until ctx ends (its error then).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
