#!/usr/bin/env bash
# The test lab: N hosts on one machine, each a network namespace running real
# OpenSSH sshd with its own host keys, hostname and private /etc, /var, /usr/local,
# /opt, /root, /home, /run and /tmp. The hosts hang off a bridge inside one
# parent namespace that has no route out, so the guide's addresses (10.0.1.10 ...)
# exist only there. Needs root, iproute2, util-linux (unshare, nsenter) and
# openssh-server (sshd, ssh-keygen).
#
#   lab.sh up N [--prefix NAME] [--owner PID] [--dns IP]
#       Starts infra0..infraN-1 at 10.0.1.10.. ; the parent namespace is NAME
#       (10.0.1.1 on its bridge), the hosts are NAME-infraI. Prints the state
#       folder; its hosts.tsv, known_hosts and client key describe the lab.
#   lab.sh down [--prefix NAME] | down --stale
#       Kills every process inside the lab namespaces, deletes them and the
#       state folder. --stale tears down every lab whose owner process is gone
#       (left behind by a crashed test run).
#   lab.sh exec NAME HOST CMD...      run CMD inside HOST (net, mount, uts)
#   lab.sh parent NAME CMD...         run CMD in the parent namespace (the "laptop")
#   lab.sh link NAME HOST up|down     cut or restore HOST's cable to the bridge
#   lab.sh list                       labs on this machine and their owners
#
# State lives under $LAB_STATE_ROOT (default /run/etcdctl-wizard-lab/NAME);
# LAB_SSHD_LOGLEVEL=DEBUG3 makes the hosts' sshd.log verbose.
set -Eeuo pipefail
[ -z "${LAB_TRACE:-}" ] || { PS4='+ $EPOCHREALTIME '; set -x; }

STATE_ROOT=${LAB_STATE_ROOT:-/run/etcdctl-wizard-lab}
SUBNET=10.0.1
FIRST_HOST=10
# Folders each host gets its own copy-on-write view of. /run and /tmp get empty
# tmpfs mounts instead (a host's pid files and temp files are its own). /root
# starts from /etc/skel rather than from this machine's /root: its dotfiles
# (here a pyenv init costing 200 ms per SSH command) and keys are no host's.
OVERLAYS=(etc var usr/local opt root home)

die() { echo "lab.sh: $*" >&2; exit 1; }

need_tools() {
	local t
	for t in ip unshare nsenter ssh-keygen /usr/sbin/sshd; do
		command -v "$t" >/dev/null || die "missing $t: apt-get install -y iproute2 util-linux openssh-server"
	done
	[ "$(id -u)" = 0 ] || die "must run as root (network namespaces and mounts)"
}

check_name() {
	[[ $1 =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die "bad lab name '$1': lowercase letters, digits and '-', at most 31"
}

# The start time (clock ticks after boot) tells a live owner from a reused pid.
proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }

cmd_up() {
	local n="" prefix=ewlab owner=$PPID dns=$SUBNET.1
	while [ $# -gt 0 ]; do
		case $1 in
		--prefix) prefix=$2; shift 2 ;;
		--owner) owner=$2; shift 2 ;;
		--dns) dns=$2; shift 2 ;;
		-*) die "unknown flag $1" ;;
		*) n=$1; shift ;;
		esac
	done
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "usage: lab.sh up N (1..200) [--prefix NAME]"
	check_name "$prefix"
	need_tools
	local dir=$STATE_ROOT/$prefix
	[ ! -e "$dir" ] || die "lab $prefix already exists ($dir): lab.sh down --prefix $prefix"
	if ip netns list | awk '{print $1}' | grep -qx -- "$prefix"; then
		die "namespace $prefix already exists"
	fi
	mkdir -p "$STATE_ROOT"
	chmod 0700 "$STATE_ROOT"
	mkdir -m 0700 "$dir"
	echo "$owner $(proc_start "$owner")" >"$dir/owner"
	# From here on a failure tears down whatever was built.
	trap 'trap - ERR; echo "lab.sh: up failed, tearing down $prefix" >&2; down_one "$prefix" || true' ERR

	# The parent namespace: the "laptop" side of the lab, with no route out.
	ip netns add "$prefix"
	ip -n "$prefix" link set lo up
	ip -n "$prefix" link add br0 type bridge
	ip -n "$prefix" addr add "$SUBNET.1/24" dev br0
	ip -n "$prefix" link set br0 up

	mkdir -m 0700 "$dir/client"
	ssh-keygen -q -t ed25519 -N '' -C "etcdctl-wizard-lab-$prefix" -f "$dir/client/id_ed25519"
	: >"$dir/known_hosts"
	: >"$dir/hosts.tsv"
	local hosts_file="127.0.0.1 localhost"$'\n'
	local i
	for ((i = 0; i < n; i++)); do
		hosts_file+="$SUBNET.$((FIRST_HOST + i)) infra$i"$'\n'
	done
	for ((i = 0; i < n; i++)); do
		start_host "$prefix" "$dir" "$i" "$dns" "$hosts_file"
	done
	for ((i = 0; i < n; i++)); do
		wait_host "$dir" "infra$i"
	done
	trap - ERR
	echo "$dir"
}

start_host() {
	local prefix=$1 dir=$2 i=$3 dns=$4 hosts_file=$5
	local name=infra$i ip=$SUBNET.$((FIRST_HOST + i)) ns=$prefix-infra$i
	local h=$dir/$name m k
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$prefix" link add "h$i" type veth peer name eth0 netns "$ns"
	ip -n "$prefix" link set "h$i" master br0 up
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up

	mkdir -p "$h"
	for m in "${OVERLAYS[@]}"; do
		k=${m//\//_}
		mkdir -p "$h/upper/$k" "$h/work/$k"
	done
	# Files written into the upper layers before the mount are what the host sees
	# at /etc/..., /root/...: its identity, its sshd and its authorized key.
	local etc=$h/upper/etc
	mkdir -p "$etc/ssh" "$h/upper/root/.ssh" "$h/lower/root"
	chmod 0700 "$h/lower/root" "$h/upper/root"
	[ ! -d /etc/skel ] || cp -a /etc/skel/. "$h/upper/root/"
	echo "$name" >"$etc/hostname"
	printf '%s' "$hosts_file" >"$etc/hosts"
	# `ip netns exec` would bind /etc/netns/NS/resolv.conf, but the /etc overlay
	# mounted afterwards hides it: the host's resolver config lives in the overlay.
	echo "nameserver $dns" >"$etc/resolv.conf"
	ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$etc/ssh/ssh_host_ed25519_key"
	# A second key type, as real hosts have: clients must ask for the type they
	# recorded in known_hosts, not the first one the server offers.
	ssh-keygen -q -t ecdsa -b 256 -N '' -C "$name" -f "$etc/ssh/ssh_host_ecdsa_key"
	cat >"$etc/ssh/sshd_config" <<-EOF
		# etcdctl-wizard lab host $name
		Port 22
		ListenAddress 0.0.0.0
		HostKey /etc/ssh/ssh_host_ed25519_key
		HostKey /etc/ssh/ssh_host_ecdsa_key
		AuthorizedKeysFile .ssh/authorized_keys
		PidFile none
		UsePAM no
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		AllowTcpForwarding yes
		UseDNS no
		StrictModes no
		MaxSessions 100
		MaxStartups 100:30:200
		Subsystem sftp internal-sftp
		LogLevel ${LAB_SSHD_LOGLEVEL:-INFO}
	EOF
	install -m 0600 "$dir/client/id_ed25519.pub" "$h/upper/root/.ssh/authorized_keys"
	chmod 0700 "$h/upper/root/.ssh"
	echo "$ip $(cut -d' ' -f1-2 "$etc/ssh/ssh_host_ed25519_key.pub")" >>"$dir/known_hosts"

	# The host itself: a mount and UTS namespace inside its network namespace.
	# $$ of this bash is the pid sshd keeps after exec.
	# shellcheck disable=SC2016
	local script='
		set -e
		h=$1; name=$2; shift 2
		hostname "$name"
		for m in "$@"; do
			k=${m//\//_}
			lower=/$m
			[ "$m" != root ] || lower=$h/lower/root
			mount -t overlay "lab-$name" -o "lowerdir=$lower,upperdir=$h/upper/$k,workdir=$h/work/$k" "/$m"
		done
		echo $$ >"$h/pid"
		# Mounted last: the tmpfs hides the lab state under /run from the host.
		mount -t tmpfs -o mode=0755 "lab-$name-run" /run
		mount -t tmpfs -o mode=1777 "lab-$name-tmp" /tmp
		mkdir -p /run/sshd
		exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
	'
	# setsid: the host outlives the shell that started it, like a machine.
	setsid ip netns exec "$ns" unshare -m -u --propagation private \
		bash -c "$script" lab-host "$h" "$name" "${OVERLAYS[@]}" \
		</dev/null >"$h/sshd.log" 2>&1 &
}

wait_host() {
	local dir=$1 name=$2 h=$dir/$2 deadline=$((SECONDS + 20))
	# sshd logs this line once its socket listens.
	until grep -q 'Server listening on 0.0.0.0 port 22' "$h/sshd.log" 2>/dev/null; do
		if [ $SECONDS -ge $deadline ]; then
			cat "$h/sshd.log" >&2 || true
			die "$name: sshd did not start within 20 s"
		fi
		if [ -s "$h/pid" ] && ! kill -0 "$(cat "$h/pid")" 2>/dev/null; then
			cat "$h/sshd.log" >&2 || true
			die "$name: sshd exited"
		fi
		sleep 0.02
	done
	local i=${name#infra} fp
	fp=$(ssh-keygen -l -E sha256 -f "$h/upper/etc/ssh/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
	# name ip port netns sshd-pid ed25519-fingerprint
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$SUBNET.$((FIRST_HOST + i))" 22 \
		"$(basename "$dir")-$name" "$(cat "$h/pid")" "$fp" >>"$dir/hosts.tsv"
}

# Every process whose network namespace is NS (sshd, sessions, members started
# over SSH). The lab's owner is left out: a test process may hold a thread there.
ns_pids() {
	[ -e "/run/netns/$1" ] || return 0
	ip netns pids "$1" 2>/dev/null | grep -vx -e "$$" -e "${2:-none}" || true
}

down_one() {
	local prefix=$1 dir=$STATE_ROOT/$1 owner="" ns pids deadline
	check_name "$prefix"
	[ -f "$dir/owner" ] && owner=$(cut -d' ' -f1 "$dir/owner")
	local all=()
	mapfile -t all < <(ip netns list | awk '{print $1}' | grep -E -- "^$prefix(-infra[0-9]+)?\$" || true)
	for ns in "${all[@]}"; do
		pids=$(ns_pids "$ns" "$owner")
		# shellcheck disable=SC2086
		[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
	done
	# Mounts of a host vanish with the last process of its mount namespace.
	deadline=$((SECONDS + 10))
	for ns in "${all[@]}"; do
		while [ -n "$(ns_pids "$ns" "$owner")" ]; do
			[ $SECONDS -lt $deadline ] || die "processes in $ns survived kill -9"
			sleep 0.02
		done
	done
	for ns in "${all[@]}"; do
		# Another teardown of the same lab (its owner's, racing a stale
		# sweep) may have removed it meanwhile: gone is what we want.
		ip netns del "$ns" 2>/dev/null || [ ! -e "/run/netns/$ns" ] || die "cannot remove namespace $ns"
	done
	if grep -qs -- "$dir/" /proc/[0-9]*/mountinfo; then
		die "mounts of $dir are still held by: $(grep -ls -- "$dir/" /proc/[0-9]*/mountinfo | cut -d/ -f3 | tr '\n' ' ')"
	fi
	rm -rf -- "$dir"
}

cmd_down() {
	local prefix=ewlab stale=0
	while [ $# -gt 0 ]; do
		case $1 in
		--prefix) prefix=$2; shift 2 ;;
		--stale) stale=1; shift ;;
		*) die "unknown argument $1" ;;
		esac
	done
	need_tools
	if [ $stale = 0 ]; then
		down_one "$prefix"
		return
	fi
	local d name pid start
	for d in "$STATE_ROOT"/*/; do
		[ -d "$d" ] || continue
		name=$(basename "$d")
		read -r pid start <"$d/owner" 2>/dev/null || { pid=""; start=""; }
		if [ -n "$pid" ] && [ -n "$start" ] && [ "$(proc_start "$pid")" = "$start" ]; then
			continue
		fi
		echo "lab.sh: removing stale lab $name (owner ${pid:-?} is gone)" >&2
		down_one "$name"
	done
}

host_pid() {
	local prefix=$1 host=$2 pid
	check_name "$prefix"
	pid=$(awk -v h="$host" '$1 == h {print $5}' "$STATE_ROOT/$prefix/hosts.tsv" 2>/dev/null)
	[ -n "$pid" ] || die "no host $host in lab $prefix"
	echo "$pid"
}

cmd_exec() {
	[ $# -ge 3 ] || die "usage: lab.sh exec NAME HOST CMD..."
	local pid
	pid=$(host_pid "$1" "$2")
	shift 2
	exec nsenter -t "$pid" -n -m -u --wd=/ -- env HOME=/root "$@"
}

cmd_parent() {
	[ $# -ge 2 ] || die "usage: lab.sh parent NAME CMD..."
	check_name "$1"
	local ns=$1
	shift
	exec ip netns exec "$ns" "$@"
}

cmd_link() {
	[ $# -eq 3 ] || die "usage: lab.sh link NAME HOST up|down"
	local i=${2#infra}
	[[ $i =~ ^[0-9]+$ ]] || die "bad host $2"
	[[ $3 = up || $3 = down ]] || die "link state must be up or down"
	check_name "$1"
	ip -n "$1" link set "h$i" "$3"
}

cmd_list() {
	local d
	for d in "$STATE_ROOT"/*/; do
		[ -d "$d" ] || continue
		echo "$(basename "$d") owner=$(cut -d' ' -f1 "$d/owner" 2>/dev/null) hosts=$(wc -l <"$d/hosts.tsv" 2>/dev/null || echo 0)"
	done
}

[ $# -ge 1 ] || die "usage: lab.sh up|down|exec|parent|link|list ..."
sub=$1
shift
case $sub in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
exec) cmd_exec "$@" ;;
parent) cmd_parent "$@" ;;
link) cmd_link "$@" ;;
list) cmd_list ;;
*) die "unknown command $sub" ;;
esac
