package wal

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// The kill test re-executes the test binary as a writer. TestMain turns the
// binary into that writer when the environment says so.
const (
	envKillDir  = "ETCD_NODE_WAL_KILL_DIR"
	envKillSeed = "ETCD_NODE_WAL_KILL_SEED"
	killSegSize = 32 << 10 // small, so kills land around segment cuts too
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envKillDir); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv(envKillSeed), 10, 64)
		if err := killWriter(dir, seed); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// killEntrySize varies the entry size so frames of many lengths are torn.
func killEntrySize(index uint64) int { return 20 + int(index*7919%700) }

// openLatest opens dir at its newest committed snapshot marker.
func openLatest(dir string) (*WAL, Marker, error) {
	markers, err := ValidMarkers(dir)
	if err != nil {
		return nil, Marker{}, err
	}
	var at Marker
	if len(markers) > 0 {
		at = markers[len(markers)-1]
	}
	w, err := OpenWith(dir, at, Options{SegmentSize: killSegSize})
	return w, at, err
}

// killWriter appends batches forever and prints "ok N" for every index N once
// the Save holding it returned; now and then it records a snapshot and
// purges, like a member does.
func killWriter(dir string, seed uint64) error {
	var w *WAL
	var err error
	next := uint64(1)
	if !Exist(dir) {
		w, err = CreateWith(dir, []byte("kill"), Options{SegmentSize: killSegSize})
	} else {
		var at Marker
		w, at, err = openLatest(dir)
		if err == nil {
			var ents []*raftpb.Entry
			_, _, ents, err = w.ReadAll()
			next = at.Index + uint64(len(ents)) + 1
		}
	}
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	out := bufio.NewWriter(os.Stdout)
	for {
		n := 1 + uint64(rng.IntN(12))
		var ents []*raftpb.Entry
		for i := next; i < next+n; i++ {
			ents = append(ents, testEntry(i, 1, killEntrySize(i)))
		}
		last := next + n - 1
		if err := w.Save(hardState(1, 1, last), ents); err != nil {
			return err
		}
		for i := next; i <= last; i++ {
			fmt.Fprintf(out, "ok %d\n", i)
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if rng.IntN(20) == 0 && last > 10 {
			if err := w.SaveSnapshot(Marker{Index: last - 5, Term: 1}); err != nil {
				return err
			}
			if _, err := w.PurgeBefore(last - 5); err != nil {
				return err
			}
		}
		next = last + 1
	}
}

func TestKill9(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	rng := rand.New(rand.NewPCG(42, 7))
	var acked uint64
	const rounds = 12
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envKillDir+"="+dir, fmt.Sprintf("%s=%d", envKillSeed, round+1))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of acknowledgements; the writer is
		// somewhere inside its loop by then (Save, purge, or a cut).
		killAfter := rng.IntN(400)
		sc := bufio.NewScanner(stdout)
		seen := 0
		readAck := func() bool {
			if !sc.Scan() {
				return false
			}
			idx, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "ok "), 10, 64)
			if err != nil || idx != acked+1 {
				t.Fatalf("round %d: unexpected line %q after %d", round, sc.Text(), acked)
			}
			acked = idx
			seen++
			return true
		}
		for seen < killAfter && readAck() {
		}
		if seen < killAfter {
			cmd.Wait()
			t.Fatalf("round %d: writer stopped after %d acks: %s", round, seen, stderr.String())
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		// Lines already in the pipe were acknowledged before the kill.
		for readAck() {
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()

		w, at, err := openLatest(dir)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		_, hs, ents, err := w.ReadAll()
		mustClose(t, w)
		if err != nil {
			t.Fatal(err)
		}
		last := at.Index + uint64(len(ents))
		if last < acked {
			t.Fatalf("round %d: acknowledged %d, recovered only up to %d", round, acked, last)
		}
		// Anything past the acknowledgements was synced but not yet
		// printed; it is kept and later rounds continue after it.
		for i, e := range ents {
			if want := testEntry(at.Index+uint64(i)+1, 1, killEntrySize(at.Index+uint64(i)+1)); !equalEntry(e, want) {
				t.Fatalf("round %d: entry %d differs", round, want.GetIndex())
			}
		}
		if hs.GetCommit() != last {
			t.Fatalf("round %d: hard state commit %d, last index %d", round, hs.GetCommit(), last)
		}
		t.Logf("round %d: killed after %d new acks, %d acked in total, %d recovered, snapshot at %d, %d segments",
			round, seen, acked, last, at.Index, len(segmentFiles(t, dir)))
		acked = last
	}
}

func equalEntry(a, b *raftpb.Entry) bool {
	return a.GetIndex() == b.GetIndex() && a.GetTerm() == b.GetTerm() && string(a.GetData()) == string(b.GetData())
}

// TestLockAcrossProcesses opens a WAL that a live writer process holds.
func TestLockAcrossProcesses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envKillDir+"="+dir, envKillSeed+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()
	// The first acknowledgement means the writer holds the lock.
	if !bufio.NewScanner(stdout).Scan() {
		t.Fatal("writer printed nothing")
	}
	w, err := OpenWith(dir, Marker{}, Options{})
	if err == nil {
		w.Close()
		t.Fatal("opened a WAL held by another process")
	}
	if want := "wal dir " + dir + " is locked by another process"; !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}
