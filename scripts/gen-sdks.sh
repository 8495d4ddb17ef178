#!/usr/bin/env bash
# gen-sdks.sh - generates the client SDKs from proto/ (the one source of the wire contract)
# into the build folder; nothing generated is committed.
#
#   scripts/gen-sdks.sh [--build DIR] [--python] [--go] [--buf]     (default: all three)
#
#   DIR/sdk/python   the Python package hotstuff_sdk (sdk/python, hand-written) beside the
#                    stubs hotstuff/v1/*_pb2*.py (protoc + Debian's grpc_python_plugin). Use it
#                    with /usr/bin/python3, which sees Debian's python3-grpcio:
#                      PYTHONPATH=DIR/sdk/python /usr/bin/python3 examples/python_sdk.py ADDR
#   DIR/sdk/go       the Go module hotstuff-c/sdk/go (sdk/go, hand-written) with the stubs in
#                    its package hotstuffv1 (protoc-gen-go, protoc-gen-go-grpc), and the
#                    example examples/go_sdk; built, gofmt- and `go vet`-checked here.
#   DIR/tools        the pinned Go tools: protoc-gen-go, protoc-gen-go-grpc and (--buf) buf,
#                    installed with `go install` through the Go module proxy when missing.
#
# Go: the machine's own (on PATH or /usr/local/go/bin), 1.25 or newer.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO=google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.11
PROTOC_GEN_GO_GRPC=google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
BUF=github.com/bufbuild/buf/cmd/buf@v1.65.0

build=build want_py=0 want_go=0 want_buf=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --python) want_py=1; shift ;;
    --go) want_go=1; shift ;;
    --buf) want_buf=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gen-sdks.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ $want_py = 0 ] && [ $want_go = 0 ] && [ $want_buf = 0 ]; then want_py=1 want_go=1 want_buf=1; fi
mkdir -p "$build"
build=$(cd "$build" && pwd)
tools="$build/tools"
protos=(hotstuff/v1/types.proto hotstuff/v1/kvapp.proto hotstuff/v1/admin.proto
        hotstuff/v1/replica.proto)
die() { echo "gen-sdks.sh: $*" >&2; exit 1; }
command -v protoc >/dev/null || die "protoc missing: run scripts/install-deps.sh"

# Several ctest runs may generate at once (a fixture per build folder; tools shared): each
# step writes into a fresh temporary folder and renames it into place.
fresh() { local t; t=$(mktemp -d "$1.tmp.XXXXXX"); echo "$t"; }
place() { rm -rf "$2"; mv "$1" "$2"; }

if [ $want_py = 1 ]; then
  plugin=$(command -v grpc_python_plugin) || die "grpc_python_plugin missing: run scripts/install-deps.sh"
  /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null ||
    die "/usr/bin/python3 lacks grpcio or protobuf: run scripts/install-deps.sh"
  mkdir -p "$build/sdk"
  out=$(fresh "$build/sdk/python")
  protoc -Iproto --python_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$plugin" \
    "${protos[@]}"
  cp -r sdk/python/hotstuff_sdk "$out/"
  PYTHONPATH="$out" /usr/bin/python3 -c 'import hotstuff_sdk' ||
    die "the generated Python package does not import"
  place "$out" "$build/sdk/python"
  echo "gen-sdks: Python SDK in $build/sdk/python"
fi

find_go() {
  if command -v go >/dev/null; then return; fi
  [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin" && return
  die "Go (1.25 or newer) not found on PATH or in /usr/local/go/bin"
}

# go install of a pinned tool, once per version (the stamp records which).
tool() {
  local pkg=$1 name=${1%@*}; name=${name##*/}
  local stamp="$tools/.$name.version"
  if [ -x "$tools/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then return; fi
  mkdir -p "$tools"
  echo "gen-sdks: go install $pkg"
  GOBIN="$tools" GOFLAGS=-buildvcs=false go install "$pkg"
  echo "$pkg" >"$stamp"
}

if [ $want_go = 1 ]; then
  find_go
  tool "$PROTOC_GEN_GO"
  tool "$PROTOC_GEN_GO_GRPC"
  mkdir -p "$build/sdk"
  out=$(fresh "$build/sdk/go")
  cp -r sdk/go/. "$out/"
  mkdir -p "$out/examples/go_sdk"
  cp examples/go_sdk/main.go "$out/examples/go_sdk/"
  m=()
  for p in "${protos[@]}"; do m+=("M$p=hotstuff-c/sdk/go/hotstuffv1"); done
  gopt=$(IFS=,; echo "${m[*]}")
  protoc -Iproto --plugin=protoc-gen-go="$tools/protoc-gen-go" \
    --plugin=protoc-gen-go-grpc="$tools/protoc-gen-go-grpc" \
    --go_out="$out" --go_opt="module=hotstuff-c/sdk/go,$gopt" \
    --go-grpc_out="$out" --go-grpc_opt="module=hotstuff-c/sdk/go,$gopt" "${protos[@]}"
  bad=$(cd "$out" && gofmt -l .)
  [ -z "$bad" ] || die "not gofmt-formatted: $bad (run gofmt -w sdk/go examples/go_sdk)"
  (cd "$out" && GOFLAGS="-buildvcs=false -mod=readonly" go build ./... &&
     GOFLAGS="-buildvcs=false -mod=readonly" go vet ./...) || die "the Go SDK does not build or vet"
  place "$out" "$build/sdk/go"
  echo "gen-sdks: Go SDK in $build/sdk/go (go vet clean)"
fi

if [ $want_buf = 1 ]; then
  find_go
  tool "$BUF"
  echo "gen-sdks: buf in $tools/buf"
fi
