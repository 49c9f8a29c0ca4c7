// Package proc starts and controls real member processes (etcd-node or upstream etcd) on loopback.
//
// It owns the parts that both the test helpers (package nodetest) and the benchmark program
// (node/bench) need: reserving ports that no other user of this package on the machine holds,
// building the clustering guide's static flags, starting members with their output captured to a
// log file, waiting for health and for a leader, running upstream etcdctl, building the upstream
// reference binaries and etcd-node, and reading a process's RSS.
//
// It must not import "testing": node/bench is a main package and links it.
package proc
