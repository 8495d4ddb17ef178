#!/usr/bin/env bash
# testnet.sh - a local testnet of hotstuffd on loopback, with a live view of committed blocks.
#
#   scripts/testnet.sh [--validators N] [--listeners M] [--base-port P] [--dir DIR]
#                      [--seconds S] [--build DIR]
#
# Builds hotstuffd and hotstuffctl, writes the node files with `hotstuffctl testnet` (in a new
# temporary directory unless --dir is given), starts every node in the background with its log
# in DIR/node<i>/log, prints one line per committed block per node, and submits a few
# transactions once blocks commit. Ctrl-C (or --seconds S) stops every node cleanly (SIGTERM,
# then SIGKILL after 10 s) and leaves DIR for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

validators=4 listeners=0 base_port=26600 dir="" seconds=0 build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --validators) validators=$2; shift 2 ;;
    --listeners) listeners=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "testnet.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -x scripts/install-deps.sh ] && [ "${HS_SKIP_DEPS:-0}" != 1 ]; then scripts/install-deps.sh; fi
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs" --target hotstuffd hotstuffctl >/dev/null
bin="$build/server"

[ -n "$dir" ] || dir=$(mktemp -d /tmp/hotstuff-testnet.XXXXXX)
"$bin/hotstuffctl" testnet --validators "$validators" --listeners "$listeners" \
  --dir "$dir" --base-port "$base_port" --host 127.0.0.1
nodes=$((validators + listeners))

pids=() view_pid="" feeder_pid="" stopped=0
stop_all() {
  [ $stopped = 1 ] && return
  stopped=1
  [ -n "$feeder_pid" ] && kill "$feeder_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  [ -n "$view_pid" ] && kill "$view_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "testnet stopped; files and logs are in $dir"
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM

# Each node in its own session, so a Ctrl-C in the terminal reaches only this script, which
# then stops the nodes in order (SIGTERM, then SIGKILL after 10 s).
for i in $(seq 0 $((nodes - 1))); do
  setsid "$bin/hotstuffd" --config "$dir/node$i/config.json" >"$dir/node$i/log" 2>&1 &
  pids+=($!)
done
echo "started $nodes nodes (pids ${pids[*]}); Ctrl-C stops them"

# The live view: tail prints "==> DIR/nodeI/log <==" when it switches files; awk keeps the
# node's name from it and reformats the commit lines (and shows errors).
tail -n +1 -F "$dir"/node*/log 2>/dev/null | awk '
  /^==> / { node = $2; sub(/\/log$/, "", node); sub(/.*\//, "", node); next }
  /msg="committed height=/ {
    match($0, /height=[0-9]+/); h = substr($0, RSTART + 7, RLENGTH - 7)
    match($0, /hash=[0-9a-f]+/); hh = substr($0, RSTART + 5, 16)
    match($0, /txs=[0-9]+/); t = substr($0, RSTART + 4, RLENGTH - 4)
    printf "%-7s committed height %-7s hash %s  txs %s\n", node, h, hh, t; fflush(); next }
  /level=error/ { print node ": " $0; fflush() }
' &
view_pid=$!

# A few transactions once the first block has committed.
(
  for _ in $(seq 300); do
    grep -q 'msg="committed height=' "$dir"/node0/log 2>/dev/null && break
    sleep 0.1
  done
  n=0
  for kv in "greeting hello" "answer 42" "color blue"; do
    set -- $kv
    "$bin/hotstuffctl" submit --addr "127.0.0.1:$((base_port + n % nodes))" put "$1" "$2" |
      sed "s/^/submit put $1=$2: /" || true
    n=$((n + 1))
    sleep 1
  done
) &
feeder_pid=$!

if [ "$seconds" -gt 0 ]; then
  sleep "$seconds"
else
  # Wait until a node exits on its own (or Ctrl-C).
  wait -n "${pids[@]}" || true
  echo "a node exited; see its log in $dir"
fi
