package wal

import (
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkSave measures one raft Ready's worth of Save: fdatasync-bound.
// The no-prealloc cases show what preallocation buys (every sync must also
// persist the grown file size).
func BenchmarkSave(b *testing.B) {
	cases := []struct {
		name     string
		batch    int
		prealloc bool
	}{
		{"1x300B", 1, true},
		{"64x300B", 64, true},
		{"1x300B-noprealloc", 1, false},
		{"64x300B-noprealloc", 64, false},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			w := mustCreate(b, filepath.Join(b.TempDir(), "wal"), Options{noPrealloc: !bc.prealloc})
			defer mustClose(b, w)
			next := uint64(1)
			ents := make([]*raftpb.Entry, bc.batch)
			data := make([]byte, 300)
			b.SetBytes(int64(bc.batch * len(data)))
			for b.Loop() {
				for i := range ents {
					ents[i] = &raftpb.Entry{Index: new(next + uint64(i)), Term: new(uint64(1)), Data: data}
				}
				next += uint64(bc.batch)
				if err := w.Save(hardState(1, 1, next-1), ents); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
			b.ReportMetric(float64(b.N*bc.batch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
