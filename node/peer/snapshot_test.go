package peer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func snapMsg(from, to uint64) *raftpb.Message {
	m := msg(raftpb.MsgSnap, from, to, 0)
	m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(100),
		Term:      proto.Uint64(3),
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}},
	}}
	return m
}

// TestSnapshot streams a db image with a MsgSnap and checks the bytes, the
// delivery to raft and the status reported to the sender's raft.
func TestSnapshot(t *testing.T) {
	db := make([]byte, 20<<20)
	rand.NewChaCha8([32]byte{1}).Read(db)

	type source func(m *raftpb.Message) (io.ReadCloser, int64, error)
	full := func(size int64) source {
		return func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(db)), size, nil
		}
	}
	for _, tc := range []struct {
		name     string
		source   source
		sinkErr  error
		wantOK   bool
		wantSink int // bytes the sink must have seen when wantOK
	}{
		{name: "20MB with size", source: full(int64(len(db))), wantOK: true, wantSink: len(db)},
		{name: "20MB size unknown", source: full(-1), wantOK: true, wantSink: len(db)},
		{name: "empty db", source: func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(nil)), 0, nil
		}, wantOK: true},
		{name: "sink fails", source: full(int64(len(db))), sinkErr: errors.New("disk full")},
		{name: "source shorter than promised", source: func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(db[:1000])), 5000, nil
		}},
		{name: "source fails", source: func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return nil, 0, errors.New("no db")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []byte
			a := startNode(t, 1, 7, "127.0.0.1:0", func(c *Config) { c.SnapshotSource = tc.source })
			b := startNode(t, 2, 7, "127.0.0.1:0", func(c *Config) {
				c.SnapshotSink = func(m *raftpb.Message, r io.Reader) error {
					if m.GetSnapshot().GetMetadata().GetIndex() != 100 {
						return errors.New("metadata lost")
					}
					data, err := io.ReadAll(r)
					if err != nil {
						return err
					}
					got = data
					return tc.sinkErr
				}
			})
			connect(a, b)
			a.tr.Send([]*raftpb.Message{snapMsg(1, 2)})
			waitFor(t, "snapshot report", func() bool { return len(a.raft.snapReports()) > 0 })

			rep := a.raft.snapReports()
			wantStatus := raft.SnapshotFailure
			if tc.wantOK {
				wantStatus = raft.SnapshotFinish
			}
			if len(rep) != 1 || rep[0] != (snapReport{2, wantStatus}) {
				t.Fatalf("reports %v, want one %v for 2", rep, wantStatus)
			}
			recv := b.raft.received()
			if !tc.wantOK {
				if len(recv) != 0 {
					t.Fatalf("raft got %d messages after a failed snapshot", len(recv))
				}
				waitFor(t, "unreachable report", func() bool { return a.raft.unreachableCount(2) > 0 })
				return
			}
			if len(got) != tc.wantSink || sha256.Sum256(got) != sha256.Sum256(db[:tc.wantSink]) {
				t.Fatalf("sink got %d bytes (sha differs or size), want %d", len(got), tc.wantSink)
			}
			if len(recv) != 1 || recv[0].GetType() != raftpb.MsgSnap || !proto.Equal(recv[0].GetSnapshot(), snapMsg(1, 2).GetSnapshot()) {
				t.Fatalf("raft got %v", recv)
			}
		})
	}
}

func TestExactReader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    string
		n       uint64
		want    string
		wantErr error
	}{
		{"exact", "abcdef", 6, "abcdef", nil},
		{"longer body is cut", "abcdef", 3, "abc", nil},
		{"short body", "ab", 3, "ab", io.ErrUnexpectedEOF},
		{"unknown size", "abcdef", unknownSize, "abcdef", nil},
		{"empty", "", 0, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &exactReader{r: bytes.NewReader([]byte(tc.data)), n: tc.n}
			got, err := io.ReadAll(e)
			if string(got) != tc.want || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			if e.done != (err == nil) {
				t.Fatalf("done = %v after err %v", e.done, err)
			}
		})
	}
}

// TestStopDuringStalledSnapshot stops the receiver while an upload is stuck
// half way: Stop must not wait for the sender, and the sender must hear
// that the snapshot failed.
func TestStopDuringStalledSnapshot(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	a := startNode(t, 1, 7, "127.0.0.1:0", func(c *Config) {
		c.SnapshotSource = func(*raftpb.Message) (io.ReadCloser, int64, error) { return pr, 10 << 20, nil }
	})
	reading := make(chan struct{})
	b := startNode(t, 2, 7, "127.0.0.1:0", func(c *Config) {
		c.SnapshotSink = func(_ *raftpb.Message, r io.Reader) error {
			var one [1]byte
			if _, err := io.ReadFull(r, one[:]); err != nil {
				return err
			}
			close(reading)
			_, err := io.Copy(io.Discard, r)
			return err
		}
	})
	connect(a, b)
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2)})
	go pw.Write(make([]byte, 1<<20)) // then the source stalls
	<-reading

	stopped := make(chan struct{})
	go func() {
		b.tr.Stop() // the listener stays open: only the transport ends it
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waited for a stalled snapshot upload")
	}
	waitFor(t, "failure report", func() bool {
		r := a.raft.snapReports()
		return len(r) == 1 && r[0] == snapReport{2, raft.SnapshotFailure}
	})
	if len(b.raft.received()) != 0 {
		t.Fatal("a partial snapshot reached raft")
	}
}
