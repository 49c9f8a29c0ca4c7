#!/usr/bin/env bash
# Installs the system programs the test suite drives for real (no mocks), when
# they are missing: `make test` runs it first, so a fresh Debian machine needs
# nothing else. Without root or apt-get it only says what is missing.
set -euo pipefail

# System programs the test suite drives for real (no mocks): the SSH lab runs
# OpenSSH sshd in network namespaces (iproute2, util-linux) with sudo users;
# the TUI tests drive a real terminal (tmux); the DNS SRV lab runs dnsmasq and
# reads discovery tokens with curl.
declare -A provides=(
  [make]=make [git]=git [ip]=iproute2 [unshare]=util-linux [nsenter]=util-linux
  [/usr/sbin/sshd]=openssh-server [ssh-keygen]=openssh-client [ss]=iproute2
  [sha256sum]=coreutils [tmux]=tmux [sudo]=sudo [pgrep]=procps [openssl]=openssl
  [/usr/sbin/dnsmasq]=dnsmasq-base [curl]=curl
)
need=()
for cmd in "${!provides[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("${provides[$cmd]}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "system-deps: missing $(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')(install them as root)" >&2
    exit 1
  fi
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

