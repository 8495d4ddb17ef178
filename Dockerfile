# Dockerfile - hotstuffd and hotstuffctl in a small Debian 12 image, built the usual way:
#
#   docker build -t hotstuff-c .            (or scripts/build-image.sh, which picks this
#                                            path when the engine has debian:12)
#
# On an engine with no registry and no base images, scripts/build-image.sh builds the same
# image FROM scratch out of the locally built binaries instead (see the README).
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" --target hotstuffd hotstuffctl \
 && install -D -s /build/server/hotstuffd /out/usr/local/bin/hotstuffd \
 && install -D -s /build/server/hotstuffctl /out/usr/local/bin/hotstuffctl

FROM debian:12-slim
# The runtime libraries of the two programs (what `ldd` names), nothing else.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgrpc29 libprotobuf-c1 libsodium23 \
      libleveldb1d libsnappy1v5 libcjson1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 hotstuff \
 && useradd --uid 10001 --gid 10001 --home-dir /node --no-create-home \
      --shell /usr/sbin/nologin hotstuff \
 && mkdir /node && chown hotstuff:hotstuff /node
COPY --from=build /out/ /
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="hotstuff-c" \
      org.opencontainers.image.description="hotstuffd, a HotStuff BFT replica, and hotstuffctl" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
USER 10001:10001
WORKDIR /node
EXPOSE 26600 26700
ENTRYPOINT ["/usr/local/bin/hotstuffd"]
CMD ["--config", "/node/config.json"]
