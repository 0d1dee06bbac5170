#!/usr/bin/env bash
# Pull of an image from a loopback OCI registry: hangard (`hangar image pull`,
# download + verify + unpack into the shared tree) beside `skopeo copy` to an
# OCI layout plus `umoci unpack` (the same work with the reference tools),
# and `podman pull` for reference, all in the same run against the same
# registry (bench/cmd/ociregistry: go-containerregistry's registry, a
# SIZE-byte, LAYERS-layer image of incompressible files).
# Needs root and: apt-get install skopeo umoci podman
# Usage: bench/pull.sh [-n RUNS] [-s SIZE_MB] [-l LAYERS]   (prints a Markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3
SIZE=100
LAYERS=5
while getopts n:s:l: o; do
	case $o in
	n) RUNS=$OPTARG ;;
	s) SIZE=$OPTARG ;;
	l) LAYERS=$OPTARG ;;
	*) echo "usage: $0 [-n RUNS] [-s SIZE_MB] [-l LAYERS]" >&2; exit 2 ;;
	esac
done
for tool in skopeo umoci; do
	command -v $tool >/dev/null || { echo "$tool is not installed: apt-get install skopeo umoci" >&2; exit 1; }
done
export PATH=$PATH:/usr/local/go/bin
work=$(mktemp -d /tmp/hangar-pullbench.XXXXXX)
chmod 711 "$work"
data=$work/data
sock=$data/unix.socket
cleanup() {
	set +e
	[ -n "${hpid:-}" ] && kill "$hpid" 2>/dev/null && wait "$hpid" 2>/dev/null
	[ -n "${rpid:-}" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s%N; }
ms() { echo "scale=1; ($2-$1)/1000000" | bc; }
median() { sort -n | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s", m}'; }

go build -o bin/ ./cmd/hangard ./cmd/hangar
go build -o "$work/ociregistry" ./bench/cmd/ociregistry
"$work/ociregistry" -size $((SIZE << 20)) -layers "$LAYERS" >"$work/registry.out" 2>&1 &
rpid=$!
for _ in $(seq 600); do grep -q '^ready' "$work/registry.out" 2>/dev/null && break; sleep 0.1; done
read -r _ host ref <"$work/registry.out"
echo "registry $host serving $ref (${SIZE} MB in $LAYERS layers)" >&2

mkdir -p "$data"
bin/hangard --data-dir "$data" --socket "$sock" >"$work/hangard.log" 2>&1 &
hpid=$!
for _ in $(seq 200); do bin/hangar --socket "$sock" list >/dev/null 2>&1 && break; sleep 0.05; done

hangar_times=() skopeo_times=() umoci_times=() both_times=() podman_times=()
for i in $(seq "$RUNS"); do
	sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	t0=$(now)
	out=$(bin/hangar --socket "$sock" image pull "$ref" --insecure </dev/null)
	t1=$(now)
	hangar_times+=("$(ms "$t0" "$t1")")
	fp=${out##*: }
	bin/hangar --socket "$sock" image delete "$fp" >/dev/null

	sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	rm -rf "$work/oci" "$work/bundle"
	t0=$(now)
	skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/oci:img" >/dev/null
	t1=$(now)
	umoci unpack --image "$work/oci:img" "$work/bundle" >/dev/null
	t2=$(now)
	skopeo_times+=("$(ms "$t0" "$t1")"); umoci_times+=("$(ms "$t1" "$t2")"); both_times+=("$(ms "$t0" "$t2")")
	rm -rf "$work/oci" "$work/bundle"

	if command -v podman >/dev/null; then
		sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
		rm -rf "$work/podman"
		t0=$(now)
		podman --root "$work/podman/root" --runroot "$work/podman/run" pull -q --tls-verify=false "$ref" >/dev/null
		t1=$(now)
		podman_times+=("$(ms "$t0" "$t1")")
		podman --root "$work/podman/root" --runroot "$work/podman/run" rmi -a -f >/dev/null 2>&1 || true
		rm -rf "$work/podman"
	fi
done

h=$(printf '%s\n' "${hangar_times[@]}" | median)
b=$(printf '%s\n' "${both_times[@]}" | median)
echo
echo "Pull of a ${SIZE} MB, ${LAYERS}-layer image from a loopback registry; median of $RUNS runs, cold page cache, ms"
echo
echo "| tool | median ms | runs |"
echo "|---|---|---|"
echo "| hangar image pull (download + verify + unpack) | $h | ${hangar_times[*]} |"
echo "| skopeo copy (to OCI layout) | $(printf '%s\n' "${skopeo_times[@]}" | median) | ${skopeo_times[*]} |"
echo "| umoci unpack | $(printf '%s\n' "${umoci_times[@]}" | median) | ${umoci_times[*]} |"
echo "| skopeo copy + umoci unpack | $b | ${both_times[*]} |"
if [ ${#podman_times[@]} -gt 0 ]; then
	echo "| podman pull (reference) | $(printf '%s\n' "${podman_times[@]}" | median) | ${podman_times[*]} |"
fi
echo
echo "hangar / (skopeo + umoci) = $(echo "scale=2; $h / $b" | bc) (target: at most 1.5)"
