/* hotstuffctl - the operator CLI of hotstuffd.
 *
 *   hotstuffctl keygen --out FILE
 *   hotstuffctl testnet --validators N [--listeners M] --dir DIR --base-port P
 *                       [--host H] [--chain-id C] [--max-view-time-ms T] [--log-level L]
 *                       [--powers P0,P1,...]
 *   hotstuffctl submit --addr HOST:PORT [--timeout-ms T] [--nonce N] put KEY VALUE
 *   hotstuffctl submit --addr HOST:PORT ... delete KEY
 *   hotstuffctl submit --addr HOST:PORT ... update-validators --admin-key FILE
 *                       (--chain-id C | --genesis FILE) KEY:POWER...
 *
 * Exit status: 0 on success, 1 when the operation failed (a file could not be written, the
 * server was unreachable or refused the transaction), 2 for a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <sodium.h>

#include "hotstuff/crypto.h"
#include "hotstuff/v1/replica.pb-c.h"
#include "kvtx.h"
#include "node_config.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define DEFAULT_TIMEOUT_MS 5000

static const char *prog = "hotstuffctl";

static void usage(FILE *f) {
    fprintf(f,
            "usage:\n"
            "  hotstuffctl keygen --out FILE\n"
            "      write a new Ed25519 key pair (mode 0600) and print its public key\n"
            "  hotstuffctl testnet --validators N [--listeners M] --dir DIR --base-port P\n"
            "                      [--host H] [--chain-id C] [--max-view-time-ms T]\n"
            "                      [--log-level L] [--powers P0,P1,...]\n"
            "      write DIR/node<i>/{key,config,genesis}.json for N validators (power 1\n"
            "      each unless --powers) and M\n"
            "      listeners (node i listens on H:P+i, default H 127.0.0.1) and\n"
            "      DIR/admin_key.json, the key allowed to change the validator set\n"
            "  hotstuffctl submit --addr HOST:PORT [--timeout-ms T] [--nonce N] OP\n"
            "      submit one transaction; OP is one of\n"
            "        put KEY VALUE\n"
            "        delete KEY\n"
            "        update-validators --admin-key FILE (--chain-id C | --genesis FILE)\n"
            "                          KEY:POWER...   (hex or Base64 key; power 0 removes)\n");
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
    bool v6 = strchr(o->host, ':') != NULL;
    snprintf(out, cap, v6 ? "[%s]:%" PRIu64 : "%s:%" PRIu64, o->host, o->base_port + i);
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
    addr_of(o, i, addr, sizeof addr);
    cJSON_AddStringToObject(l, "replica", addr);
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
    printf("wrote %" PRIu64 " validator(s) and %" PRIu64 " listener(s) (chain id %" PRIu64
           ") to %s\n",
           o->validators, o->listeners, o->chain_id, o->dir);
    for (uint64_t i = 0; i < n; i++) {
        char addr[HS_TRANSPORT_MAX_ADDR];
        addr_of(o, i, addr, sizeof addr);
        printf("  node%" PRIu64 " %-9s %s  hotstuffd --config %s/node%" PRIu64 "/config.json\n",
               i, i < o->validators ? "validator" : "listener", addr, o->dir, i);
    }
    printf("  admin key: %s/admin_key.json\n", o->dir);
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
        else return usage_error("testnet: unexpected argument '%s'", a);
        if (!ok) return usage_error("testnet: bad or missing value for %s", a);
        i++;
    }
    if (!have_v || o.validators < 1 || o.validators > 1024)
        return usage_error("testnet: %s", "--validators N (1 to 1024) is required");
    if (o.listeners > 1024) return usage_error("testnet: %s", "--listeners is at most 1024");
    if (!o.dir) return usage_error("testnet: %s", "--dir DIR is required");
    if (!have_p || o.base_port < 1 || o.base_port + o.validators + o.listeners - 1 > 65535)
        return usage_error("testnet: %s", "--base-port P is required and P+N+M-1 <= 65535");
    if (!o.host[0] || strlen(o.host) > 200) return usage_error("testnet: %s", "bad --host");
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

/* ---- submit ---- */

static const char *status_name(grpc_status_code c) {
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED"};
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

static grpc_byte_buffer *request_buffer(const uint8_t *tx, size_t len) {
    Hotstuff__V1__SubmitTransactionRequest req = HOTSTUFF__V1__SUBMIT_TRANSACTION_REQUEST__INIT;
    req.transaction.data = (uint8_t *)tx;
    req.transaction.len = len;
    size_t n = hotstuff__v1__submit_transaction_request__get_packed_size(&req);
    grpc_slice s = grpc_slice_malloc(n);
    hotstuff__v1__submit_transaction_request__pack(&req, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* The hash the server echoes back, as hex; "" if the response does not carry one. */
static void response_hash(grpc_byte_buffer *bb, char out[65]) {
    out[0] = '\0';
    grpc_byte_buffer_reader r;
    if (!bb || !grpc_byte_buffer_reader_init(&r, bb)) return;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    Hotstuff__V1__SubmitTransactionResponse *m = hotstuff__v1__submit_transaction_response__unpack(
        NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    if (m && m->transaction_hash.len == HS_HASH_LEN)
        sodium_bin2hex(out, 65, m->transaction_hash.data, HS_HASH_LEN);
    if (m) hotstuff__v1__submit_transaction_response__free_unpacked(m, NULL);
}

/* One unary call of hotstuff.v1.Replica/SubmitTransaction. Prints the outcome. */
static int call_submit(const char *addr, const uint8_t *tx, size_t len, uint64_t timeout_ms,
                       const hs_hash *local_hash) {
    grpc_init();
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(addr, cr, NULL);
    grpc_channel_credentials_release(cr);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                         gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(
        ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
        grpc_slice_from_static_string("/hotstuff.v1.Replica/SubmitTransaction"), NULL, deadline,
        NULL);
    grpc_byte_buffer *req = request_buffer(tx, len), *resp = NULL;
    grpc_metadata_array init_md, trailing_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &error_string;
    void *tag = (void *)1;
    int rc = EXIT_FAIL;
    grpc_call_error ce = grpc_call_start_batch(call, ops, 6, tag, NULL);
    if (ce != GRPC_CALL_OK) {
        fprintf(stderr, "%s: submit: cannot start the call (%d)\n", prog, (int)ce);
    } else {
        /* The call ends by its deadline; the extra second only guards against a stuck CQ. */
        grpc_event ev = grpc_completion_queue_pluck(
            cq, tag, gpr_time_add(deadline, gpr_time_from_seconds(1, GPR_TIMESPAN)), NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            grpc_call_cancel(call, NULL);
            grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            fprintf(stderr, "%s: submit to %s: no answer\n", prog, addr);
        } else if (status == GRPC_STATUS_OK) {
            char hh[65];
            response_hash(resp, hh);
            if (!hh[0]) kvtx_hex(local_hash, hh);
            printf("accepted tx %s\n", hh);
            rc = 0;
        } else {
            char *msg = grpc_slice_to_c_string(details);
            fprintf(stderr, "%s: submit to %s failed: %s: %s%s\n", prog, addr,
                    status_name(status), msg,
                    status == GRPC_STATUS_UNAVAILABLE ? " (is hotstuffd running there?)" : "");
            gpr_free(msg);
        }
    }
    grpc_byte_buffer_destroy(req);
    if (resp) grpc_byte_buffer_destroy(resp);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_slice_unref(details);
    gpr_free((void *)error_string);
    grpc_call_unref(call);
    grpc_channel_destroy(ch);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_shutdown();
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

static int cmd_submit(int argc, char **argv) {
    const char *addr = NULL;
    uint64_t timeout_ms = DEFAULT_TIMEOUT_MS, nonce = 0;
    bool have_nonce = false;
    int i = 0;
    for (; i < argc && argv[i][0] == '-'; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--addr") && v) addr = v;
        else if (!strcmp(argv[i], "--timeout-ms") && parse_u64(v, &timeout_ms) && timeout_ms) {
        } else if (!strcmp(argv[i], "--nonce") && parse_u64(v, &nonce)) have_nonce = true;
        else return usage_error("submit: bad option '%s'", argv[i]);
    }
    if (!addr) return usage_error("submit: %s", "--addr HOST:PORT is required");
    if (!node_parse_address(addr, false))
        return usage_error("submit: --addr '%s' is not HOST:PORT", addr);
    if (i >= argc) return usage_error("submit: %s", "missing operation (put, delete, ...)");
    /* A random nonce: submitting the same operation twice makes two transactions. */
    if (!have_nonce) randombytes_buf(&nonce, sizeof nonce);
    const char *op = argv[i];
    int rest = argc - i - 1;
    char **args = argv + i + 1;
    uint8_t *tx = NULL;
    size_t len = 0;
    hs_status st = HS_OK;
    if (!strcmp(op, "put")) {
        if (rest != 2) return usage_error("submit: %s", "put needs KEY VALUE");
        st = kvtx_encode_put(nonce, (const uint8_t *)args[0], strlen(args[0]),
                             (const uint8_t *)args[1], strlen(args[1]), &tx, &len);
    } else if (!strcmp(op, "delete")) {
        if (rest != 1) return usage_error("submit: %s", "delete needs KEY");
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
    int rc = call_submit(addr, tx, len, timeout_ms, &h);
    free(tx);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (hs_crypto_init() != HS_OK) {
        fprintf(stderr, "%s: cannot initialise libsodium\n", prog);
        return EXIT_FAIL;
    }
    if (!strcmp(argv[1], "keygen")) return cmd_keygen(argc - 2, argv + 2);
    if (!strcmp(argv[1], "testnet")) return cmd_testnet(argc - 2, argv + 2);
    if (!strcmp(argv[1], "submit")) return cmd_submit(argc - 2, argv + 2);
    return usage_error("unknown command '%s'", argv[1]);
}
