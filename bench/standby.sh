#!/bin/sh
# Standby (stateful stop) and restore (start) of a 512 MiB OCI VM through
# the LXD API: N cycles per snapshots.compression, median and p90.
#   bench/standby.sh [N] [compressions]     e.g. bench/standby.sh 7 none,zstd,lz4:3
# Needs what the VM e2e tests need (root, QEMU, a guest kernel in /boot).
set -eu
cd "$(dirname "$0")/.."
# hangard is built without the race detector (HANGAR_E2E_NORACE), which
# slows zstd and lz4 about 20-fold.
HANGAR_E2E_NORACE=1 HANGAR_BENCH_STANDBY="${1:-5}" HANGAR_BENCH_STANDBY_COMPRESSION="${2:-none,zstd,lz4}" \
	go test -count=1 -timeout 30m ./e2e -run '^TestStandbyBench$' -v 2>&1 | grep -E 'BENCH|^(---|ok|FAIL)|standby_bench'
