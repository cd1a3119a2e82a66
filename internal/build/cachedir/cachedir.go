// Package cachedir locates the pipeline's cache and state directory. It lives
// outside the clone so that a fresh clone (CI's, or a second worktree) reuses
// the Dagger binaries, debootstrap trees and images built before.
package cachedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// EnvVar overrides the location.
const EnvVar = "LHCBDIRAC_PIPELINE_CACHE"

var (
	rootMu sync.RWMutex
	root   string
)

// SetRoot moves the cache root for this process ("" for the default): the
// configuration boundary sets it from $LHCBDIRAC_PIPELINE_CACHE, the
// benchmark points it at an empty place to measure a first run.
func SetRoot(dir string) {
	rootMu.Lock()
	defer rootMu.Unlock()
	root = dir
}

// Dir returns the cache root, creating it: the one SetRoot gave
// ($LHCBDIRAC_PIPELINE_CACHE), else $XDG_CACHE_HOME/lhcbdirac-pipeline,
// else ~/.cache/lhcbdirac-pipeline.
func Dir() (string, error) {
	rootMu.RLock()
	dir := root
	rootMu.RUnlock()
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory: set %s: %w", EnvVar, err)
		}
		dir = filepath.Join(base, "lhcbdirac-pipeline")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache directory %s (set %s to move it): %w", dir, EnvVar, err)
	}
	return dir, nil
}

// Sub returns a directory below the cache root, creating it.
func Sub(parts ...string) (string, error) {
	root, err := Dir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(append([]string{root}, parts...)...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// WriteFile writes a file atomically (a temporary file renamed into
// place), readable by all: a reader never sees half of it.
func WriteFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Close(), os.Chmod(tmp.Name(), 0o644)); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Swap moves the cache root and returns what puts the previous one back
// (tests: t.Cleanup(cachedir.Swap(t.TempDir()))).
func Swap(dir string) (restore func()) {
	rootMu.Lock()
	old := root
	root = dir
	rootMu.Unlock()
	return func() { SetRoot(old) }
}
