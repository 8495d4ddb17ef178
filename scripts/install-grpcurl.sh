#!/usr/bin/env bash
# install-grpcurl.sh [BUILD_DIR] - installs the pinned grpcurl the e2e tests drive
# (tests/e2e/test_admin_e2e.c) into BUILD_DIR/tools (default: build). Idempotent: does nothing
# when the pinned version is already there. Needs Go: from PATH, else /usr/local/go/bin/go.
# Without Go it fails loudly rather than skipping: the tests that need grpcurl would otherwise
# fail later with a less obvious message.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=v1.9.1
build_dir=${1:-build}
mkdir -p "$build_dir/tools"
tools=$(cd "$build_dir/tools" && pwd)
bin="$tools/grpcurl"

go=$(command -v go || true)
if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
if [ -z "$go" ]; then
    echo "install-grpcurl.sh: Go is not installed (not on PATH, not /usr/local/go/bin/go);" \
         "it is needed to install grpcurl $VERSION for the e2e tests" >&2
    exit 1
fi

# `go install` leaves grpcurl's -version at "dev build"; the module version is in the binary's
# build information, which `go version -m` prints as "mod github.com/fullstorydev/grpcurl v1.9.1".
pinned() {
    [ -x "$bin" ] && "$go" version -m "$bin" 2>/dev/null |
        grep -qE "^[[:space:]]*mod[[:space:]]+github.com/fullstorydev/grpcurl[[:space:]]+$VERSION[[:space:]]"
}
if pinned; then
    exit 0
fi

echo "installing grpcurl $VERSION into $tools"
GOBIN="$tools" "$go" install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$VERSION"
pinned || {
    echo "install-grpcurl.sh: $bin does not report $VERSION" >&2
    exit 1
}
