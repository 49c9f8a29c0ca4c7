package peer

import (
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// randomMessage sets each field with some probability, including empty
// but present byte fields, which must survive as present.
func randomMessage(r *rand.Rand) *raftpb.Message {
	maybe := func() bool { return r.IntN(2) == 0 }
	u := func() *uint64 { return proto.Uint64(r.Uint64() >> r.IntN(64)) }
	m := &raftpb.Message{}
	if maybe() {
		m.Type = raftpb.MessageType(r.IntN(24)).Enum()
	}
	for _, f := range []**uint64{&m.To, &m.From, &m.Term, &m.LogTerm, &m.Index, &m.Commit, &m.Vote, &m.RejectHint} {
		if maybe() {
			*f = u()
		}
	}
	if maybe() {
		m.Reject = proto.Bool(maybe())
	}
	if maybe() {
		m.Context = make([]byte, r.IntN(3)*8)
	}
	for range r.IntN(4) {
		e := &raftpb.Entry{}
		if maybe() {
			e.Type = raftpb.EntryType(r.IntN(3)).Enum()
		}
		if maybe() {
			e.Term = u()
		}
		if maybe() {
			e.Index = u()
		}
		if maybe() {
			e.Data = make([]byte, r.IntN(3)*100)
			for i := range e.Data {
				e.Data[i] = byte(r.Uint32())
			}
		}
		m.Entries = append(m.Entries, e)
	}
	return m
}

func TestDecodeFastMatchesProto(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		m := randomMessage(r)
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := decodeFast(b)
		if !ok {
			t.Fatalf("case %d: fast path refused %v", i, m)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("case %d: decoded %v, want %v", i, got, m)
		}
		// Reusing the payload buffer must not change the decoded message.
		clear(b)
		if !proto.Equal(got, m) {
			t.Fatalf("case %d: message aliases the payload buffer", i)
		}
	}
}

// TestDecodeFallback checks the shapes the fast path leaves to proto.
func TestDecodeFallback(t *testing.T) {
	snap := snapMsg(1, 2)
	withResp := msg(raftpb.MsgStorageAppend, 1, 2, 3)
	withResp.Responses = []*raftpb.Message{msg(raftpb.MsgAppResp, 2, 1, 3)}
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"snapshot", mustMarshal(t, snap)},
		{"responses", mustMarshal(t, withResp)},
		{"unknown field", protowire.AppendVarint(protowire.AppendTag(mustMarshal(t, msg(raftpb.MsgApp, 1, 2, 3)), 99, protowire.VarintType), 5)},
		{"unknown enum value", protowire.AppendVarint(protowire.AppendTag(nil, fieldType, protowire.VarintType), 77)},
		{"wrong wire type", protowire.AppendBytes(protowire.AppendTag(nil, fieldTo, protowire.BytesType), []byte{1})},
		{"unknown entry type", protowire.AppendBytes(protowire.AppendTag(nil, fieldEntries, protowire.BytesType),
			protowire.AppendVarint(protowire.AppendTag(nil, entryType, protowire.VarintType), 9))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := decodeFast(tc.raw); ok {
				t.Fatal("fast path accepted it")
			}
			want := &raftpb.Message{}
			if err := proto.Unmarshal(tc.raw, want); err != nil {
				t.Fatal(err)
			}
			got, err := decodeMessage(tc.raw)
			if err != nil || !proto.Equal(got, want) {
				t.Fatalf("decodeMessage = %v, %v; want %v", got, err, want)
			}
		})
	}
}

func mustMarshal(t *testing.T, m *raftpb.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecode: whatever the bytes, the fast path never panics and, when it
// accepts them, agrees with proto.Unmarshal.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		b, _ := proto.Marshal(randomMessage(r))
		f.Add(b)
	}
	f.Add([]byte{0x08, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeFast(b)
		if !ok {
			return
		}
		want := &raftpb.Message{}
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatalf("fast path accepted bytes proto rejects: %v", err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("decoded %v, proto %v", got, want)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	raw, _ := proto.Marshal(benchMsg(7))
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := decodeFast(raw); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(raw, &raftpb.Message{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
