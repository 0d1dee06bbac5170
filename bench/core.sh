#!/usr/bin/env bash
# Core hot paths of hangard beside bare runc, measured in the same run on the
# same busybox root filesystem:
#   launch (create+start) through the CLI and through the API alone,
#   stop --force, GET /1.0/instances?recursion=2 at 100 running containers,
#   hangard RSS idle and at 100 running containers, helper processes per container.
# Usage: bench/core.sh [-n RUNS] [-s SCALE]   (as root; prints a Markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=10
SCALE=100
while getopts n:s: o; do
	case $o in
	n) RUNS=$OPTARG ;;
	s) SCALE=$OPTARG ;;
	*) echo "usage: $0 [-n RUNS] [-s SCALE]" >&2; exit 2 ;;
	esac
done
export PATH=$PATH:/usr/local/go/bin
work=$(mktemp -d /tmp/hangar-bench.XXXXXX)
chmod 711 "$work" # unprivileged container roots must traverse it
data=$work/data
sock=$data/unix.socket
cleanup() {
	set +e
	if [ -S "$sock" ]; then
		for n in $(bin/hangar --socket "$sock" list --format csv 2>/dev/null | cut -d, -f1); do
			bin/hangar --socket "$sock" delete --force "$n" >/dev/null 2>&1
		done
	fi
	[ -n "${hpid:-}" ] && kill "$hpid" 2>/dev/null && wait "$hpid" 2>/dev/null
	for id in $(runc --root "$work/runc" list -q 2>/dev/null); do runc --root "$work/runc" delete -f "$id"; done
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s%N; }
ms() { echo "scale=1; ($2-$1)/1000000" | bc; }
stats() { sort -n | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s %s %s\n", m, a[1], a[NR]}'; }

CGO_ENABLED=0 go build -o bin/ ./cmd/hangard ./cmd/hangar
tarball=$(bash scripts/busybox-rootfs.sh)
mkdir -p "$work/bundle/rootfs"
tar -C "$work/bundle/rootfs" -xzf "$tarball"

# --- bare runc: the floor -------------------------------------------------
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["/sbin/init"]
s["root"]["readonly"] = False
json.dump(s, open(p, "w"))
PY
runc_start=() runc_stop=()
for i in $(seq "$RUNS"); do
	t0=$(now)
	runc --root "$work/runc" create --bundle "$work/bundle" "r$i" </dev/null >/dev/null 2>&1
	runc --root "$work/runc" start "r$i"
	t1=$(now)
	runc --root "$work/runc" kill "r$i" KILL
	runc --root "$work/runc" delete --force "r$i"
	t2=$(now)
	runc_start+=("$(ms "$t0" "$t1")")
	runc_stop+=("$(ms "$t1" "$t2")")
done

# --- hangard ------------------------------------------------------------
mkdir -p "$data"
bin/hangard --data-dir "$data" --log-level warn >"$work/hangard.log" 2>&1 &
hpid=$!
for _ in $(seq 100); do bin/hangar --socket "$sock" list >/dev/null 2>&1 && break; sleep 0.05; done
H() { bin/hangar --socket "$sock" "$@"; }
H image import "$tarball" --alias busybox >/dev/null
rm -f "$tarball"
rss() { awk '/VmRSS/{print $2/1024}' "/proc/$hpid/status"; }
rss_idle=$(rss)
# Warm the shifted image tree and the daemon's caches once.
H launch busybox warm >/dev/null && H delete --force warm >/dev/null

api() { curl -s --unix-socket "$sock" "$@"; }
launch_cli=() stop_cli=() launch_api=()
for i in $(seq "$RUNS"); do
	t0=$(now); H launch busybox "b$i" >/dev/null; t1=$(now)
	H stop --force "b$i" >/dev/null; t2=$(now)
	H delete "b$i" >/dev/null
	launch_cli+=("$(ms "$t0" "$t1")")
	stop_cli+=("$(ms "$t1" "$t2")")
	# The daemon's own time for create+start: the operation's lifetime,
	# from its timestamps (starting curl twice costs more than the call).
	op=$(api -X POST -d "{\"name\":\"a$i\",\"source\":{\"type\":\"image\",\"alias\":\"busybox\"},\"start\":true}" http://h/1.0/instances | sed -n 's/.*"operation":"\([^"]*\)".*/\1/p')
	launch_api+=("$(api "http://h$op/wait?timeout=30" | python3 -c '
import json, sys, datetime
m = json.load(sys.stdin)["metadata"]
t = lambda s: datetime.datetime.fromisoformat(s[:26].rstrip("Z"))
print(round((t(m["updated_at"]) - t(m["created_at"])).total_seconds() * 1000, 1))')")
	H delete --force "a$i" >/dev/null
done

# --- scale ---------------------------------------------------------------
for i in $(seq "$SCALE"); do
	api -X POST -d "{\"name\":\"s$i\",\"source\":{\"type\":\"image\",\"alias\":\"busybox\"},\"start\":true}" http://h/1.0/instances >/dev/null
done
for _ in $(seq 600); do
	n=$(api 'http://h/1.0/instances?filter=status+eq+Running' | grep -o '/1.0/instances/' | wc -l)
	[ "$n" -ge "$SCALE" ] && break
	sleep 0.2
done
list2=()
for _ in $(seq 20); do
	# curl's own clock: the request alone, without starting curl.
	list2+=("$(api -o /dev/null -w '%{time_total}' 'http://h/1.0/instances?recursion=2' | awk '{print $1*1000}')")
done
rss_scale=$(rss)
helpers=$(ps --ppid "$hpid" -o comm= | grep -vc '^init$' || true)

row() { # name, values..., peer-median
	local name=$1 peer=$2; shift 2
	read -r med min max < <(printf '%s\n' "$@" | stats)
	local ratio="-"
	[ "$peer" != "-" ] && ratio=$(echo "scale=2; $med/$peer" | bc)
	printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$med" "$min" "$max" "$peer" "$ratio"
}
read -r runc_start_med _ _ < <(printf '%s\n' "${runc_start[@]}" | stats)
read -r runc_stop_med _ _ < <(printf '%s\n' "${runc_stop[@]}" | stats)
echo
echo "hangard vs bare runc, $(date -u +%F), $(nproc) cores, runs=$RUNS, scale=$SCALE, commit $(git rev-parse --short HEAD 2>/dev/null || echo none)"
echo
echo "| op (ms) | median | min | max | bare runc median | ratio |"
echo "|---|---|---|---|---|---|"
row "runc create+start (floor)" - "${runc_start[@]}"
row "runc kill+delete (floor)" - "${runc_stop[@]}"
row "hangar launch (CLI, create+start)" "$runc_start_med" "${launch_cli[@]}"
row "create+start inside hangard (operation lifetime)" "$runc_start_med" "${launch_api[@]}"
row "hangar stop --force (CLI)" "$runc_stop_med" "${stop_cli[@]}"
row "GET /1.0/instances?recursion=2 at $SCALE running" - "${list2[@]}"
echo
echo "hangard RSS: idle ${rss_idle} MB, with $SCALE running containers ${rss_scale} MB; helper processes per container: $helpers in total"
