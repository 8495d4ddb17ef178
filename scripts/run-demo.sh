#!/usr/bin/env bash
# run-demo.sh - the main job: installs what is missing, builds, and starts a local testnet of
# 4 hotstuffd replicas on loopback (gRPC between them, LevelDB stores), printing every block as
# it commits and submitting a few transactions. Ctrl-C stops every node cleanly.
# Arguments go to scripts/testnet.sh (--validators N, --listeners M, --seconds S, --dir DIR,
# --base-port P). The in-process library demo is build/testnet_demo.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/testnet.sh "$@"
