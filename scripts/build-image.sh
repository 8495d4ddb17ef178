#!/usr/bin/env bash
# build-image.sh - builds the hotstuff-c image (hotstuffd as entrypoint, hotstuffctl beside it).
#
#   scripts/build-image.sh [--tag NAME] [--build DIR | --from-bin DIR]
#                          [--mode auto|dockerfile|scratch]
#
# dockerfile: `docker build` of ./Dockerfile (multi-stage from debian:12), the usual way on an
#             engine that has or can pull debian:12 and debian:12-slim.
# scratch:    for an engine with no registry and no images: builds hotstuffd and hotstuffctl
#             here (Release, in DIR, default build-image), and makes a FROM scratch image of
#             the stripped binaries, exactly the shared libraries `ldd` names, the loader, and
#             /etc/passwd, /etc/group and /etc/nsswitch.conf for the non-root user 10001.
#             --from-bin DIR takes hotstuffd and hotstuffctl already built in DIR instead
#             (stripped on the way in), as the compose test does with the test build's.
# auto:       dockerfile when both base images are present, else scratch (the default).
#
# Either way the image runs as uid 10001, works in /node (mount a node folder there), and
# carries the OCI labels version, revision and source. Tags NAME (default hotstuff-c:latest,
# which also tags hotstuff-c:VERSION). Prints the image's size.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=hotstuff-c:latest build=build-image mode=auto from_bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --from-bin) from_bin=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "build-image.sh: $*" >&2; exit 1; }
docker info >/dev/null 2>&1 || die "no Docker engine is reachable (docker info failed)"

version=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# Without any user:password@ part, which must not ship in a label.
source=$(git remote get-url origin 2>/dev/null | sed -E 's#^([a-z+]+://)[^/@]*@#\1#' || true)
[ -n "$source" ] || source="hotstuff-c (local build)"
labels=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision"
        --build-arg "SOURCE=$source")
tags=(-t "$tag")
# The default tag also gets the version's; a caller's own tag (a test's) stays alone.
[ "$tag" = hotstuff-c:latest ] && tags+=(-t "hotstuff-c:$version")

if [ "$mode" = auto ] && [ -n "$from_bin" ]; then
  mode=scratch # the binaries given are the ones to ship
elif [ "$mode" = auto ]; then
  if docker image inspect debian:12 >/dev/null 2>&1 &&
     docker image inspect debian:12-slim >/dev/null 2>&1; then
    mode=dockerfile
  else
    mode=scratch
    echo "build-image: debian:12 is not on this engine: building FROM scratch instead"
  fi
fi

case "$mode" in
dockerfile)
  [ -z "$from_bin" ] || die "--from-bin needs the scratch path (the Dockerfile builds from source)"
  docker build "${labels[@]}" "${tags[@]}" .
  ;;
scratch)
  if [ -n "$from_bin" ]; then
    bin=$from_bin
  else
    jobs=$(nproc 2>/dev/null || echo 2)
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j"$jobs" --target hotstuffd hotstuffctl >/dev/null
    bin="$build/server"
  fi
  for b in hotstuffd hotstuffctl; do [ -x "$bin/$b" ] || die "$bin/$b is missing"; done
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  root="$ctx/rootfs"
  mkdir -p "$root/usr/local/bin" "$root/etc" "$ctx/node"
  for b in hotstuffd hotstuffctl; do
    install -s "$bin/$b" "$root/usr/local/bin/$b"
  done
  # Debian 12 has merged /usr: /lib and /lib64 are symlinks into usr/. Make them first, so
  # the libraries copied below land where the loader looks.
  for d in lib lib64; do
    if [ -L "/$d" ]; then
      mkdir -p "$root/usr/$d"
      ln -s "usr/$d" "$root/$d"
    fi
  done
  # Every library either program loads, by the path the loader finds it at, and the loader.
  for b in hotstuffd hotstuffctl; do
    if ldd "$bin/$b" | grep -q 'not found'; then
      die "$bin/$b: ldd cannot find some of its libraries: $(ldd "$bin/$b" | grep 'not found' | tr -s ' \t\n' ' ')"
    fi
  done
  for b in hotstuffd hotstuffctl; do
    ldd "$bin/$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
  done | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  printf 'root:x:0:0:root:/:/nonexistent\nhotstuff:x:10001:10001::/node:/nonexistent\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\nhotstuff:x:10001:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
COPY --chown=10001:10001 node/ /node/
ENV PATH=/usr/local/bin
USER 10001:10001
WORKDIR /node
EXPOSE 26600 26700
ENTRYPOINT ["/usr/local/bin/hotstuffd"]
CMD ["--config", "/node/config.json"]
DOCKERFILE
  # The labels ./Dockerfile sets with LABEL, given here on the command line.
  title=$(sed -n 's/.*org.opencontainers.image.title="\([^"]*\)".*/\1/p' Dockerfile)
  desc=$(sed -n 's/.*org.opencontainers.image.description="\([^"]*\)".*/\1/p' Dockerfile)
  docker build "${tags[@]}" --label "org.opencontainers.image.title=$title" \
    --label "org.opencontainers.image.description=$desc" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    --label "org.opencontainers.image.source=$source" "$ctx"
  ;;
*) die "--mode auto|dockerfile|scratch, not $mode" ;;
esac

size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "build-image: $tag ($mode, version $version): $((size / 1000000)) MB"
