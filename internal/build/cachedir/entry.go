package cachedir

import (
	"fmt"
	"os"
	"time"
)

// Entry is one entry of the cache: a directory made once and then reused,
// by whichever process needs it first. The protocol, the same for every
// entry: take the entry's lock (others wait, then find it made); if its
// marker (<Dir>.complete) says it is whole (and fresh enough), use it;
// otherwise build it into <Dir>.tmp, rename that into place, then write
// the marker — so a build that dies leaves no entry that looks whole.
type Entry struct {
	Dir string
	// MaxAge makes an older entry be built again (0: it never expires).
	MaxAge time.Duration
	// InPlace builds in Dir itself, for what records its own path and
	// cannot be renamed (a Python virtual environment); the marker still
	// comes last.
	InPlace bool
}

// Marker is the file that says the entry is whole.
func (e Entry) Marker() string { return e.Dir + ".complete" }

// Ensure builds the entry with build (given the empty directory to fill) unless
// it is already whole, and says whether it built it.
func (e Entry) Ensure(build func(dir string) error) (built bool, err error) {
	unlock, err := Lock(e.Dir + ".lock")
	if err != nil {
		return false, err
	}
	defer unlock()
	if st, err := os.Stat(e.Marker()); err == nil && (e.MaxAge == 0 || time.Since(st.ModTime()) < e.MaxAge) {
		return false, nil
	}
	_ = os.Remove(e.Marker())
	target := e.Dir + ".tmp"
	if e.InPlace {
		target = e.Dir
	}
	if err := os.RemoveAll(target); err != nil {
		return false, err
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		return false, err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return false, err
	}
	if err := build(target); err != nil {
		_ = os.RemoveAll(target)
		return true, err
	}
	if !e.InPlace {
		if err := os.Rename(target, e.Dir); err != nil {
			return true, fmt.Errorf("cache entry %s: %w", e.Dir, err)
		}
	}
	return true, os.WriteFile(e.Marker(), nil, 0o644)
}
