// Package discovery finds the initial cluster of a new member the ways etcd
// does besides --initial-cluster: the v2 discovery protocol against a
// discovery URL (SPEC-etcd.md §3), v3 discovery through clientv3 (§5) and
// DNS SRV records (§6). Each returns the --initial-cluster string and the
// token the member and cluster IDs are computed with.
//
// Test hook: etcd-node sends all DNS queries to the server named by the
// ETCDNODE_DNS_SERVER environment variable (host:port) when it is set, so
// process tests can serve SRV records from 127.0.0.1 (see dnstest). It is
// never set by default and is not an etcd flag.
package discovery
