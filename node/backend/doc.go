// Package backend owns the member's bbolt file (<data-dir>/member/snap/db).
//
// Writes are grouped into one long-lived bbolt write transaction that is
// committed every Options.BatchInterval, after Options.BatchLimit writes, or on
// ForceCommit/Close, the way etcd's backend batches them. The raft WAL, not this
// package, makes writes durable: a batch that was never committed is replayed
// from the WAL after a crash, starting at ConsistentIndex()+1. That only works
// because the consistent index is written into the same batch transaction as the
// data it covers, so the two are always committed (or lost) together.
//
// Readers see every write applied so far, committed or not: uncommitted writes
// are mirrored in an in-memory buffer that overlays a shared read-only snapshot
// of the last commit. A commit never holds the lock readers need while it
// fsyncs, so readers do not stall behind the disk.
package backend
