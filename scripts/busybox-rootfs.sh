#!/usr/bin/env bash
# Builds a tiny root filesystem from the host's static busybox and prints the
# path of its .tar.gz. Its init keeps the container running until stopped.
set -euo pipefail
bb=$(command -v busybox)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc,root,run,var/log}
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list-full); do
	[ -e "$dir/$applet" ] || ln -s /bin/busybox "$dir/$applet"
done
printf '::sysinit:/bin/mount -t tmpfs tmpfs /tmp\n::respawn:/bin/sleep 2147483647\n::shutdown:/bin/true\n' >"$dir/etc/inittab"
echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
echo 'root:x:0:' >"$dir/etc/group"
chmod 1777 "$dir/tmp"
out=$(mktemp --suffix=.tar.gz)
tar -C "$dir" --numeric-owner -czf "$out" .
echo "$out"
