/* client/submit.c - `hotstuffctl submit`: encodes one key-value transaction (put, delete,
 * update-validators signed by the admin key) and submits it to the admin port, or to a
 * replica port through hotstuff.v1.Replica when the admin service is not there. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "admin_client.h"
#include "ctl.h"
#include "hotstuff/crypto.h"
#include "hotstuff/v1/admin.pb-c.h"
#include "hotstuff/v1/replica.pb-c.h"
#include "app/kvtx.h"
#include "config/node_config.h"

#define DEFAULT_WAIT_MS 30000 /* submit --wait */

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

static int do_submit(const ctl_conn_opts *o, const uint8_t *tx, size_t len, bool wait,
                     hs_hash *hash) {
    hsc_client *c = ctl_connect(o);
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
        rc = ctl_call_failed(c, what, &st);
        if (code == GRPC_STATUS_DEADLINE_EXCEEDED && wait)
            fprintf(stderr, "%s: tx %s was not seen committed in time (it may still commit)\n",
                    ctl_prog, hh);
    } else if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "tx_hash", hh);
        cJSON_AddBoolToObject(j, "committed", committed);
        if (committed) ctl_add_u64(j, "height", height);
        rc = ctl_print_json(j, false);
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
            ctl_usage_error("update-validators: '%s' is not KEY:POWER (hex or Base64 key)",
                            argv[i]);
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
    /* The loop above stores at most one update per argument: ups has argc + 1 slots. */
    assert(n <= (size_t)argc);
    hs_status st = kvtx_encode_update_validators(chain_id, nonce, ups, n, &admin, tx, len);
    sodium_memzero(&admin, sizeof admin);
    rc = st == HS_OK ? 0 : EXIT_FAIL;
out:
    free(ups);
    return rc;
}

/* submit [--wait] [--nonce N] OP ARGS...: the submit options come before OP; what follows OP
 * belongs to it (update-validators has options of its own). */
int ctl_cmd_submit(ctl_conn_opts *o, char **pos, int npos) {
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
    /* Every branch that gets here encoded something (or returned). */
    assert(tx && len > 0);
    hs_hash h;
    hs_sha256(tx, len, &h);
    int rc = do_submit(o, tx, len, wait, &h);
    free(tx);
    return rc;
}
