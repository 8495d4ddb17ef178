#!/usr/bin/env bash
# bench/run.sh - throughput and latency of a 4-replica hotstuffd testnet under load.
#
#   bench/run.sh [--scenario NAME[,NAME...]|all] [--sync on|off|both] [--duration S]
#                [--warmup S] [--build DIR] [--base-port P] [--smoke] [--out FILE]
#
# For each scenario (and each sync setting): writes a fresh 4-validator testnet with
# `hotstuffctl testnet` (LevelDB; sync_writes as asked; the scenario's block limits), starts the
# replicas on loopback, runs build/bench/hs_loadgen against all four admin ports (warm-up, then
# the measured window), and stops them. Each run prints hs_loadgen's table; at the end one
# summary table, and one JSON line per run (also appended to --out FILE when given).
#
# Scenarios:
#   tx1      1 transaction per block, no empty-block wait: consensus-bound (closed loop, 4 out)
#   tx400    100-byte puts, up to 400 per block (closed loop, 2400 outstanding)
#   tx2000   100-byte puts, up to 2000 per block (closed loop, 8000 outstanding)
#   kill     tx400, and node3 is killed with SIGKILL a third into the window
#   soak     tx400 for 10 minutes (--duration overrides): memory growth
# `all` runs tx1, tx400, tx2000 and kill. --smoke runs tx400 for 3 s, sync on: CI's check that
# the harness works and prints its JSON line (not a measurement).
#
# A benchmark, not a test. Quote the machine with the figures: it prints it first.
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios="all" sync="on" duration="" warmup=3 build=build base_port=27800 smoke=0 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario) scenarios=$2; shift 2 ;;
    --sync) sync=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ "$smoke" = 1 ]; then scenarios=tx400 sync=on duration=${duration:-3} warmup=2; fi
[ "$scenarios" = all ] && scenarios="tx1,tx400,tx2000,kill"
case "$sync" in on) syncs="true" ;; off) syncs="false" ;; both) syncs="true false" ;;
  *) echo "run.sh: --sync on|off|both" >&2; exit 2 ;; esac
bin="$build/server" lg="$build/bench/hs_loadgen"
for f in "$bin/hotstuffd" "$bin/hotstuffctl" "$lg"; do
  [ -x "$f" ] || { echo "run.sh: $f missing: build first (cmake --build $build)" >&2; exit 2; }
done

echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"

dir="" pids=()
stop_nodes() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  pids=()
  [ -n "$dir" ] && rm -rf "$dir"
  dir=""
}
trap stop_nodes EXIT

# set_json FILE KEY VALUE: rewrites `"KEY": old` in the config (cJSON writes one key per line).
set_json() { sed -i -E "s/(\"$2\":[[:space:]]*)[^,}]*/\1$3/" "$1"; }

results=()
run_one() { # scenario sync
  local sc=$1 sw=$2 max_txs=400 wait_ms=250 mode="--outstanding 2400" dur=${duration:-15}
  local kill_args=() size=100 batch=256
  case "$sc" in
    tx1) max_txs=1 wait_ms=0 mode="--outstanding 4" batch=1 ;;
    tx400) ;;
    tx2000) max_txs=2000 mode="--outstanding 8000" ;;
    kill) dur=${duration:-30} ;;
    soak) dur=${duration:-600} ;;
    *) echo "run.sh: unknown scenario $sc" >&2; exit 2 ;;
  esac
  dir=$(mktemp -d /tmp/hotstuff-bench.XXXXXX)
  "$bin/hotstuffctl" testnet --validators 4 --dir "$dir" --base-port "$base_port" \
    --host 127.0.0.1 --log-level warn >/dev/null
  for i in 0 1 2 3; do
    c="$dir/node$i/config.json"
    set_json "$c" sync_writes "$sw"
    set_json "$c" max_block_txs "$max_txs"
    set_json "$c" empty_block_wait_ms "$wait_ms"
  done
  for i in 0 1 2 3; do
    "$bin/hotstuffd" --config "$dir/node$i/config.json" >"$dir/node$i/log" 2>&1 &
    pids+=($!)
  done
  local targets="" i
  for i in 0 1 2 3; do targets="$targets${targets:+,}127.0.0.1:$((base_port + 100 + i))"; done
  # Ready when node0 answers and has committed.
  local ok=0
  for _ in $(seq 300); do
    if "$bin/hotstuffctl" --addr "127.0.0.1:$((base_port + 100))" --timeout 1s status 2>/dev/null |
        grep -q 'committed'; then ok=1; break; fi
    sleep 0.1
  done
  [ $ok = 1 ] || { echo "run.sh: the testnet did not start" >&2; tail -5 "$dir"/node*/log >&2; exit 1; }
  [ "$sc" = kill ] && kill_args=(--kill-at-s "$(awk -v d="$dur" 'BEGIN {print d / 3}')" --kill-pid "${pids[3]}")
  local label="$sc/sync=$sw" line
  # shellcheck disable=SC2086
  line=$("$lg" --targets "$targets" --watch 0 --size $size --batch $batch $mode \
    --warmup-s "$warmup" --duration-s "$dur" --pids "$(IFS=,; echo "${pids[*]}")" \
    --label "$label" "${kill_args[@]}" 2>"$dir/loadgen.err" | tee /dev/stderr | tail -1) || {
    echo "run.sh: hs_loadgen failed:" >&2; cat "$dir/loadgen.err" >&2; exit 1; }
  grep -v '^\[' "$dir/loadgen.err" >&2 || true
  results+=("$line")
  [ -n "$out" ] && echo "$line" >>"$out"
  stop_nodes
  echo >&2
}

IFS=, read -r -a list <<<"$scenarios"
for sc in "${list[@]}"; do
  for sw in $syncs; do run_one "$sc" "$sw"; done
done

# Summary: one row per run, from the JSON lines.
printf '\n%-20s %12s %9s %9s %9s %9s %11s %10s\n' scenario "tx/s" "blocks/s" "p50 ms" \
  "p95 ms" "p99 ms" "cpu us/tx" "peak MB"
for l in "${results[@]}"; do
  awk -v l="$l" 'function num(k,  r) { if (match(l, "\"" k "\":[0-9.]+")) { r = substr(l, RSTART, RLENGTH); sub(/.*:/, "", r); return r } return "-" }
    BEGIN {
      match(l, /"scenario":"[^"]*"/); sc = substr(l, RSTART + 12, RLENGTH - 13)
      peak = 0; s = l
      while (match(s, /"peak_rss_mb":[0-9.]+/)) { v = substr(s, RSTART + 14, RLENGTH - 14) + 0; if (v > peak) peak = v; s = substr(s, RSTART + RLENGTH) }
      printf "%-20s %12s %9s %9s %9s %9s %11s %10.1f\n", sc, num("committed_tx_per_s"), num("blocks_per_s"), num("p50"), num("p95"), num("p99"), num("replica_cpu_us_per_tx"), peak
    }'
done
echo
printf '%s\n' "${results[@]}"
# The smoke run fails unless transactions committed and the JSON line says so.
if [ "$smoke" = 1 ]; then
  case "${results[0]}" in
    '{"scenario":'*'"committed_tx_per_s":0.0,'*) echo "run.sh: smoke: nothing committed" >&2; exit 1 ;;
    '{"scenario":'*'"committed_tx_per_s":'*) echo "run.sh: smoke: ok" ;;
    *) echo "run.sh: smoke: no JSON line" >&2; exit 1 ;;
  esac
fi
