// Package v2keys serves the subset of etcd's v2 keys HTTP API that a
// discovery service needs (SPEC-etcd.md §4): GET of files and directories,
// PUT with prevExist/prevValue/prevIndex, DELETE, and waits with
// waitIndex/recursive, plus GET /new?size=N like discovery.etcd.io.
//
// v2 nodes live in the member's MVCC key space under the reserved prefix
// "\x00v2" followed by the node's path, so every write goes through raft as a
// v3 transaction and the v2 index is the MVCC revision (createdIndex,
// modifiedIndex and X-Etcd-Index). Directories are explicit marker keys,
// created with the files below them. A value's first byte says file or
// directory, the second which v2 action wrote it.
package v2keys
