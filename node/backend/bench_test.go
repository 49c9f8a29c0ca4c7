package backend

import (
	"encoding/binary"
	"path/filepath"
	"testing"
)

func benchBackend(b *testing.B) *Backend {
	b.Helper()
	be, err := Open(filepath.Join(b.TempDir(), "db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = be.Close() })
	return be
}

func benchKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, i)
}

// BenchmarkPut is one write per Update with default batching (commits included).
func BenchmarkPut(b *testing.B) {
	be := benchBackend(b)
	val := make([]byte, 256)
	b.ResetTimer()
	for i := range b.N {
		if err := be.Put(testBucket, benchKey(uint64(i%10000)), val); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallel reads committed keys from GOMAXPROCS*32 goroutines.
func BenchmarkGetParallel(b *testing.B) {
	be := benchBackend(b)
	val := make([]byte, 256)
	for i := range uint64(10000) {
		if err := be.Put(testBucket, benchKey(i), val); err != nil {
			b.Fatal(err)
		}
	}
	if err := be.ForceCommit(); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := uint64(0)
		for pb.Next() {
			i = (i + 7919) % 10000
			err := be.View(func(tx *ReadTx) error {
				if tx.Get(testBucket, benchKey(i)) == nil {
					b.Error("missing key")
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
