//go:build linux

package wal

import (
	"errors"
	"os"
	"syscall"
)

// syncData flushes file data with fdatasync: the segment is preallocated, so
// its size does not change on append and the inode need not be written.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// preallocate reserves size bytes of zeros so appends never extend the file.
// Filesystems without fallocate fall back to a sparse extension, which keeps
// the format correct (zeros read back) at the cost of slower syncs.
func preallocate(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= size {
		return nil
	}
	for {
		err = syscall.Fallocate(int(f.Fd()), 0, 0, size)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return f.Truncate(size)
	}
	return err
}
