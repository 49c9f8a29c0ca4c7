package backend

import (
	"errors"
	"etcdctl-wizard/node/fileutil"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Snapshot writes a consistent copy of the whole file to w (for a raft snapshot
// or `etcdctl snapshot save`), after committing the open batch. Writers wait only
// for the commit, not for the copy.
func (b *Backend) Snapshot(w io.Writer) (int64, error) {
	b.wmu.Lock()
	if err := b.usableLocked(); err != nil {
		b.wmu.Unlock()
		return 0, err
	}
	if b.dirtyLocked() {
		if err := b.commitLocked(true); err != nil {
			b.wmu.Unlock()
			return 0, err
		}
	}
	tx, err := b.db.Begin(false)
	b.wmu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("backend: snapshot %s: %w", b.path, err)
	}
	defer func() { _ = tx.Rollback() }()
	n, err := tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("backend: snapshot %s: %w", b.path, err)
	}
	return n, nil
}

// ReplaceDB installs the database read from r (a received raft snapshot) at path.
// It writes a temporary file next to path, fsyncs it, checks that bbolt can open
// it and only then renames it over path, so a failure leaves the old file intact.
// The Backend on path must be closed first and reopened afterwards.
func ReplaceDB(path string, r io.Reader) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backend: create directory for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backend: replace %s: %w", path, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("backend: replace %s: %w", path, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("backend: replace %s: copy: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backend: replace %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backend: replace %s: %w", path, err)
	}
	if err := checkFile(tmp, DefaultLockTimeout); err != nil {
		return fmt.Errorf("backend: replace %s: received database is unusable: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("backend: replace %s: %w", path, err)
	}
	done = true
	return fileutil.SyncDir(dir)
}

// checkFile opens path read-only, which reads only the meta pages, and checks that
// the file holds every page the meta page refers to and a well-formed consistent index.
func checkFile(path string, lockTimeout time.Duration) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt: %v", r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return lockedErr(err)
	}
	defer func() { _ = db.Close() }()
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("truncated: %d bytes on disk, %d expected", fi.Size(), tx.Size())
		}
		_, err := readConsistentIndex(tx)
		return err
	})
}

// Defrag rewrites the file without its free pages (etcdctl defrag). Readers and
// writers wait until it is done, as with etcd.
func (b *Backend) Defrag() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	if b.dirtyLocked() {
		if err := b.commitLocked(true); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()

	tmp := b.path + ".defrag"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: b.opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("backend: defrag %s: %w", b.path, err)
	}
	if err := bolt.Compact(dst, b.db, 16<<20); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("backend: defrag %s: %w", b.path, err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("backend: defrag %s: %w", b.path, err)
	}

	// From here the old handles go away; any failure leaves the backend unusable.
	if b.view != nil {
		_ = b.view.tx.Rollback()
	}
	_ = b.wtx.Rollback()
	b.view, b.wtx, b.wbuckets = nil, nil, nil
	if err := b.db.Close(); err != nil {
		return b.fail(fmt.Errorf("backend: defrag %s: close: %w", b.path, err))
	}
	if err := os.Rename(tmp, b.path); err != nil {
		return b.fail(errors.Join(fmt.Errorf("backend: defrag %s: %w", b.path, err), b.reopenLocked()))
	}
	if err := fileutil.SyncDir(filepath.Dir(b.path)); err != nil {
		return b.fail(err)
	}
	return b.reopenLocked()
}

// reopenLocked reopens the file after Defrag. wmu and mu are held.
func (b *Backend) reopenLocked() error {
	db, err := openBolt(b.path, b.opts)
	if err != nil {
		return b.fail(err)
	}
	b.db = db
	rtx, err := db.Begin(false)
	if err != nil {
		return b.fail(fmt.Errorf("backend: begin read on %s: %w", b.path, err))
	}
	wtx, err := db.Begin(true)
	if err != nil {
		_ = rtx.Rollback()
		return b.fail(fmt.Errorf("backend: begin write on %s: %w", b.path, err))
	}
	b.view, b.buf = newView(rtx), nil
	b.win.Store(nil)
	b.wtx, b.wbuckets, b.pending = wtx, make(map[string]*bolt.Bucket), 0
	b.updateSize(rtx)
	return nil
}
