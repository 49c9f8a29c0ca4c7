// Package server is the etcd-node member: bootstrap (new, existing,
// restart), the raft Ready loop over the WAL, the apply of committed entries
// to the MVCC store and the cluster membership, snapshots, linearizable reads
// and the operations the client API exposes. Transport, storage, WAL and the
// gRPC/HTTP front ends live in their own packages.
package server
