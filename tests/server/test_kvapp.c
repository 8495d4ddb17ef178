/* test_kvapp.c - the built-in key-value app and its mempool (server/app/kvapp.c, mempool.c,
 * kvtx.c): admission with reasons and bounds, deterministic produce/validate, at-most-once
 * commit across pending ancestors and later blocks, validator-set update authorisation, the
 * app state it writes - first against a real block tree in a memory store, then through four
 * in-process replicas.
 *
 * Longer than 800 lines on purpose: one suite per module of app/, whose tests share the
 * block-tree fixture at the top; splitting it would copy that fixture. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "hotstuff/hotstuff.h"
#include "app/kvapp.h"
#include "kv_cluster.h"
#include "mem_network.h"
/* The block tree's writers are internal to libhotstuff; these tests build trees with them
 * directly instead of running consensus for every case. */
#include "../../core/bt.h"

#define CHAIN 7

typedef struct fixture {
    hs_mem_store *mem;
    hs_kv_store kv;
    kvapp_config cfg;
    kvapp *app;
    hs_app iface;
    hs_keypair val[4];
    hs_keypair admin;
    hs_validator_set vs0;
    uint64_t next_view;
} fixture;


static kvapp_config test_config(const fixture *f) {
    kvapp_config c = kvapp_config_default();
    c.chain_id = CHAIN;
    c.has_admin = true;
    c.admin_key = f->admin.public_key;
    c.max_tx_bytes = 256;
    c.max_key_bytes = 32;
    c.max_block_txs = 4;
    c.max_block_bytes = 1024;
    c.mempool_max_txs = 8;
    c.mempool_max_bytes = 4096;
    c.max_validators = 8;
    c.empty_block_wait_ms = 0;
    return c;
}

/* A fresh store initialised like hotstuffd's (4 validators of power 1, genesis key "g"). */
static void fx_init_with(fixture *f, const kvapp_config *cfg) {
    memset(f, 0, sizeof *f);
    hs_crypto_init();
    for (int i = 0; i < 4; i++) {
        kv_keypair((uint8_t)(0x10 + i), &f->val[i]);
        hs_vs_put(&f->vs0, &f->val[i].public_key, 1);
    }
    kv_keypair(0xAD, &f->admin);
    f->cfg = cfg ? *cfg : test_config(f);
    f->mem = hs_mem_store_new();
    f->kv = hs_mem_store_kv(f->mem);
    hs_app_updates user = {0}, state;
    hs_app_updates_insert(&user, (const uint8_t *)"g", 1, (const uint8_t *)"genesis", 7);
    CU_ASSERT_EQUAL_FATAL(kvapp_genesis_state(&user, &state), HS_OK);
    hs_app_updates_free(&user);
    hs_vss vss;
    memset(&vss, 0, sizeof vss);
    vss.committed = f->vs0;
    vss.previous = f->vs0;
    vss.update_decided = true;
    CU_ASSERT_EQUAL_FATAL(hs_replica_initialize(&f->kv, &state, &vss), HS_OK);
    hs_app_updates_free(&state);
    f->app = kvapp_new(&f->cfg, &f->kv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->app);
    f->iface = kvapp_app(f->app);
    f->next_view = 1;
}

static void fx_init(fixture *f) {
    fixture tmp;
    memset(&tmp, 0, sizeof tmp);
    kv_keypair(0xAD, &tmp.admin);
    kvapp_config c = test_config(&tmp);
    fx_init_with(f, &c);
}

static void fx_free(fixture *f) {
    kvapp_free(f->app);
    hs_mem_store_free(f->mem);
    hs_vs_free(&f->vs0);
}

/* ---- transactions ---- */

typedef struct tx {
    uint8_t *p;
    size_t len;
    hs_hash hash;
} tx;

static tx tx_wrap(uint8_t *p, size_t len) {
    tx t = {p, len, {{0}}};
    hs_sha256(p, len, &t.hash);
    return t;
}

static tx put_tx(uint64_t nonce, const char *k, const char *v) {
    uint8_t *p;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(kvtx_encode_put(nonce, (const uint8_t *)k, strlen(k),
                                          (const uint8_t *)v, strlen(v), &p, &len),
                          HS_OK);
    return tx_wrap(p, len);
}

static tx del_tx(uint64_t nonce, const char *k) {
    uint8_t *p;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(kvtx_encode_delete(nonce, (const uint8_t *)k, strlen(k), &p, &len),
                          HS_OK);
    return tx_wrap(p, len);
}

static tx vs_tx(uint64_t chain, uint64_t nonce, const hs_validator *u, size_t n,
                const hs_keypair *signer) {
    uint8_t *p;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(kvtx_encode_update_validators(chain, nonce, u, n, signer, &p, &len),
                          HS_OK);
    return tx_wrap(p, len);
}

static tx raw_tx(const void *bytes, size_t len) {
    uint8_t *p = malloc(len ? len : 1);
    memcpy(p, bytes, len);
    return tx_wrap(p, len);
}

static void tx_free(tx *t) {
    free(t->p);
    t->p = NULL;
}

static kvapp_verdict submit(fixture *f, const tx *t, char *reason, size_t rlen) {
    return kvapp_submit(f->app, t->p, t->len, NULL, reason, rlen);
}

/* Expects a verdict and a reason containing `frag`. */
static void expect_verdict(fixture *f, const tx *t, kvapp_verdict want, const char *frag) {
    char reason[256] = "";
    kvapp_verdict v = submit(f, t, reason, sizeof reason);
    CU_ASSERT_EQUAL(v, want);
    if (frag && !strstr(reason, frag)) {
        fprintf(stderr, "\n  reason \"%s\" lacks \"%s\"\n", reason, frag);
        CU_FAIL("reason lacks the expected text");
    }
}

/* ---- blocks ---- */

static void data_of(hs_data *d, const tx *txs, size_t n) {
    memset(d, 0, sizeof *d);
    d->items = calloc(n ? n : 1, sizeof *d->items);
    d->n = (uint32_t)n;
    for (size_t i = 0; i < n; i++) hs_bytes_set(&d->items[i], txs[i].p, txs[i].len);
}

/* A block at `height` whose justify is a Generic PC for parent (NULL: the genesis PC). */
static void make_block(fixture *f, hs_block *b, const hs_hash *parent, uint64_t height,
                       hs_data *data) {
    memset(b, 0, sizeof *b);
    b->height = height;
    if (parent) {
        b->justify.chain_id = CHAIN;
        b->justify.view = f->next_view++;
        b->justify.block = *parent;
        b->justify.phase = HS_PHASE_GENERIC;
    } else {
        hs_pc_genesis(&b->justify);
    }
    b->data = *data; /* moved */
    memset(data, 0, sizeof *data);
    kvapp_data_hash(&b->data, &b->data_hash);
    hs_block_compute_hash(b, &b->hash);
}

static void validate_at(fixture *f, const hs_hash *parent, const hs_block *b,
                        hs_validate_block_response *resp) {
    memset(resp, 0, sizeof *resp);
    hs_kv_reader r = hs_kv_store_reader(&f->kv);
    hs_app_view *view = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_app_view_open(&r, parent, &view), HS_OK);
    hs_validate_block_request req = {b, view};
    CU_ASSERT_EQUAL(f->iface.validate_block(f->iface.self, &req, resp), HS_OK);
    hs_app_view_close(view);
}

static bool is_valid_at(fixture *f, const hs_hash *parent, const hs_block *b) {
    hs_validate_block_response resp;
    validate_at(f, parent, b, &resp);
    hs_app_updates_free(&resp.app_state_updates);
    hs_vs_updates_free(&resp.validator_set_updates);
    return resp.valid;
}

static void produce_at(fixture *f, const hs_hash *parent, hs_produce_block_response *resp) {
    memset(resp, 0, sizeof *resp);
    hs_kv_reader r = hs_kv_store_reader(&f->kv);
    hs_app_view *view = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_app_view_open(&r, parent, &view), HS_OK);
    hs_produce_block_request req = {f->next_view, parent != NULL, {{0}}, view};
    if (parent) req.parent = *parent;
    CU_ASSERT_EQUAL(f->iface.produce_block(f->iface.self, &req, resp), HS_OK);
    hs_app_view_close(view);
}

static void produce_free(hs_produce_block_response *r) {
    hs_data_free(&r->data);
    hs_app_updates_free(&r->app_state_updates);
    hs_vs_updates_free(&r->validator_set_updates);
}

/* Validates b at its parent and inserts it with the updates validation returned. */
static void insert_valid(fixture *f, const hs_hash *parent, const hs_block *b) {
    hs_validate_block_response resp;
    validate_at(f, parent, b, &resp);
    CU_ASSERT_FATAL(resp.valid);
    CU_ASSERT_EQUAL(hs_bt_insert(&f->kv, b,
                                 resp.has_app_state_updates ? &resp.app_state_updates : NULL,
                                 resp.has_validator_set_updates ? &resp.validator_set_updates
                                                                : NULL),
                    HS_OK);
    hs_app_updates_free(&resp.app_state_updates);
    hs_vs_updates_free(&resp.validator_set_updates);
}

/* Commits b and its ancestors, as a Decide PC for b does (spec §3.4). */
static void commit(fixture *f, const hs_hash *b) {
    hs_pc pc;
    memset(&pc, 0, sizeof pc);
    pc.chain_id = CHAIN;
    pc.view = f->next_view++;
    pc.block = *b;
    pc.phase = HS_PHASE_DECIDE;
    hs_bt_update_result res;
    memset(&res, 0, sizeof res);
    CU_ASSERT_EQUAL(hs_bt_update(&f->kv, &pc, &res), HS_OK);
    hs_bt_update_result_free(&res);
}

static bool app_updates_equal(const hs_app_updates *a, const hs_app_updates *b) {
    if (a->n_inserts != b->n_inserts || a->n_deletes != b->n_deletes) return false;
    for (uint32_t i = 0; i < a->n_inserts; i++) {
        if (hs_bytes_cmp(a->insert_keys[i].p, a->insert_keys[i].len, b->insert_keys[i].p,
                         b->insert_keys[i].len) ||
            hs_bytes_cmp(a->insert_values[i].p, a->insert_values[i].len, b->insert_values[i].p,
                         b->insert_values[i].len))
            return false;
    }
    for (uint32_t i = 0; i < a->n_deletes; i++) {
        if (hs_bytes_cmp(a->delete_keys[i].p, a->delete_keys[i].len, b->delete_keys[i].p,
                         b->delete_keys[i].len))
            return false;
    }
    return true;
}

static bool vs_updates_equal(const hs_vs_updates *a, const hs_vs_updates *b) {
    return a->n_inserts == b->n_inserts && a->n_deletes == b->n_deletes &&
           (!a->n_inserts || !memcmp(a->inserts, b->inserts, a->n_inserts * sizeof *a->inserts)) &&
           (!a->n_deletes || !memcmp(a->deletes, b->deletes, a->n_deletes * sizeof *a->deletes));
}

static uint32_t mempool_count(fixture *f) {
    uint32_t n;
    kvapp_mempool_stats(f->app, &n, NULL);
    return n;
}

/* The committed value of user key k ("" and false when absent). */
static bool read_value(fixture *f, const char *k, char *out, size_t cap) {
    hs_kv_reader r = hs_kv_store_reader(&f->kv);
    hs_bytes v = {0};
    out[0] = '\0';
    if (kvapp_read(&r, (const uint8_t *)k, strlen(k), &v) != HS_OK) return false;
    snprintf(out, cap, "%.*s", (int)v.len, (const char *)v.p);
    hs_bytes_free(&v);
    return true;
}

/* ---- admission ---- */

static void test_admission_reasons(void) {
    fixture f;
    fx_init(&f);
    tx ok = put_tx(1, "a", "1");
    expect_verdict(&f, &ok, KVAPP_ACCEPTED, NULL);
    expect_verdict(&f, &ok, KVAPP_DUPLICATE, "already in the mempool");
    /* Same operation, another nonce: another transaction. */
    tx again = put_tx(2, "a", "1");
    expect_verdict(&f, &again, KVAPP_ACCEPTED, NULL);

    tx empty = raw_tx("", 0);
    expect_verdict(&f, &empty, KVAPP_INVALID, "empty transaction");
    char big[300];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = 0;
    tx oversized = put_tx(3, "k", big);
    expect_verdict(&f, &oversized, KVAPP_INVALID, "bytes; the limit is 256");
    tx garbage = raw_tx("\xff\xff\xff", 3);
    expect_verdict(&f, &garbage, KVAPP_INVALID, "not a valid hotstuff.v1.KvTransaction");
    tx no_op = raw_tx("\x08\x05", 2); /* nonce 5, nothing else */
    expect_verdict(&f, &no_op, KVAPP_INVALID, "no operation set");
    tx no_key = put_tx(4, "", "v");
    expect_verdict(&f, &no_key, KVAPP_INVALID, "put: key must not be empty");
    tx long_key = put_tx(5, "0123456789012345678901234567890123456789", "v");
    expect_verdict(&f, &long_key, KVAPP_INVALID, "put: key is 40 bytes; the limit is 32");
    tx del_no_key = del_tx(6, "");
    expect_verdict(&f, &del_no_key, KVAPP_INVALID, "delete: key must not be empty");

    /* Non-canonical encodings of a valid transaction are refused: an explicit zero nonce, the
     * fields out of order, an unknown field. */
    tx zero_nonce = put_tx(0, "z", "1");
    uint8_t buf[64];
    buf[0] = 0x08;
    buf[1] = 0x00;
    memcpy(buf + 2, zero_nonce.p, zero_nonce.len);
    tx explicit_zero = raw_tx(buf, zero_nonce.len + 2);
    expect_verdict(&f, &explicit_zero, KVAPP_INVALID, "canonical");
    tx n7 = put_tx(7, "z", "1"); /* 08 07 | 12 ... */
    memcpy(buf, n7.p + 2, n7.len - 2);
    memcpy(buf + n7.len - 2, n7.p, 2);
    tx reordered = raw_tx(buf, n7.len);
    expect_verdict(&f, &reordered, KVAPP_INVALID, "canonical");
    memcpy(buf, n7.p, n7.len);
    buf[n7.len] = 0x78; /* field 15, varint */
    buf[n7.len + 1] = 0x01;
    tx unknown = raw_tx(buf, n7.len + 2);
    expect_verdict(&f, &unknown, KVAPP_INVALID, "unknown");
    expect_verdict(&f, &zero_nonce, KVAPP_ACCEPTED, NULL);

    tx *all[] = {&ok, &again, &empty, &oversized, &garbage, &no_op, &no_key, &long_key,
                 &del_no_key, &zero_nonce, &explicit_zero, &n7, &reordered, &unknown};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) tx_free(all[i]);
    fx_free(&f);
}

static void test_admission_validator_updates(void) {
    fixture f;
    fx_init(&f);
    hs_keypair newcomer, stranger;
    kv_keypair(0x55, &newcomer);
    kv_keypair(0x66, &stranger);
    hs_validator add = {newcomer.public_key, 3};

    tx good = vs_tx(CHAIN, 1, &add, 1, &f.admin);
    expect_verdict(&f, &good, KVAPP_ACCEPTED, NULL);
    tx by_stranger = vs_tx(CHAIN, 2, &add, 1, &stranger);
    expect_verdict(&f, &by_stranger, KVAPP_INVALID, "bad signature");
    tx other_chain = vs_tx(CHAIN + 1, 3, &add, 1, &f.admin);
    expect_verdict(&f, &other_chain, KVAPP_INVALID, "bad signature");
    uint8_t *p;
    size_t len;
    CU_ASSERT_EQUAL(kvtx_encode_update_validators_raw(4, &add, 1, NULL, &p, &len), HS_OK);
    tx unsigned_tx = tx_wrap(p, len);
    expect_verdict(&f, &unsigned_tx, KVAPP_INVALID, "not signed");
    /* A signature over another nonce does not carry over. */
    uint8_t *msg;
    size_t mlen;
    CU_ASSERT_EQUAL(kvtx_vs_signing_bytes(CHAIN, 5, &add, 1, &msg, &mlen), HS_OK);
    hs_sig sig;
    hs_sign(&f.admin, msg, mlen, &sig);
    free(msg);
    CU_ASSERT_EQUAL(kvtx_encode_update_validators_raw(6, &add, 1, &sig, &p, &len), HS_OK);
    tx moved_sig = tx_wrap(p, len);
    expect_verdict(&f, &moved_sig, KVAPP_INVALID, "bad signature");
    hs_validator twice[2] = {add, add};
    tx dup = vs_tx(CHAIN, 7, twice, 2, &f.admin);
    expect_verdict(&f, &dup, KVAPP_INVALID, "a key appears twice");
    tx none = vs_tx(CHAIN, 8, NULL, 0, &f.admin);
    expect_verdict(&f, &none, KVAPP_INVALID, "no updates");
    hs_validator not_a_point;
    memset(&not_a_point, 0, sizeof not_a_point);
    not_a_point.power = 1;
    tx bad_key = vs_tx(CHAIN, 9, &not_a_point, 1, &f.admin);
    expect_verdict(&f, &bad_key, KVAPP_INVALID, "not a valid Ed25519 public key");
    hs_validator remove_all[4];
    for (int i = 0; i < 4; i++) remove_all[i] = (hs_validator){f.val[i].public_key, 0};
    tx empties = vs_tx(CHAIN, 10, remove_all, 4, &f.admin);
    expect_verdict(&f, &empties, KVAPP_INVALID, "without power");
    tx *all[] = {&good, &by_stranger, &other_chain, &unsigned_tx, &moved_sig, &dup, &none,
                 &bad_key, &empties};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) tx_free(all[i]);
    fx_free(&f);

    /* A genesis without an admin key refuses every validator-set update. */
    fixture g;
    fx_init(&g);
    kvapp_config c = g.cfg;
    c.has_admin = false;
    kvapp_free(g.app);
    g.app = kvapp_new(&c, &g.kv);
    tx signed_tx = vs_tx(CHAIN, 1, &add, 1, &g.admin);
    expect_verdict(&g, &signed_tx, KVAPP_INVALID, "genesis names no admin key");
    tx_free(&signed_tx);
    fx_free(&g);
}

static void test_mempool_bounds(void) {
    fixture f;
    fx_init(&f); /* 8 transactions, 4096 bytes */
    tx t[9];
    for (int i = 0; i < 9; i++) t[i] = put_tx((uint64_t)i + 1, "k", "v");
    for (int i = 0; i < 8; i++) expect_verdict(&f, &t[i], KVAPP_ACCEPTED, NULL);
    expect_verdict(&f, &t[8], KVAPP_FULL, "mempool full (8 of 8 transactions");
    CU_ASSERT_EQUAL(mempool_count(&f), 8);
    for (int i = 0; i < 9; i++) tx_free(&t[i]);
    fx_free(&f);

    /* The byte bound: 300 bytes hold one ~200-byte transaction, not two. */
    fixture g;
    fx_init(&g);
    kvapp_config c = g.cfg;
    c.mempool_max_bytes = 300;
    kvapp_free(g.app);
    g.app = kvapp_new(&c, &g.kv);
    char v[200];
    memset(v, 'x', sizeof v - 1);
    v[sizeof v - 1] = 0;
    tx a = put_tx(1, "a", v), b = put_tx(2, "b", v), small = put_tx(3, "c", "1");
    expect_verdict(&g, &a, KVAPP_ACCEPTED, NULL);
    expect_verdict(&g, &b, KVAPP_FULL, "bytes); retry later");
    expect_verdict(&g, &small, KVAPP_ACCEPTED, NULL);
    tx_free(&a);
    tx_free(&b);
    tx_free(&small);
    fx_free(&g);
}

/* ---- produce / validate ---- */

static void test_produce_validate_agree(void) {
    fixture f, other;
    fx_init(&f);
    fx_init(&other); /* same genesis, empty mempool: a replica that saw none of the txs */
    hs_keypair newcomer;
    kv_keypair(0x55, &newcomer);
    hs_validator add = {newcomer.public_key, 2};
    tx t[6] = {put_tx(1, "a", "1"), put_tx(2, "b", "2"), del_tx(3, "a"),
               vs_tx(CHAIN, 4, &add, 1, &f.admin), put_tx(5, "c", "3"), put_tx(6, "d", "4")};
    for (int i = 0; i < 6; i++) expect_verdict(&f, &t[i], KVAPP_ACCEPTED, NULL);

    hs_produce_block_response p1, p2;
    produce_at(&f, NULL, &p1);
    produce_at(&f, NULL, &p2);
    /* Oldest first, up to max_block_txs (4). The same mempool gives the same block. */
    CU_ASSERT_EQUAL_FATAL(p1.data.n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        CU_ASSERT(p1.data.items[i].len == t[i].len &&
                  !memcmp(p1.data.items[i].p, t[i].p, t[i].len));
    }
    CU_ASSERT_EQUAL(p2.data.n, 4);
    CU_ASSERT(!memcmp(p1.data_hash.b, p2.data_hash.b, HS_HASH_LEN));
    CU_ASSERT(app_updates_equal(&p1.app_state_updates, &p2.app_state_updates));
    CU_ASSERT(p1.has_validator_set_updates);

    /* Every replica's validate_block returns exactly what produce_block did. */
    hs_data d;
    CU_ASSERT_EQUAL(hs_data_copy(&d, &p1.data), HS_OK);
    hs_block b;
    make_block(&f, &b, NULL, 0, &d);
    CU_ASSERT(!memcmp(b.data_hash.b, p1.data_hash.b, HS_HASH_LEN));
    hs_validate_block_response v1, v2;
    validate_at(&f, NULL, &b, &v1);
    validate_at(&other, NULL, &b, &v2);
    CU_ASSERT(v1.valid && v2.valid);
    CU_ASSERT(v1.has_app_state_updates && v2.has_app_state_updates);
    CU_ASSERT(app_updates_equal(&v1.app_state_updates, &p1.app_state_updates));
    CU_ASSERT(app_updates_equal(&v2.app_state_updates, &p1.app_state_updates));
    CU_ASSERT(v1.has_validator_set_updates && v2.has_validator_set_updates);
    CU_ASSERT(vs_updates_equal(&v1.validator_set_updates, &p1.validator_set_updates));
    CU_ASSERT(vs_updates_equal(&v2.validator_set_updates, &p1.validator_set_updates));
    CU_ASSERT_EQUAL(v1.validator_set_updates.n_inserts, 1);
    CU_ASSERT_EQUAL(v1.validator_set_updates.inserts[0].power, 2);

    /* App state: b set, a put then deleted in the same block, a marker per transaction. */
    const hs_app_updates *u = &v1.app_state_updates;
    CU_ASSERT_EQUAL(u->n_inserts, 1 + 4); /* "ub" + 4 markers */
    CU_ASSERT_EQUAL(u->n_deletes, 1);     /* "ua" */
    CU_ASSERT(u->delete_keys[0].len == 2 && !memcmp(u->delete_keys[0].p, "ua", 2));

    hs_validate_block_response *vr[] = {&v1, &v2};
    for (int i = 0; i < 2; i++) {
        hs_app_updates_free(&vr[i]->app_state_updates);
        hs_vs_updates_free(&vr[i]->validator_set_updates);
    }
    hs_block_free(&b);
    produce_free(&p1);
    produce_free(&p2);
    for (int i = 0; i < 6; i++) tx_free(&t[i]);
    fx_free(&f);
    fx_free(&other);
}

static void test_produce_limits(void) {
    fixture f;
    fx_init(&f); /* 4 txs or 1024 bytes per block */
    char v[200];
    memset(v, 'x', sizeof v - 1);
    v[sizeof v - 1] = 0;
    tx t[6];
    for (int i = 0; i < 6; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        t[i] = put_tx((uint64_t)i + 1, k, i == 5 ? "small" : v);
        expect_verdict(&f, &t[i], KVAPP_ACCEPTED, NULL);
    }
    /* Four ~210-byte transactions fit in 1024 bytes; max_block_txs is 4 too. */
    hs_produce_block_response p;
    produce_at(&f, NULL, &p);
    CU_ASSERT_EQUAL(p.data.n, 4);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < p.data.n; i++) bytes += p.data.items[i].len;
    CU_ASSERT(bytes <= 1024);
    produce_free(&p);

    /* With a 500-byte block: two large ones, then the small one that still fits. */
    kvapp_config c = f.cfg;
    c.max_block_bytes = 500;
    c.max_tx_bytes = 256;
    c.mempool_max_bytes = 4096;
    kvapp *small = kvapp_new(&c, &f.kv);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(kvapp_submit(small, t[i].p, t[i].len, NULL, NULL, 0), KVAPP_ACCEPTED);
    kvapp *keep = f.app;
    f.app = small;
    f.iface = kvapp_app(small);
    produce_at(&f, NULL, &p);
    CU_ASSERT_EQUAL(p.data.n, 3);
    CU_ASSERT(p.data.n == 3 && p.data.items[2].len == t[5].len);
    produce_free(&p);
    f.app = keep;
    kvapp_free(small);
    for (int i = 0; i < 6; i++) tx_free(&t[i]);
    fx_free(&f);
}

typedef struct late_submit {
    kvapp *app;
    tx t;
} late_submit;

static void *submit_later(void *arg) {
    late_submit *ls = arg;
    cu_sleep_ms(50);
    kvapp_submit(ls->app, ls->t.p, ls->t.len, NULL, NULL, 0);
    return NULL;
}

/* A fixture whose app waits up to wait_ms for a transaction before an empty block. */
static void fx_init_waiting(fixture *f, uint64_t wait_ms) {
    fx_init(f);
    kvapp_config c = f->cfg;
    c.empty_block_wait_ms = wait_ms;
    kvapp_free(f->app);
    f->app = kvapp_new(&c, &f->kv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->app);
    f->iface = kvapp_app(f->app);
}

static void test_empty_block_wait(void) {
    fixture f;
    fx_init_waiting(&f, 300);
    /* Nothing arrives: an empty block after the wait. */
    uint64_t t0 = cu_now_ms();
    hs_produce_block_response p;
    produce_at(&f, NULL, &p);
    uint64_t took = cu_now_ms() - t0;
    CU_ASSERT_EQUAL(p.data.n, 0);
    CU_ASSERT(took >= 290);
    produce_free(&p);
    /* A transaction arriving during the wait ends it at once and goes in the block. */
    late_submit ls = {f.app, put_tx(1, "late", "1")};
    pthread_t th;
    pthread_create(&th, NULL, submit_later, &ls);
    t0 = cu_now_ms();
    produce_at(&f, NULL, &p);
    took = cu_now_ms() - t0;
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(p.data.n, 1);
    CU_ASSERT(took < 290);
    produce_free(&p);
    tx_free(&ls.t);
    fx_free(&f);
}

/* A block with transactions in the pipeline commits only once more blocks follow it, so those
 * are proposed without the wait; once it is committed, an empty pipeline waits again. */
static void test_no_wait_behind_transactions(void) {
    fixture f;
    fx_init_waiting(&f, 300);
    tx a = put_tx(1, "a", "1");
    hs_data d;
    data_of(&d, &a, 1);
    hs_block b0, b1;
    make_block(&f, &b0, NULL, 0, &d); /* carries a transaction, uncommitted */
    insert_valid(&f, NULL, &b0);
    data_of(&d, NULL, 0);
    make_block(&f, &b1, &b0.hash, 1, &d); /* empty, on top of it */
    insert_valid(&f, &b0.hash, &b1);

    hs_produce_block_response p;
    uint64_t t0 = cu_now_ms();
    produce_at(&f, &b1.hash, &p); /* the pipeline b1 <- b0 holds a transaction */
    uint64_t took = cu_now_ms() - t0;
    CU_ASSERT_EQUAL(p.data.n, 0);
    CU_ASSERT(took < 200);
    produce_free(&p);

    commit(&f, &b0.hash); /* b0 committed: only the empty b1 is pending */
    t0 = cu_now_ms();
    produce_at(&f, &b1.hash, &p);
    took = cu_now_ms() - t0;
    CU_ASSERT_EQUAL(p.data.n, 0);
    CU_ASSERT(took >= 290);
    produce_free(&p);
    hs_block_free(&b0);
    hs_block_free(&b1);
    tx_free(&a);
    fx_free(&f);
}

static void test_validate_rejects(void) {
    fixture f;
    fx_init(&f);
    tx a = put_tx(1, "a", "1"), b = put_tx(2, "b", "2");
    hs_data d;
    hs_block blk;

    /* data_hash that does not match the data. */
    tx two[2] = {a, b};
    data_of(&d, two, 2);
    make_block(&f, &blk, NULL, 0, &d);
    blk.data_hash.b[0] ^= 1;
    CU_ASSERT(!is_valid_at(&f, NULL, &blk));
    hs_block_free(&blk);

    /* The same transaction twice. */
    tx dup[2] = {a, a};
    data_of(&d, dup, 2);
    make_block(&f, &blk, NULL, 0, &d);
    CU_ASSERT(!is_valid_at(&f, NULL, &blk));
    hs_block_free(&blk);

    /* More transactions than max_block_txs. */
    tx many[5];
    for (int i = 0; i < 5; i++) many[i] = put_tx((uint64_t)i + 10, "m", "1");
    data_of(&d, many, 5);
    make_block(&f, &blk, NULL, 0, &d);
    CU_ASSERT(!is_valid_at(&f, NULL, &blk));
    hs_block_free(&blk);
    for (int i = 0; i < 5; i++) tx_free(&many[i]);

    /* Undecodable, oversized and non-canonical datums. */
    tx junk = raw_tx("\x12\x03" "abc", 5);
    tx bad[2] = {a, junk};
    data_of(&d, bad, 2);
    make_block(&f, &blk, NULL, 0, &d);
    CU_ASSERT(!is_valid_at(&f, NULL, &blk));
    hs_block_free(&blk);
    tx_free(&junk);

    /* Validator-set updates: unsigned, signed by someone else, or emptying the set. */
    hs_keypair stranger;
    kv_keypair(0x66, &stranger);
    hs_validator drop = {f.val[0].public_key, 0};
    uint8_t *p;
    size_t len;
    CU_ASSERT_EQUAL(kvtx_encode_update_validators_raw(1, &drop, 1, NULL, &p, &len), HS_OK);
    tx unsigned_tx = tx_wrap(p, len);
    tx strangers = vs_tx(CHAIN, 2, &drop, 1, &stranger);
    hs_validator all[4];
    for (int i = 0; i < 4; i++) all[i] = (hs_validator){f.val[i].public_key, 0};
    tx empties = vs_tx(CHAIN, 3, all, 4, &f.admin);
    tx good = vs_tx(CHAIN, 4, &drop, 1, &f.admin);
    tx *cases[] = {&unsigned_tx, &strangers, &empties};
    for (int i = 0; i < 3; i++) {
        data_of(&d, cases[i], 1);
        make_block(&f, &blk, NULL, 0, &d);
        CU_ASSERT(!is_valid_at(&f, NULL, &blk));
        hs_block_free(&blk);
        tx_free(cases[i]);
    }
    data_of(&d, &good, 1);
    make_block(&f, &blk, NULL, 0, &d);
    CU_ASSERT(is_valid_at(&f, NULL, &blk));
    hs_block_free(&blk);
    tx_free(&good);

    /* An empty block is valid. */
    data_of(&d, NULL, 0);
    make_block(&f, &blk, NULL, 0, &d);
    CU_ASSERT(is_valid_at(&f, NULL, &blk));
    hs_block_free(&blk);
    tx_free(&a);
    tx_free(&b);
    fx_free(&f);
}

/* ---- at most once ---- */

static void test_at_most_once(void) {
    fixture f;
    fx_init(&f);
    tx x = put_tx(1, "x", "1"), y = put_tx(2, "y", "2");
    expect_verdict(&f, &x, KVAPP_ACCEPTED, NULL);
    expect_verdict(&f, &y, KVAPP_ACCEPTED, NULL);

    /* B0 (height 0) carries x. */
    hs_data d;
    hs_block b0, b1, b1x, fork, b2;
    data_of(&d, &x, 1);
    make_block(&f, &b0, NULL, 0, &d);
    insert_valid(&f, NULL, &b0);

    /* On top of the pending B0, x may not come again, and the proposer leaves it out. */
    data_of(&d, &x, 1);
    make_block(&f, &b1x, &b0.hash, 1, &d);
    CU_ASSERT(!is_valid_at(&f, &b0.hash, &b1x));
    hs_produce_block_response p;
    produce_at(&f, &b0.hash, &p);
    CU_ASSERT_EQUAL(p.data.n, 1);
    CU_ASSERT(p.data.n == 1 && p.data.items[0].len == y.len &&
              !memcmp(p.data.items[0].p, y.p, y.len));
    produce_free(&p);
    /* A competing height-0 block (another branch) may carry x: only one branch commits. */
    data_of(&d, &x, 1);
    make_block(&f, &fork, NULL, 0, &d);
    fork.justify.view = 99; /* differs from b0 by its hash only */
    hs_block_compute_hash(&fork, &fork.hash);
    CU_ASSERT(is_valid_at(&f, NULL, &fork));

    /* B1 (height 1) carries y; commit B1 and B0. */
    data_of(&d, &y, 1);
    make_block(&f, &b1, &b0.hash, 1, &d);
    insert_valid(&f, &b0.hash, &b1);
    commit(&f, &b1.hash);
    /* The CommitBlock handler empties the mempool of committed txs. */
    uint64_t height = 99;
    uint32_t n = 0;
    CU_ASSERT_EQUAL(kvapp_on_commit(f.app, &b0.hash, &height, &n, NULL, NULL), HS_OK);
    CU_ASSERT_EQUAL(height, 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(mempool_count(&f), 1); /* y: its CommitBlock "was dropped" */
    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    uint64_t h;
    CU_ASSERT_EQUAL(kvapp_tx_height(&r, &x.hash, &h), HS_OK);
    CU_ASSERT_EQUAL(h, 0);
    CU_ASSERT_EQUAL(kvapp_tx_height(&r, &y.hash, &h), HS_OK);
    CU_ASSERT_EQUAL(h, 1);

    /* x replayed in a later block: invalid. Resubmitted: refused with its height. */
    data_of(&d, &x, 1);
    make_block(&f, &b2, &b1.hash, 2, &d);
    CU_ASSERT(!is_valid_at(&f, &b1.hash, &b2));
    hs_block_free(&b2);
    expect_verdict(&f, &x, KVAPP_DUPLICATE, "already committed at height 0");

    /* y still waits (its event was lost): the proposer skips it and evicts it. */
    produce_at(&f, &b1.hash, &p);
    CU_ASSERT_EQUAL(p.data.n, 0);
    produce_free(&p);
    CU_ASSERT_EQUAL(mempool_count(&f), 0);

    char v[16];
    CU_ASSERT(read_value(&f, "x", v, sizeof v) && !strcmp(v, "1"));
    CU_ASSERT(read_value(&f, "y", v, sizeof v) && !strcmp(v, "2"));
    CU_ASSERT(read_value(&f, "g", v, sizeof v) && !strcmp(v, "genesis"));
    hs_block_free(&b0);
    hs_block_free(&b1);
    hs_block_free(&b1x);
    hs_block_free(&fork);
    tx_free(&x);
    tx_free(&y);
    fx_free(&f);
}

/* ---- validator sets and app state through commits ---- */

static void test_validator_update_commits(void) {
    fixture f;
    fx_init(&f);
    hs_keypair newcomer;
    kv_keypair(0x55, &newcomer);
    hs_validator ups[2] = {{newcomer.public_key, 5}, {f.val[3].public_key, 0}};
    tx t = vs_tx(CHAIN, 1, ups, 2, &f.admin);
    tx put = put_tx(2, "k", "v"), del = del_tx(3, "g");
    expect_verdict(&f, &t, KVAPP_ACCEPTED, NULL);
    expect_verdict(&f, &put, KVAPP_ACCEPTED, NULL);
    expect_verdict(&f, &del, KVAPP_ACCEPTED, NULL);
    hs_produce_block_response p;
    produce_at(&f, NULL, &p);
    CU_ASSERT_EQUAL_FATAL(p.data.n, 3);
    CU_ASSERT(p.has_validator_set_updates);
    CU_ASSERT_EQUAL(p.validator_set_updates.n_inserts, 1);
    CU_ASSERT_EQUAL(p.validator_set_updates.n_deletes, 1);
    hs_block b;
    hs_data d;
    hs_data_copy(&d, &p.data);
    make_block(&f, &b, NULL, 0, &d);
    insert_valid(&f, NULL, &b);
    commit(&f, &b.hash);

    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    hs_validator_set vs = {0};
    CU_ASSERT_EQUAL(hs_bt_committed_vs(&r, &vs), HS_OK);
    CU_ASSERT_EQUAL(vs.n, 4);
    CU_ASSERT(hs_vs_contains(&vs, &newcomer.public_key));
    CU_ASSERT(!hs_vs_contains(&vs, &f.val[3].public_key));
    CU_ASSERT_EQUAL(hs_vs_total_power(&vs), 3 + 5);
    hs_vs_free(&vs);
    char v[16];
    CU_ASSERT(read_value(&f, "k", v, sizeof v) && !strcmp(v, "v"));
    CU_ASSERT(!read_value(&f, "g", v, sizeof v)); /* deleted */
    hs_block_free(&b);
    produce_free(&p);
    tx_free(&t);
    tx_free(&put);
    tx_free(&del);
    fx_free(&f);
}

/* ---- four in-process replicas ---- */

static void test_replicas_commit(void) {
    enum { N = 4 };
    hs_keypair admin;
    kv_keypair(0xAD, &admin);
    kvapp_config c = kvapp_config_default();
    c.chain_id = 0; /* hs_config_test_values' chain */
    c.has_admin = true;
    c.admin_key = admin.public_key;
    static kv_cluster cl;
    kv_cluster_up(&cl, N, &c, NULL, NULL);
    kv_node *nodes = cl.nodes;
    const hs_key *keys = cl.keys;
    /* Without a transport there is no gossip: give every transaction to every replica, as
     * gossip would, and let whoever leads include it. */
    tx t[3] = {put_tx(1, "alpha", "1"), put_tx(2, "beta", "2"), del_tx(3, "alpha")};
    hs_validator up = {keys[0], 3};
    tx vs = vs_tx(0, 4, &up, 1, &admin);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 2; k++)
            CU_ASSERT_EQUAL(kvapp_submit(nodes[i].app, t[k].p, t[k].len, NULL, NULL, 0),
                            KVAPP_ACCEPTED);
    }
    bool all = CU_AWAIT(kv_committed_value(&nodes[0], "alpha", "1") &&
                            kv_committed_value(&nodes[1], "beta", "2") &&
                            kv_committed_value(&nodes[2], "alpha", "1") &&
                            kv_committed_value(&nodes[3], "beta", "2"),
                        30000);
    CU_ASSERT(all);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(kvapp_submit(nodes[i].app, t[2].p, t[2].len, NULL, NULL, 0),
                        KVAPP_ACCEPTED);
        CU_ASSERT_EQUAL(kvapp_submit(nodes[i].app, vs.p, vs.len, NULL, NULL, 0), KVAPP_ACCEPTED);
    }
    /* The delete commits, and the validator-set update (phased mode) commits and decides. */
    all = CU_AWAIT(!kv_committed_value(&nodes[0], "alpha", "1") &&
                       !kv_committed_value(&nodes[3], "alpha", "1") &&
                       kv_committed_power(&nodes[0], &keys[0], 3) &&
                       kv_committed_power(&nodes[1], &keys[0], 3) &&
                       kv_committed_power(&nodes[2], &keys[0], 3) &&
                       kv_committed_power(&nodes[3], &keys[0], 3),
                   30000);
    CU_ASSERT(all);
    /* Each transaction committed once: resubmitting any is refused everywhere, and the
     * mempools drain as CommitBlock events arrive. */
    for (int i = 0; i < N; i++) {
        char reason[256];
        CU_ASSERT_EQUAL(kvapp_submit(nodes[i].app, t[0].p, t[0].len, NULL, reason,
                                     sizeof reason),
                        KVAPP_DUPLICATE);
    }
    CU_ASSERT(CU_AWAIT(({
                           uint32_t m = 0, s;
                           for (int i = 0; i < N; i++) {
                               kvapp_mempool_stats(nodes[i].app, &s, NULL);
                               m += s;
                           }
                           m == 0;
                       }),
                       10000));
    kv_cluster_down(&cl);
    for (int k = 0; k < 3; k++) tx_free(&t[k]);
    tx_free(&vs);
}

int main(void) {
    hs_log_set_level(HS_LOG_ERROR); /* the invalid blocks above log warnings by design */
    static const cu_test tests[] = {
        {"admission: reasons for every refusal", test_admission_reasons},
        {"admission: validator-set update authorisation", test_admission_validator_updates},
        {"mempool bounds: count and bytes", test_mempool_bounds},
        {"produce and validate agree, deterministically", test_produce_validate_agree},
        {"produce respects block limits", test_produce_limits},
        {"an empty block waits for transactions", test_empty_block_wait},
        {"no wait while the pipeline holds transactions", test_no_wait_behind_transactions},
        {"validate rejects bad blocks", test_validate_rejects},
        {"a transaction commits at most once", test_at_most_once},
        {"validator-set update and app state through a commit", test_validator_update_commits},
        {"four replicas commit submitted transactions", test_replicas_commit},
        {NULL, NULL}};
    return cu_run("kvapp", tests);
}
