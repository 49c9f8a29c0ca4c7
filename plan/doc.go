// Package plan owns the cluster plan: the v1 plan file (types, YAML load and
// save, defaults), each member's effective etcd configuration, validation
// findings, the renderings (shell commands, ETCD_* files, systemd units) and
// the per-host step list that both the dry-run export and apply execute.
//
// It is pure: no network and no SSH. Validation runs every member's rendered
// command line through etcdctl-wizard/node/config, the same parser and
// bootstrap checks etcd-node runs at start, so a plan that validates here
// starts there.
package plan
