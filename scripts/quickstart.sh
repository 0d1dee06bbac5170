#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine as root: install what is
# missing, build, start hangard with its defaults, import a small busybox
# image, launch a container and, when QEMU can run, a VM, and list them.
# Safe to run again: each step is skipped when already done.
#
# Overrides, all optional (the defaults are hangard's own); the end-to-end
# test uses them to run this script on a scratch directory beside any
# hangard that already runs:
#   HANGAR_DATA_DIR  data directory            (/var/lib/hangar)
#   HANGAR_SOCKET    API socket                (DATA_DIR/unix.socket)
#   HANGAR_LOG       hangard's log file        (/var/log/hangard.log)
#   HANGAR_PREFIX    where binaries go, PREFIX/bin (/usr/local)
#   HANGAR_NETNS     a network namespace file hangard runs in (the host's):
#                    its bridge, firewall and dnsmasq stay inside it
# The hangard this script starts writes its PID to DATA_DIR/hangard.pid.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${HANGAR_DATA_DIR:-/var/lib/hangar}
socket=${HANGAR_SOCKET:-$data/unix.socket}
log=${HANGAR_LOG:-/var/log/hangard.log}
prefix=${HANGAR_PREFIX:-/usr/local}
# Every hangar call below, and the user's later ones, go to this socket.
export HANGAR_SOCKET=$socket

bash scripts/deps.sh
export PATH=$prefix/bin:$PATH:/usr/local/go/bin GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
# hangar-agent is the VMs' /init; hangard looks for it beside itself.
CGO_ENABLED=0 go build -o bin/ ./cmd/hangard ./cmd/hangar ./cmd/hangar-agent
mkdir -p "$prefix/bin"
# -C leaves an unchanged binary alone, so that a running hangard's
# executable is replaced only when it really changed.
install -C -m 0755 bin/hangard bin/hangar bin/hangar-agent "$prefix/bin/"

# A hangard this script started before, from a binary since replaced, is
# restarted so that it runs this tree (and finds the agent): its instances
# keep running across the restart.
pidfile=$data/hangard.pid
pids=()
[ -f "$pidfile" ] && pids+=("$(cat "$pidfile")")
if [ "$socket" = /var/lib/hangar/unix.socket ]; then
	# Earlier versions of this script started a bare `hangard` on the
	# defaults and wrote no pidfile.
	for pid in $(pgrep -x hangard || true); do
		[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" = "hangard " ] && pids+=("$pid")
	done
fi
for pid in "${pids[@]}"; do
	if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$prefix/bin")/hangard (deleted)" ]; then
		echo "restarting hangard (pid $pid): its binary was rebuilt"
		kill -TERM "$pid"
		for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
done

if ! hangar list >/dev/null 2>&1; then
	echo "starting hangard (data: $data, socket: $socket, log: $log)"
	mkdir -p "$data" "$(dirname "$log")"
	# Its own session: it outlives this script and a Ctrl-C typed in it.
	netns=()
	[ -n "${HANGAR_NETNS:-}" ] && netns=(nsenter "--net=$HANGAR_NETNS" --)
	setsid "${netns[@]}" "$prefix/bin/hangard" --data-dir "$data" --socket "$socket" </dev/null >>"$log" 2>&1 &
	echo $! >"$pidfile"
	for _ in $(seq 100); do
		hangar list >/dev/null 2>&1 && break
		if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
			echo "hangard exited at start; its log, $log, ends with:" >&2
			tail -n 20 "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
	if ! hangar list >/dev/null 2>&1; then
		echo "hangard does not answer on $socket after 10s; see $log" >&2
		exit 1
	fi
fi

if ! hangar image info busybox >/dev/null 2>&1; then
	tarball=$(bash scripts/busybox-rootfs.sh)
	hangar image import "$tarball" --alias busybox --os busybox --release "$(busybox | head -1 | cut -d' ' -f2)" --description "BusyBox root filesystem"
	rm -f "$tarball"
fi
hangar info first >/dev/null 2>&1 || hangar launch busybox first -c limits.memory=128MiB
hangar start first 2>/dev/null || true

# The same image as a virtual machine, when this host can run QEMU (KVM if
# /dev/kvm exists, else TCG: a few seconds to boot).
vm=""
for need in qemu-system-x86_64 qemu-img mkfs.ext4; do
	command -v "$need" >/dev/null || { vm="$need is not installed (scripts/deps.sh installs it)" && break; }
done
if [ -z "$vm" ] && ! compgen -G '/boot/vmlinuz-*' >/dev/null; then
	vm="no guest kernel in /boot (apt-get install linux-image-amd64)"
fi
if [ -z "$vm" ]; then
	# The VM is the optional part: its failure is said, and the container
	# part of the job still ends well. A failed launch leaves no vm1.
	if ! hangar info vm1 >/dev/null 2>&1; then
		hangar launch busybox vm1 --vm || vm="its launch failed (see $log)"
	fi
	hangar start vm1 2>/dev/null || true
	if [ -z "$vm" ] && ! hangar list --format csv vm1 | grep -q '^vm1,RUNNING,'; then
		vm="vm1 does not run (see $log)"
	fi
fi

hangar list
# A command run inside it, in its namespaces, as its root.
hangar exec first -- sh -c 'echo "hello from $(hostname): $(id)"'
if [ -z "$vm" ]; then
	# The same through the guest agent, in the VM's own kernel.
	hangar exec vm1 -- uname -a
else
	echo "skipping the VM vm1: $vm"
fi
