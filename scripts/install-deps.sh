#!/usr/bin/env bash
# install-deps.sh - installs the Debian 12 packages hotstuff-c needs to build and test.
#
# Idempotent: only missing packages are installed, and `apt-get update` runs only when something
# is missing, so a ready machine is left untouched (and needs no network). Works as root (CI) or
# through sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config  # toolchain
  libsodium-dev                     # Ed25519, SHA-256
  libleveldb-dev                    # the durable KV store
  libsnappy-dev                     # Debian's leveldb::leveldb CMake target links -lsnappy
  libcjson-dev                      # configuration files
  libcunit1-dev                     # unit and integration tests
  libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler  # wire format
  libgrpc-dev protobuf-compiler-grpc  # networking
  grpc-proto                        # health and reflection .proto files
  python3-grpcio python3-protobuf   # the Python SDK and its test (with /usr/bin/python3)
  git                               # buf breaking reads the previous commit
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  # "install ok installed" only for a fully installed package (not removed/half-configured).
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: missing packages (${missing[*]}), and neither root nor sudo" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
