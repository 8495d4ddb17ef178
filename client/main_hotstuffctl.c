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
 * keygen and testnet are in testnet.c (and compose.c); this file holds the usage, the admin
 * commands and main. The admin commands talk to hotstuff.v1.Admin and grpc.health.v1.Health
 * on hotstuffd's admin port (config listen.admin; default address 127.0.0.1:26700, or
 * $HOTSTUFFCTL_ADDR). Every call has a deadline (--timeout, default 5 s; 30 s for submit
 * --wait); a watch has one only for connecting, unless --duration. submit also works against
 * a replica port (through hotstuff.v1.Replica, without --wait), as it did before the admin
 * service existed.
 *
 * Exit status: 0 on success (health: only when SERVING), 1 when the operation failed (a file
 * could not be written, the server was unreachable or answered with an error status), 2 for
 * a usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
#include "ctl.h"
#include "grpc/health/v1/health.pb-c.h"
#include "hotstuff/crypto.h"
#include "hotstuff/v1/admin.pb-c.h"
#include "hotstuff/v1/kvapp.pb-c.h"
#include "hotstuff/v1/replica.pb-c.h"
#include "app/kvtx.h"
#include "config/node_config.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_WAIT_MS 30000 /* submit --wait */
#define DEFAULT_ADDR "127.0.0.1:26700"
const char *ctl_prog = "hotstuffctl";

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

int ctl_usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", ctl_prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run '%s --help' for usage)\n", ctl_prog);
    return EXIT_USAGE;
}

bool ctl_parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || strspn(s, "0123456789") != strlen(s)) return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno) return false;
    *out = v;
    return true;
}

/* Adds a u64 as a JSON number when exact, else as a decimal string (both are accepted). */
void ctl_add_u64(cJSON *o, const char *name, uint64_t v) {
    if (v <= (1ull << 53)) {
        cJSON_AddNumberToObject(o, name, (double)v);
    } else {
        char s[24];
        snprintf(s, sizeof s, "%" PRIu64, v);
        cJSON_AddStringToObject(o, name, s);
    }
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
        ctl_usage_error("%s needs a value", a);
        return -1;
    }
    (*i)++;
    if (!strcmp(a, "--addr")) {
        if (!node_parse_address(v, false)) {
            ctl_usage_error("--addr '%s' is not HOST:PORT", v);
            return -1;
        }
        o->addr = v;
        return 1;
    }
    uint64_t ms = 0;
    int64_t t = !strcmp(a, "--timeout-ms") ? (ctl_parse_u64(v, &ms) && ms && ms < (1ull << 40)
                                                  ? (int64_t)ms
                                                  : -1)
                                           : parse_duration_ms(v);
    if (t <= 0) {
        ctl_usage_error("bad %s value (e.g. 5s, 500ms)", a);
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
    if (!c) fprintf(stderr, "%s: out of memory\n", ctl_prog);
    return c;
}

/* Reports a failed call: "hotstuffctl: WHAT: CODE: message" or the unreachable line. */
static int call_failed(const hsc_client *c, const char *what, const hsc_status *st) {
    char line[1024];
    hsc_describe(c, st, line, sizeof line);
    if (hsc_unreachable(st)) fprintf(stderr, "%s: %s\n", ctl_prog, line);
    else fprintf(stderr, "%s: %s: %s\n", ctl_prog, what, line);
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
        fprintf(stderr, "%s: out of memory\n", ctl_prog);
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
    ctl_add_u64(o, "view", pc->view);
    cJSON_AddStringToObject(o, "phase", ph);
    json_hex(o, "block", pc->block.data, pc->block.len);
    size_t sigs = 0;
    for (size_t i = 0; i < pc->n_signatures; i++) sigs += pc->signatures[i]->signature.len > 0;
    ctl_add_u64(o, "signatures", sigs);
    return o;
}

/* ---- status ---- */

static const char *role_name(int r) {
    return r == HOTSTUFF__V1__ROLE__ROLE_VALIDATOR  ? "validator"
           : r == HOTSTUFF__V1__ROLE__ROLE_LISTENER ? "listener"
                                                     : "unknown";
}

static int cmd_status(conn_opts *o, char **pos, int npos) {
    if (npos) return ctl_usage_error("status: unexpected argument '%s'", pos[0]);
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
        ctl_add_u64(j, "chain_id", r->chain_id);
        json_hex(j, "key", r->key.data, r->key.len);
        cJSON_AddStringToObject(j, "role", role_name(r->role));
        ctl_add_u64(j, "current_view", r->current_view);
        if (r->has_committed) {
            cJSON *cm = cJSON_AddObjectToObject(j, "committed");
            ctl_add_u64(cm, "height", r->committed_height);
            json_hex(cm, "hash", r->committed_hash.data, r->committed_hash.len);
        } else {
            cJSON_AddNullToObject(j, "committed");
        }
        cJSON_AddItemToObject(j, "highest_pc", pc_json(r->highest_pc));
        cJSON_AddItemToObject(j, "locked_pc", pc_json(r->locked_pc));
        cJSON_AddBoolToObject(j, "syncing", r->syncing);
        ctl_add_u64(j, "connected_peers", r->connected_peers);
        ctl_add_u64(j, "events_dropped", r->events_dropped);
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
    if (j) ctl_add_u64(j, "nonce", t->nonce);
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
                ctl_add_u64(e, "power", u->updates[i]->power);
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
    ctl_add_u64(j, "height", b->height);
    json_hex(j, "hash", b->hash.data, b->hash.len);
    cJSON_AddItemToObject(j, "justify", pc_json(b->justify));
    json_hex(j, "data_hash", b->data_hash.data, b->data_hash.len);
    ctl_add_u64(j, "txs", b->n_data);
    if (with_txs) {
        cJSON *a = cJSON_AddArrayToObject(j, "transactions");
        for (size_t i = 0; i < b->n_data; i++) {
            cJSON *t = cJSON_CreateObject();
            tx_describe(&b->data[i], NULL, t);
            cJSON_AddItemToArray(a, t);
        }
    }
    ctl_add_u64(j, "tip_height", tip);
    return j;
}

static int cmd_block(conn_opts *o, char **pos, int npos) {
    if (npos != 1) return ctl_usage_error("block: %s", "give one HEIGHT or HASH (64 hex digits)");
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
    } else if (ctl_parse_u64(pos[0], &q.height)) {
        q.selector_case = HOTSTUFF__V1__GET_BLOCK_REQUEST__SELECTOR_HEIGHT;
    } else {
        return ctl_usage_error("block: '%s' is neither a height nor a 64-digit hex hash", pos[0]);
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
        fprintf(stderr, "%s: %s: the server sent no block\n", ctl_prog, what);
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
    if (npos < 1 || npos > 2 || !ctl_parse_u64(pos[0], &from) ||
        (npos == 2 && strcmp(pos[1], "tip") && !ctl_parse_u64(pos[1], &to)))
        return ctl_usage_error("blocks: %s", "give FROM [TO|tip] (heights)");
    if (to < from) return ctl_usage_error("blocks: %s", "TO is below FROM");
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
        ctl_add_u64(v, "power", vs->validators[i]->power);
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
    if (npos) return ctl_usage_error("validators: unexpected argument '%s'", pos[0]);
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
        if (r->has_update_height) ctl_add_u64(j, "update_height", r->update_height);
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
    if (npos != 1 || !pos[0][0]) return ctl_usage_error("get: %s", "give one non-empty KEY");
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
        ctl_add_u64(j, "tip_height", r->tip_height);
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
    if (npos > 1) return ctl_usage_error("health: unexpected argument '%s'", pos[1]);
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
        ctl_add_u64(j, "timestamp_ms", m->timestamp_ms);
        if (m->type == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK) {
            ctl_add_u64(j, "height", m->height);
            cJSON_AddBoolToObject(j, "replayed", m->replayed);
        }
        if (m->block_hash.len) json_hex(j, "block_hash", m->block_hash.data, m->block_hash.len);
        if (m->view) ctl_add_u64(j, "view", m->view);
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
                    ctl_usage_error("watch: unknown event type '%s' (e.g. CommitBlock, "
                                "Propose, ViewTimeout)", t);
                    free(copy);
                    return EXIT_USAGE;
                }
                bool dup = false;
                for (size_t k = 0; k < q.n_types; k++) dup = dup || (int)types[k] == e;
                if (!dup && q.n_types < 27) types[q.n_types++] = (Hotstuff__V1__EventType)e;
            }
            free(copy);
        } else if (!strcmp(a, "--from") && v && ctl_parse_u64(v, &q.from_height)) {
            q.has_from_height = true;
        } else if (!strcmp(a, "--count") && v && ctl_parse_u64(v, &count) && count > 0) {
        } else if (!strcmp(a, "--duration") && v && (duration_ms = parse_duration_ms(v)) > 0) {
        } else {
            return ctl_usage_error("watch: bad argument '%s'", a);
        }
        i++;
    }
    q.types = q.n_types ? types : NULL;
    if (q.has_from_height && q.n_types) {
        bool commit = false;
        for (size_t k = 0; k < q.n_types; k++)
            commit = commit || types[k] == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK;
        if (!commit) return ctl_usage_error("watch: %s", "--from needs CommitBlock among --types");
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
            fprintf(stderr, "%s: watch: the server ended the subscription\n", ctl_prog);
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
                    ctl_prog, hh);
    } else if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "tx_hash", hh);
        cJSON_AddBoolToObject(j, "committed", committed);
        if (committed) ctl_add_u64(j, "height", height);
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
    return node_parse_key(key, &out->key) && ctl_parse_u64(colon + 1, &out->power);
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
        else if (!strcmp(argv[i], "--chain-id") && v && ctl_parse_u64(v, &chain_id))
            have_chain = true, i++;
        else if (parse_update(argv[i], &ups[n])) n++;
        else {
            ctl_usage_error("update-validators: '%s' is not KEY:POWER (hex or Base64 key)", argv[i]);
            goto out;
        }
    }
    if (!admin_file) {
        ctl_usage_error("update-validators: %s", "--admin-key FILE is required");
        goto out;
    }
    if (!have_chain && !genesis_file) {
        ctl_usage_error("update-validators: %s", "the signature covers the chain id: pass "
                                              "--chain-id C or --genesis FILE");
        goto out;
    }
    if (n == 0) {
        ctl_usage_error("update-validators: %s", "give at least one KEY:POWER");
        goto out;
    }
    rc = EXIT_FAIL;
    if (genesis_file) {
        node_genesis g;
        if (node_genesis_load(genesis_file, &g, err, sizeof err) != HS_OK) {
            fprintf(stderr, "%s: %s\n", ctl_prog, err);
            goto out;
        }
        if (have_chain && g.chain_id != chain_id) {
            fprintf(stderr, "%s: --chain-id %" PRIu64 " differs from %s (%" PRIu64 ")\n", ctl_prog,
                    chain_id, genesis_file, g.chain_id);
            node_genesis_free(&g);
            goto out;
        }
        chain_id = g.chain_id;
        node_genesis_free(&g);
    }
    hs_keypair admin;
    if (node_key_load(admin_file, &admin, err, sizeof err) != HS_OK) {
        fprintf(stderr, "%s: %s\n", ctl_prog, err);
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
        else if (!strcmp(pos[i], "--nonce") && ctl_parse_u64(v, &nonce)) have_nonce = true, i++;
        else return ctl_usage_error("submit: bad option '%s'", pos[i]);
    }
    if (i >= npos) return ctl_usage_error("submit: %s", "missing operation (put, delete, ...)");
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
        if (rest != 2) return ctl_usage_error("submit: %s", "put needs KEY VALUE");
        if (!args[0][0]) return ctl_usage_error("submit: %s", "put needs a non-empty KEY");
        st = kvtx_encode_put(nonce, (const uint8_t *)args[0], strlen(args[0]),
                             (const uint8_t *)args[1], strlen(args[1]), &tx, &len);
    } else if (!strcmp(op, "delete")) {
        if (rest != 1 || !args[0][0]) return ctl_usage_error("submit: %s", "delete needs KEY");
        st = kvtx_encode_delete(nonce, (const uint8_t *)args[0], strlen(args[0]), &tx, &len);
    } else if (!strcmp(op, "update-validators")) {
        int rc = build_update_validators(rest, args, nonce, &tx, &len);
        if (rc) return rc;
    } else {
        return ctl_usage_error("submit: unknown operation '%s'", op);
    }
    if (st != HS_OK) {
        fprintf(stderr, "%s: submit: cannot encode the transaction\n", ctl_prog);
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
        if (r == 0) return ctl_usage_error("unknown option '%s'", argv[k]);
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
        fprintf(stderr, "%s: cannot initialise libsodium\n", ctl_prog);
        return EXIT_FAIL;
    }
    if (!strcmp(cmd, "keygen")) return ctl_cmd_keygen(argc - k - 1, argv + k + 1);
    if (!strcmp(cmd, "testnet")) return ctl_cmd_testnet(argc - k - 1, argv + k + 1);
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
    return ctl_usage_error("unknown command '%s'", cmd);
}
