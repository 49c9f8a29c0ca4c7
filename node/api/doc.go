// Package api serves a member's client port: the etcd v3 gRPC services that
// etcdctl and clientv3 use, and the HTTP endpoints (/health, /livez,
// /readyz, /version, /metrics) on the same port.
package api
