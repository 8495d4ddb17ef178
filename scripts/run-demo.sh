#!/usr/bin/env bash
# run-demo.sh - the main job: installs what is missing, builds, and runs a local testnet of 4
# replicas that prints every block as it commits. Ctrl-C stops it cleanly.
# Extra arguments go to the demo (--blocks N: stop after N commits on every replica;
# --seconds S: stop after S seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" --target testnet_demo
exec build/testnet_demo "$@"
