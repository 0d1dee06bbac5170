#!/usr/bin/env bash
# The whole test suite: static checks, then unit and end-to-end tests with
# the race detector. End-to-end tests need root and runc (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
bash scripts/deps.sh
go mod download
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
GOFLAGS= go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
# 24m: the end-to-end package takes ~15 minutes on 2 cores (VMs under
# TCG); its bound stays clear of noise while the whole run keeps under CI's 30.
go test -race -count=1 -timeout 24m ./... 2>&1 | tee /tmp/hangar-test.log
