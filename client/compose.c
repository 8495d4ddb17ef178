/* compose.c - see compose.h. */
#define _GNU_SOURCE
#include "compose.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The healthcheck asks the node's own admin port for "ready": not syncing and the committed
 * height moved in the last 10 s. stop_grace_period covers hotstuffd's clean stop (it flushes
 * its outboxes and closes the store) with a wide margin before Docker sends SIGKILL. */
static const char HEADER[] =
    "# docker-compose.yml - written by `hotstuffctl testnet --compose`.\n"
    "#   build the image:  scripts/build-image.sh        (tags hotstuff-c:latest)\n"
    "#   start:            docker compose up -d          (or docker-compose up -d)\n"
    "#   health:           docker compose ps             (healthy = committing, not syncing)\n"
    "# Each node's folder is mounted at /node (config, key, genesis, data). The replicas reach\n"
    "# each other by service name; only admin ports are published, on 127.0.0.1.\n"
    "version: \"3.8\"\n"
    "\n"
    "x-node: &node\n"
    "  image: ${HOTSTUFF_IMAGE:-hotstuff-c:latest}\n"
    "  command: [\"--config\", \"/node/config.json\"]\n"
    "  restart: unless-stopped\n"
    "  stop_grace_period: 30s\n"
    "  healthcheck:\n"
    "    test: [\"CMD\", \"hotstuffctl\", \"--addr\", \"127.0.0.1:26700\", \"--timeout\", \"2s\",\n"
    "           \"health\", \"ready\"]\n"
    "    interval: 2s\n"
    "    timeout: 5s\n"
    "    retries: 15\n"
    "    start_period: 20s\n";

int compose_write(const compose_spec *s, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/docker-compose.yml", s->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path,
                 errno == EEXIST ? "already exists; not overwriting it" : strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    fputs(HEADER, f);
    if (s->user) fprintf(f, "  user: \"%s\"\n", s->user);
    fprintf(f, "\n# chain %" PRIu64 ": %" PRIu64 " validator(s), %" PRIu64 " listener(s)\n",
            s->chain_id, s->validators, s->listeners);
    fputs("services:\n", f);
    for (uint64_t i = 0; i < s->validators + s->listeners; i++) {
        fprintf(f,
                "  node%" PRIu64 ":  # %s\n"
                "    <<: *node\n"
                "    hostname: node%" PRIu64 "\n"
                "    volumes: [\"./node%" PRIu64 ":/node\"]\n"
                "    ports: [\"127.0.0.1:%" PRIu64 ":%d\"]\n",
                i, i < s->validators ? "validator" : "listener", i, i, s->admin_host_port + i,
                COMPOSE_ADMIN_PORT);
    }
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok) snprintf(err, errlen, "%s: cannot write", path);
    return ok ? 0 : -1;
}

static int chown_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return lchown(p, COMPOSE_UID, COMPOSE_UID) == 0 ? 0 : -1;
}

int compose_chown_nodes(const char *dir, uint64_t nodes, char *err, size_t errlen) {
    for (uint64_t i = 0; i < nodes; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/node%" PRIu64, dir, i);
        if (nftw(path, chown_one, 16, FTW_PHYS) != 0) {
            snprintf(err, errlen, "%s: cannot give it to uid %d: %s", path, COMPOSE_UID,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}
