#!/usr/bin/env bash
# Issue 15's figures (not part of CI): builds hangard, hangar, the guest
# agent and bench/cmd/instbench, starts hangard on a scratch data directory
# with the instances API on a loopback port, makes an operator token and
# runs instbench: standby and restore of a 512 MiB VM through the instances
# API beside the LXD API, the time from a connection to an auto-standby'd
# VM until it answers, and the logs' SSE throughput. Run as root on Debian
# 12 with scripts/deps.sh's packages.
#
#   bench/issue15.sh [--runs N] [--only standby,wake,logs] [--lines N]
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d /tmp/hangar-issue15-XXXXXX)
cleanup() {
	if [ -n "${pid:-}" ]; then
		"$scratch/bin/hangar" --socket "$scratch/data/unix.socket" list --format csv -c n 2>/dev/null |
			while read -r n; do "$scratch/bin/hangar" --socket "$scratch/data/unix.socket" delete -f "$n" >/dev/null 2>&1 || true; done
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	fi
	for f in "$scratch"/data/vms/*/qemu.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
	done
	sleep 0.5
	rm -rf "$scratch"
}
trap cleanup EXIT
export CGO_ENABLED=0
go build -o "$scratch/bin/" ./cmd/hangard ./cmd/hangar ./cmd/hangar-agent ./bench/cmd/instbench
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$scratch/bin/hangard" --data-dir "$scratch/data" --instances-api "127.0.0.1:$port" --log-level warn 2>"$scratch/hangard.log" &
pid=$!
for _ in $(seq 100); do [ -S "$scratch/data/unix.socket" ] && break; sleep 0.1; done
token=$("$scratch/bin/hangar" --socket "$scratch/data/unix.socket" token create bench --role operator)
accel=TCG; [ -e /dev/kvm ] && accel=KVM
echo "accel: $accel; cores: $(nproc); $(qemu-system-x86_64 --version | head -1); $(date -u +%FT%TZ)"
"$scratch/bin/instbench" --socket "$scratch/data/unix.socket" --api "http://127.0.0.1:$port/" --token "$token" "$@"
