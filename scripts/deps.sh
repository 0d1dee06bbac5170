#!/usr/bin/env bash
# Installs what hangard and its tests need on Debian 12, only what is missing
# (lxd-client is the real lxc the end-to-end tests drive hangard with).
set -euo pipefail
need=()
# dnsmasq-base serves DHCP and DNS on managed bridges; nftables is the `nft`
# the network tests read the ruleset with (hangard itself speaks netlink);
# btrfs-progs makes btrfs pools (mkfs.btrfs).
for pkg in runc busybox-static xz-utils iproute2 ca-certificates lxd-client squashfs-tools dnsmasq-base nftables btrfs-progs; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
	# Debian's Go is older than go.mod asks; the go command then fetches
	# the right toolchain through the module proxy (GOTOOLCHAIN=auto).
	need+=(golang-go)
fi
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Virtual machines: qemu-system-x86 and qemu-utils run them, e2fsprogs
# builds their root disks (mkfs.ext4 -d), linux-image-amd64 is the guest
# kernel with its modules (/boot/vmlinuz-*, /lib/modules), ovmf the UEFI
# firmware for disk images, swtpm and swtpm-tools emulate tpm devices (a
# TPM 2.0 per VM), xorriso makes the ISO images the CD-ROM tests attach.
# Without recommends: they would pull a desktop.
vm=()
for pkg in qemu-system-x86 qemu-utils e2fsprogs linux-image-amd64 ovmf swtpm swtpm-tools xorriso; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || vm+=("$pkg")
done
if [ ${#vm[@]} -gt 0 ]; then
	echo "installing: ${vm[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${vm[@]}" >/dev/null
fi
# Metrics: prometheus provides promtool (the tests check /1.0/metrics with
# `promtool check metrics`) and the Prometheus server one test scrapes
# hangard with. Without recommends: the node exporter is not needed.
if ! dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q "install ok installed"; then
	echo "installing: prometheus"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
