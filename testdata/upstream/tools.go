//go:build tools

// Package upstream pins the upstream etcd binaries that tests and benchmarks
// use as references. They are built from the Go module proxy into a cache
// folder by build.sh and never committed.
package upstream

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
