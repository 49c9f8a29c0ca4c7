// Package config owns a member's configuration exactly as etcd reads it: the
// flag set, ETCD_* environment variables, the optional YAML config file,
// defaults, URL rules, member and cluster IDs, and the bootstrap checks that a
// member runs before it starts.
//
// It is imported by two programs: etcd-node, which runs these checks at start,
// and the wizard's plan validation, which runs the very same checks on the
// laptop against each member's rendered command line. That is why it has no
// heavy imports and never touches the network itself: anything that needs DNS
// takes a Resolver from the caller.
package config
