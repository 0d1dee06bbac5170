#!/usr/bin/env bash
# Issues 16 and 17's speed figures end to end (not part of CI): builds
# hangard, hangar and bench/cmd/dialectbench (no race detector,
# CGO_ENABLED=0), starts hangard on a scratch data directory, imports a
# busybox image, makes a local user, and runs dialectbench on the unix
# socket: virt.instance.query over 1000 containers beside the LXD API's
# list, change events to 10 subscribers from 2000 real changes, and the
# /v/ API's VM list over 1000 VM records in a 5-level group tree and its
# create with the quota check. Run as root on Debian 12 with
# scripts/deps.sh's packages; it takes about 5-10 minutes.
#
#   bench/dialects.sh [dialectbench flags: --only virt,velocity --containers N --vms N --vm-create velocity|lxd ...]
set -euo pipefail
cd "$(dirname "$0")/.."
if ip link show hangarbr0 >/dev/null 2>&1; then
	echo "bench/dialects.sh: the host has a hangarbr0 already (another hangard's?): stop it first" >&2
	exit 1
fi
scratch=$(mktemp -d /tmp/hangar-dialects-XXXXXX)
# dnsmasq (the bridge's DHCP and DNS) runs as nobody and must reach its
# files under the data directory.
chmod 755 "$scratch"
cleanup() {
	if [ -n "${pid:-}" ]; then
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
		# hangard keeps its bridge across restarts, as LXD keeps lxdbr0;
		# this run's data directory goes, so its bridge goes too.
		if [ -n "${made_bridge:-}" ]; then
			ip link del hangarbr0 2>/dev/null || true
			nft delete table inet hangar 2>/dev/null || true
		fi
	fi
	for f in "$scratch"/data/vms/*/qemu.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
	done
	sleep 0.5
	rm -rf "$scratch" "${tarball:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export CGO_ENABLED=0
go build -o "$scratch/bin/" ./cmd/hangard ./cmd/hangar ./bench/cmd/dialectbench
tarball=$(bash scripts/busybox-rootfs.sh)
made_bridge=1
"$scratch/bin/hangard" --data-dir "$scratch/data" --log-level "${HANGARD_LOG_LEVEL:-warn}" 2>"$scratch/hangard.log" &
pid=$!
for _ in $(seq 100); do [ -S "$scratch/data/unix.socket" ] && break; sleep 0.1; done
H() { "$scratch/bin/hangar" --socket "$scratch/data/unix.socket" "$@"; }
H image import "$tarball" --alias busybox --os busybox --release 1.35 >/dev/null
password=$(head -c 18 /dev/urandom | base64)
printf '%s\n' "$password" | H user create bench --password-stdin >/dev/null
echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
trap 'cp "$scratch/hangard.log" /tmp/dialects-hangard.log 2>/dev/null; cleanup' EXIT
DIALECTBENCH_PASSWORD=$password "$scratch/bin/dialectbench" --socket "$scratch/data/unix.socket" "$@"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
