// Package version holds the versions etcd-node reports.
package version

// Build is this build's own version, set by the Makefile through -ldflags.
var Build = "dev"

// Versions etcd-node speaks: the etcd server API and cluster versions that
// clients (etcdctl, clientv3) see in /version and Maintenance.Status.
const (
	Server  = "3.7.3"
	Cluster = "3.7.0"
	Storage = "3.7.0"
)
