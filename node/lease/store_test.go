package lease

import (
	"path/filepath"
	"testing"
	"time"

	"etcdctl-wizard/node/backend"
)

func TestRecordsRoundTrip(t *testing.T) {
	b, err := backend.Open(filepath.Join(t.TempDir(), "db"), backend.Options{BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(func(tx *backend.WriteTx) error {
		for _, r := range [][2]int64{{1, 5}, {-7, 60}, {0x694d9a1b2c3d4e5f, MaxTTL}} {
			if err := Put(tx, r[0], r[1]); err != nil {
				return err
			}
		}
		return Delete(tx, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]int64{-7: 60, 0x694d9a1b2c3d4e5f: MaxTTL}
	if len(got) != len(want) || got[-7] != 60 || got[0x694d9a1b2c3d4e5f] != MaxTTL {
		t.Fatalf("loaded %v, want %v", got, want)
	}
}

// etcd's leasepb.Lease{ID: 1, TTL: 5, RemainingTTL: 3}, as etcd writes it.
func TestDecodeEtcdRecord(t *testing.T) {
	id, ttl, err := decode([]byte{0x08, 0x01, 0x10, 0x05, 0x18, 0x03})
	if err != nil || id != 1 || ttl != 5 {
		t.Fatalf("decode: %d %d %v", id, ttl, err)
	}
	if got := encode(1, 5); string(got) != "\x08\x01\x10\x05" {
		t.Fatalf("encode: %x", got)
	}
}
