// Package watch serves etcd's Watch gRPC service over node/mvcc.
//
// A Hub learns every applied write transaction from the store's write hook
// (OnWrite, one call per revision, in order) and every replacement of the store
// by a snapshot (Reset). Watchers are in one of two groups, as in etcd's
// watchable store:
//
//   - synced: caught up; OnWrite hands them the events of each new revision
//     directly, without blocking: each gRPC stream has a bounded queue, and a
//     watcher whose queue is full becomes unsynced instead of stalling raft.
//   - unsynced: behind (a start revision in the past, a full queue, a snapshot
//     install); one goroutine (Run) reads their missing revisions from the
//     store's history and moves them to synced once they reach the hub's
//     revision.
//
// The hand-over is race-free because the hub's revision only moves under its
// lock, in OnWrite: a watcher is moved to synced, under that lock, only once
// everything up to the hub's revision was queued for it. The last step reads
// from a small in-memory ring of recent revisions rather than from the store,
// so the store is never read under the lock (the store's own locks are held
// while OnWrite and Reset run). A watcher that needs revisions below the
// store's compaction revision is canceled with compact_revision set, which
// clientv3 reports as ErrCompacted.
package watch
