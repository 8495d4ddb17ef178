/* compose.h - docker-compose.yml for a testnet: `hotstuffctl testnet --compose`.
 *
 * One service per node folder (node<i>), all from one image. Inside its container each node
 * listens on COMPOSE_REPLICA_PORT and COMPOSE_ADMIN_PORT and reaches its peers by service
 * name (node<j>:COMPOSE_REPLICA_PORT) on the project's network; only the admin ports are
 * published, on 127.0.0.1 of the host. */
#ifndef HS_CLIENT_COMPOSE_H
#define HS_CLIENT_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

#define COMPOSE_REPLICA_PORT 26600
#define COMPOSE_ADMIN_PORT 26700
#define COMPOSE_UID 10001 /* the image's user (scripts/build-image.sh, Dockerfile) */

typedef struct compose_spec {
    const char *dir;          /* the testnet folder; the file goes to dir/docker-compose.yml */
    uint64_t validators;      /* node0 .. node<validators-1> vote; the rest listen */
    uint64_t listeners;
    uint64_t chain_id;
    uint64_t admin_host_port; /* node i's admin port is published on 127.0.0.1:this + i */
    const char *user;         /* "uid:gid" to run as, or NULL for the image's user */
} compose_spec;

/* Writes dir/docker-compose.yml (never over an existing file). 0, or -1 with err filled. */
int compose_write(const compose_spec *s, char *err, size_t errlen);

/* Gives the node folders under dir (recursively) to COMPOSE_UID, so the image's non-root user
 * can read its key and write its data; for a caller running as root. 0, or -1 with err. */
int compose_chown_nodes(const char *dir, uint64_t nodes, char *err, size_t errlen);

#endif
