package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Defaults follow etcd's backend.
const (
	DefaultBatchInterval   = 100 * time.Millisecond
	DefaultBatchLimit      = 10000
	DefaultInitialMmapSize = 1 << 30
	DefaultLockTimeout     = time.Second
)

// ErrClosed is returned by every operation on a closed Backend.
var ErrClosed = errors.New("backend: closed")

// Options tune a Backend. The zero value gives etcd's defaults.
type Options struct {
	// BatchInterval is the longest a write waits in the open batch before it is committed.
	BatchInterval time.Duration
	// BatchLimit is the number of writes after which the batch is committed early.
	BatchLimit int
	// InitialMmapSize is the size of the first mmap. A large value avoids remapping while
	// the file grows; it costs address space, not memory.
	InitialMmapSize int
	// Mlock keeps the file's pages in RAM (no major page faults, memory never reclaimed).
	Mlock bool
	// LockTimeout bounds how long Open waits for another process's lock on the file.
	LockTimeout time.Duration
	// OnCommit, when set, receives the duration of every batch commit (for
	// etcd_disk_backend_commit_duration_seconds). It runs with writes blocked: keep it short.
	OnCommit func(time.Duration)
}

func (o Options) withDefaults() Options {
	if o.BatchInterval <= 0 {
		o.BatchInterval = DefaultBatchInterval
	}
	if o.BatchLimit <= 0 {
		o.BatchLimit = DefaultBatchLimit
	}
	if o.InitialMmapSize <= 0 {
		o.InitialMmapSize = DefaultInitialMmapSize
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	return o
}

// Backend is a bbolt file with batched writes. All methods are safe for concurrent use.
type Backend struct {
	path string
	opts Options
	db   *bolt.DB

	// wmu serialises writers and commits. It guards the fields below it.
	wmu      sync.Mutex
	wtx      *bolt.Tx
	wbuckets map[string]*bolt.Bucket
	pending  int
	ciDirty  bool  // the consistent index changed since the last commit
	failed   error // sticky: a failed commit leaves memory ahead of disk for good
	closed   bool

	// mu guards what readers use: the shared snapshot and the overlay of uncommitted
	// writes. Writers hold it only for map updates, commits only to swap snapshots,
	// never across an fsync.
	mu      sync.RWMutex
	view    *view
	buf     map[string]map[string]bufEntry
	rclosed bool

	// win is the shared snapshot of readers during a commit (see joinWindow).
	win   atomic.Pointer[window]
	winMu sync.Mutex

	ci        atomic.Pointer[consistentIndex]
	size      atomic.Int64
	sizeInUse atomic.Int64

	stopc chan struct{}
	donec chan struct{}
}

// Open opens (creating if needed) the bbolt file at path, e.g. <data-dir>/member/snap/db.
// Missing directories are created 0700 and a new file 0600.
func Open(path string, opts Options) (*Backend, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("backend: create directory for %s: %w", path, err)
	}
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		path:  path,
		opts:  opts,
		db:    db,
		stopc: make(chan struct{}),
		donec: make(chan struct{}),
	}
	if err := b.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	go b.run()
	return b, nil
}

// openBolt opens the file and turns bbolt's panics on damaged pages into an error
// naming the file: a corrupt data dir must stop the member with a message, not a trace.
func openBolt(path string, opts Options) (db *bolt.DB, err error) {
	// bbolt maps the file and trusts its meta page: pages beyond the end of a
	// truncated file fault with SIGBUS, which no recover catches. Check first.
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		if err := checkFile(path, opts.LockTimeout); err != nil {
			return nil, fmt.Errorf("backend: open %s: %w", path, err)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("backend: %s is corrupt: %v", path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.LockTimeout,
		InitialMmapSize: opts.InitialMmapSize,
		Mlock:           opts.Mlock,
		// Unlike etcd the freelist is synced: with NoFreelistSync bbolt rebuilds it on
		// open by walking every page in a goroutine of its own, where a damaged page
		// is a panic that kills the process instead of an error we can report.
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("backend: open %s: %w", path, lockedErr(err))
	}
	return db, nil
}

func lockedErr(err error) error {
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("locked by another process: %w", err)
	}
	return err
}

// load checks the file, reads the consistent index and opens the first batch.
func (b *Backend) load() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("backend: %s is corrupt: %v", b.path, r)
		}
	}()
	tx, err := b.db.Begin(false)
	if err != nil {
		return fmt.Errorf("backend: read %s: %w", b.path, err)
	}
	ci, err := readConsistentIndex(tx)
	_ = tx.Rollback()
	if err != nil {
		return fmt.Errorf("backend: %s: %w", b.path, err)
	}
	b.ci.Store(&ci)
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.beginLocked()
}

// beginLocked installs a fresh read snapshot and opens the next batch. wmu is held.
func (b *Backend) beginLocked() error {
	rtx, err := b.db.Begin(false)
	if err != nil {
		return b.fail(fmt.Errorf("backend: begin read on %s: %w", b.path, err))
	}
	wtx, err := b.db.Begin(true)
	if err != nil {
		_ = rtx.Rollback()
		return b.fail(fmt.Errorf("backend: begin write on %s: %w", b.path, err))
	}
	v := newView(rtx)
	b.mu.Lock()
	// No reader is inside (mu is held), so every window is closed already; forget
	// it, as its snapshot may predate the commit whose writes leave the buffer now.
	b.win.Store(nil)
	b.view = v
	b.buf = nil
	b.mu.Unlock()
	b.wtx = wtx
	b.wbuckets = make(map[string]*bolt.Bucket)
	b.pending = 0
	b.updateSize(rtx)
	return nil
}

func (b *Backend) fail(err error) error {
	b.failed = err
	return err
}

func (b *Backend) updateSize(tx *bolt.Tx) {
	size := tx.Size()
	// Pending pages were freed by recent commits and only wait for older readers.
	st := b.db.Stats()
	inUse := size - int64(st.FreePageN+st.PendingPageN)*int64(b.db.Info().PageSize)
	b.size.Store(size)
	b.sizeInUse.Store(inUse)
}

// run commits the batch every BatchInterval.
func (b *Backend) run() {
	defer close(b.donec)
	t := time.NewTicker(b.opts.BatchInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stopc:
			return
		case <-t.C:
			b.wmu.Lock()
			if !b.closed && b.failed == nil && b.dirtyLocked() {
				// The error is sticky in b.failed and reported to the next writer.
				_ = b.commitLocked(true)
			}
			b.wmu.Unlock()
		}
	}
}

// commitLocked commits the batch. wmu is held. When reopen is false (Close), no new
// batch is started.
func (b *Backend) commitLocked(reopen bool) error {
	// The backend's snapshot is closed before committing: a commit that grows the
	// mmap waits for every open read transaction, and this one would never end.
	// Until the new snapshot is installed, readers share short-lived windows (see
	// joinWindow); any snapshot taken before or after this commit, overlaid with
	// the buffer (which still holds every write of this batch), gives the same answer.
	if err := b.writeConsistentIndex(); err != nil {
		return b.fail(fmt.Errorf("backend: commit %s: %w", b.path, err))
	}
	b.mu.Lock()
	old := b.view
	b.view = nil
	b.mu.Unlock()
	if old != nil {
		_ = old.tx.Rollback()
	}

	start := time.Now()
	err := b.wtx.Commit()
	if b.opts.OnCommit != nil {
		b.opts.OnCommit(time.Since(start))
	}
	b.wtx, b.wbuckets = nil, nil
	if err != nil {
		return b.fail(fmt.Errorf("backend: commit %s: %w", b.path, err))
	}
	if !reopen {
		b.pending = 0
		return nil
	}
	return b.beginLocked()
}

// ForceCommit commits the current batch now.
func (b *Backend) ForceCommit() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	if !b.dirtyLocked() {
		return nil
	}
	return b.commitLocked(true)
}

func (b *Backend) dirtyLocked() bool { return b.pending > 0 || b.ciDirty }

func (b *Backend) usableLocked() error {
	if b.closed {
		return ErrClosed
	}
	return b.failed
}

// Close commits the batch and closes the file. Later calls return ErrClosed.
func (b *Backend) Close() error {
	b.wmu.Lock()
	if b.closed {
		b.wmu.Unlock()
		return ErrClosed
	}
	b.closed = true
	b.wmu.Unlock()
	close(b.stopc)
	<-b.donec

	b.wmu.Lock()
	defer b.wmu.Unlock()
	var err error
	if b.failed == nil && b.dirtyLocked() {
		err = b.commitLocked(false)
	}
	b.mu.Lock()
	v := b.view
	b.view, b.buf, b.rclosed = nil, nil, true
	b.win.Store(nil)
	b.mu.Unlock()
	if v != nil {
		_ = v.tx.Rollback()
	}
	if b.wtx != nil {
		_ = b.wtx.Rollback()
		b.wtx = nil
	}
	if cerr := b.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("backend: close %s: %w", b.path, cerr)
	}
	return err
}

// Path is the file this backend was opened on.
func (b *Backend) Path() string { return b.path }

// SizeBytes is the size of the file's used range as of the last commit (etcd's dbSize).
// It is never 0: a bbolt file has at least its meta, freelist and root pages.
func (b *Backend) SizeBytes() int64 { return b.size.Load() }

// SizeInUseBytes is SizeBytes minus free pages (etcd's dbSizeInUse).
func (b *Backend) SizeInUseBytes() int64 { return b.sizeInUse.Load() }

// Err reports the sticky error of a failed commit, if any. After such an error the
// member must stop and replay its WAL.
func (b *Backend) Err() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.failed
}
