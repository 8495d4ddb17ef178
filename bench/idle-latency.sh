#!/usr/bin/env bash
# bench/idle-latency.sh - submit-to-commit latency of one transaction on an idle testnet, and the
# commit gap when a validator is killed.
#
#   bench/idle-latency.sh [--runs N] [--base-port P] [--build DIR] [--kill]
#
# Starts 4 hotstuffd validators on loopback (default config from `hotstuffctl testnet`: LevelDB
# with sync writes, max_view_time 2000 ms, empty_block_wait 250 ms), waits for commits, then N
# times: `hotstuffctl submit --wait put` to node0, timed around the command (so the CLI's start
# and connection are included: the `status` line gives that floor), with the chain left idle in
# between. With --kill it then kills node1 (kill -9) and reports the time until every live node
# committed a new height, and the commit rate over the next 10 s. Prints a table and one JSON
# line. A benchmark, not a test: CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=21 base_port=27600 build=build kill=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --kill) kill=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "idle-latency.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
bin="$build/server"
[ -x "$bin/hotstuffd" ] && [ -x "$bin/hotstuffctl" ] || {
  echo "idle-latency.sh: build first (scripts/test.sh or cmake --build $build)" >&2; exit 2; }

dir=$(mktemp -d /tmp/hotstuff-bench.XXXXXX)
"$bin/hotstuffctl" testnet --validators 4 --dir "$dir" --base-port "$base_port" \
  --host 127.0.0.1 --log-level info >/dev/null
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for i in 0 1 2 3; do
  "$bin/hotstuffd" --config "$dir/node$i/config.json" >"$dir/node$i/log" 2>&1 &
  pids+=($!)
done

now_ms() { date +%s%3N; }
height() { grep -o 'committed height=[0-9]*' "$dir/node$1/log" 2>/dev/null | tail -1 | cut -d= -f2; }
await_height() { # node, height, timeout ms
  local deadline=$(( $(now_ms) + $3 ))
  while [ "$(height "$1")" = "" ] || [ "$(height "$1")" -lt "$2" ]; do
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.005
  done
}
await_height 0 3 60000 || { echo "no commits within 60 s" >&2; exit 1; }

admin="127.0.0.1:$((base_port + 100))"
floor=()
for k in 1 2 3 4 5; do
  t0=$(now_ms); "$bin/hotstuffctl" --addr "$admin" status >/dev/null; floor+=($(( $(now_ms) - t0 )))
done
lat=()
for k in $(seq "$runs"); do
  h=$(height 0)
  t0=$(now_ms)
  "$bin/hotstuffctl" --addr "$admin" submit --wait put "bench$k" v >/dev/null
  lat+=($(( $(now_ms) - t0 )))
  await_height 0 $((h + 4)) 30000 # idle again
done

stats() { # prints median min max of the arguments
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)], a[1], a[NR]}'
}
read -r med min max < <(stats "${lat[@]}")
read -r fmed _ _ < <(stats "${floor[@]}")
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
printf '%-44s %8s %8s %8s\n' "" median min max
printf '%-44s %8s %8s %8s\n' "idle submit --wait to commit (ms, $runs runs)" "$med" "$min" "$max"
printf '%-44s %8s\n' "hotstuffctl status, the CLI's own floor (ms)" "$fmed"
json="{\"runs\":$runs,\"idle_submit_commit_ms\":{\"median\":$med,\"min\":$min,\"max\":$max},\"cli_floor_ms\":$fmed"

if [ "$kill" = 1 ]; then
  h=$(height 0); [ "$(height 2)" -gt "$h" ] && h=$(height 2)
  t0=$(now_ms)
  kill -KILL "${pids[1]}"
  for i in 0 2 3; do await_height "$i" $((h + 1)) 60000; done
  resume=$(( $(now_ms) - t0 ))
  h1=$(height 0); t1=$(now_ms)
  sleep 10
  rate=$(awk -v a="$h1" -v b="$(height 0)" -v t="$(( $(now_ms) - t1 ))" 'BEGIN {printf "%.1f", (b - a) * 1000 / t}')
  printf '%-44s %8s\n' "kill -9 node1: every live node commits (ms)" "$resume"
  printf '%-44s %8s\n' "blocks/s with node1 down (idle chain)" "$rate"
  json="$json,\"kill_resume_ms\":$resume,\"blocks_per_s_one_down\":$rate"
fi
echo "$json}"
