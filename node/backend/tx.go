package backend

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// view is a read-only snapshot of the last commit shared by all readers. Its
// top-level buckets are opened once, up front, so readers only ever read from it
// (bbolt read-only transactions tolerate concurrent reads; etcd relies on the same).
type view struct {
	tx      *bolt.Tx
	buckets map[string]*bolt.Bucket
}

func newView(tx *bolt.Tx) *view {
	v := &view{tx: tx, buckets: make(map[string]*bolt.Bucket)}
	_ = tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
		v.buckets[string(name)] = bk
		return nil
	})
	return v
}

// bufEntry is one uncommitted write. Entries are replaced, never modified, so a
// value handed to a reader stays valid after the buffer moves on.
type bufEntry struct {
	val     []byte
	deleted bool
}

// windowAge bounds how long a commit-window snapshot takes new readers. A commit
// that must grow the mmap waits until every read transaction is closed; a window
// that no reader joins any more closes with its last reader, so the wait is bounded.
const windowAge = 5 * time.Millisecond

// window is a read snapshot shared by the readers that arrive while a commit has
// the backend's own snapshot closed. Only readers hold it: it is rolled back by
// the last one to leave, never kept open by the backend.
type window struct {
	*view
	refs    atomic.Int64 // readers inside; 0 means closed
	expires time.Time
}

func (w *window) tryAcquire() bool {
	for {
		n := w.refs.Load()
		if n == 0 {
			return false
		}
		if w.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (w *window) release() {
	if w.refs.Add(-1) == 0 {
		_ = w.tx.Rollback()
	}
}

func (w *window) joinable() bool { return w != nil && time.Now().Before(w.expires) && w.tryAcquire() }

// joinWindow returns a fresh commit-window snapshot, opening one if needed. One
// reader opens it (under winMu) while the others wait and then join, so bbolt's
// transaction bookkeeping is touched once per window, not once per read.
func (b *Backend) joinWindow() (*window, error) {
	if w := b.win.Load(); w.joinable() {
		return w, nil
	}
	b.winMu.Lock()
	defer b.winMu.Unlock()
	if w := b.win.Load(); w.joinable() {
		return w, nil
	}
	tx, err := b.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("backend: begin read on %s: %w", b.path, err)
	}
	w := &window{view: newView(tx), expires: time.Now().Add(windowAge)}
	w.refs.Store(1)
	b.win.Store(w)
	return w, nil
}

// ReadTx reads the backend's current state: committed data overlaid with the
// writes of the open batch. It is valid only inside the View callback.
type ReadTx struct {
	b   *Backend
	v   *view   // the backend's snapshot of the last commit
	w   *window // while a commit runs, a shared window instead
	err error
}

// View runs fn with a ReadTx. Many Views run concurrently with each other and
// with writers and commits. Byte slices returned by the ReadTx are valid until
// View returns and must not be modified.
func (b *Backend) View(fn func(tx *ReadTx) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.rclosed {
		return ErrClosed
	}
	rt := &ReadTx{b: b, v: b.view}
	err := fn(rt)
	if rt.w != nil {
		rt.w.release()
	}
	if err == nil {
		err = rt.err
	}
	return err
}

// Get returns the value of key in bucket, or nil when absent.
func (t *ReadTx) Get(bucket, key []byte) []byte {
	if bb := t.b.buf[string(bucket)]; bb != nil {
		if e, ok := bb[string(key)]; ok {
			if e.deleted {
				return nil
			}
			return e.val
		}
	}
	bk := t.bucket(bucket)
	if bk == nil {
		return nil
	}
	return bk.Get(key)
}

func (t *ReadTx) bucket(name []byte) *bolt.Bucket {
	if t.v != nil {
		return t.v.buckets[string(name)]
	}
	if t.w == nil {
		w, err := t.b.joinWindow()
		if err != nil {
			t.err = err
			return nil
		}
		t.w = w
	}
	return t.w.buckets[string(name)]
}

// WriteTx writes into the open batch. It is valid only inside the Update callback.
type WriteTx struct {
	b *Backend
}

// Update runs fn with the batch transaction; Updates run one at a time. What fn
// writes is visible to readers at once and reaches disk with the next commit.
// The batch is shared, so writes made before fn returns an error are kept:
// validate before writing.
func (b *Backend) Update(fn func(tx *WriteTx) error) error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	err := fn(&WriteTx{b: b})
	if b.failed == nil && b.pending >= b.opts.BatchLimit {
		if cerr := b.commitLocked(true); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

func (t *WriteTx) bucket(name []byte, create bool) (*bolt.Bucket, error) {
	b := t.b
	if bk := b.wbuckets[string(name)]; bk != nil {
		return bk, nil
	}
	bk := b.wtx.Bucket(name)
	if bk == nil {
		if !create {
			return nil, nil
		}
		var err error
		if bk, err = b.wtx.CreateBucket(name); err != nil {
			return nil, fmt.Errorf("backend: create bucket %q: %w", name, err)
		}
	}
	b.wbuckets[string(name)] = bk
	return bk, nil
}

func checkKV(bucket, key, value []byte) error {
	switch {
	case len(bucket) == 0:
		return errors.New("backend: empty bucket name")
	case len(key) == 0:
		return errors.New("backend: empty key")
	case len(key) > bolt.MaxKeySize:
		return fmt.Errorf("backend: key of %d bytes exceeds %d", len(key), bolt.MaxKeySize)
	case int64(len(value)) > bolt.MaxValueSize:
		return fmt.Errorf("backend: value of %d bytes exceeds %d", len(value), bolt.MaxValueSize)
	}
	return nil
}

// Put stores value under key in bucket, creating the bucket if needed.
func (t *WriteTx) Put(bucket, key, value []byte) error { return t.put(bucket, key, value, false) }

// PutSeq is Put for keys that only ever grow (revisions): pages are filled to 90%
// instead of 50% because nothing will be inserted between existing keys.
func (t *WriteTx) PutSeq(bucket, key, value []byte) error { return t.put(bucket, key, value, true) }

func (t *WriteTx) put(bucket, key, value []byte, seq bool) error {
	if err := checkKV(bucket, key, value); err != nil {
		return err
	}
	bk, err := t.bucket(bucket, true)
	if err != nil {
		return err
	}
	if seq {
		bk.FillPercent = 0.9
	}
	// bbolt keeps the value slice until commit and readers keep it longer: own it.
	val := bytes.Clone(value)
	if val == nil {
		val = []byte{}
	}
	if err := bk.Put(key, val); err != nil {
		return fmt.Errorf("backend: put %q/%q: %w", bucket, key, err)
	}
	t.b.pending++
	t.b.bufSet(bucket, key, bufEntry{val: val})
	return nil
}

// Delete removes key from bucket; a missing key or bucket is not an error.
func (t *WriteTx) Delete(bucket, key []byte) error {
	if err := checkKV(bucket, key, nil); err != nil {
		return err
	}
	bk, err := t.bucket(bucket, false)
	if err != nil || bk == nil {
		return err
	}
	if err := bk.Delete(key); err != nil {
		return fmt.Errorf("backend: delete %q/%q: %w", bucket, key, err)
	}
	t.b.pending++
	t.b.bufSet(bucket, key, bufEntry{deleted: true})
	return nil
}

func (b *Backend) bufSet(bucket, key []byte, e bufEntry) {
	b.mu.Lock()
	if b.buf == nil {
		b.buf = make(map[string]map[string]bufEntry)
	}
	bb := b.buf[string(bucket)]
	if bb == nil {
		bb = make(map[string]bufEntry)
		b.buf[string(bucket)] = bb
	}
	bb[string(key)] = e
	b.mu.Unlock()
}

// Get returns the value of key in bucket as of every write so far, or nil. The
// slice is valid until Update returns.
func (t *WriteTx) Get(bucket, key []byte) []byte {
	bk, err := t.bucket(bucket, false)
	if err != nil || bk == nil {
		return nil
	}
	return bk.Get(key)
}

// Scan calls fn for each key in [from, to) of bucket in key order; a nil from
// starts at the first key, a nil to runs to the last. k and v are valid only
// during fn, and fn must not write to the backend.
func (t *WriteTx) Scan(bucket, from, to []byte, fn func(k, v []byte) error) error {
	bk, err := t.bucket(bucket, false)
	if err != nil || bk == nil {
		return err
	}
	c := bk.Cursor()
	var k, v []byte
	if from == nil {
		k, v = c.First()
	} else {
		k, v = c.Seek(from)
	}
	for ; k != nil; k, v = c.Next() {
		if to != nil && bytes.Compare(k, to) >= 0 {
			return nil
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Put stores one value in its own Update (the lead's "members" bucket and the like).
func (b *Backend) Put(bucket, key, value []byte) error {
	return b.Update(func(tx *WriteTx) error { return tx.Put(bucket, key, value) })
}

// Delete removes one key in its own Update.
func (b *Backend) Delete(bucket, key []byte) error {
	return b.Update(func(tx *WriteTx) error { return tx.Delete(bucket, key) })
}

// Get returns a copy of one value and whether it exists.
func (b *Backend) Get(bucket, key []byte) ([]byte, bool, error) {
	var out []byte
	var found bool
	err := b.View(func(tx *ReadTx) error {
		if v := tx.Get(bucket, key); v != nil {
			out, found = bytes.Clone(v), true
		}
		return nil
	})
	return out, found, err
}

// ForEach calls fn for every key of bucket in key order, on copies taken under
// the write lock, so fn may itself use the backend.
func (b *Backend) ForEach(bucket []byte, fn func(k, v []byte) error) error {
	var kvs [][2][]byte
	err := b.Update(func(tx *WriteTx) error {
		return tx.Scan(bucket, nil, nil, func(k, v []byte) error {
			kvs = append(kvs, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := fn(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}
