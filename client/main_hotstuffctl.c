/* hotstuffctl - the operator CLI of hotstuffd.
 *
 *   hotstuffctl keygen --out FILE
 *   hotstuffctl testnet --validators N [--listeners M] --dir DIR --base-port P
 *                       [--host H] [--chain-id C] [--max-view-time-ms T] [--log-level L]
 *                       [--powers P0,P1,...] [--compose]
 *   hotstuffctl [--addr HOST:PORT] [--timeout D] [--json] COMMAND ...   (admin port)
 *       status | block HEIGHT|HASH | blocks FROM [TO] | validators | get KEY
 *       submit [--wait] [--nonce N] put KEY VALUE | delete KEY | update-validators ...
 *       watch [--types T,...] [--from HEIGHT] [--count N] [--duration D]
 *       health [SERVICE]
 *
 * The admin commands talk to hotstuff.v1.Admin and grpc.health.v1.Health on hotstuffd's admin
 * port (config listen.admin; default address 127.0.0.1:26700, or $HOTSTUFFCTL_ADDR). Every
 * call has a deadline (--timeout, default 5 s; 30 s for submit --wait); a watch has one only
 * for connecting, unless --duration. submit also works against a replica port (through
 * hotstuff.v1.Replica, without --wait), as it did before the admin service existed.
 *
 * Exit status: 0 on success (health: only when SERVING), 1 when the operation failed (a file
 * could not be written, the server was unreachable or answered with an error status), 2 for
 * a usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <sodium.h>

#include "admin_client.h"
#include "compose.h"
#include "grpc/health/v1/health.pb-c.h"
#include "hotstuff/crypto.h"
#include "hotstuff/v1/admin.pb-c.h"
#include "hotstuff/v1/kvapp.pb-c.h"
#include "hotstuff/v1/replica.pb-c.h"
#include "kvtx.h"
#include "node_config.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_WAIT_MS 30000 /* submit --wait */
#define DEFAULT_ADDR "127.0.0.1:26700"
/* testnet: node i serves its admin port on P + ADMIN_OFFSET + i (P + N + M + i when more than
 * ADMIN_OFFSET nodes, so the two ranges never overlap). */
#define ADMIN_OFFSET 100

static const char *prog = "hotstuffctl";

static void usage(FILE *f) {
    fprintf(f,
            "usage:\n"
            "  hotstuffctl keygen --out FILE\n"
            "      write a new Ed25519 key pair (mode 0600) and print its public key\n"
            "  hotstuffctl testnet --validators N [--listeners M] --dir DIR --base-port P\n"
            "                      [--host H] [--chain-id C] [--max-view-time-ms T]\n"
            "                      [--log-level L] [--powers P0,P1,...] [--compose]\n"
            "      write DIR/node<i>/{key,config,genesis}.json for N validators (power 1\n"
            "      each unless --powers) and M listeners (node i listens on H:P+i, its admin\n"
            "      port on H:P+100+i; default H 127.0.0.1) and DIR/admin_key.json, the key\n"
            "      allowed to change the validator set; --compose: also\n"
            "      DIR/docker-compose.yml, one container per node, peers by service name,\n"
            "      admin ports published on 127.0.0.1:P+100+i\n"
            "\n"
            "commands against a node's admin port; options anywhere on the line:\n"
            "  --addr HOST:PORT   default $HOTSTUFFCTL_ADDR or " DEFAULT_ADDR "\n"
            "  --timeout D        deadline of each call, e.g. 5s, 500ms (default 5s;\n"
            "                     30s for submit --wait); --timeout-ms N also works\n"
            "  --json             machine-readable output\n"
            "  hotstuffctl status                  identity, view, committed tip, certificates\n"
            "  hotstuffctl block HEIGHT|HASH       one block with its transactions\n"
            "  hotstuffctl blocks FROM [TO|tip]    committed blocks of a range, one per line\n"
            "  hotstuffctl validators              committed and previous validator sets\n"
            "  hotstuffctl get KEY                 a committed value of the key-value app\n"
            "  hotstuffctl submit [--wait] [--nonce N] OP\n"
            "      submit one transaction (--wait: until it commits); OP is one of\n"
            "        put KEY VALUE\n"
            "        delete KEY\n"
            "        update-validators --admin-key FILE (--chain-id C | --genesis FILE)\n"
            "                          KEY:POWER...   (hex or Base64 key; power 0 removes)\n"
            "      (against a replica port it submits through hotstuff.v1.Replica, no --wait)\n"
            "  hotstuffctl watch [--types T,...] [--from HEIGHT] [--count N] [--duration D]\n"
            "      live events, one per line (--json: one JSON object per line); types such\n"
            "      as CommitBlock,Propose,ViewTimeout (default all); --from replays committed\n"
            "      blocks from HEIGHT first; stops after N events or D\n"
            "  hotstuffctl health [SERVICE]        grpc.health.v1 Check; exit 0 only if SERVING\n"
            "      (SERVICE: \"\" = the server, hotstuff.v1.Admin, ready, ...)\n"
            "\n"
            "exit status: 0 success, 1 failure (unreachable, error status), 2 usage error\n");
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run '%s --help' for usage)\n", prog);
    return EXIT_USAGE;
}

static bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || strspn(s, "0123456789") != strlen(s)) return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno) return false;
    *out = v;
    return true;
}

/* ---- keygen ---- */

static int cmd_keygen(int argc, char **argv) {
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else return usage_error("keygen: unexpected argument '%s'", argv[i]);
    }
    if (!out) return usage_error("keygen: %s", "--out FILE is required");
    hs_keypair kp;
    char err[512];
    if (hs_keypair_generate(&kp) != HS_OK) {
        fprintf(stderr, "%s: keygen: cannot generate a key\n", prog);
        return EXIT_FAIL;
    }
    hs_status st = node_key_write(out, &kp, err, sizeof err);
    char pub[2 * HS_KEY_LEN + 1];
    sodium_bin2hex(pub, sizeof pub, kp.public_key.b, HS_KEY_LEN);
    sodium_memzero(&kp, sizeof kp);
    if (st != HS_OK) {
        fprintf(stderr, "%s: keygen: %s\n", prog, err);
        return EXIT_FAIL;
    }
    printf("%s\n", pub);
    return 0;
}

/* ---- testnet ---- */

typedef struct testnet_opts {
    uint64_t validators, listeners, base_port, chain_id, max_view_time_ms;
    const char *dir, *host, *log_level;
    bool compose; /* also docker-compose.yml; nodes listen on 0.0.0.0, peers by service name */
    uint64_t *powers; /* one per validator (all 1 by default) */
} testnet_opts;

static int mkdir_p(const char *path, mode_t mode) {
    char *p = strdup(path);
    if (!p) return -1;
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) rc = -1;
        *s = c;
        if (c == '\0') break;
    }
    free(p);
    return rc;
}

/* Writes text to a new file (never over an existing one). */
static int write_new_file(const char *path, const char *text) {
    FILE *f = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) f = fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path,
                errno == EEXIST ? "already exists; not overwriting it" : strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    if (!ok) fprintf(stderr, "%s: %s: cannot write\n", prog, path);
    return ok ? 0 : -1;
}

static void key_hex(const hs_key *k, char out[2 * HS_KEY_LEN + 1]) {
    sodium_bin2hex(out, 2 * HS_KEY_LEN + 1, k->b, HS_KEY_LEN);
}

/* Adds a u64 as a JSON number when exact, else as a decimal string (both are accepted). */
static void add_u64(cJSON *o, const char *name, uint64_t v) {
    if (v <= (1ull << 53)) {
        cJSON_AddNumberToObject(o, name, (double)v);
    } else {
        char s[24];
        snprintf(s, sizeof s, "%" PRIu64, v);
        cJSON_AddStringToObject(o, name, s);
    }
}

static char *genesis_json(const testnet_opts *o, const hs_keypair *keys, const hs_key *admin) {
    cJSON *g = cJSON_CreateObject();
    add_u64(g, "chain_id", o->chain_id);
    cJSON *vs = cJSON_AddArrayToObject(g, "validators");
    for (uint64_t i = 0; i < o->validators; i++) {
        char k[2 * HS_KEY_LEN + 1];
        key_hex(&keys[i].public_key, k);
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "key", k);
        add_u64(v, "power", o->powers[i]);
        cJSON_AddItemToArray(vs, v);
    }
    char a[2 * HS_KEY_LEN + 1];
    key_hex(admin, a);
    cJSON_AddStringToObject(g, "admin_key", a);
    cJSON_AddObjectToObject(g, "app_state");
    char *text = cJSON_Print(g);
    cJSON_Delete(g);
    return text;
}

static void addr_of(const testnet_opts *o, uint64_t i, char *out, size_t cap) {
    if (o->compose) {
        snprintf(out, cap, "node%" PRIu64 ":%d", i, COMPOSE_REPLICA_PORT);
        return;
    }
    bool v6 = strchr(o->host, ':') != NULL;
    snprintf(out, cap, v6 ? "[%s]:%" PRIu64 : "%s:%" PRIu64, o->host, o->base_port + i);
}

/* The first admin port: P + 100, or past the replica ports when there are more nodes. */
static uint64_t admin_base(const testnet_opts *o) {
    uint64_t n = o->validators + o->listeners;
    return o->base_port + (n > ADMIN_OFFSET ? n : ADMIN_OFFSET);
}

static void admin_addr_of(const testnet_opts *o, uint64_t i, char *out, size_t cap) {
    bool v6 = strchr(o->host, ':') != NULL;
    snprintf(out, cap, v6 ? "[%s]:%" PRIu64 : "%s:%" PRIu64, o->host, admin_base(o) + i);
}

/* config.json of node i: every consensus and limits field at its default (so the file shows
 * what can be tuned), the peers, and the listen address. */
static char *config_json(const testnet_opts *o, const hs_keypair *keys, uint64_t i) {
    node_config d;
    node_config_defaults(&d);
    if (o->max_view_time_ms) {
        d.consensus.max_view_time_ms = o->max_view_time_ms;
        /* Keep the empty-block wait inside the view (see node_config.c). */
        if (d.app.empty_block_wait_ms * 4 > o->max_view_time_ms)
            d.app.empty_block_wait_ms = o->max_view_time_ms / 4;
    }
    uint64_t n = o->validators + o->listeners;
    char addr[HS_TRANSPORT_MAX_ADDR];
    cJSON *c = cJSON_CreateObject();
    cJSON *l = cJSON_AddObjectToObject(c, "listen");
    if (o->compose) { /* inside the node's container */
        snprintf(addr, sizeof addr, "0.0.0.0:%d", COMPOSE_REPLICA_PORT);
        cJSON_AddStringToObject(l, "replica", addr);
        snprintf(addr, sizeof addr, "0.0.0.0:%d", COMPOSE_ADMIN_PORT);
        cJSON_AddStringToObject(l, "admin", addr);
    } else {
        addr_of(o, i, addr, sizeof addr);
        cJSON_AddStringToObject(l, "replica", addr);
        admin_addr_of(o, i, addr, sizeof addr);
        cJSON_AddStringToObject(l, "admin", addr);
    }
    cJSON_AddStringToObject(c, "key_file", "key.json");
    cJSON_AddStringToObject(c, "genesis_file", "genesis.json");
    cJSON_AddStringToObject(c, "data_dir", "data");
    cJSON_AddStringToObject(c, "log_level", o->log_level);
    cJSON_AddBoolToObject(c, "sync_writes", d.sync_writes);
    cJSON *ps = cJSON_AddArrayToObject(c, "peers");
    for (uint64_t j = 0; j < n; j++) {
        if (j == i) continue;
        char k[2 * HS_KEY_LEN + 1];
        key_hex(&keys[j].public_key, k);
        addr_of(o, j, addr, sizeof addr);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "key", k);
        cJSON_AddStringToObject(p, "address", addr);
        cJSON_AddItemToArray(ps, p);
    }
    const hs_config *k = &d.consensus;
    cJSON *cs = cJSON_AddObjectToObject(c, "consensus");
    add_u64(cs, "block_sync_request_limit", k->block_sync_request_limit);
    add_u64(cs, "block_sync_server_advertise_time_ms", k->block_sync_server_advertise_time_ms);
    add_u64(cs, "block_sync_response_timeout_ms", k->block_sync_response_timeout_ms);
    add_u64(cs, "block_sync_blacklist_expiry_time_ms", k->block_sync_blacklist_expiry_time_ms);
    add_u64(cs, "block_sync_trigger_min_view_difference",
            k->block_sync_trigger_min_view_difference);
    add_u64(cs, "block_sync_trigger_timeout_ms", k->block_sync_trigger_timeout_ms);
    add_u64(cs, "progress_msg_buffer_capacity", k->progress_msg_buffer_capacity);
    add_u64(cs, "epoch_length", k->epoch_length);
    add_u64(cs, "max_view_time_ms", k->max_view_time_ms);
    cJSON_AddBoolToObject(cs, "log_events", k->log_events);
    cJSON_AddStringToObject(cs, "leader_selection",
                            node_leader_selection_names[k->leader_selection]);
    cJSON_AddStringToObject(cs, "vote_routing", node_vote_routing_names[k->vote_routing]);
    cJSON_AddStringToObject(cs, "view_deadlines", node_view_deadlines_names[k->view_deadlines]);
    cJSON *li = cJSON_AddObjectToObject(c, "limits");
    add_u64(li, "transport_inbox_capacity", d.transport_inbox_capacity);
    add_u64(li, "transport_outbox_capacity", d.transport_outbox_capacity);
    add_u64(li, "replica_inbox_capacity", k->inbox_capacity);
    add_u64(li, "event_queue_capacity", k->event_queue_capacity);
    add_u64(li, "sync_request_queue_capacity", k->sync_request_queue_capacity);
    add_u64(li, "mempool_max_txs", d.app.mempool_max_txs);
    add_u64(li, "mempool_max_bytes", d.app.mempool_max_bytes);
    add_u64(li, "max_tx_bytes", d.app.max_tx_bytes);
    add_u64(li, "max_key_bytes", d.app.max_key_bytes);
    add_u64(li, "max_block_txs", d.app.max_block_txs);
    add_u64(li, "max_block_bytes", d.app.max_block_bytes);
    add_u64(li, "max_validators", d.app.max_validators);
    cJSON *ap = cJSON_AddObjectToObject(c, "app");
    add_u64(ap, "empty_block_wait_ms", d.app.empty_block_wait_ms);
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    return text;
}

static int write_node(const testnet_opts *o, const hs_keypair *keys, uint64_t i,
                      const char *genesis) {
    char dir[4096], path[4200], err[512];
    snprintf(dir, sizeof dir, "%s/node%" PRIu64, o->dir, i);
    if (mkdir_p(dir, 0755) != 0) {
        fprintf(stderr, "%s: %s: cannot create: %s\n", prog, dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/key.json", dir);
    if (node_key_write(path, &keys[i], err, sizeof err) != HS_OK) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/genesis.json", dir);
    if (write_new_file(path, genesis) != 0) return -1;
    char *config = config_json(o, keys, i);
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = config ? write_new_file(path, config) : -1;
    cJSON_free(config);
    return rc;
}

/* docker-compose.yml beside the node folders. The containers run as a non-root user: this
 * one's uid when it is not root, else the image's (and the folders are given to it). */
static int testnet_compose(const testnet_opts *o) {
    char err[4400], user[64];
    uint64_t n = o->validators + o->listeners;
    compose_spec cs = {.dir = o->dir, .validators = o->validators, .listeners = o->listeners,
                       .chain_id = o->chain_id, .admin_host_port = admin_base(o)};
    if (geteuid() != 0) {
        snprintf(user, sizeof user, "%u:%u", (unsigned)geteuid(), (unsigned)getegid());
        cs.user = user;
    } else if (compose_chown_nodes(o->dir, n, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return -1;
    }
    if (compose_write(&cs, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return -1;
    }
    return 0;
}

static int testnet_write(const testnet_opts *o) {
    uint64_t n = o->validators + o->listeners;
    hs_keypair *keys = calloc(n, sizeof *keys);
    hs_keypair admin;
    int rc = EXIT_FAIL;
    char *genesis = NULL;
    char path[4200], err[512];
    if (!keys) goto out;
    for (uint64_t i = 0; i < n; i++) {
        if (hs_keypair_generate(&keys[i]) != HS_OK) goto out;
    }
    if (hs_keypair_generate(&admin) != HS_OK) goto out;
    if (mkdir_p(o->dir, 0755) != 0) {
        fprintf(stderr, "%s: %s: cannot create: %s\n", prog, o->dir, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/admin_key.json", o->dir);
    if (node_key_write(path, &admin, err, sizeof err) != HS_OK) {
        fprintf(stderr, "%s: %s\n", prog, err);
        goto out;
    }
    genesis = genesis_json(o, keys, &admin.public_key);
    if (!genesis) goto out;
    for (uint64_t i = 0; i < n; i++) {
        if (write_node(o, keys, i, genesis) != 0) goto out;
    }
    if (o->compose && testnet_compose(o) != 0) goto out;
    printf("wrote %" PRIu64 " validator(s) and %" PRIu64 " listener(s) (chain id %" PRIu64
           ") to %s\n",
           o->validators, o->listeners, o->chain_id, o->dir);
    for (uint64_t i = 0; i < n; i++) {
        char addr[HS_TRANSPORT_MAX_ADDR];
        char admin_addr[HS_TRANSPORT_MAX_ADDR];
        addr_of(o, i, addr, sizeof addr);
        admin_addr_of(o, i, admin_addr, sizeof admin_addr);
        if (o->compose)
            printf("  node%" PRIu64 " %-9s %s  admin %s (published)\n", i,
                   i < o->validators ? "validator" : "listener", addr, admin_addr);
        else
            printf("  node%" PRIu64 " %-9s %s  admin %s  hotstuffd --config %s/node%" PRIu64
                   "/config.json\n",
                   i, i < o->validators ? "validator" : "listener", addr, admin_addr, o->dir, i);
    }
    printf("  admin key: %s/admin_key.json\n", o->dir);
    if (o->compose)
        printf("  docker-compose.yml: %s/docker-compose.yml\n"
               "  start it: scripts/build-image.sh && cd %s && docker compose up -d\n",
               o->dir, o->dir);
    rc = 0;
out:
    if (rc && !genesis) fprintf(stderr, "%s: testnet: out of memory or no randomness\n", prog);
    cJSON_free(genesis);
    if (keys) sodium_memzero(keys, n * sizeof *keys);
    free(keys);
    sodium_memzero(&admin, sizeof admin);
    return rc;
}

/* "2,2,2,1" into n powers; NULL means all 1. */
static bool parse_powers(const char *text, uint64_t *out, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) out[i] = 1;
    if (!text) return true;
    char *copy = strdup(text), *save = NULL;
    uint64_t k = 0;
    bool ok = copy != NULL;
    for (char *t = ok ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        if (k >= n || !parse_u64(t, &out[k]) || out[k] == 0 || out[k] >= (1ull << 53)) {
            ok = false;
            break;
        }
        k++;
    }
    free(copy);
    return ok && k == n;
}

static int cmd_testnet(int argc, char **argv) {
    testnet_opts o = {.host = "127.0.0.1", .chain_id = 1, .log_level = "info"};
    bool have_v = false, have_p = false;
    const char *powers = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = v != NULL;
        if (!strcmp(a, "--validators")) ok = ok && parse_u64(v, &o.validators), have_v = true;
        else if (!strcmp(a, "--listeners")) ok = ok && parse_u64(v, &o.listeners);
        else if (!strcmp(a, "--base-port")) ok = ok && parse_u64(v, &o.base_port), have_p = true;
        else if (!strcmp(a, "--chain-id")) ok = ok && parse_u64(v, &o.chain_id);
        else if (!strcmp(a, "--max-view-time-ms"))
            ok = ok && parse_u64(v, &o.max_view_time_ms) && o.max_view_time_ms > 0;
        else if (!strcmp(a, "--dir")) o.dir = v;
        else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--log-level")) o.log_level = v;
        else if (!strcmp(a, "--powers")) powers = v;
        else if (!strcmp(a, "--compose")) {
            o.compose = true;
            continue; /* a flag: no value */
        } else return usage_error("testnet: unexpected argument '%s'", a);
        if (!ok) return usage_error("testnet: bad or missing value for %s", a);
        i++;
    }
    if (!have_v || o.validators < 1 || o.validators > 1024)
        return usage_error("testnet: %s", "--validators N (1 to 1024) is required");
    if (o.listeners > 1024) return usage_error("testnet: %s", "--listeners is at most 1024");
    if (!o.dir) return usage_error("testnet: %s", "--dir DIR is required");
    if (!have_p || o.base_port < 1 || admin_base(&o) + o.validators + o.listeners - 1 > 65535)
        return usage_error("testnet: %s", "--base-port P is required and the admin ports "
                                          "(P+100+i) must stay <= 65535");
    if (!o.host[0] || strlen(o.host) > 200) return usage_error("testnet: %s", "bad --host");
    if (o.compose && strcmp(o.host, "127.0.0.1"))
        return usage_error("testnet: %s", "--compose publishes the admin ports on 127.0.0.1; "
                                          "--host does not apply");
    if (strcmp(o.log_level, "debug") && strcmp(o.log_level, "info") &&
        strcmp(o.log_level, "warn") && strcmp(o.log_level, "error"))
        return usage_error("testnet: --log-level must be debug, info, warn or error, not '%s'",
                           o.log_level);
    o.powers = calloc(o.validators, sizeof *o.powers);
    if (!o.powers) return EXIT_FAIL;
    int rc = parse_powers(powers, o.powers, o.validators)
                 ? testnet_write(&o)
                 : usage_error("testnet: --powers needs %s", "one positive power per validator, "
                                                             "comma-separated (e.g. 2,2,2,1)");
    free(o.powers);
    return rc;
}

/* ---- talking to the admin port ---- */

/* Options every command that talks to a server accepts (before or after the command name). */
typedef struct conn_opts {
    const char *addr;
    int64_t timeout_ms;
    bool have_timeout;
    bool json;
} conn_opts;

/* "5", "5s", "500ms", "2m": milliseconds, or -1. */
static int64_t parse_duration_ms(const char *s) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return -1;
    double scale = 1000;
    if (!strcmp(end, "ms")) scale = 1;
    else if (!strcmp(end, "m")) scale = 60000;
    else if (*end && strcmp(end, "s")) return -1;
    double ms = v * scale;
    return ms >= 1 && ms < 1e12 ? (int64_t)ms : -1;
}

/* Consumes argv[*i] (and its value) when it is a connection option. Returns 1 when consumed,
 * 0 when not one, -1 (usage error printed) when its value is bad. */
static int take_conn_opt(int argc, char **argv, int *i, conn_opts *o) {
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "--json")) {
        o->json = true;
        return 1;
    }
    if (strcmp(a, "--addr") && strcmp(a, "--timeout") && strcmp(a, "--timeout-ms")) return 0;
    if (!v) {
        usage_error("%s needs a value", a);
        return -1;
    }
    (*i)++;
    if (!strcmp(a, "--addr")) {
        if (!node_parse_address(v, false)) {
            usage_error("--addr '%s' is not HOST:PORT", v);
            return -1;
        }
        o->addr = v;
        return 1;
    }
    uint64_t ms = 0;
    int64_t t = !strcmp(a, "--timeout-ms") ? (parse_u64(v, &ms) && ms && ms < (1ull << 40)
                                                  ? (int64_t)ms
                                                  : -1)
                                           : parse_duration_ms(v);
    if (t <= 0) {
        usage_error("bad %s value (e.g. 5s, 500ms)", a);
        return -1;
    }
    o->timeout_ms = t;
    o->have_timeout = true;
    return 1;
}

/* Splits a command's arguments into connection options and the rest (kept in order in
 * pos/npos; an argument after "--" is always positional). Command-specific options are left
 * in pos for the command. Returns 0 or EXIT_USAGE. */
static int split_args(int argc, char **argv, conn_opts *o, char **pos, int *npos) {
    *npos = 0;
    bool dashdash = false;
    for (int i = 0; i < argc; i++) {
        if (!dashdash && !strcmp(argv[i], "--")) {
            dashdash = true;
            continue;
        }
        int r = dashdash ? 0 : take_conn_opt(argc, argv, &i, o);
        if (r < 0) return EXIT_USAGE;
        if (r == 0) pos[(*npos)++] = argv[i];
    }
    return 0;
}

static hsc_client *connect_to(const conn_opts *o) {
    hsc_client *c = hsc_open(o->addr);
    if (!c) fprintf(stderr, "%s: out of memory\n", prog);
    return c;
}

/* Reports a failed call: "hotstuffctl: WHAT: CODE: message" or the unreachable line. */
static int call_failed(const hsc_client *c, const char *what, const hsc_status *st) {
    char line[1024];
    hsc_describe(c, st, line, sizeof line);
    if (hsc_unreachable(st)) fprintf(stderr, "%s: %s\n", prog, line);
    else fprintf(stderr, "%s: %s: %s\n", prog, what, line);
    return EXIT_FAIL;
}

static void hex_of(const uint8_t *p, size_t len, char *out, size_t cap) {
    if (cap < 2 * len + 1) len = (cap - 1) / 2;
    sodium_bin2hex(out, 2 * len + 1, p, len);
}

/* Bytes for a human: as text when printable UTF-8-ish ASCII, else 0x-prefixed hex. */
static void print_bytes(FILE *f, const uint8_t *p, size_t len) {
    bool text = true;
    for (size_t i = 0; i < len && text; i++) text = p[i] >= 0x20 && p[i] < 0x7f;
    if (text) {
        fwrite(p, 1, len, f);
        return;
    }
    fputs("0x", f);
    for (size_t i = 0; i < len; i++) fprintf(f, "%02x", p[i]);
}

/* The same for JSON: a string, text or "0x..." hex. */
static void json_bytes(cJSON *o, const char *name, const uint8_t *p, size_t len) {
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f) return;
    print_bytes(f, p, len);
    fclose(f);
    cJSON_AddStringToObject(o, name, s ? s : "");
    free(s);
}

static void json_hex(cJSON *o, const char *name, const uint8_t *p, size_t len) {
    char *h = malloc(2 * len + 1);
    if (!h) return;
    sodium_bin2hex(h, 2 * len + 1, p, len);
    cJSON_AddStringToObject(o, name, h);
    free(h);
}

static int print_json(cJSON *o, bool pretty) {
    char *t = o ? (pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o)) : NULL;
    cJSON_Delete(o);
    if (!t) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_FAIL;
    }
    printf("%s\n", t);
    fflush(stdout);
    cJSON_free(t);
    return 0;
}

/* "PHASE_GENERIC" -> "generic"; "EVENT_TYPE_COMMIT_BLOCK" -> "CommitBlock". */
static const char *enum_name(const ProtobufCEnumDescriptor *d, int v) {
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
    return e ? e->name : "?";
}

static void phase_name(int phase, char *out, size_t cap) {
    const char *n = enum_name(&hotstuff__v1__phase__descriptor, phase);
    if (!strncmp(n, "PHASE_", 6)) n += 6;
    size_t k = 0;
    for (; n[k] && k + 1 < cap; k++) out[k] = (char)tolower((unsigned char)n[k]);
    out[k] = '\0';
}

static void event_name(int type, char *out, size_t cap) {
    const char *n = enum_name(&hotstuff__v1__event_type__descriptor, type);
    if (!strncmp(n, "EVENT_TYPE_", 11)) n += 11;
    size_t k = 0;
    bool upper = true;
    for (; *n && k + 1 < cap; n++) {
        if (*n == '_') {
            upper = true;
            continue;
        }
        out[k++] = upper ? *n : (char)tolower((unsigned char)*n);
        upper = false;
    }
    out[k] = '\0';
}

/* "CommitBlock", "commit_block", "COMMIT_BLOCK", "EVENT_TYPE_COMMIT_BLOCK": its number, or 0. */
static int event_parse(const char *s) {
    char want[64], have[64];
    size_t k = 0;
    if (!strncasecmp(s, "EVENT_TYPE_", 11)) s += 11;
    for (; *s && k + 1 < sizeof want; s++)
        if (*s != '_' && *s != '-') want[k++] = (char)tolower((unsigned char)*s);
    want[k] = '\0';
    for (int t = 1; t <= 27; t++) {
        event_name(t, have, sizeof have);
        for (char *p = have; *p; p++) *p = (char)tolower((unsigned char)*p);
        if (!strcmp(want, have)) return t;
    }
    return 0;
}

static void pc_line(const Hotstuff__V1__PhaseCertificate *pc, char *out, size_t cap) {
    if (!pc) {
        snprintf(out, cap, "none");
        return;
    }
    char ph[32], b[65];
    phase_name(pc->phase, ph, sizeof ph);
    hex_of(pc->block.data, pc->block.len, b, sizeof b);
    size_t sigs = 0;
    for (size_t i = 0; i < pc->n_signatures; i++) sigs += pc->signatures[i]->signature.len > 0;
    snprintf(out, cap, "view %" PRIu64 " %s block %s (%zu signature%s)", pc->view, ph, b, sigs,
             sigs == 1 ? "" : "s");
}

static cJSON *pc_json(const Hotstuff__V1__PhaseCertificate *pc) {
    if (!pc) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    char ph[32];
    phase_name(pc->phase, ph, sizeof ph);
    add_u64(o, "view", pc->view);
    cJSON_AddStringToObject(o, "phase", ph);
    json_hex(o, "block", pc->block.data, pc->block.len);
    size_t sigs = 0;
    for (size_t i = 0; i < pc->n_signatures; i++) sigs += pc->signatures[i]->signature.len > 0;
    add_u64(o, "signatures", sigs);
    return o;
}

/* ---- status ---- */

static const char *role_name(int r) {
    return r == HOTSTUFF__V1__ROLE__ROLE_VALIDATOR  ? "validator"
           : r == HOTSTUFF__V1__ROLE__ROLE_LISTENER ? "listener"
                                                     : "unknown";
}

static int cmd_status(conn_opts *o, char **pos, int npos) {
    if (npos) return usage_error("status: unexpected argument '%s'", pos[0]);
    hsc_client *c = connect_to(o);
    if (!c) return EXIT_FAIL;
    Hotstuff__V1__GetStatusRequest q = HOTSTUFF__V1__GET_STATUS_REQUEST__INIT;
    Hotstuff__V1__GetStatusResponse *r = NULL;
    hsc_status st;
    int rc = 0;
    if (hsc_unary(c, HSC_ADMIN("GetStatus"), &q.base, &hotstuff__v1__get_status_response__descriptor,
                  (ProtobufCMessage **)&r, o->timeout_ms, &st) != GRPC_STATUS_OK) {
        rc = call_failed(c, "status", &st);
    } else if (o->json) {
        cJSON *j = cJSON_CreateObject();
        add_u64(j, "chain_id", r->chain_id);
        json_hex(j, "key", r->key.data, r->key.len);
        cJSON_AddStringToObject(j, "role", role_name(r->role));
        add_u64(j, "current_view", r->current_view);
        if (r->has_committed) {
            cJSON *cm = cJSON_AddObjectToObject(j, "committed");
            add_u64(cm, "height", r->committed_height);
            json_hex(cm, "hash", r->committed_hash.data, r->committed_hash.len);
        } else {
            cJSON_AddNullToObject(j, "committed");
        }
        cJSON_AddItemToObject(j, "highest_pc", pc_json(r->highest_pc));
        cJSON_AddItemToObject(j, "locked_pc", pc_json(r->locked_pc));
        cJSON_AddBoolToObject(j, "syncing", r->syncing);
        add_u64(j, "connected_peers", r->connected_peers);
        add_u64(j, "events_dropped", r->events_dropped);
        rc = print_json(j, true);
    } else {
        char key[65], hash[65], line[256];
        hex_of(r->key.data, r->key.len, key, sizeof key);
        printf("node        %s (%s)\n", key, role_name(r->role));
        printf("chain id    %" PRIu64 "\n", r->chain_id);
        printf("view        %" PRIu64 "\n", r->current_view);
        if (r->has_committed) {
            hex_of(r->committed_hash.data, r->committed_hash.len, hash, sizeof hash);
            printf("committed   height %" PRIu64 "  hash %s\n", r->committed_height, hash);
        } else {
            printf("committed   nothing yet\n");
        }
        pc_line(r->highest_pc, line, sizeof line);
        printf("highest PC  %s\n", line);
        pc_line(r->locked_pc, line, sizeof line);
        printf("locked PC   %s\n", line);
        printf("syncing     %s\n", r->syncing ? "yes" : "no");
        printf("peers       %" PRIu32 " connected\n", r->connected_peers);
        printf("dropped     %" PRIu64 " event(s)\n", r->events_dropped);
    }
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    hsc_close(c);
    return rc;
}

/* ---- block, blocks ---- */

/* One transaction of a block, decoded for display (as the app would, without checking it). */
static void tx_describe(const ProtobufCBinaryData *d, FILE *f, cJSON *j) {
    hs_hash h;
    hs_sha256(d->data, d->len, &h);
    char hh[65];
    kvtx_hex(&h, hh);
    Hotstuff__V1__KvTransaction *t = hotstuff__v1__kv_transaction__unpack(NULL, d->len, d->data);
    if (f) fprintf(f, "  tx %s  ", hh);
    if (j) cJSON_AddStringToObject(j, "hash", hh);
    if (!t) {
        if (f) fprintf(f, "(%zu bytes, not a KvTransaction)\n", d->len);
        if (j) cJSON_AddStringToObject(j, "op", "unknown");
        return;
    }
    if (j) add_u64(j, "nonce", t->nonce);
    switch (t->op_case) {
    case HOTSTUFF__V1__KV_TRANSACTION__OP_PUT:
        if (f) {
            fputs("put ", f);
            print_bytes(f, t->put->key.data, t->put->key.len);
            fputc('=', f);
            print_bytes(f, t->put->value.data, t->put->value.len);
        }
        if (j) {
            cJSON_AddStringToObject(j, "op", "put");
            json_bytes(j, "key", t->put->key.data, t->put->key.len);
            json_bytes(j, "value", t->put->value.data, t->put->value.len);
        }
        break;
    case HOTSTUFF__V1__KV_TRANSACTION__OP_DELETE:
        if (f) {
            fputs("delete ", f);
            print_bytes(f, t->delete_->key.data, t->delete_->key.len);
        }
        if (j) {
            cJSON_AddStringToObject(j, "op", "delete");
            json_bytes(j, "key", t->delete_->key.data, t->delete_->key.len);
        }
        break;
    case HOTSTUFF__V1__KV_TRANSACTION__OP_UPDATE_VALIDATORS: {
        Hotstuff__V1__KvTransaction__UpdateValidators *u = t->update_validators;
        cJSON *ups = NULL;
        if (f) fputs("update-validators", f);
        if (j) {
            cJSON_AddStringToObject(j, "op", "update-validators");
            ups = cJSON_AddArrayToObject(j, "updates");
        }
        for (size_t i = 0; i < u->n_updates; i++) {
            char k[65];
            hex_of(u->updates[i]->key.data, u->updates[i]->key.len, k, sizeof k);
            if (f) fprintf(f, " %s:%" PRIu64, k, u->updates[i]->power);
            if (ups) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "key", k);
                add_u64(e, "power", u->updates[i]->power);
                cJSON_AddItemToArray(ups, e);
            }
        }
        break;
    }
    default:
        if (f) fputs("(no operation)", f);
        if (j) cJSON_AddStringToObject(j, "op", "none");
    }
    if (f) fputc('\n', f);
    hotstuff__v1__kv_transaction__free_unpacked(t, NULL);
}

static cJSON *block_json(const Hotstuff__V1__Block *b, uint64_t tip, bool with_txs) {
    cJSON *j = cJSON_CreateObject();
    add_u64(j, "height", b->height);
    json_hex(j, "hash", b->hash.data, b->hash.len);
    cJSON_AddItemToObject(j, "justify", pc_json(b->justify));
    json_hex(j, "data_hash", b->data_hash.data, b->data_hash.len);
    add_u64(j, "txs", b->n_data);
    if (with_txs) {
        cJSON *a = cJSON_AddArrayToObject(j, "transactions");
        for (size_t i = 0; i < b->n_data; i++) {
            cJSON *t = cJSON_CreateObject();
            tx_describe(&b->data[i], NULL, t);
            cJSON_AddItemToArray(a, t);
        }
    }
    add_u64(j, "tip_height", tip);
    return j;
}

static int cmd_block(conn_opts *o, char **pos, int npos) {
    if (npos != 1) return usage_error("block: %s", "give one HEIGHT or HASH (64 hex digits)");
    Hotstuff__V1__GetBlockRequest q = HOTSTUFF__V1__GET_BLOCK_REQUEST__INIT;
    uint8_t hash[HS_HASH_LEN];
    size_t hl = 0;
    /* 64 hex digits are a hash (even when they are all decimal digits). */
    if (strlen(pos[0]) == 2 * HS_HASH_LEN &&
        sodium_hex2bin(hash, sizeof hash, pos[0], strlen(pos[0]), NULL, &hl, NULL) == 0 &&
        hl == HS_HASH_LEN) {
        q.selector_case = HOTSTUFF__V1__GET_BLOCK_REQUEST__SELECTOR_HASH;
        q.hash.data = hash;
        q.hash.len = hl;
    } else if (parse_u64(pos[0], &q.height)) {
        q.selector_case = HOTSTUFF__V1__GET_BLOCK_REQUEST__SELECTOR_HEIGHT;
    } else {
        return usage_error("block: '%s' is neither a height nor a 64-digit hex hash", pos[0]);
    }
    hsc_client *c = connect_to(o);
    if (!c) return EXIT_FAIL;
    Hotstuff__V1__GetBlockResponse *r = NULL;
    hsc_status st;
    int rc = 0;
    char what[160];
    snprintf(what, sizeof what, "block %s", pos[0]);
    if (hsc_unary(c, HSC_ADMIN("GetBlock"), &q.base, &hotstuff__v1__get_block_response__descriptor,
                  (ProtobufCMessage **)&r, o->timeout_ms, &st) != GRPC_STATUS_OK) {
        rc = call_failed(c, what, &st);
    } else if (!r->block) {
        fprintf(stderr, "%s: %s: the server sent no block\n", prog, what);
        rc = EXIT_FAIL;
    } else if (o->json) {
        rc = print_json(block_json(r->block, r->tip_height, true), true);
    } else {
        const Hotstuff__V1__Block *b = r->block;
        char h[65], line[256];
        hex_of(b->hash.data, b->hash.len, h, sizeof h);
        printf("height     %" PRIu64 "\n", b->height);
        printf("hash       %s\n", h);
        pc_line(b->justify, line, sizeof line);
        printf("justify    %s\n", line);
        hex_of(b->data_hash.data, b->data_hash.len, h, sizeof h);
        printf("data hash  %s\n", h);
        printf("txs        %zu\n", b->n_data);
        for (size_t i = 0; i < b->n_data; i++) tx_describe(&b->data[i], stdout, NULL);
        printf("tip        %" PRIu64 "\n", r->tip_height);
    }
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    hsc_close(c);
    return rc;
}

/* blocks FROM [TO]: every committed block of the range (clipped to the tip), page by page. */
static int cmd_blocks(conn_opts *o, char **pos, int npos) {
    uint64_t from = 0, to = UINT64_MAX;
    if (npos < 1 || npos > 2 || !parse_u64(pos[0], &from) ||
        (npos == 2 && strcmp(pos[1], "tip") && !parse_u64(pos[1], &to)))
        return usage_error("blocks: %s", "give FROM [TO|tip] (heights)");
    if (to < from) return usage_error("blocks: %s", "TO is below FROM");
    hsc_client *c = connect_to(o);
    if (!c) return EXIT_FAIL;
    int rc = 0;
    uint64_t next = from, shown = 0;
    for (;;) {
        Hotstuff__V1__ListBlocksRequest q = HOTSTUFF__V1__LIST_BLOCKS_REQUEST__INIT;
        q.start_height = next;
        q.end_height = to;
        hsc_stream *s = hsc_stream_open(c, HSC_ADMIN("ListBlocks"), &q.base, o->timeout_ms);
        if (!s) {
            rc = EXIT_FAIL;
            break;
        }
        uint64_t got = 0, tip = 0, last = 0;
        Hotstuff__V1__ListBlocksResponse *m;
        while ((m = (Hotstuff__V1__ListBlocksResponse *)hsc_stream_next(
                    s, &hotstuff__v1__list_blocks_response__descriptor))) {
            const Hotstuff__V1__Block *b = m->block;
            if (b) {
                got++;
                last = b->height;
                tip = m->tip_height;
                if (o->json) {
                    print_json(block_json(b, m->tip_height, false), false);
                } else {
                    char h[65];
                    hex_of(b->hash.data, b->hash.len, h, sizeof h);
                    printf("%-8" PRIu64 " %s  view %-6" PRIu64 " txs %zu\n", b->height, h,
                           b->justify ? b->justify->view : 0, b->n_data);
                }
            }
            protobuf_c_message_free_unpacked(&m->base, NULL);
        }
        hsc_status st;
        char what[96];
        snprintf(what, sizeof what, "blocks %" PRIu64 "..", next);
        if (hsc_stream_finish(s, false, &st) != GRPC_STATUS_OK) {
            /* Past the tip after at least one page: the range simply ended there. */
            if (!(shown + got > 0 && st.code == GRPC_STATUS_OUT_OF_RANGE))
                rc = call_failed(c, what, &st);
            break;
        }
        shown += got;
        if (got == 0 || last >= to || last >= tip) break;
        next = last + 1;
    }
    fflush(stdout);
    hsc_close(c);
    return rc;
}

/* ---- validators ---- */

static uint64_t vs_power(const Hotstuff__V1__ValidatorSet *vs) {
    uint64_t p = 0;
    for (size_t i = 0; vs && i < vs->n_validators; i++) p += vs->validators[i]->power;
    return p;
}

static cJSON *vs_json(const Hotstuff__V1__ValidatorSet *vs) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; vs && i < vs->n_validators; i++) {
        cJSON *v = cJSON_CreateObject();
        json_hex(v, "key", vs->validators[i]->key.data, vs->validators[i]->key.len);
        add_u64(v, "power", vs->validators[i]->power);
        cJSON_AddItemToArray(a, v);
    }
    return a;
}

static void vs_print(const char *title, const Hotstuff__V1__ValidatorSet *vs) {
    size_t n = vs ? vs->n_validators : 0;
    printf("%s: %zu validator%s, total power %" PRIu64 "\n", title, n, n == 1 ? "" : "s",
           vs_power(vs));
    for (size_t i = 0; i < n; i++) {
        char k[65];
        hex_of(vs->validators[i]->key.data, vs->validators[i]->key.len, k, sizeof k);
        printf("  %s  power %" PRIu64 "\n", k, vs->validators[i]->power);
    }
}

static int cmd_validators(conn_opts *o, char **pos, int npos) {
    if (npos) return usage_error("validators: unexpected argument '%s'", pos[0]);
    hsc_client *c = connect_to(o);
    if (!c) return EXIT_FAIL;
    Hotstuff__V1__GetValidatorSetRequest q = HOTSTUFF__V1__GET_VALIDATOR_SET_REQUEST__INIT;
    Hotstuff__V1__GetValidatorSetResponse *r = NULL;
    hsc_status st;
    int rc = 0;
    if (hsc_unary(c, HSC_ADMIN("GetValidatorSet"), &q.base,
                  &hotstuff__v1__get_validator_set_response__descriptor, (ProtobufCMessage **)&r,
                  o->timeout_ms, &st) != GRPC_STATUS_OK) {
        rc = call_failed(c, "validators", &st);
    } else if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "committed", vs_json(r->committed));
        cJSON_AddItemToObject(j, "previous", vs_json(r->previous));
        if (r->has_update_height) add_u64(j, "update_height", r->update_height);
        else cJSON_AddNullToObject(j, "update_height");
        cJSON_AddBoolToObject(j, "update_decided", r->update_decided);
        rc = print_json(j, true);
    } else {
        vs_print("committed", r->committed);
        vs_print("previous", r->previous);
        if (r->has_update_height)
            printf("last update at height %" PRIu64 " (%s)\n", r->update_height,
                   r->update_decided ? "decided" : "not yet decided");
        else
            printf("no update since genesis\n");
    }
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    hsc_close(c);
    return rc;
}

/* ---- get ---- */

static int cmd_get(conn_opts *o, char **pos, int npos) {
    if (npos != 1 || !pos[0][0]) return usage_error("get: %s", "give one non-empty KEY");
    hsc_client *c = connect_to(o);
    if (!c) return EXIT_FAIL;
    Hotstuff__V1__GetStateRequest q = HOTSTUFF__V1__GET_STATE_REQUEST__INIT;
    q.key.data = (uint8_t *)pos[0];
    q.key.len = strlen(pos[0]);
    Hotstuff__V1__GetStateResponse *r = NULL;
    hsc_status st;
    int rc = 0;
    char what[160];
    snprintf(what, sizeof what, "get %.100s", pos[0]);
    if (hsc_unary(c, HSC_ADMIN("GetState"), &q.base, &hotstuff__v1__get_state_response__descriptor,
                  (ProtobufCMessage **)&r, o->timeout_ms, &st) != GRPC_STATUS_OK) {
        rc = call_failed(c, what, &st);
    } else if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "key", pos[0]);
        json_bytes(j, "value", r->value.data, r->value.len);
        add_u64(j, "tip_height", r->tip_height);
        rc = print_json(j, false);
    } else {
        fwrite(r->value.data, 1, r->value.len, stdout);
        putchar('\n');
    }
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    hsc_close(c);
    return rc;
}

/* ---- health ---- */

static int cmd_health(conn_opts *o, char **pos, int npos) {
    if (npos > 1) return usage_error("health: unexpected argument '%s'", pos[1]);
    const char *svc = npos ? pos[0] : "";
    hsc_client *c = connect_to(o);
    if (!c) return EXIT_FAIL;
    Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    q.service = (char *)svc;
    Grpc__Health__V1__HealthCheckResponse *r = NULL;
    hsc_status st;
    int rc = EXIT_FAIL;
    char what[300];
    snprintf(what, sizeof what, "health%s%.200s", svc[0] ? " " : "", svc);
    if (hsc_unary(c, "/grpc.health.v1.Health/Check", &q.base,
                  &grpc__health__v1__health_check_response__descriptor, (ProtobufCMessage **)&r,
                  o->timeout_ms, &st) != GRPC_STATUS_OK) {
        call_failed(c, what, &st);
    } else {
        const char *n = enum_name(&grpc__health__v1__health_check_response__serving_status__descriptor,
                                  r->status);
        if (o->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "service", svc);
            cJSON_AddStringToObject(j, "status", n);
            print_json(j, false);
        } else {
            printf("%s\n", n);
        }
        rc = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                 ? 0
                 : EXIT_FAIL;
    }
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    hsc_close(c);
    return rc;
}

/* ---- watch ---- */

static void watch_line(const Hotstuff__V1__SubscribeResponse *m, bool json) {
    char name[48];
    event_name(m->type, name, sizeof name);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "type", name);
        add_u64(j, "timestamp_ms", m->timestamp_ms);
        if (m->type == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK) {
            add_u64(j, "height", m->height);
            cJSON_AddBoolToObject(j, "replayed", m->replayed);
        }
        if (m->block_hash.len) json_hex(j, "block_hash", m->block_hash.data, m->block_hash.len);
        if (m->view) add_u64(j, "view", m->view);
        cJSON_AddStringToObject(j, "text", m->text ? m->text : "");
        print_json(j, false);
        return;
    }
    time_t secs = (time_t)(m->timestamp_ms / 1000);
    struct tm tm;
    char ts[32] = "?";
    if (localtime_r(&secs, &tm)) strftime(ts, sizeof ts, "%H:%M:%S", &tm);
    printf("%s.%03u  %-18s", ts, (unsigned)(m->timestamp_ms % 1000), name);
    if (m->type == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK) {
        char h[17];
        hex_of(m->block_hash.data, m->block_hash.len < 8 ? m->block_hash.len : 8, h, sizeof h);
        printf(" height %-7" PRIu64 " block %s%s", m->height, h, m->replayed ? "  (replayed)" : "");
    } else if (m->text && m->text[0]) {
        /* The spec §9 line is "Name, unix seconds, fields...": keep the fields. */
        const char *t = m->text, *comma = strchr(t, ',');
        if (comma && (comma = strchr(comma + 1, ','))) t = comma + 1;
        while (*t == ' ') t++;
        printf(" %s", t);
    } else if (m->view) {
        printf(" view %" PRIu64, m->view);
    }
    putchar('\n');
    fflush(stdout);
}

static int cmd_watch(conn_opts *o, char **pos, int npos) {
    Hotstuff__V1__SubscribeRequest q = HOTSTUFF__V1__SUBSCRIBE_REQUEST__INIT;
    Hotstuff__V1__EventType types[27];
    uint64_t count = 0;
    int64_t duration_ms = -1;
    for (int i = 0; i < npos; i++) {
        const char *a = pos[i], *v = i + 1 < npos ? pos[i + 1] : NULL;
        if (!strcmp(a, "--types") && v) {
            char *copy = strdup(v), *save = NULL;
            if (!copy) return EXIT_FAIL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int e = event_parse(t);
                if (!e) {
                    usage_error("watch: unknown event type '%s' (e.g. CommitBlock, "
                                "Propose, ViewTimeout)", t);
                    free(copy);
                    return EXIT_USAGE;
                }
                bool dup = false;
                for (size_t k = 0; k < q.n_types; k++) dup = dup || (int)types[k] == e;
                if (!dup && q.n_types < 27) types[q.n_types++] = (Hotstuff__V1__EventType)e;
            }
            free(copy);
        } else if (!strcmp(a, "--from") && v && parse_u64(v, &q.from_height)) {
            q.has_from_height = true;
        } else if (!strcmp(a, "--count") && v && parse_u64(v, &count) && count > 0) {
        } else if (!strcmp(a, "--duration") && v && (duration_ms = parse_duration_ms(v)) > 0) {
        } else {
            return usage_error("watch: bad argument '%s'", a);
        }
        i++;
    }
    q.types = q.n_types ? types : NULL;
    if (q.has_from_height && q.n_types) {
        bool commit = false;
        for (size_t k = 0; k < q.n_types; k++)
            commit = commit || types[k] == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK;
        if (!commit) return usage_error("watch: %s", "--from needs CommitBlock among --types");
    }
    hsc_client *c = connect_to(o);
    if (!c) return EXIT_FAIL;
    /* The subscription itself may last forever; connecting may not. Without a connection the
     * call below gets the --timeout deadline too, so it fails with the reason. */
    bool up = hsc_wait_connected(c, o->timeout_ms);
    hsc_stream *s = hsc_stream_open(c, HSC_ADMIN("Subscribe"), &q.base,
                                    up ? duration_ms : o->timeout_ms);
    if (!s) {
        hsc_close(c);
        return EXIT_FAIL;
    }
    uint64_t seen = 0;
    Hotstuff__V1__SubscribeResponse *m;
    while ((!count || seen < count) &&
           (m = (Hotstuff__V1__SubscribeResponse *)hsc_stream_next(
                s, &hotstuff__v1__subscribe_response__descriptor))) {
        watch_line(m, o->json);
        seen++;
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    bool enough = count && seen >= count;
    hsc_status st;
    grpc_status_code code = hsc_stream_finish(s, enough, &st);
    int rc = 0;
    /* Ended by --count (we cancelled) or by --duration (the deadline we chose): success. */
    if (!enough && !(up && duration_ms > 0 && code == GRPC_STATUS_DEADLINE_EXCEEDED)) {
        if (code == GRPC_STATUS_OK) {
            fprintf(stderr, "%s: watch: the server ended the subscription\n", prog);
            rc = EXIT_FAIL;
        } else {
            rc = call_failed(c, "watch", &st);
        }
    }
    hsc_close(c);
    return rc;
}

/* ---- submit ---- */

static grpc_status_code submit_admin(hsc_client *c, const uint8_t *tx, size_t len, bool wait,
                                     int64_t timeout_ms, hs_hash *hash, bool *committed,
                                     uint64_t *height, hsc_status *st) {
    Hotstuff__V1__AdminSubmitTransactionRequest q =
        HOTSTUFF__V1__ADMIN_SUBMIT_TRANSACTION_REQUEST__INIT;
    q.transaction.data = (uint8_t *)tx;
    q.transaction.len = len;
    q.wait_for_commit = wait;
    Hotstuff__V1__AdminSubmitTransactionResponse *r = NULL;
    grpc_status_code code = hsc_unary(c, HSC_ADMIN("SubmitTransaction"), &q.base,
                                      &hotstuff__v1__admin_submit_transaction_response__descriptor,
                                      (ProtobufCMessage **)&r, timeout_ms, st);
    if (r) {
        if (r->tx_hash.len == HS_HASH_LEN) memcpy(hash->b, r->tx_hash.data, HS_HASH_LEN);
        *committed = r->committed;
        *height = r->height;
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    return code;
}

/* hotstuff.v1.Replica/SubmitTransaction: what a replica port serves (no waiting there). */
static grpc_status_code submit_replica(hsc_client *c, const uint8_t *tx, size_t len,
                                       int64_t timeout_ms, hs_hash *hash, hsc_status *st) {
    Hotstuff__V1__SubmitTransactionRequest q = HOTSTUFF__V1__SUBMIT_TRANSACTION_REQUEST__INIT;
    q.transaction.data = (uint8_t *)tx;
    q.transaction.len = len;
    Hotstuff__V1__SubmitTransactionResponse *r = NULL;
    grpc_status_code code =
        hsc_unary(c, "/hotstuff.v1.Replica/SubmitTransaction", &q.base,
                  &hotstuff__v1__submit_transaction_response__descriptor, (ProtobufCMessage **)&r,
                  timeout_ms, st);
    if (r) {
        if (r->transaction_hash.len == HS_HASH_LEN)
            memcpy(hash->b, r->transaction_hash.data, HS_HASH_LEN);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    return code;
}

static int do_submit(const conn_opts *o, const uint8_t *tx, size_t len, bool wait, hs_hash *hash) {
    hsc_client *c = connect_to(o);
    if (!c) return EXIT_FAIL;
    bool committed = false;
    uint64_t height = 0;
    hsc_status st;
    int rc = 0;
    grpc_status_code code =
        submit_admin(c, tx, len, wait, o->timeout_ms, hash, &committed, &height, &st);
    if (code == GRPC_STATUS_UNIMPLEMENTED && !wait) {
        /* A replica port (it has no Admin service): submit there the replica way. */
        code = submit_replica(c, tx, len, o->timeout_ms, hash, &st);
    }
    char hh[65];
    kvtx_hex(hash, hh);
    if (code != GRPC_STATUS_OK) {
        char what[120];
        snprintf(what, sizeof what, "submit to %s failed", o->addr);
        rc = call_failed(c, what, &st);
        if (code == GRPC_STATUS_DEADLINE_EXCEEDED && wait)
            fprintf(stderr, "%s: tx %s was not seen committed in time (it may still commit)\n",
                    prog, hh);
    } else if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "tx_hash", hh);
        cJSON_AddBoolToObject(j, "committed", committed);
        if (committed) add_u64(j, "height", height);
        rc = print_json(j, false);
    } else {
        printf("accepted tx %s\n", hh);
        if (committed) printf("committed at height %" PRIu64 "\n", height);
    }
    hsc_close(c);
    return rc;
}

/* "KEY:POWER" */
static bool parse_update(const char *arg, hs_validator *out) {
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg) return false;
    char key[128];
    size_t klen = (size_t)(colon - arg);
    if (klen >= sizeof key) return false;
    memcpy(key, arg, klen);
    key[klen] = '\0';
    return node_parse_key(key, &out->key) && parse_u64(colon + 1, &out->power);
}

static int build_update_validators(int argc, char **argv, uint64_t nonce, uint8_t **tx,
                                   size_t *len) {
    const char *admin_file = NULL, *genesis_file = NULL;
    uint64_t chain_id = 0;
    bool have_chain = false;
    hs_validator *ups = calloc((size_t)argc + 1, sizeof *ups);
    size_t n = 0;
    int rc = EXIT_USAGE;
    char err[1024];
    if (!ups) return EXIT_FAIL;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--admin-key") && v) admin_file = argv[++i];
        else if (!strcmp(argv[i], "--genesis") && v) genesis_file = argv[++i];
        else if (!strcmp(argv[i], "--chain-id") && v && parse_u64(v, &chain_id))
            have_chain = true, i++;
        else if (parse_update(argv[i], &ups[n])) n++;
        else {
            usage_error("update-validators: '%s' is not KEY:POWER (hex or Base64 key)", argv[i]);
            goto out;
        }
    }
    if (!admin_file) {
        usage_error("update-validators: %s", "--admin-key FILE is required");
        goto out;
    }
    if (!have_chain && !genesis_file) {
        usage_error("update-validators: %s", "the signature covers the chain id: pass "
                                              "--chain-id C or --genesis FILE");
        goto out;
    }
    if (n == 0) {
        usage_error("update-validators: %s", "give at least one KEY:POWER");
        goto out;
    }
    rc = EXIT_FAIL;
    if (genesis_file) {
        node_genesis g;
        if (node_genesis_load(genesis_file, &g, err, sizeof err) != HS_OK) {
            fprintf(stderr, "%s: %s\n", prog, err);
            goto out;
        }
        if (have_chain && g.chain_id != chain_id) {
            fprintf(stderr, "%s: --chain-id %" PRIu64 " differs from %s (%" PRIu64 ")\n", prog,
                    chain_id, genesis_file, g.chain_id);
            node_genesis_free(&g);
            goto out;
        }
        chain_id = g.chain_id;
        node_genesis_free(&g);
    }
    hs_keypair admin;
    if (node_key_load(admin_file, &admin, err, sizeof err) != HS_OK) {
        fprintf(stderr, "%s: %s\n", prog, err);
        goto out;
    }
    hs_status st = kvtx_encode_update_validators(chain_id, nonce, ups, n, &admin, tx, len);
    sodium_memzero(&admin, sizeof admin);
    rc = st == HS_OK ? 0 : EXIT_FAIL;
out:
    free(ups);
    return rc;
}

/* submit [--wait] [--nonce N] OP ARGS...: the submit options come before OP; what follows OP
 * belongs to it (update-validators has options of its own). */
static int cmd_submit(conn_opts *o, char **pos, int npos) {
    uint64_t nonce = 0;
    bool have_nonce = false, wait = false;
    int i = 0;
    for (; i < npos && pos[i][0] == '-'; i++) {
        const char *v = i + 1 < npos ? pos[i + 1] : NULL;
        if (!strcmp(pos[i], "--wait")) wait = true;
        else if (!strcmp(pos[i], "--nonce") && parse_u64(v, &nonce)) have_nonce = true, i++;
        else return usage_error("submit: bad option '%s'", pos[i]);
    }
    if (i >= npos) return usage_error("submit: %s", "missing operation (put, delete, ...)");
    /* Waiting for a commit takes a few views: a longer default deadline. */
    if (wait && !o->have_timeout) o->timeout_ms = DEFAULT_WAIT_MS;
    /* A random nonce: submitting the same operation twice makes two transactions. */
    if (!have_nonce) randombytes_buf(&nonce, sizeof nonce);
    const char *op = pos[i];
    int rest = npos - i - 1;
    char **args = pos + i + 1;
    uint8_t *tx = NULL;
    size_t len = 0;
    hs_status st = HS_OK;
    if (!strcmp(op, "put")) {
        if (rest != 2) return usage_error("submit: %s", "put needs KEY VALUE");
        if (!args[0][0]) return usage_error("submit: %s", "put needs a non-empty KEY");
        st = kvtx_encode_put(nonce, (const uint8_t *)args[0], strlen(args[0]),
                             (const uint8_t *)args[1], strlen(args[1]), &tx, &len);
    } else if (!strcmp(op, "delete")) {
        if (rest != 1 || !args[0][0]) return usage_error("submit: %s", "delete needs KEY");
        st = kvtx_encode_delete(nonce, (const uint8_t *)args[0], strlen(args[0]), &tx, &len);
    } else if (!strcmp(op, "update-validators")) {
        int rc = build_update_validators(rest, args, nonce, &tx, &len);
        if (rc) return rc;
    } else {
        return usage_error("submit: unknown operation '%s'", op);
    }
    if (st != HS_OK) {
        fprintf(stderr, "%s: submit: cannot encode the transaction\n", prog);
        return EXIT_FAIL;
    }
    hs_hash h;
    hs_sha256(tx, len, &h);
    int rc = do_submit(o, tx, len, wait, &h);
    free(tx);
    return rc;
}

/* ---- main ---- */

typedef int (*conn_cmd)(conn_opts *o, char **pos, int npos);

static const struct {
    const char *name;
    conn_cmd fn;
} conn_cmds[] = {{"status", cmd_status}, {"block", cmd_block},   {"blocks", cmd_blocks},
                 {"validators", cmd_validators}, {"get", cmd_get}, {"submit", cmd_submit},
                 {"watch", cmd_watch},   {"health", cmd_health}};

int main(int argc, char **argv) {
    conn_opts o = {.addr = DEFAULT_ADDR, .timeout_ms = DEFAULT_TIMEOUT_MS};
    const char *env = getenv("HOTSTUFFCTL_ADDR");
    if (env && *env) o.addr = env;
    /* Connection options may come before the command. */
    int k = 1;
    while (k < argc && argv[k][0] == '-' && strcmp(argv[k], "-h") && strcmp(argv[k], "--help")) {
        int r = take_conn_opt(argc, argv, &k, &o);
        if (r < 0) return EXIT_USAGE;
        if (r == 0) return usage_error("unknown option '%s'", argv[k]);
        k++;
    }
    if (k >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[k];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (hs_crypto_init() != HS_OK) {
        fprintf(stderr, "%s: cannot initialise libsodium\n", prog);
        return EXIT_FAIL;
    }
    if (!strcmp(cmd, "keygen")) return cmd_keygen(argc - k - 1, argv + k + 1);
    if (!strcmp(cmd, "testnet")) return cmd_testnet(argc - k - 1, argv + k + 1);
    for (size_t i = 0; i < sizeof conn_cmds / sizeof conn_cmds[0]; i++) {
        if (strcmp(cmd, conn_cmds[i].name)) continue;
        int n = argc - k - 1;
        char **pos = calloc((size_t)n + 1, sizeof *pos);
        if (!pos) return EXIT_FAIL;
        int npos = 0;
        int rc = split_args(n, argv + k + 1, &o, pos, &npos);
        if (rc == 0) rc = conn_cmds[i].fn(&o, pos, npos);
        free(pos);
        return rc;
    }
    return usage_error("unknown command '%s'", cmd);
}
