/* testnet.c - hotstuffctl's file-writing commands: `keygen` (one key pair) and `testnet` (the
 * key, config and genesis files of N validators and M listeners, and with --compose a
 * docker-compose.yml beside them, see compose.h). Nothing here talks to a server. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "compose.h"
#include "ctl.h"
#include "hotstuff/crypto.h"
#include "config/node_config.h"
#include "replica/transport.h"

/* Node i serves its admin port on P + ADMIN_OFFSET + i (P + N + M + i when more than
 * ADMIN_OFFSET nodes, so the two ranges never overlap). */
#define ADMIN_OFFSET 100

/* ---- keygen ---- */

int ctl_cmd_keygen(int argc, char **argv) {
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else return ctl_usage_error("keygen: unexpected argument '%s'", argv[i]);
    }
    if (!out) return ctl_usage_error("keygen: %s", "--out FILE is required");
    hs_keypair kp;
    char err[512];
    if (hs_keypair_generate(&kp) != HS_OK) {
        fprintf(stderr, "%s: keygen: cannot generate a key\n", ctl_prog);
        return EXIT_FAIL;
    }
    hs_status st = node_key_write(out, &kp, err, sizeof err);
    char pub[2 * HS_KEY_LEN + 1];
    sodium_bin2hex(pub, sizeof pub, kp.public_key.b, HS_KEY_LEN);
    sodium_memzero(&kp, sizeof kp);
    if (st != HS_OK) {
        fprintf(stderr, "%s: keygen: %s\n", ctl_prog, err);
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

/* Writes text to a new file (never over an existing one). */
static int write_new_file(const char *path, const char *text) {
    FILE *f = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) f = fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", ctl_prog, path,
                errno == EEXIST ? "already exists; not overwriting it" : strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    if (!ok) fprintf(stderr, "%s: %s: cannot write\n", ctl_prog, path);
    return ok ? 0 : -1;
}

static void key_hex(const hs_key *k, char out[2 * HS_KEY_LEN + 1]) {
    sodium_bin2hex(out, 2 * HS_KEY_LEN + 1, k->b, HS_KEY_LEN);
}

static char *genesis_json(const testnet_opts *o, const hs_keypair *keys, const hs_key *admin) {
    cJSON *g = cJSON_CreateObject();
    ctl_add_u64(g, "chain_id", o->chain_id);
    cJSON *vs = cJSON_AddArrayToObject(g, "validators");
    for (uint64_t i = 0; i < o->validators; i++) {
        char k[2 * HS_KEY_LEN + 1];
        key_hex(&keys[i].public_key, k);
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "key", k);
        ctl_add_u64(v, "power", o->powers[i]);
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
    ctl_add_u64(cs, "block_sync_request_limit", k->block_sync_request_limit);
    ctl_add_u64(cs, "block_sync_server_advertise_time_ms", k->block_sync_server_advertise_time_ms);
    ctl_add_u64(cs, "block_sync_response_timeout_ms", k->block_sync_response_timeout_ms);
    ctl_add_u64(cs, "block_sync_blacklist_expiry_time_ms", k->block_sync_blacklist_expiry_time_ms);
    ctl_add_u64(cs, "block_sync_trigger_min_view_difference",
            k->block_sync_trigger_min_view_difference);
    ctl_add_u64(cs, "block_sync_trigger_timeout_ms", k->block_sync_trigger_timeout_ms);
    ctl_add_u64(cs, "progress_msg_buffer_capacity", k->progress_msg_buffer_capacity);
    ctl_add_u64(cs, "epoch_length", k->epoch_length);
    ctl_add_u64(cs, "max_view_time_ms", k->max_view_time_ms);
    cJSON_AddBoolToObject(cs, "log_events", k->log_events);
    cJSON_AddStringToObject(cs, "leader_selection",
                            node_leader_selection_names[k->leader_selection]);
    cJSON_AddStringToObject(cs, "vote_routing", node_vote_routing_names[k->vote_routing]);
    cJSON_AddStringToObject(cs, "view_deadlines", node_view_deadlines_names[k->view_deadlines]);
    cJSON *li = cJSON_AddObjectToObject(c, "limits");
    ctl_add_u64(li, "transport_inbox_capacity", d.transport_inbox_capacity);
    ctl_add_u64(li, "transport_outbox_capacity", d.transport_outbox_capacity);
    ctl_add_u64(li, "replica_inbox_capacity", k->inbox_capacity);
    ctl_add_u64(li, "event_queue_capacity", k->event_queue_capacity);
    ctl_add_u64(li, "sync_request_queue_capacity", k->sync_request_queue_capacity);
    ctl_add_u64(li, "mempool_max_txs", d.app.mempool_max_txs);
    ctl_add_u64(li, "mempool_max_bytes", d.app.mempool_max_bytes);
    ctl_add_u64(li, "max_tx_bytes", d.app.max_tx_bytes);
    ctl_add_u64(li, "max_key_bytes", d.app.max_key_bytes);
    ctl_add_u64(li, "max_block_txs", d.app.max_block_txs);
    ctl_add_u64(li, "max_block_bytes", d.app.max_block_bytes);
    ctl_add_u64(li, "max_validators", d.app.max_validators);
    cJSON *ap = cJSON_AddObjectToObject(c, "app");
    ctl_add_u64(ap, "empty_block_wait_ms", d.app.empty_block_wait_ms);
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    return text;
}

static int write_node(const testnet_opts *o, const hs_keypair *keys, uint64_t i,
                      const char *genesis) {
    char dir[4096], path[4200], err[512];
    snprintf(dir, sizeof dir, "%s/node%" PRIu64, o->dir, i);
    if (node_make_dirs(dir, 0755) != 0) {
        fprintf(stderr, "%s: %s: cannot create: %s\n", ctl_prog, dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/key.json", dir);
    if (node_key_write(path, &keys[i], err, sizeof err) != HS_OK) {
        fprintf(stderr, "%s: %s\n", ctl_prog, err);
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
        fprintf(stderr, "%s: %s\n", ctl_prog, err);
        return -1;
    }
    if (compose_write(&cs, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", ctl_prog, err);
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
    if (node_make_dirs(o->dir, 0755) != 0) {
        fprintf(stderr, "%s: %s: cannot create: %s\n", ctl_prog, o->dir, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/admin_key.json", o->dir);
    if (node_key_write(path, &admin, err, sizeof err) != HS_OK) {
        fprintf(stderr, "%s: %s\n", ctl_prog, err);
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
    if (rc && !genesis) fprintf(stderr, "%s: testnet: out of memory or no randomness\n", ctl_prog);
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
        if (k >= n || !ctl_parse_u64(t, &out[k]) || out[k] == 0 || out[k] >= (1ull << 53)) {
            ok = false;
            break;
        }
        k++;
    }
    free(copy);
    return ok && k == n;
}

int ctl_cmd_testnet(int argc, char **argv) {
    testnet_opts o = {.host = "127.0.0.1", .chain_id = 1, .log_level = "info"};
    bool have_v = false, have_p = false;
    const char *powers = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = v != NULL;
        if (!strcmp(a, "--validators")) ok = ok && ctl_parse_u64(v, &o.validators), have_v = true;
        else if (!strcmp(a, "--listeners")) ok = ok && ctl_parse_u64(v, &o.listeners);
        else if (!strcmp(a, "--base-port")) ok = ok && ctl_parse_u64(v, &o.base_port), have_p = true;
        else if (!strcmp(a, "--chain-id")) ok = ok && ctl_parse_u64(v, &o.chain_id);
        else if (!strcmp(a, "--max-view-time-ms"))
            ok = ok && ctl_parse_u64(v, &o.max_view_time_ms) && o.max_view_time_ms > 0;
        else if (!strcmp(a, "--dir")) o.dir = v;
        else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--log-level")) o.log_level = v;
        else if (!strcmp(a, "--powers")) powers = v;
        else if (!strcmp(a, "--compose")) {
            o.compose = true;
            continue; /* a flag: no value */
        } else return ctl_usage_error("testnet: unexpected argument '%s'", a);
        if (!ok) return ctl_usage_error("testnet: bad or missing value for %s", a);
        i++;
    }
    if (!have_v || o.validators < 1 || o.validators > 1024)
        return ctl_usage_error("testnet: %s", "--validators N (1 to 1024) is required");
    if (o.listeners > 1024) return ctl_usage_error("testnet: %s", "--listeners is at most 1024");
    if (!o.dir) return ctl_usage_error("testnet: %s", "--dir DIR is required");
    if (!have_p || o.base_port < 1 || admin_base(&o) + o.validators + o.listeners - 1 > 65535)
        return ctl_usage_error("testnet: %s", "--base-port P is required and the admin ports "
                                          "(P+100+i) must stay <= 65535");
    if (!o.host[0] || strlen(o.host) > 200) return ctl_usage_error("testnet: %s", "bad --host");
    if (o.compose && strcmp(o.host, "127.0.0.1"))
        return ctl_usage_error("testnet: %s", "--compose publishes the admin ports on 127.0.0.1; "
                                          "--host does not apply");
    if (strcmp(o.log_level, "debug") && strcmp(o.log_level, "info") &&
        strcmp(o.log_level, "warn") && strcmp(o.log_level, "error"))
        return ctl_usage_error("testnet: --log-level must be debug, info, warn or error, not '%s'",
                           o.log_level);
    o.powers = calloc(o.validators, sizeof *o.powers);
    if (!o.powers) return EXIT_FAIL;
    int rc = parse_powers(powers, o.powers, o.validators)
                 ? testnet_write(&o)
                 : ctl_usage_error("testnet: --powers needs %s", "one positive power per validator, "
                                                             "comma-separated (e.g. 2,2,2,1)");
    free(o.powers);
    return rc;
}

