/* client/queries.c - the read-only admin commands: status, block, blocks, validators, get and
 * health, with the formatting of what they show (certificates, blocks and their decoded
 * transactions, validator sets), as text or with --json as JSON. */
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "admin_client.h"
#include "ctl.h"
#include "grpc/health/v1/health.pb-c.h"
#include "hotstuff/crypto.h"
#include "hotstuff/v1/admin.pb-c.h"
#include "hotstuff/v1/kvapp.pb-c.h"
#include "app/kvtx.h"

static void phase_name(int phase, char *out, size_t cap) {
    const char *n = ctl_enum_name(&hotstuff__v1__phase__descriptor, phase);
    if (!strncmp(n, "PHASE_", 6)) n += 6;
    size_t k = 0;
    for (; n[k] && k + 1 < cap; k++) out[k] = (char)tolower((unsigned char)n[k]);
    out[k] = '\0';
}

static void pc_line(const Hotstuff__V1__PhaseCertificate *pc, char *out, size_t cap) {
    if (!pc) {
        snprintf(out, cap, "none");
        return;
    }
    char ph[32], b[65];
    phase_name(pc->phase, ph, sizeof ph);
    ctl_hex_of(pc->block.data, pc->block.len, b, sizeof b);
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
    ctl_json_hex(o, "block", pc->block.data, pc->block.len);
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

int ctl_cmd_status(ctl_conn_opts *o, char **pos, int npos) {
    if (npos) return ctl_usage_error("status: unexpected argument '%s'", pos[0]);
    Hotstuff__V1__GetStatusRequest q = HOTSTUFF__V1__GET_STATUS_REQUEST__INIT;
    Hotstuff__V1__GetStatusResponse *r = NULL;
    hsc_client *c = NULL;
    int rc = ctl_unary(o, HSC_ADMIN("GetStatus"), &q.base,
                       &hotstuff__v1__get_status_response__descriptor,
                       (ProtobufCMessage **)&r, "status", &c);
    if (rc) return rc;
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        ctl_add_u64(j, "chain_id", r->chain_id);
        ctl_json_hex(j, "key", r->key.data, r->key.len);
        cJSON_AddStringToObject(j, "role", role_name(r->role));
        ctl_add_u64(j, "current_view", r->current_view);
        if (r->has_committed) {
            cJSON *cm = cJSON_AddObjectToObject(j, "committed");
            ctl_add_u64(cm, "height", r->committed_height);
            ctl_json_hex(cm, "hash", r->committed_hash.data, r->committed_hash.len);
        } else {
            cJSON_AddNullToObject(j, "committed");
        }
        cJSON_AddItemToObject(j, "highest_pc", pc_json(r->highest_pc));
        cJSON_AddItemToObject(j, "locked_pc", pc_json(r->locked_pc));
        cJSON_AddBoolToObject(j, "syncing", r->syncing);
        ctl_add_u64(j, "connected_peers", r->connected_peers);
        ctl_add_u64(j, "events_dropped", r->events_dropped);
        rc = ctl_print_json(j, true);
    } else {
        char key[65], hash[65], line[256];
        ctl_hex_of(r->key.data, r->key.len, key, sizeof key);
        printf("node        %s (%s)\n", key, role_name(r->role));
        printf("chain id    %" PRIu64 "\n", r->chain_id);
        printf("view        %" PRIu64 "\n", r->current_view);
        if (r->has_committed) {
            ctl_hex_of(r->committed_hash.data, r->committed_hash.len, hash, sizeof hash);
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
    protobuf_c_message_free_unpacked(&r->base, NULL);
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
            ctl_print_bytes(f, t->put->key.data, t->put->key.len);
            fputc('=', f);
            ctl_print_bytes(f, t->put->value.data, t->put->value.len);
        }
        if (j) {
            cJSON_AddStringToObject(j, "op", "put");
            ctl_json_bytes(j, "key", t->put->key.data, t->put->key.len);
            ctl_json_bytes(j, "value", t->put->value.data, t->put->value.len);
        }
        break;
    case HOTSTUFF__V1__KV_TRANSACTION__OP_DELETE:
        if (f) {
            fputs("delete ", f);
            ctl_print_bytes(f, t->delete_->key.data, t->delete_->key.len);
        }
        if (j) {
            cJSON_AddStringToObject(j, "op", "delete");
            ctl_json_bytes(j, "key", t->delete_->key.data, t->delete_->key.len);
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
            ctl_hex_of(u->updates[i]->key.data, u->updates[i]->key.len, k, sizeof k);
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
    ctl_json_hex(j, "hash", b->hash.data, b->hash.len);
    cJSON_AddItemToObject(j, "justify", pc_json(b->justify));
    ctl_json_hex(j, "data_hash", b->data_hash.data, b->data_hash.len);
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

int ctl_cmd_block(ctl_conn_opts *o, char **pos, int npos) {
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
    Hotstuff__V1__GetBlockResponse *r = NULL;
    char what[160];
    snprintf(what, sizeof what, "block %s", pos[0]);
    hsc_client *c = NULL;
    int rc = ctl_unary(o, HSC_ADMIN("GetBlock"), &q.base,
                       &hotstuff__v1__get_block_response__descriptor,
                       (ProtobufCMessage **)&r, what, &c);
    if (rc) return rc;
    if (!r->block) {
        fprintf(stderr, "%s: %s: the server sent no block\n", ctl_prog, what);
        rc = EXIT_FAIL;
    } else if (o->json) {
        rc = ctl_print_json(block_json(r->block, r->tip_height, true), true);
    } else {
        const Hotstuff__V1__Block *b = r->block;
        char h[65], line[256];
        ctl_hex_of(b->hash.data, b->hash.len, h, sizeof h);
        printf("height     %" PRIu64 "\n", b->height);
        printf("hash       %s\n", h);
        pc_line(b->justify, line, sizeof line);
        printf("justify    %s\n", line);
        ctl_hex_of(b->data_hash.data, b->data_hash.len, h, sizeof h);
        printf("data hash  %s\n", h);
        printf("txs        %zu\n", b->n_data);
        for (size_t i = 0; i < b->n_data; i++) tx_describe(&b->data[i], stdout, NULL);
        printf("tip        %" PRIu64 "\n", r->tip_height);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    hsc_close(c);
    return rc;
}

/* blocks FROM [TO]: every committed block of the range (clipped to the tip), page by page. */
int ctl_cmd_blocks(ctl_conn_opts *o, char **pos, int npos) {
    uint64_t from = 0, to = UINT64_MAX;
    if (npos < 1 || npos > 2 || !ctl_parse_u64(pos[0], &from) ||
        (npos == 2 && strcmp(pos[1], "tip") && !ctl_parse_u64(pos[1], &to)))
        return ctl_usage_error("blocks: %s", "give FROM [TO|tip] (heights)");
    if (to < from) return ctl_usage_error("blocks: %s", "TO is below FROM");
    hsc_client *c = ctl_connect(o);
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
                    ctl_print_json(block_json(b, m->tip_height, false), false);
                } else {
                    char h[65];
                    ctl_hex_of(b->hash.data, b->hash.len, h, sizeof h);
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
                rc = ctl_call_failed(c, what, &st);
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
        ctl_json_hex(v, "key", vs->validators[i]->key.data, vs->validators[i]->key.len);
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
        ctl_hex_of(vs->validators[i]->key.data, vs->validators[i]->key.len, k, sizeof k);
        printf("  %s  power %" PRIu64 "\n", k, vs->validators[i]->power);
    }
}

int ctl_cmd_validators(ctl_conn_opts *o, char **pos, int npos) {
    if (npos) return ctl_usage_error("validators: unexpected argument '%s'", pos[0]);
    Hotstuff__V1__GetValidatorSetRequest q = HOTSTUFF__V1__GET_VALIDATOR_SET_REQUEST__INIT;
    Hotstuff__V1__GetValidatorSetResponse *r = NULL;
    hsc_client *c = NULL;
    int rc = ctl_unary(o, HSC_ADMIN("GetValidatorSet"), &q.base,
                       &hotstuff__v1__get_validator_set_response__descriptor,
                       (ProtobufCMessage **)&r, "validators", &c);
    if (rc) return rc;
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "committed", vs_json(r->committed));
        cJSON_AddItemToObject(j, "previous", vs_json(r->previous));
        if (r->has_update_height) ctl_add_u64(j, "update_height", r->update_height);
        else cJSON_AddNullToObject(j, "update_height");
        cJSON_AddBoolToObject(j, "update_decided", r->update_decided);
        rc = ctl_print_json(j, true);
    } else {
        vs_print("committed", r->committed);
        vs_print("previous", r->previous);
        if (r->has_update_height)
            printf("last update at height %" PRIu64 " (%s)\n", r->update_height,
                   r->update_decided ? "decided" : "not yet decided");
        else
            printf("no update since genesis\n");
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    hsc_close(c);
    return rc;
}

/* ---- get ---- */

int ctl_cmd_get(ctl_conn_opts *o, char **pos, int npos) {
    if (npos != 1 || !pos[0][0]) return ctl_usage_error("get: %s", "give one non-empty KEY");
    Hotstuff__V1__GetStateRequest q = HOTSTUFF__V1__GET_STATE_REQUEST__INIT;
    q.key.data = (uint8_t *)pos[0];
    q.key.len = strlen(pos[0]);
    Hotstuff__V1__GetStateResponse *r = NULL;
    char what[160];
    snprintf(what, sizeof what, "get %.100s", pos[0]);
    hsc_client *c = NULL;
    int rc = ctl_unary(o, HSC_ADMIN("GetState"), &q.base,
                       &hotstuff__v1__get_state_response__descriptor,
                       (ProtobufCMessage **)&r, what, &c);
    if (rc) return rc;
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "key", pos[0]);
        ctl_json_bytes(j, "value", r->value.data, r->value.len);
        ctl_add_u64(j, "tip_height", r->tip_height);
        rc = ctl_print_json(j, false);
    } else {
        fwrite(r->value.data, 1, r->value.len, stdout);
        putchar('\n');
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    hsc_close(c);
    return rc;
}

/* ---- health ---- */

int ctl_cmd_health(ctl_conn_opts *o, char **pos, int npos) {
    if (npos > 1) return ctl_usage_error("health: unexpected argument '%s'", pos[1]);
    const char *svc = npos ? pos[0] : "";
    Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    q.service = (char *)svc;
    Grpc__Health__V1__HealthCheckResponse *r = NULL;
    char what[300];
    snprintf(what, sizeof what, "health%s%.200s", svc[0] ? " " : "", svc);
    hsc_client *c = NULL;
    int rc = ctl_unary(o, "/grpc.health.v1.Health/Check", &q.base,
                       &grpc__health__v1__health_check_response__descriptor,
                       (ProtobufCMessage **)&r, what, &c);
    if (rc) return rc;
    const char *n = ctl_enum_name(
        &grpc__health__v1__health_check_response__serving_status__descriptor, r->status);
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "service", svc);
        cJSON_AddStringToObject(j, "status", n);
        ctl_print_json(j, false);
    } else {
        printf("%s\n", n);
    }
    /* Only SERVING is healthy: NOT_SERVING, UNKNOWN and SERVICE_UNKNOWN fail the check. */
    rc = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0
                                                                                       : EXIT_FAIL;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    hsc_close(c);
    return rc;
}
