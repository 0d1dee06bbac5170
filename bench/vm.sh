#!/usr/bin/env bash
# Virtual machine benchmark (not part of CI): builds hangard, hangar and
# hangar-agent, starts hangard on a scratch data directory, imports a
# busybox image whose init sleeps, and runs bench/cmd/vmbench: create+start
# to agent ready beside a bare QEMU boot of the same kernel, initramfs and
# disk, restore from standby, pause and resume. Run as root on Debian 12
# with scripts/deps.sh's packages. Usage: bench/vm.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
[ "${1:-}" = "--runs" ] && runs=$2
scratch=$(mktemp -d /tmp/hangar-vmbench-XXXXXX)
cleanup() {
	# hangard leaves VMs running when it exits (by design): end them first.
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	for f in "$scratch"/data/vms/*/qemu.pid "$scratch"/data/vmbench-bare/qemu.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
	done
	sleep 0.5
	rm -rf "$scratch"
}
trap cleanup EXIT
export CGO_ENABLED=0
go build -o "$scratch/bin/" ./cmd/hangard ./cmd/hangar ./cmd/hangar-agent ./bench/cmd/vmbench

root="$scratch/rootfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc,root,run}
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $(busybox --list-full); do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
rm -f "$root/sbin/init"
printf '#!/bin/sh\nexec /bin/sleep 2147483647\n' >"$root/sbin/init"
chmod 755 "$root/sbin/init"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
tar -C "$root" --numeric-owner -czf "$scratch/rootfs.tar.gz" .

data="$scratch/data"
"$scratch/bin/hangard" --data-dir "$data" --stop-instances --log-level warn 2>"$scratch/hangard.log" &
pid=$!
for _ in $(seq 100); do [ -S "$data/unix.socket" ] && break; sleep 0.1; done
"$scratch/bin/hangar" --socket "$data/unix.socket" image import "$scratch/rootfs.tar.gz" --alias vmbench >/dev/null
accel=TCG; [ -e /dev/kvm ] && accel=KVM
echo "accel: $accel; cores: $(nproc); $(qemu-system-x86_64 --version | head -1)"
"$scratch/bin/vmbench" --socket "$data/unix.socket" --data-dir "$data" --runs "$runs"
