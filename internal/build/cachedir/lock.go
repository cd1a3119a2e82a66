package cachedir

import (
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive advisory lock on path (created if needed) and
// returns the function that releases it. Cache entries are built by several
// processes at once (parallel test packages, two terminals); the lock makes
// the second one wait and then find the entry built.
func Lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
