// Package auth is etcd's authentication and role-based access control for
// etcd-node: users (bcrypt password hashes), roles with key-range
// permissions, the root user and role, the auth revision, and etcd's
// "simple" tokens.
//
// The Store is a replicated state machine like the lessor: its mutations
// are applied from raft entries on every member, written into the entry's
// backend batch (etcd's auth, authUsers and authRoles buckets, etcd's
// records) and mirrored in memory; Load rebuilds it from a backend after a
// restart or a snapshot install. Permission checks read the memory only.
//
// Simple tokens are member-local, as in etcd: the member that receives an
// Authenticate request draws a random prefix and proposes it; every member
// registers "<prefix>.<raft index>" when it applies the entry, so the token
// is valid on each member once that member has applied the index.
package auth
