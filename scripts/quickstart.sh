#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine as root: install what is
# missing, build, start hangard with its defaults, import a small busybox
# image, launch a container and list it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
CGO_ENABLED=0 go build -o bin/ ./cmd/hangard ./cmd/hangar
install -m 0755 bin/hangard bin/hangar /usr/local/bin/

if ! hangar list >/dev/null 2>&1; then
	echo "starting hangard (log: /var/log/hangard.log)"
	nohup hangard >>/var/log/hangard.log 2>&1 &
	for _ in $(seq 50); do hangar list >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! hangar image info busybox >/dev/null 2>&1; then
	tarball=$(bash scripts/busybox-rootfs.sh)
	hangar image import "$tarball" --alias busybox --os busybox --release "$(busybox | head -1 | cut -d' ' -f2)" --description "BusyBox root filesystem"
	rm -f "$tarball"
fi
hangar info first >/dev/null 2>&1 || hangar launch busybox first -c limits.memory=128MiB
hangar start first 2>/dev/null || true
hangar list
# A command run inside it, in its namespaces, as its root.
hangar exec first -- sh -c 'echo "hello from $(hostname): $(id)"'
