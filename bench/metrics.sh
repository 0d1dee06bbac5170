#!/usr/bin/env bash
# GET /1.0/metrics at N running containers (not part of CI): builds hangard
# and hangar, starts hangard in a network namespace of its own on a scratch
# data directory (its bridge never touches the host's network), launches N
# containers whose init sleeps, then times `curl --unix-socket` of
# /1.0/metrics RUNS times and prints the median and the 90th percentile.
# Run as root with scripts/deps.sh's packages.
# Usage: bench/metrics.sh [--instances N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=100
runs=50
while [ $# -gt 0 ]; do
	case $1 in
	--instances) n=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	*) echo "usage: $0 [--instances N] [--runs N]" >&2; exit 2 ;;
	esac
done
scratch=$(mktemp -d /tmp/hangar-metricsbench-XXXXXX)
# Unprivileged containers' root (a mapped uid) must traverse to their roots.
chmod 711 "$scratch"
cleanup() {
	# --stop-instances: hangard stops every container as it exits.
	if [ -n "${pid:-}" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$scratch"
}
trap cleanup EXIT
export CGO_ENABLED=0
go build -o "$scratch/bin/" ./cmd/hangard ./cmd/hangar

root="$scratch/rootfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc,root,run}
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $(busybox --list-full); do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
rm -f "$root/sbin/init"
# PID 1 ignores signals it has no handler for: this init ends on SIGTERM,
# so hangard's --stop-instances does not wait out a stop timeout for each.
printf '#!/bin/sh\ntrap "exit 0" TERM\n/bin/sleep 2147483647 &\nwait\n' >"$root/sbin/init"
chmod 755 "$root/sbin/init"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
tar -C "$root" --numeric-owner -czf "$scratch/rootfs.tar.gz" .

data="$scratch/data"
sock="$data/unix.socket"
unshare --net -- sh -c "ip link set lo up && exec '$scratch/bin/hangard' --data-dir '$data' --stop-instances --log-level warn" 2>"$scratch/hangard.log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
hangar() { "$scratch/bin/hangar" --socket "$sock" "$@"; }
hangar image import "$scratch/rootfs.tar.gz" --alias sleeper >/dev/null
echo "launching $n containers..."
seq 1 "$n" | xargs -P 4 -I{} "$scratch/bin/hangar" --socket "$sock" launch sleeper "m{}" >/dev/null
running=$(curl -s --unix-socket "$sock" http://h/1.0/metrics | grep -c '^lxd_procs_total{')
echo "series of $running running containers; $(curl -s --unix-socket "$sock" http://h/1.0/metrics | wc -c) bytes a scrape"
# One warm-up, then the timed scrapes.
curl -s -o /dev/null --unix-socket "$sock" http://h/1.0/metrics
for _ in $(seq "$runs"); do
	curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$sock" http://h/1.0/metrics
done | sort -n | awk -v n="$n" '{ t[NR] = $1 * 1000 } END {
	printf "GET /1.0/metrics at %d running containers, %d scrapes: median %.1f ms, p90 %.1f ms, min %.1f ms\n",
		n, NR, t[int((NR + 1) / 2)], t[int(NR * 0.9 + 0.5)], t[1] }'
