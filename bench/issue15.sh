#!/usr/bin/env bash
# Issue 15's figures (not part of CI): builds hangard, hangar, the guest
# agent and bench/cmd/instbench, starts hangard on a scratch data directory
# with the instances API on a loopback port, makes an operator token and
# runs instbench: standby and restore of a 512 MiB VM through the instances
# API beside the LXD API, the time from a connection to an auto-standby'd
# VM until it answers, and the logs' SSE throughput. Run as root on Debian
# 12 with scripts/deps.sh's packages.
#
#   bench/issue15.sh [--runs N] [--only standby,wake,logs] [--log-mb N]
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d /tmp/hangar-issue15-XXXXXX)
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
	rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export CGO_ENABLED=0
go build -o "$scratch/bin/" ./cmd/hangard ./cmd/hangar ./cmd/hangar-agent ./bench/cmd/instbench ./internal/driver/qemu/testdata/printlines
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if ip link show hangarbr0 >/dev/null 2>&1; then
	echo "bench/issue15.sh: the host has a hangarbr0 already (another hangard's?): stop it first" >&2
	exit 1
fi
made_bridge=1
"$scratch/bin/hangard" --data-dir "$scratch/data" --instances-api "127.0.0.1:$port" --log-level "${HANGARD_LOG_LEVEL:-warn}" 2>"$scratch/hangard.log" &
pid=$!
for _ in $(seq 100); do [ -S "$scratch/data/unix.socket" ] && break; sleep 0.1; done
token=$("$scratch/bin/hangar" --socket "$scratch/data/unix.socket" token create bench --role operator)
# hangard uses KVM only where the CPU has vmx or svm as well as /dev/kvm.
accel=TCG; [ -e /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && accel=KVM
echo "accel: $accel; cores: $(nproc); $(qemu-system-x86_64 --version | head -1); $(date -u +%FT%TZ)"
trap 'cp "$scratch/hangard.log" /tmp/issue15-hangard.log 2>/dev/null; cleanup' EXIT
"$scratch/bin/instbench" --socket "$scratch/data/unix.socket" --api "http://127.0.0.1:$port/" --token "$token" --printlines "$scratch/bin/printlines" "$@"
