//go:build !linux

package wal

import "os"

// syncData falls back to fsync where fdatasync is not available.
func syncData(f *os.File) error { return f.Sync() }

// preallocate extends the file with zeros (sparse) where fallocate is missing.
func preallocate(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= size {
		return nil
	}
	return f.Truncate(size)
}
