#!/usr/bin/env bash
# The CLI's own cost, beside a Go hello-world built the same way, in one run
# of interleaved rounds (bench/cmd/cmdtime): `hangar --version` (start-up
# alone; issue 10's target: at most 1.5x the hello-world), and with a
# running hangard `hangar exec NAME -- true` and `hangar list --format yaml`,
# and `lxc exec NAME -- true` against LXD when given.
# Root is not needed for the start-up figures.
#
# Usage: bench/cli.sh [-n RUNS] [-s SOCKET -e INSTANCE] [-l LXD_INSTANCE]
#   -n RUNS          rounds (default 200)
#   -s SOCKET        a running hangard's socket; with -e, also time exec in
#                    INSTANCE (running) and list --format yaml
#   -l LXD_INSTANCE  also time `lxc exec LXD_INSTANCE -- true` (lxc's own
#                    remote, i.e. LXD)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=200
socket="" inst="" lxdinst=""
while getopts n:s:e:l: o; do
	case $o in
	n) RUNS=$OPTARG ;;
	s) socket=$OPTARG ;;
	e) inst=$OPTARG ;;
	l) lxdinst=$OPTARG ;;
	*) sed -n '2,15p' "$0" >&2; exit 2 ;;
	esac
done
export PATH=$PATH:/usr/local/go/bin
work=$(mktemp -d /tmp/hangar-clibench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Both binaries the way the scripts build hangar: CGO_ENABLED=0, no flags.
mkdir -p "$work/hello"
cat >"$work/hello/main.go" <<'EOF'
package main

import "fmt"

func main() { fmt.Println("hello") }
EOF
printf 'module hello\n\ngo 1.22\n' >"$work/hello/go.mod"
(cd "$work/hello" && CGO_ENABLED=0 go build -o "$work/hello-world" .)
CGO_ENABLED=0 go build -o "$work/hangar" ./cmd/hangar
go build -o "$work/cmdtime" ./bench/cmd/cmdtime
# The linker writes its output through mmap, which leaves the file in the
# page cache as small pages: a binary run straight from `go build` starts
# measurably slower (more page faults) than the same bytes copied, as
# install and the quickstart do. Copy both.
for b in hello-world hangar; do
	cp "$work/$b" "$work/$b.tmp" && mv "$work/$b.tmp" "$work/$b"
done

echo "$(go version); $(nproc) cores; $(uname -r); hangar $(stat -c %s "$work/hangar") bytes, hello-world $(stat -c %s "$work/hello-world") bytes; $RUNS rounds"
echo
cmds=("$work/hello-world" --- "$work/hangar" --version)
if [ -n "$socket" ] && [ -n "$inst" ]; then
	cmds+=(--- "$work/hangar" --socket "$socket" exec "$inst" -- true)
	cmds+=(--- "$work/hangar" --socket "$socket" list --format yaml)
fi
if [ -n "$lxdinst" ]; then
	cmds+=(--- lxc exec "$lxdinst" -- true)
fi
"$work/cmdtime" -n "$RUNS" "${cmds[@]}" | sed "s#$work/##g"
