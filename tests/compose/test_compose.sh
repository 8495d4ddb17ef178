#!/usr/bin/env bash
# test_compose.sh BUILD_DIR - the docker-compose testnet on this machine's Docker engine.
#
# Builds the image (scripts/build-image.sh, from BUILD_DIR's binaries), writes a testnet of
# 4 validators and 1 listener with `hotstuffctl testnet --compose`, and with docker compose:
#   up -d; all five healthy; commits advance on every node (through the published admin
#   ports); transactions submitted to validators are read from the listener; one validator
#   killed: commits continue; started again: it catches up, with the same block hashes;
#   down -v.
# Every wait is bounded; a trap takes the project down and removes the image and files after
# a failure too. Exits 77 (ctest: skipped, with the reason printed) where no Docker engine or
# compose tool is reachable.
set -euo pipefail
build=$(cd "${1:?usage: test_compose.sh BUILD_DIR}" && pwd)
cd "$(dirname "$0")/../.."
ctl="$build/server/hotstuffctl"

skip() { echo "SKIPPED: $*"; exit 77; }
command -v docker >/dev/null || skip "no docker command on this machine"
docker info >/dev/null 2>&1 || skip "no Docker engine is reachable (docker info failed)"
if docker compose version >/dev/null 2>&1; then compose=(docker compose)
elif command -v docker-compose >/dev/null; then compose=(docker-compose)
else skip "neither 'docker compose' nor docker-compose is installed"; fi

fail() { echo "FAIL: $*" >&2; exit 1; }
json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Free admin ports on the host: P+100 .. P+104.
base=$(/usr/bin/python3 - <<'PY'
import os, random, socket
rng = random.Random(os.getpid())
for _ in range(200):
    b = rng.randrange(40000, 48000)
    ok = True
    for p in range(b + 100, b + 105):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(b)
        break
PY
)
[ -n "$base" ] || fail "no free ports"
admin() { echo "127.0.0.1:$((base + 100 + $1))"; }

tag="hotstuff-c:compose-test-$$"
project="hstest$$"
dir=$(mktemp -d /tmp/hs-compose-XXXXXX)
dc() { (cd "$dir" && HOTSTUFF_IMAGE="$tag" "${compose[@]}" -p "$project" "$@"); }
cleanup() {
  rc=$?
  if [ $rc -ne 0 ] && [ -f "$dir/docker-compose.yml" ]; then
    echo "---- docker compose ps / logs (last lines) ----"
    dc ps || true
    dc logs --tail 20 || true
  fi
  [ -f "$dir/docker-compose.yml" ] && dc down -v --remove-orphans -t 10 >/dev/null 2>&1 || true
  docker rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit $rc
}
trap cleanup EXIT

echo "== image"
scripts/build-image.sh --tag "$tag" --from-bin "$build/server"
user=$(docker image inspect -f '{{.Config.User}}' "$tag")
[ "$user" = "10001:10001" ] || fail "the image runs as '$user', not 10001:10001"
docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.version"}}' "$tag" |
  grep -q . || fail "the image has no version label"

echo "== testnet files"
"$ctl" testnet --validators 4 --listeners 1 --dir "$dir" --base-port "$base" --compose
grep -q "127.0.0.1:$((base + 100)):26700" "$dir/docker-compose.yml" || fail "admin port not published on 127.0.0.1"

echo "== up"
dc up -d
await() { # await SECONDS WHAT CMD...: until CMD succeeds
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "$what: not within $t s"
    sleep 1
  done
}
healthy() {
  for i in 0 1 2 3 4; do
    id=$(dc ps -q "node$i")
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ] || return 1
  done
}
await 180 "all five nodes healthy" healthy
echo "all five healthy"

height() { "$ctl" --addr "$(admin "$1")" --json status | json 'd["committed"]["height"]'; }
advances() { # advances NODE BY: the height grows by BY
  local h0; h0=$(height "$1") || return 1
  local end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ]; do
    local h; h=$(height "$1" 2>/dev/null || echo 0)
    [ "$h" -ge $((h0 + $2)) ] && return 0
    sleep 0.5
  done
  return 1
}
for i in 0 1 2 3 4; do advances $i 3 || fail "node$i: commits do not advance"; done
echo "commits advance on every node"

echo "== transactions: validators in, listener out"
for i in 0 1 2 3; do
  "$ctl" --addr "$(admin $i)" --timeout 30s submit --wait put "compose-key-$i" "value-$i" >/dev/null ||
    fail "submit to node$i"
done
for i in 0 1 2 3; do
  await 60 "listener reads compose-key-$i" \
    sh -c "[ \"\$('$ctl' --addr '$(admin 4)' get compose-key-$i)\" = value-$i ]"
done
echo "the listener has every value"

echo "== kill node1"
dc kill node1 >/dev/null
advances 0 5 || fail "commits stopped with node1 killed"
advances 4 5 || fail "the listener stopped following with node1 killed"
echo "commits continue without node1"

echo "== start node1 again"
dc start node1 >/dev/null
target=$(height 0)
await 120 "node1 catches up to height $target" sh -c "[ \$('$ctl' --addr '$(admin 1)' --json status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"committed\"][\"height\"])') -ge $target ]"
for h in 1 $((target / 2)) "$target"; do
  a=$("$ctl" --addr "$(admin 0)" --json block "$h" | json 'd["hash"]')
  b=$("$ctl" --addr "$(admin 1)" --json block "$h" | json 'd["hash"]')
  [ "$a" = "$b" ] || fail "height $h: node0 has $a, node1 has $b"
done
echo "node1 caught up to $target with the same block hashes"

echo "== down"
dc down -v -t 30 >/dev/null
[ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$project")" ] ||
  fail "containers left after down"
echo "PASS"
