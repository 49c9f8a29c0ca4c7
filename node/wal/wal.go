// Package wal is the write-ahead log of etcd-node: the durable copy of the
// raft log (entries, hard state, snapshot markers) in a directory of
// preallocated segment files. See record.go for the on-disk format.
//
// The order the member follows on a raft Ready that carries a snapshot is:
// SaveSnapshot (marker here), snap.Snapshotter.SaveSnap (the snapshot file),
// Save(hard state, entries), and only after both files are durable
// PurgeBefore(snapshot index).
package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"etcdctl-wizard/node/fileutil"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// DefaultSegmentSize is the preallocated size of a segment, as in etcd.
const DefaultSegmentSize int64 = 64 << 20

// Options tune a WAL. The zero value is the production setting.
type Options struct {
	// SegmentSize is how large a segment is preallocated; the log moves to a
	// new segment when the next frame would not fit. Zero means
	// DefaultSegmentSize.
	SegmentSize int64
	// OnFsync, when set, receives the duration of every data sync (feeds
	// etcd_disk_wal_fsync_duration_seconds).
	OnFsync func(time.Duration)

	// noPrealloc lets the benchmarks measure what preallocation buys.
	noPrealloc bool
}

func (o Options) withDefaults() Options {
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	return o
}

// Marker is a snapshot point recorded in the log.
type Marker struct {
	Index, Term uint64
	ConfState   *raftpb.ConfState
}

var (
	// ErrLocked is wrapped by the error of Open when another process (or
	// another WAL value) holds the directory.
	ErrLocked = errors.New("wal: locked")
	// ErrSnapshotNotFound means the log has no marker for the snapshot it was
	// opened at, so it cannot continue from that snapshot.
	ErrSnapshotNotFound = errors.New("wal: snapshot marker not found")
	// ErrSnapshotMismatch means the log has a marker at the snapshot's index
	// but with another term: the snapshot belongs to another history.
	ErrSnapshotMismatch = errors.New("wal: snapshot marker term mismatch")
	// ErrClosed is returned by methods of a closed WAL.
	ErrClosed = errors.New("wal: closed")
)

// CorruptError is damage the WAL refuses to repair because data that was
// (or may have been) acknowledged would be lost.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: %s is corrupt at offset %d: %s", e.File, e.Offset, e.Reason)
}

// RepairReport tells what Open cut from the end of the last segment: the
// frame being written when the previous process died. It was never synced,
// so no acknowledged write is lost; the caller should log it as a warning.
type RepairReport struct {
	File    string
	Offset  int64 // where the torn frame started; the file now ends there
	Dropped int64 // non-zero bytes that were discarded
	Reason  string
}

func (r *RepairReport) String() string {
	return fmt.Sprintf("wal: repaired torn tail of %s: dropped %d bytes from offset %d (%s)", r.File, r.Dropped, r.Offset, r.Reason)
}

// WAL is an open log. Its methods may be called from several goroutines.
type WAL struct {
	mu       sync.Mutex
	dir      string
	opts     Options
	lock     *os.File // the directory, flocked
	metadata []byte

	segs      []segment // live segments, oldest first; the last is the tail
	tail      *os.File
	off       int64 // where the next frame goes in tail
	headerEnd int64 // end of the tail's header frame: below it a cut is pointless
	lastIndex uint64
	hardState *raftpb.HardState // last saved; repeated in every new segment header

	read   *readResult // what Open decoded, handed out once by ReadAll
	repair *RepairReport
	fb     frameBuilder
	err    error // sticky: after a failed write or sync the file state is unknown
}

type readResult struct {
	metadata  []byte
	hardState *raftpb.HardState
	ents      []*raftpb.Entry
}

// Create makes a new log in dir holding metadata and opens it for appending.
func Create(dir string, metadata []byte) (*WAL, error) {
	return CreateWith(dir, metadata, Options{})
}

// CreateWith is Create with options. The first segment is written in a
// sibling temp directory that is renamed into place, so a crash leaves either
// no log or a complete one, never a dir that Exist reports but Open rejects.
func CreateWith(dir string, metadata []byte, opts Options) (*WAL, error) {
	opts = opts.withDefaults()
	dir = filepath.Clean(dir)
	if Exist(dir) {
		return nil, fmt.Errorf("wal: %s already holds a WAL: %w", dir, os.ErrExist)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("wal: create parent: %w", err)
	}
	tmp := dir + ".tmp"
	// A leftover temp dir is an interrupted Create: it never held a log that
	// anyone used.
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("wal: remove stale temp dir: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("wal: create temp dir: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			os.RemoveAll(tmp)
		}
	}()

	w := &WAL{dir: dir, opts: opts, metadata: bytes.Clone(metadata), hardState: &raftpb.HardState{}}
	if w.metadata == nil {
		w.metadata = []byte{}
	}
	name := segmentName(0, 0)
	f, err := os.OpenFile(filepath.Join(tmp, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: create segment: %w", err)
	}
	off, err := w.initSegment(f, 0, 0)
	if err == nil {
		err = fileutil.SyncDir(tmp)
	}
	if err == nil {
		// The caller may have made dir already; only an empty one may go.
		if rerr := os.Remove(dir); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("wal: %s exists and is not an empty directory: %w", dir, rerr)
		}
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err == nil {
		renamed = true
		err = fileutil.SyncDir(parent)
	}
	if err == nil {
		w.lock, err = lockDir(dir)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	w.tail, w.off, w.headerEnd = f, off, off
	w.segs = []segment{{seq: 0, index: 0, name: name}}
	w.read = &readResult{metadata: bytes.Clone(w.metadata), hardState: &raftpb.HardState{}}
	return w, nil
}

// Open opens the log in dir for a restart from the snapshot at snap (the
// zero Marker when there is none). It reads and checks every segment from
// the one holding snap.Index on, repairs a torn tail of the last segment
// (see Repaired), and positions for appending. ReadAll returns what it read.
func Open(dir string, snap Marker) (*WAL, error) {
	return OpenWith(dir, snap, Options{})
}

// OpenWith is Open with options.
func OpenWith(dir string, snap Marker, opts Options) (*WAL, error) {
	dir = filepath.Clean(dir)
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	w, err := openLocked(dir, lock, snap, opts.withDefaults())
	if err != nil {
		lock.Close()
		return nil, err
	}
	return w, nil
}

func openLocked(dir string, lock *os.File, snap Marker, opts Options) (*WAL, error) {
	if err := removeStaleTemps(dir); err != nil {
		return nil, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("wal: no segment files in %s", dir)
	}
	start, err := startSegment(dir, segs, snap.Index)
	if err != nil {
		return nil, err
	}

	rr := &readResult{hardState: &raftpb.HardState{}}
	found := snap.Index == 0
	var lastMarker uint64
	walk, err := walkSegments(dir, segs[start:], func(rec walRecord) error {
		switch rec.typ {
		case recEntry:
			return appendEntry(&rr.ents, snap.Index, rec.entry)
		case recHardState:
			rr.hardState = rec.hardState
		case recSnapshot:
			idx := rec.snapshot.GetIndex()
			lastMarker = max(lastMarker, idx)
			if idx == snap.Index && snap.Index != 0 {
				if rec.snapshot.GetTerm() != snap.Term {
					return fmt.Errorf("%w: index %d has term %d in the log, %d in the snapshot",
						ErrSnapshotMismatch, idx, rec.snapshot.GetTerm(), snap.Term)
				}
				found = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: no marker for index %d term %d in %s", ErrSnapshotNotFound, snap.Index, snap.Term, dir)
	}
	rr.metadata = walk.metadata

	tailSeg := segs[len(segs)-1]
	f, err := os.OpenFile(filepath.Join(dir, tailSeg.name), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: open tail segment: %w", err)
	}
	if err := prepareTail(f, walk, opts); err != nil {
		f.Close()
		return nil, err
	}
	w := &WAL{
		dir: dir, opts: opts, lock: lock, metadata: walk.metadata,
		segs: segs, tail: f, off: walk.tailEnd, headerEnd: walk.headerEnd,
		lastIndex: snap.Index, hardState: proto.Clone(rr.hardState).(*raftpb.HardState),
		read: rr, repair: walk.repair,
	}
	if n := len(rr.ents); n > 0 {
		w.lastIndex = rr.ents[n-1].GetIndex()
	}
	// A marker past the last entry (a snapshot received from the leader)
	// means the log continues after it.
	w.lastIndex = max(w.lastIndex, lastMarker)
	return w, nil
}

// prepareTail cuts a torn tail and makes sure the rest of the segment is
// preallocated zeros, so the next open sees a clean end after new frames.
func prepareTail(f *os.File, walk walkResult, opts Options) error {
	if walk.repair != nil {
		if err := f.Truncate(walk.tailEnd); err != nil {
			return fmt.Errorf("wal: repair %s: %w", f.Name(), err)
		}
	}
	if !opts.noPrealloc {
		if err := preallocate(f, opts.SegmentSize); err != nil {
			return fmt.Errorf("wal: preallocate %s: %w", f.Name(), err)
		}
	}
	if walk.repair != nil {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("wal: repair %s: sync: %w", f.Name(), err)
		}
	}
	return nil
}

// appendEntry adds e to ents, which hold the entries after snapIndex. An
// entry at or below the end of ents means a new leader overwrote the tail of
// the log: the old tail from that index on is dropped, as raft did.
func appendEntry(ents *[]*raftpb.Entry, snapIndex uint64, e *raftpb.Entry) error {
	idx := e.GetIndex()
	if idx <= snapIndex {
		return nil // covered by the snapshot
	}
	pos := idx - snapIndex - 1
	if pos > uint64(len(*ents)) {
		return fmt.Errorf("entry %d leaves a gap after index %d", idx, snapIndex+uint64(len(*ents)))
	}
	*ents = append((*ents)[:pos], e)
	return nil
}

func removeStaleTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("wal: read dir: %w", err)
	}
	for _, e := range ents {
		// A segment temp file is an interrupted cut; the previous segment is
		// still the tail and holds everything that was synced.
		if strings.HasSuffix(e.Name(), segmentExt+".tmp") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("wal: remove stale temp segment: %w", err)
			}
		}
	}
	return nil
}

// Repaired returns what Open cut off a torn tail, or nil.
func (w *WAL) Repaired() *RepairReport {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.repair
}

// ReadAll returns the metadata, the last hard state (empty, never nil, when
// none was saved) and the entries after the snapshot Open was given. It can
// be called once; the WAL does not keep the entries afterwards.
func (w *WAL) ReadAll() (metadata []byte, hs *raftpb.HardState, ents []*raftpb.Entry, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.read == nil {
		return nil, nil, nil, errors.New("wal: ReadAll already called")
	}
	r := w.read
	w.read = nil
	return r.metadata, r.hardState, r.ents, nil
}

// Save appends the hard state and entries of one raft Ready as one frame and
// syncs it once. Nothing is written when there is nothing new (no entries
// and a hard state that is empty or unchanged).
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	saveHS := !raft.IsEmptyHardState(hs) && !sameHardState(hs, w.hardState)
	if !saveHS && len(ents) == 0 {
		return nil
	}
	if len(ents) > 0 {
		first := ents[0].GetIndex()
		if first == 0 || first > w.lastIndex+1 {
			return fmt.Errorf("wal: Save: entry %d does not follow the log (last index %d)", first, w.lastIndex)
		}
		for i, e := range ents {
			if e.GetIndex() != first+uint64(i) {
				return fmt.Errorf("wal: Save: entries not consecutive: %d after %d", e.GetIndex(), first+uint64(i)-1)
			}
		}
	}
	w.fb.reset()
	for _, e := range ents {
		if err := w.fb.addProto(recEntry, e); err != nil {
			return err
		}
	}
	if saveHS {
		if err := w.fb.addProto(recHardState, hs); err != nil {
			return err
		}
	}
	if err := w.writeFrame(); err != nil {
		return err
	}
	if len(ents) > 0 {
		w.lastIndex = ents[len(ents)-1].GetIndex()
	}
	if saveHS {
		w.hardState = proto.Clone(hs).(*raftpb.HardState)
	}
	return nil
}

func sameHardState(a, b *raftpb.HardState) bool {
	return a.GetTerm() == b.GetTerm() && a.GetVote() == b.GetVote() && a.GetCommit() == b.GetCommit()
}

// SaveSnapshot records, synced, that a snapshot at m exists, so Open can
// later start from it.
func (w *WAL) SaveSnapshot(m Marker) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.fb.reset()
	md := &raftpb.SnapshotMetadata{Index: new(m.Index), Term: new(m.Term), ConfState: m.ConfState}
	if err := w.fb.addProto(recSnapshot, md); err != nil {
		return err
	}
	if err := w.writeFrame(); err != nil {
		return err
	}
	w.lastIndex = max(w.lastIndex, m.Index)
	return nil
}

func (w *WAL) usable() error {
	if w.tail == nil {
		return ErrClosed
	}
	return w.err
}

// writeFrame seals the pending frame, moves to a new segment first when it
// would overflow the preallocated one, writes it with a single pwrite and
// syncs it. Any failure poisons the WAL: after a failed fsync the kernel may
// have dropped the dirty pages, so retrying could acknowledge lost data.
func (w *WAL) writeFrame() error {
	size := alignUp(int64(len(w.fb.buf)))
	if w.off+size > w.opts.SegmentSize && w.off > w.headerEnd {
		if err := w.cut(); err != nil {
			w.err = fmt.Errorf("wal: cut segment (reopen to recover): %w", err)
			return w.err
		}
	}
	frame := w.fb.finish(w.segs[len(w.segs)-1].seq, w.off)
	if _, err := w.tail.WriteAt(frame, w.off); err != nil {
		w.err = fmt.Errorf("wal: write (reopen to recover): %w", err)
		return w.err
	}
	start := time.Now()
	err := syncData(w.tail)
	if w.opts.OnFsync != nil {
		w.opts.OnFsync(time.Since(start))
	}
	if err != nil {
		w.err = fmt.Errorf("wal: fdatasync (reopen to recover): %w", err)
		return w.err
	}
	w.off += int64(len(frame))
	return nil
}

// cut closes the full tail segment and starts the next one. The old segment
// is shrunk to its data and fsynced first, so a non-last segment always ends
// exactly at its last frame; the new one is built under a temp name and
// renamed, so it either exists complete with its header or not at all.
func (w *WAL) cut() error {
	old := w.tail
	if err := old.Truncate(w.off); err != nil {
		return err
	}
	if err := old.Sync(); err != nil {
		return err
	}
	seq := w.segs[len(w.segs)-1].seq + 1
	index := w.lastIndex + 1
	name := segmentName(seq, index)
	tmp := filepath.Join(w.dir, name+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	off, err := w.initSegment(f, seq, index)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(w.dir, name))
	}
	if err == nil {
		err = fileutil.SyncDir(w.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	old.Close()
	w.tail, w.off, w.headerEnd = f, off, off
	w.segs = append(w.segs, segment{seq: seq, index: index, name: name})
	return nil
}

// initSegment preallocates f and writes its header frame: the segment's
// identity, the metadata and the current hard state, so that a log whose
// older segments were purged still has all three.
func (w *WAL) initSegment(f *os.File, seq, index uint64) (int64, error) {
	if !w.opts.noPrealloc {
		if err := preallocate(f, w.opts.SegmentSize); err != nil {
			return 0, err
		}
	}
	var b frameBuilder
	b.reset()
	var h [16]byte
	binary.LittleEndian.PutUint64(h[0:8], seq)
	binary.LittleEndian.PutUint64(h[8:16], index)
	b.addRaw(recSegmentHeader, h[:])
	b.addRaw(recMetadata, w.metadata)
	if !raft.IsEmptyHardState(w.hardState) {
		if err := b.addProto(recHardState, w.hardState); err != nil {
			return 0, err
		}
	}
	frame := b.finish(seq, 0)
	if _, err := f.WriteAt(frame, 0); err != nil {
		return 0, err
	}
	// Full fsync: the file is new, its size and allocation must be durable.
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return int64(len(frame)), nil
}

// PurgeBefore deletes the segments that Open would never read again for a
// snapshot at index or later: all segments before the one where reading for
// index starts. It returns the removed file names. Call it only once the
// snapshot at index is durable in both the WAL and the snap directory.
func (w *WAL) PurgeBefore(index uint64) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tail == nil {
		return nil, ErrClosed
	}
	start := 0
	for i, s := range w.segs {
		if s.index <= index {
			start = i
		}
	}
	var removed []string
	// Oldest first, so an interruption leaves a contiguous suffix.
	for _, s := range w.segs[:start] {
		if err := os.Remove(filepath.Join(w.dir, s.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.segs = w.segs[len(removed):]
			return removed, fmt.Errorf("wal: purge: %w", err)
		}
		removed = append(removed, s.name)
	}
	w.segs = w.segs[start:]
	if len(removed) > 0 {
		if err := fileutil.SyncDir(w.dir); err != nil {
			return removed, fmt.Errorf("wal: purge: %w", err)
		}
	}
	return removed, nil
}

// Close releases the files and the directory lock. Everything acknowledged
// is already synced, so Close does not sync.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tail == nil {
		return nil
	}
	err := w.tail.Close()
	w.tail = nil
	if lerr := w.lock.Close(); err == nil {
		err = lerr
	}
	return err
}
