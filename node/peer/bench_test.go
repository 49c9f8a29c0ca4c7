package peer

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// benchMsg builds a MsgApp of about 300 bytes on the wire whose entry
// carries its send time.
func benchMsg(index uint64) *raftpb.Message {
	data := make([]byte, 256)
	binary.BigEndian.PutUint64(data, uint64(time.Now().UnixNano()))
	m := msg(raftpb.MsgApp, 1, 2, index)
	m.LogTerm, m.Commit = proto.Uint64(1), proto.Uint64(index)
	m.Entries = []*raftpb.Entry{{Term: proto.Uint64(1), Index: proto.Uint64(index + 1), Type: raftpb.EntryNormal.Enum(), Data: data}}
	return m
}

// benchPair starts two transports and records the one-way latency of every
// message that reaches the second one.
func benchPair(b *testing.B, notifyEvery int64) (a *node, lat *[]int64, got *atomic.Int64, tick chan struct{}) {
	got = new(atomic.Int64)
	tick = make(chan struct{}, 1)
	samples := make([]int64, 0, b.N)
	lat = &samples
	recv := startNode(b, 2, 7, "127.0.0.1:0")
	recv.raft.onProcess = func(m *raftpb.Message) {
		sent := int64(binary.BigEndian.Uint64(m.GetEntries()[0].GetData()))
		*lat = append(*lat, time.Now().UnixNano()-sent)
		if n := got.Add(1); n%notifyEvery == 0 || n == int64(b.N) {
			select {
			case tick <- struct{}{}:
			default:
			}
		}
	}
	a = startNode(b, 1, 7, "127.0.0.1:0")
	connect(a, recv)
	waitFor(b, "stream", func() bool { return !a.tr.ActiveSince(2).IsZero() })
	return a, lat, got, tick
}

func report(b *testing.B, samples *[]int64, elapsed time.Duration) {
	lat := *samples // complete: every message has been counted
	if len(lat) != b.N {
		b.Fatalf("%d of %d messages arrived", len(lat), b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)]) / 1e3 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkMsgApp streams 300-byte MsgApps from one transport to another
// in Ready-sized batches, keeping at most `window` in flight so the queue
// never overflows (a real leader is limited by raft's inflight window).
func BenchmarkMsgApp(b *testing.B) {
	const batch, window = 32, 512
	a, lat, got, tick := benchPair(b, 256)
	b.ResetTimer()
	start := time.Now()
	msgs := make([]*raftpb.Message, 0, batch)
	for i := 0; i < b.N; {
		for int64(i)-got.Load() > window {
			<-tick
		}
		msgs = msgs[:0]
		for ; len(msgs) < batch && i < b.N; i++ {
			msgs = append(msgs, benchMsg(uint64(i)))
		}
		a.tr.Send(msgs)
	}
	for got.Load() < int64(b.N) {
		<-tick
	}
	elapsed := time.Since(start)
	b.StopTimer()
	report(b, lat, elapsed)
	if n := a.raft.unreachableCount(2); n != 0 {
		b.Fatalf("%d drops reported", n)
	}
}

// BenchmarkMsgAppLatency sends one message at a time: the unloaded one-way
// latency.
func BenchmarkMsgAppLatency(b *testing.B) {
	a, lat, got, tick := benchPair(b, 1)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		a.tr.Send([]*raftpb.Message{benchMsg(uint64(i))})
		for got.Load() <= int64(i) {
			<-tick
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	report(b, lat, elapsed)
}
