// Package mvcc is etcd's multi-version key space, reimplemented over node/backend.
//
// Every write transaction (a Put, a DeleteRange, a whole Txn) that changes
// something gets the next store revision; its changes are numbered by sub
// revision. Each change is a record in the backend's "key" bucket under its
// revision (8-byte big-endian main, '_', 8-byte sub, 't' for a tombstone) holding
// a marshalled mvccpb.KeyValue. An in-memory index, rebuilt from that bucket on
// New, maps each key to its generations of revisions, so reads at any revision
// since the last compaction find their value with one lookup.
//
// Writes carry the raft index of their entry. The index is stored in the same
// backend batch as the write, and a write whose index is not above the stored
// one is skipped, so replaying the WAL tail over a backend that already holds
// part of it applies each entry exactly once.
//
// The API takes and returns etcdserverpb messages; ToGRPCError maps the errors to
// the rpctypes values clientv3 understands. Response headers carry the revision
// only: the gRPC layer adds cluster id, member id and raft term.
package mvcc
