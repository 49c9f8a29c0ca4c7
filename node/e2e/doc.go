// Package e2e tests etcd-node as real processes driven by the real upstream
// etcdctl v3.7.3 and clientv3: the clustering guide's commands, its error
// cases, durability under kill -9, leader failure and snapshot catch-up.
package e2e
