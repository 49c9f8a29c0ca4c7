//go:build unix

package wal

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on the directory itself, so no lock file
// is needed and Exist only ever sees segment files. flock is tied to the open
// file description: a second Open in the same process is refused as well.
func lockDir(dir string) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: open dir: %w", err)
	}
	for {
		err = syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("wal dir %s is locked by another process: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("wal: lock dir %s: %w", dir, err)
	}
	return d, nil
}
