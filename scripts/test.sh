#!/usr/bin/env bash
# test.sh - installs what is missing, configures build/ (RelWithDebInfo), builds everything and
# runs every test (unit, integration, crash-restart) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
# The pinned grpcurl the e2e tests of the admin service drive.
scripts/install-grpcurl.sh build
cd build
ctest --output-on-failure
