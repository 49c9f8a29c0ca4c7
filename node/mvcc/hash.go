package mvcc

import (
	"hash/crc32"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"etcdctl-wizard/node/backend"
)

// HashKV hashes the key space as of rev (0 = current) the way etcd does for
// `etcdctl endpoint hashkv` and its corruption checks: CRC-32C over the bucket
// name, then every revision key and value up to rev, skipping those a compaction
// at rev would drop. Members with the same history get the same hash, upstream
// etcd members included. It blocks writes while it scans.
func (s *Store) HashKV(rev int64) (*pb.HashKVResponse, error) {
	var resp *pb.HashKVResponse
	err := s.b.Update(func(tx *backend.WriteTx) error {
		s.mu.RLock()
		compactRev, current := s.compactRev, s.currentRev.Load()
		switch {
		case rev > 0 && rev < compactRev:
			s.mu.RUnlock()
			return ErrCompacted
		case rev > current:
			s.mu.RUnlock()
			return ErrFutureRev
		case rev <= 0:
			rev = current
		}
		keep := make(map[revision]struct{})
		s.index.ascend(nil, func(ki *keyIndex) bool {
			ki.keep(rev, keep)
			return true
		})
		s.mu.RUnlock()

		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		h.Write(keyBucket)
		err := tx.Scan(keyBucket, nil, revToBytes(revision{main: rev + 1}, false), func(k, v []byte) error {
			r, tomb, err := bytesToRev(k)
			if err != nil {
				return err
			}
			if r.main <= compactRev && len(keep) > 0 {
				if _, ok := keep[r]; !ok {
					return nil
				}
			}
			if r.main == compactRev && tomb {
				return nil
			}
			h.Write(k)
			h.Write(v)
			return nil
		})
		resp = &pb.HashKVResponse{
			Header:          &pb.ResponseHeader{Revision: current},
			Hash:            h.Sum32(),
			CompactRevision: compactRev,
			HashRevision:    rev,
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
