package lease

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"etcdctl-wizard/node/backend"
)

// Bucket is the backend bucket of the leases, named as in etcd.
var Bucket = []byte("lease")

// The records are etcd's: the key is the ID as 8 big-endian bytes, the value
// a leasepb.Lease message (ID = field 1, TTL = field 2; etcd's RemainingTTL,
// field 3, is only written by checkpoints, which etcd-node does not make).
// They are encoded by hand because leasepb lives in etcd's server module.
const (
	fieldID           = 1
	fieldTTL          = 2
	fieldRemainingTTL = 3
)

func idKey(id int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(id))
}

func encode(id, ttl int64) []byte {
	b := protowire.AppendTag(nil, fieldID, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(id))
	b = protowire.AppendTag(b, fieldTTL, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(ttl))
}

func decode(v []byte) (id, ttl int64, err error) {
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return 0, 0, protowire.ParseError(n)
		}
		v = v[n:]
		if typ != protowire.VarintType {
			n = protowire.ConsumeFieldValue(num, typ, v)
			if n < 0 {
				return 0, 0, protowire.ParseError(n)
			}
			v = v[n:]
			continue
		}
		x, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return 0, 0, protowire.ParseError(n)
		}
		v = v[n:]
		switch num {
		case fieldID:
			id = int64(x)
		case fieldTTL:
			ttl = int64(x)
		case fieldRemainingTTL:
			// ignored: see above
		}
	}
	return id, ttl, nil
}

// Put records lease id in the batch of the raft entry that grants it.
func Put(tx *backend.WriteTx, id, ttl int64) error {
	return tx.Put(Bucket, idKey(id), encode(id, ttl))
}

// Delete removes lease id in the batch of the raft entry that revokes it.
func Delete(tx *backend.WriteTx, id int64) error {
	return tx.Delete(Bucket, idKey(id))
}

// Load reads every lease of b (ID → TTL).
func Load(b *backend.Backend) (map[int64]int64, error) {
	out := map[int64]int64{}
	err := b.ForEach(Bucket, func(k, v []byte) error {
		id, ttl, err := decode(v)
		if err != nil || len(k) != 8 || int64(binary.BigEndian.Uint64(k)) != id {
			return fmt.Errorf("lease: damaged record %x in the %s bucket", k, Bucket)
		}
		out[id] = ttl
		return nil
	})
	return out, err
}
