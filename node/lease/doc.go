// Package lease is etcd's lessor for etcd-node: the leases of the key space,
// the keys attached to them, and their deadlines.
//
// Grants and revokes are raft entries applied on every member in the same
// order, so every member knows the same leases; the server persists them in
// the backend's "lease" bucket (etcd's file format: 8-byte big-endian ID →
// leasepb.Lease) in the batch of the entry, and rebuilds a Lessor from that
// bucket and the key space (each KeyValue's lease field) on restart and after
// a snapshot install.
//
// Time is the leader's alone, as in etcd. Only a primary Lessor (the leader's,
// once it has applied every entry of the earlier terms) tracks deadlines,
// renews leases and reports expired ones; the server proposes their revokes.
// Promote starts every deadline afresh (TTL plus an extension of about an
// election timeout), so a change of leader never expires a lease early: at
// worst a lease lives up to one TTL and an election longer. Followers keep no
// deadlines and forward keep-alives to the leader.
//
// Remaining TTLs are not checkpointed through raft (etcd's
// --experimental-enable-lease-checkpoint), so a leader change restarts them.
package lease
