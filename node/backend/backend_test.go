package backend

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var testBucket = []byte("members")

// openTest opens a backend whose batch is committed only on demand, so tests decide
// exactly what is on disk.
func openTest(t *testing.T, path string, opts Options) *Backend {
	t.Helper()
	if opts.BatchInterval == 0 {
		opts.BatchInterval = time.Hour
	}
	b, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func dbPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "data", "member", "snap", "db")
}

func mustGet(t *testing.T, b *Backend, key string) (string, bool) {
	t.Helper()
	v, ok, err := b.Get(testBucket, []byte(key))
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return string(v), ok
}

// copyFile copies the db file of a running backend: what a crash at this moment
// would leave on disk, since bbolt writes the file only when it commits.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "crashed.db")
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestOpenCreatesPrivateDirsAndFile(t *testing.T) {
	path := dbPath(t)
	b := openTest(t, path, Options{})
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{filepath.Dir(path), 0o700}, {filepath.Dir(filepath.Dir(path)), 0o700}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.mode {
			t.Errorf("%s: mode %o, want %o", c.path, got, c.mode)
		}
	}
	if b.SizeBytes() <= 0 || b.SizeInUseBytes() <= 0 {
		t.Errorf("fresh db sizes = %d/%d, want > 0 (etcdctl divides by dbSize)", b.SizeBytes(), b.SizeInUseBytes())
	}
}

func TestReadsSeeUncommittedAndCommittedWrites(t *testing.T) {
	b := openTest(t, dbPath(t), Options{})
	steps := []struct {
		name   string
		do     func() error
		key    string
		want   string
		exists bool
	}{
		{"put uncommitted", func() error { return b.Put(testBucket, []byte("a"), []byte("1")) }, "a", "1", true},
		{"commit", b.ForceCommit, "a", "1", true},
		{"overwrite uncommitted", func() error { return b.Put(testBucket, []byte("a"), []byte("2")) }, "a", "2", true},
		{"delete uncommitted", func() error { return b.Delete(testBucket, []byte("a")) }, "a", "", false},
		{"commit delete", b.ForceCommit, "a", "", false},
		{"empty value", func() error { return b.Put(testBucket, []byte("e"), nil) }, "e", "", true},
		{"missing key", func() error { return nil }, "zz", "", false},
		{"delete missing key", func() error { return b.Delete([]byte("nobucket"), []byte("x")) }, "zz", "", false},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, ok := mustGet(t, b, s.key)
		if got != s.want || ok != s.exists {
			t.Errorf("%s: Get(%s) = %q,%v want %q,%v", s.name, s.key, got, ok, s.want, s.exists)
		}
	}
}

func TestForEachMergesBatchInKeyOrder(t *testing.T) {
	b := openTest(t, dbPath(t), Options{})
	for _, k := range []string{"c", "a"} {
		if err := b.Put(testBucket, []byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(testBucket, []byte("b"), []byte("vb")); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(testBucket, []byte("c")); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := b.ForEach(testBucket, func(k, v []byte) error {
		got = append(got, string(k)+"="+string(v))
		// Calling back into the backend must not deadlock.
		_, _, err := b.Get(testBucket, k)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a=va,b=vb" {
		t.Errorf("ForEach = %v, want [a=va b=vb]", got)
	}
}

func TestBadInputIsAnError(t *testing.T) {
	b := openTest(t, dbPath(t), Options{})
	cases := []struct {
		name           string
		bucket, key, v []byte
	}{
		{"empty key", testBucket, nil, []byte("x")},
		{"empty bucket", nil, []byte("k"), []byte("x")},
		{"huge key", testBucket, bytes.Repeat([]byte("k"), 40000), nil},
	}
	for _, c := range cases {
		if err := b.Put(c.bucket, c.key, c.v); err == nil {
			t.Errorf("%s: Put succeeded, want error", c.name)
		}
	}
	// The backend is still healthy afterwards.
	if err := b.Put(testBucket, []byte("k"), []byte("v")); err != nil {
		t.Fatalf("Put after bad input: %v", err)
	}
}

func TestConsistentIndexSurvivesRestart(t *testing.T) {
	path := dbPath(t)
	b, err := Open(path, Options{BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if i, term := b.ConsistentIndex(); i != 0 || term != 0 {
		t.Fatalf("fresh ConsistentIndex = %d/%d", i, term)
	}
	for _, s := range []struct{ i, term uint64 }{{5, 2}, {9, 3}, {7, 3}} {
		if err := b.SetConsistentIndex(s.i, s.term); err != nil {
			t.Fatal(err)
		}
	}
	if i, term := b.ConsistentIndex(); i != 9 || term != 3 {
		t.Fatalf("ConsistentIndex = %d/%d, want 9/3 (a lower index must be ignored)", i, term)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if _, _, err := b.Get(testBucket, []byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	b2 := openTest(t, path, Options{})
	if i, term := b2.ConsistentIndex(); i != 9 || term != 3 {
		t.Errorf("after reopen ConsistentIndex = %d/%d, want 9/3", i, term)
	}
}

// TestCrashLosesOnlyTheOpenBatch: data and consistent index are committed together,
// so a crash leaves a file whose index says exactly where WAL replay starts.
func TestCrashLosesOnlyTheOpenBatch(t *testing.T) {
	path := dbPath(t)
	b := openTest(t, path, Options{})
	apply := func(index uint64, key string) {
		t.Helper()
		err := b.Update(func(tx *WriteTx) error {
			if err := tx.Put(testBucket, []byte(key), []byte(key)); err != nil {
				return err
			}
			return tx.SetConsistentIndex(index, 1)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	apply(1, "one")
	apply(2, "two")
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	apply(3, "three")
	crashed := copyFile(t, path)

	c := openTest(t, crashed, Options{})
	if i, _ := c.ConsistentIndex(); i != 2 {
		t.Errorf("crashed ConsistentIndex = %d, want 2", i)
	}
	for _, k := range []struct {
		key    string
		exists bool
	}{{"one", true}, {"two", true}, {"three", false}} {
		if _, ok := mustGet(t, c, k.key); ok != k.exists {
			t.Errorf("crashed copy: %s exists=%v, want %v", k.key, ok, k.exists)
		}
	}
	// The live backend still has everything.
	if _, ok := mustGet(t, b, "three"); !ok {
		t.Error("live backend lost an uncommitted write")
	}
}

func TestBatchLimitAndIntervalCommit(t *testing.T) {
	var commits atomic.Int64
	path := dbPath(t)
	b := openTest(t, path, Options{BatchLimit: 3, OnCommit: func(time.Duration) { commits.Add(1) }})
	for i := range 3 {
		if got := commits.Load(); got != 0 {
			t.Fatalf("after %d puts: %d commits, want 0", i, got)
		}
		if err := b.Put(testBucket, fmt.Appendf(nil, "k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if got := commits.Load(); got != 1 {
		t.Fatalf("BatchLimit reached: %d commits, want 1", got)
	}
	c := openTest(t, copyFile(t, path), Options{})
	if _, ok := mustGet(t, c, "k2"); !ok {
		t.Error("BatchLimit commit did not reach the file")
	}

	var ticks atomic.Int64
	b2 := openTest(t, dbPath(t), Options{BatchInterval: 5 * time.Millisecond, OnCommit: func(time.Duration) { ticks.Add(1) }})
	if err := b2.Put(testBucket, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ticks.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no commit within 10s with BatchInterval 5ms")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSnapshotAndReplaceDB(t *testing.T) {
	b := openTest(t, dbPath(t), Options{})
	if err := b.Put(testBucket, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := b.SetConsistentIndex(42, 7); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	n, err := b.Snapshot(&snap)
	if err != nil || n != int64(snap.Len()) || n == 0 {
		t.Fatalf("Snapshot = %d, %v (buffer %d)", n, err, snap.Len())
	}

	target := dbPath(t)
	old := openTest(t, target, Options{})
	if err := old.Put(testBucket, []byte("old"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	// A broken snapshot must leave the old file in place.
	if err := ReplaceDB(target, strings.NewReader("not a bbolt file, not at all, really")); err == nil {
		t.Fatal("ReplaceDB accepted garbage")
	}
	kept := openTest(t, target, Options{})
	if _, ok := mustGet(t, kept, "old"); !ok {
		t.Fatal("failed ReplaceDB damaged the old file")
	}
	if err := kept.Close(); err != nil {
		t.Fatal(err)
	}

	if err := ReplaceDB(target, bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, target, Options{})
	if v, ok := mustGet(t, r, "k"); !ok || v != "v" {
		t.Errorf("restored k = %q,%v", v, ok)
	}
	if _, ok := mustGet(t, r, "old"); ok {
		t.Error("restored db still has the old key")
	}
	if i, term := r.ConsistentIndex(); i != 42 || term != 7 {
		t.Errorf("restored ConsistentIndex = %d/%d, want 42/7", i, term)
	}
	entries, _ := os.ReadDir(filepath.Dir(target))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestUnusableFilesGiveClearErrors(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("etcd"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}

	// A valid file cut in half.
	src := dbPath(t)
	b := openTest(t, src, Options{})
	for i := range 2000 {
		if err := b.Put(testBucket, fmt.Appendf(nil, "key-%05d", i), bytes.Repeat([]byte("v"), 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	used := b.SizeBytes() // bbolt preallocates: the file may be longer than its used range
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.db")
	if err := os.WriteFile(truncated, data[:used/2], 0o600); err != nil {
		t.Fatal(err)
	}

	locked := dbPath(t)
	openTest(t, locked, Options{})

	for _, c := range []struct {
		name, path, want string
	}{
		{"garbage", garbage, "invalid database"},
		{"truncated", truncated, "truncated"},
		{"locked", locked, "locked"},
	} {
		_, err := Open(c.path, Options{LockTimeout: 100 * time.Millisecond})
		if err == nil {
			t.Errorf("%s: Open succeeded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q should name the file and say %q", c.name, err, c.want)
		}
	}
}

func TestDefragShrinksAndKeepsData(t *testing.T) {
	b := openTest(t, dbPath(t), Options{})
	val := bytes.Repeat([]byte("x"), 1024)
	for i := range 3000 {
		if err := b.Put(testBucket, fmt.Appendf(nil, "k%05d", i), val); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetConsistentIndex(3000, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	for i := range 2990 {
		if err := b.Delete(testBucket, fmt.Appendf(nil, "k%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	before, inUse := b.SizeBytes(), b.SizeInUseBytes()
	if inUse >= before {
		t.Errorf("after deletes in-use %d should be below size %d", inUse, before)
	}
	if err := b.Defrag(); err != nil {
		t.Fatal(err)
	}
	if after := b.SizeBytes(); after >= before/2 {
		t.Errorf("Defrag: size %d -> %d, want a large drop", before, after)
	}
	if v, ok := mustGet(t, b, "k02999"); !ok || v != string(val) {
		t.Error("Defrag lost a live key")
	}
	if i, _ := b.ConsistentIndex(); i != 3000 {
		t.Errorf("ConsistentIndex after Defrag = %d", i)
	}
	if err := b.Put(testBucket, []byte("after"), []byte("1")); err != nil {
		t.Fatalf("write after Defrag: %v", err)
	}
}

// TestConcurrentReadersDuringCommits hammers reads while a writer commits every few
// writes: a reader must always see every write that completed before it started,
// including across the window where the shared snapshot is being replaced.
func TestConcurrentReadersDuringCommits(t *testing.T) {
	b := openTest(t, dbPath(t), Options{BatchLimit: 7})
	const total = 1000
	var written atomic.Int64 // writes [0, written) are complete
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for written.Load() < total {
				n := written.Load()
				if n == 0 {
					continue
				}
				i := rng.Int64N(n)
				v, ok, err := b.Get(testBucket, fmt.Appendf(nil, "k%06d", i))
				if err != nil || !ok || string(v) != fmt.Sprint(i) {
					errc <- fmt.Errorf("read k%06d after it was written: %q %v %v", i, v, ok, err)
					return
				}
			}
		}()
	}
	for i := range total {
		if err := b.Put(testBucket, fmt.Appendf(nil, "k%06d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		written.Store(int64(i + 1))
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestCommitsThatRemapDoNotDeadlock: with a tiny initial mmap every few commits
// must grow the mapping, which waits for all open read transactions. Readers that
// keep reading throughout must not hold a snapshot that the commit waits for.
func TestCommitsThatRemapDoNotDeadlock(t *testing.T) {
	b := openTest(t, dbPath(t), Options{BatchLimit: 20, InitialMmapSize: 32 << 10})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := b.Get(testBucket, []byte("k000001")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan error, 1)
	go func() {
		val := bytes.Repeat([]byte("v"), 1024)
		for i := range 1500 {
			if err := b.Put(testBucket, fmt.Appendf(nil, "k%06d", i), val); err != nil {
				done <- err
				return
			}
		}
		done <- b.ForceCommit()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("writer stuck: a commit that grows the mmap waits for a read transaction that never ends")
	}
	close(stop)
	wg.Wait()
	if b.SizeBytes() < 1<<20 {
		t.Errorf("db only %d bytes: the test did not grow the mapping", b.SizeBytes())
	}
}
