#!/usr/bin/env bash
# buf-breaking.sh BUF - fails when proto/ breaks the wire (or JSON) contract of the previous
# commit of main.
#
# The previous commit is HEAD~1 when proto/ is as committed (CI's clean clone of main), and
# HEAD while proto/ has uncommitted changes (a developer's tree). First, a self-check: a copy
# of proto/ with one field renumbered must be refused, so a misconfigured buf.yaml that lets
# everything through fails this test instead of passing it.
set -euo pipefail
buf=${1:?usage: buf-breaking.sh BUF}
cd "$(dirname "$0")/../.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r proto "$tmp/proto"
sed -i 's/^  uint64 chain_id = 1;$/  uint64 chain_id = 99;/' "$tmp/proto/hotstuff/v1/admin.proto"
cmp -s proto/hotstuff/v1/admin.proto "$tmp/proto/hotstuff/v1/admin.proto" &&
  { echo "buf-breaking: the self-check's edit did not apply (admin.proto changed?)" >&2; exit 1; }
if "$buf" breaking "$tmp/proto" --against proto >"$tmp/out" 2>&1; then
  echo "buf-breaking: a renumbered field was not reported: check proto/buf.yaml" >&2
  exit 1
fi
echo "self-check: a renumbered field is refused: $(head -1 "$tmp/out")"

git rev-parse --git-dir >/dev/null 2>&1 || { echo "buf-breaking: not a git checkout" >&2; exit 1; }
if [ -n "$(git status --porcelain -- proto)" ]; then
  ref=HEAD
elif git rev-parse -q --verify HEAD~1 >/dev/null; then
  ref=HEAD~1
else
  echo "buf-breaking: HEAD has no parent here (a shallow clone?): fetch more history" >&2
  exit 1
fi
echo "buf breaking proto against $ref ($(git rev-parse --short "$ref"))"
"$buf" breaking proto --against ".git#ref=$ref,subdir=proto"
echo "no breaking change"
