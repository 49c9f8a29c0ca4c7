// Package snap stores raft snapshots of etcd-node as files named
// %016x-%016x.snap (term, index). The snapshot's Data holds only the member's
// metadata (membership JSON); the key-value state travels as the bbolt file.
//
// File format: magic "eSNP" | crc32c(payload) u32 little endian | payload,
// where payload is the protobuf encoding of raftpb.Snapshot.
package snap

import (
	"encoding/binary"
	"errors"
	"etcdctl-wizard/node/fileutil"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrNoSnapshot is returned by Load when no usable snapshot file exists.
var ErrNoSnapshot = errors.New("snap: no available snapshot")

const (
	fileExt    = ".snap"
	brokenExt  = ".broken"
	tempMarker = ".tmp-"
	magic      = "eSNP"
	headerLen  = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshotter reads and writes the snapshot files of one directory.
type Snapshotter struct {
	dir string
}

// New returns a Snapshotter for dir; the directory is created on first save.
func New(dir string) *Snapshotter {
	return &Snapshotter{dir: dir}
}

// Dir is the directory the snapshots live in.
func (s *Snapshotter) Dir() string { return s.dir }

func fileName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", term, index, fileExt)
}

func parseFileName(name string) (term, index uint64, ok bool) {
	base, found := strings.CutSuffix(name, fileExt)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	term, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return term, index, true
}

// SaveSnap writes snap durably: temp file, fsync, rename, fsync of the
// directory. An empty snapshot (index 0) is not written.
func (s *Snapshotter) SaveSnap(snap *raftpb.Snapshot) error {
	if raft.IsEmptySnap(snap) {
		return nil
	}
	payload, err := proto.Marshal(snap)
	if err != nil {
		return fmt.Errorf("snap: marshal: %w", err)
	}
	buf := make([]byte, headerLen, headerLen+len(payload))
	copy(buf, magic)
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(payload, castagnoli))
	buf = append(buf, payload...)

	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("snap: create dir: %w", err)
	}
	md := snap.GetMetadata()
	name := fileName(md.GetTerm(), md.GetIndex())
	f, err := os.CreateTemp(s.dir, name+tempMarker+"*")
	if err != nil {
		return fmt.Errorf("snap: create temp file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snap: save %s: %w", name, err)
	}
	if err := fileutil.SyncDir(s.dir); err != nil {
		return fmt.Errorf("snap: save %s: sync dir: %w", name, err)
	}
	return nil
}

// Load returns the newest valid snapshot.
func (s *Snapshotter) Load() (*raftpb.Snapshot, error) {
	return s.LoadNewestAvailable(nil)
}

// LoadNewestAvailable returns the newest valid snapshot for which ok(term,
// index) is true (any, when ok is nil). The member passes the snapshot
// markers found in the WAL, since only those snapshots can be continued with
// the log. Files that fail their checksum or do not decode are renamed to
// *.broken and skipped; an I/O error reading a file is returned, because
// silently falling back to an older snapshot could need purged log entries.
func (s *Snapshotter) LoadNewestAvailable(ok func(term, index uint64) bool) (*raftpb.Snapshot, error) {
	names, err := s.snapNames()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if ok != nil && !ok(n.term, n.index) {
			continue
		}
		path := filepath.Join(s.dir, n.name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("snap: read %s: %w", path, err)
		}
		snap, derr := decode(data, n.term, n.index)
		if derr != nil {
			if err := os.Rename(path, path+brokenExt); err != nil {
				return nil, fmt.Errorf("snap: %s is broken (%v) and could not be set aside: %w", path, derr, err)
			}
			continue
		}
		return snap, nil
	}
	return nil, ErrNoSnapshot
}

func decode(data []byte, term, index uint64) (*raftpb.Snapshot, error) {
	if len(data) < headerLen || string(data[:4]) != magic {
		return nil, errors.New("not a snapshot file")
	}
	payload := data[headerLen:]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(data[4:8]) {
		return nil, errors.New("checksum mismatch")
	}
	snap := &raftpb.Snapshot{}
	if err := proto.Unmarshal(payload, snap); err != nil {
		return nil, err
	}
	md := snap.GetMetadata()
	if md.GetTerm() != term || md.GetIndex() != index {
		return nil, fmt.Errorf("file name says term %d index %d, content term %d index %d",
			term, index, md.GetTerm(), md.GetIndex())
	}
	return raftpb.EnsureSnapshot(snap), nil
}

type snapName struct {
	name        string
	term, index uint64
}

// snapNames lists the snapshot files newest first (by index, then term) and
// clears temp files left by a crash during SaveSnap.
func (s *Snapshotter) snapNames() ([]snapName, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snap: read dir: %w", err)
	}
	var out []snapName
	for _, e := range ents {
		if strings.Contains(e.Name(), fileExt+tempMarker) {
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil {
				return nil, fmt.Errorf("snap: remove stale temp file: %w", err)
			}
			continue
		}
		if term, index, ok := parseFileName(e.Name()); ok {
			out = append(out, snapName{name: e.Name(), term: term, index: index})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].index != out[j].index {
			return out[i].index > out[j].index
		}
		return out[i].term > out[j].term
	})
	return out, nil
}

// Purge deletes all but the newest keep snapshot files and returns their
// names, so the directory does not grow with every snapshot.
func (s *Snapshotter) Purge(keep int) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("snap: purge must keep at least one snapshot, got %d", keep)
	}
	names, err := s.snapNames()
	if err != nil || len(names) <= keep {
		return nil, err
	}
	var removed []string
	for _, n := range names[keep:] {
		if err := os.Remove(filepath.Join(s.dir, n.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("snap: purge: %w", err)
		}
		removed = append(removed, n.name)
	}
	return removed, nil
}
