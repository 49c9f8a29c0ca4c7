#!/usr/bin/env bash
# Builds upstream etcd and etcdctl (the versions pinned in go.mod here) into
# the cache folder given as $1 (default: $HOME/.cache/etcdctl-wizard/upstream).
# Skips the build when both binaries already exist.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${ETCDWIZ_UPSTREAM_DIR:-$HOME/.cache/etcdctl-wizard/upstream}}
mkdir -p "$out"
if [ -x "$out/etcd" ] && [ -x "$out/etcdctl" ]; then exit 0; fi
cd "$here"
go build -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
go build -o "$out/etcdctl.tmp" go.etcd.io/etcd/etcdctl/v3
mv "$out/etcd.tmp" "$out/etcd"
mv "$out/etcdctl.tmp" "$out/etcdctl"
