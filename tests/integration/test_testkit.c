/* tests/integration/test_testkit.c - the test harness itself: the in-process network hub and
 * NumberApp. The scenarios trust both, so both are checked on their own first.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "hotstuff/hotstuff.h"
#include "mem_network.h"
#include "number_app.h"

/* ---- helpers ---- */

static hs_key key_of(uint8_t b) {
    hs_key k;
    memset(k.b, b, sizeof k.b);
    return k;
}

static hs_msg vote_msg(uint64_t view) {
    hs_msg m;
    memset(&m, 0, sizeof m);
    m.type = HS_MSG_PHASE_VOTE;
    m.u.phase_vote.chain_id = 7;
    m.u.phase_vote.view = view;
    memset(m.u.phase_vote.block.b, 0x11, HS_HASH_LEN);
    m.u.phase_vote.phase = HS_PHASE_PRECOMMIT;
    memset(m.u.phase_vote.sig.b, 0x22, HS_SIG_LEN);
    return m;
}

/* A proposal whose block owns heap data, so a shallow copy would show. */
static hs_msg proposal_msg(void) {
    hs_msg m;
    memset(&m, 0, sizeof m);
    m.type = HS_MSG_PROPOSAL;
    m.u.proposal.chain_id = 7;
    m.u.proposal.view = 3;
    hs_block *b = &m.u.proposal.block;
    b->height = 2;
    hs_pc_genesis(&b->justify);
    b->data.items = calloc(2, sizeof *b->data.items);
    CU_ASSERT_FATAL(b->data.items != NULL);
    b->data.n = 2;
    hs_bytes_set(&b->data.items[0], "hello", 5);
    hs_bytes_set(&b->data.items[1], "world!", 6);
    hs_sha256(b->data.items[0].p, 5, &b->data_hash);
    hs_block_compute_hash(b, &b->hash);
    return m;
}

/* Two messages are the same iff they encode to the same bytes. */
static bool same_msg(const hs_msg *a, const hs_msg *b) {
    uint8_t *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0;
    bool eq = hs_msg_encode(a, &x, &xl) == HS_OK && hs_msg_encode(b, &y, &yl) == HS_OK &&
              xl == yl && memcmp(x, y, xl) == 0;
    free(x);
    free(y);
    return eq;
}

/* Receives one message within 1 s; false on timeout or error. */
static bool recv_one(const hs_network *net, hs_key *from, hs_msg *m) {
    memset(m, 0, sizeof *m);
    return net->recv(net->self, 1000, from, m) == HS_OK;
}

static bool nothing_waiting(const hs_network *net) {
    hs_key from;
    hs_msg m;
    memset(&m, 0, sizeof m);
    hs_status st = net->recv(net->self, 20, &from, &m);
    if (st == HS_OK) hs_msg_free(&m);
    return st == HS_TIMEOUT;
}

/* ---- the hub ---- */

static void test_broadcast_reaches_everyone_including_sender(void) {
    hs_key keys[3] = {key_of(1), key_of(2), key_of(3)};
    tn_hub *h = tn_hub_new(keys, 3);
    CU_ASSERT_FATAL(h != NULL);
    hs_network net[3];
    for (int i = 0; i < 3; i++) CU_ASSERT_FATAL(tn_endpoint(h, &keys[i], &net[i]));
    hs_key stranger = key_of(9);
    hs_network none;
    CU_ASSERT(!tn_endpoint(h, &stranger, &none));

    hs_msg sent = proposal_msg();
    net[0].broadcast(net[0].self, &sent);
    for (int i = 0; i < 3; i++) {
        hs_key from;
        hs_msg got;
        CU_ASSERT_FATAL(recv_one(&net[i], &from, &got));
        CU_ASSERT(memcmp(from.b, keys[0].b, HS_KEY_LEN) == 0);
        CU_ASSERT(same_msg(&got, &sent));
        /* A copy of its own: the data buffers are not the sender's. */
        CU_ASSERT(got.u.proposal.block.data.items[0].p != sent.u.proposal.block.data.items[0].p);
        hs_msg_free(&got);
        CU_ASSERT(nothing_waiting(&net[i]));
    }
    hs_msg_free(&sent);
    CU_ASSERT_EQUAL(tn_codec_errors(h), 0);
    tn_hub_free(h);
}

static void test_send_to_self_and_to_unknown(void) {
    hs_key keys[2] = {key_of(1), key_of(2)};
    tn_hub *h = tn_hub_new(keys, 2);
    hs_network a, b;
    CU_ASSERT_FATAL(h && tn_endpoint(h, &keys[0], &a) && tn_endpoint(h, &keys[1], &b));
    hs_msg v = vote_msg(5);
    a.send(a.self, &keys[0], &v);
    hs_key from;
    hs_msg got;
    CU_ASSERT_FATAL(recv_one(&a, &from, &got));
    CU_ASSERT(memcmp(from.b, keys[0].b, HS_KEY_LEN) == 0);
    CU_ASSERT(same_msg(&got, &v));
    hs_msg_free(&got);
    CU_ASSERT(nothing_waiting(&b));

    hs_key stranger = key_of(9);
    a.send(a.self, &stranger, &v); /* dropped, not delivered to anyone */
    CU_ASSERT(nothing_waiting(&a));
    CU_ASSERT(nothing_waiting(&b));

    /* recv waits for its whole timeout when nothing comes. */
    uint64_t t0 = cu_now_ms();
    memset(&got, 0, sizeof got);
    CU_ASSERT_EQUAL(b.recv(b.self, 150, &from, &got), HS_TIMEOUT);
    CU_ASSERT(cu_now_ms() - t0 >= 140);
    tn_hub_free(h);
}

static void test_late_replica_finds_its_mail(void) {
    /* Nobody is receiving on key 2 yet: what is sent to it waits in order. */
    hs_key keys[2] = {key_of(1), key_of(2)};
    tn_hub *h = tn_hub_new(keys, 2);
    hs_network a, b;
    CU_ASSERT_FATAL(h && tn_endpoint(h, &keys[0], &a));
    for (uint64_t v = 1; v <= 3; v++) {
        hs_msg m = vote_msg(v);
        a.broadcast(a.self, &m);
    }
    CU_ASSERT_FATAL(tn_endpoint(h, &keys[1], &b));
    for (uint64_t v = 1; v <= 3; v++) {
        hs_key from;
        hs_msg got;
        CU_ASSERT_FATAL(recv_one(&b, &from, &got));
        CU_ASSERT_EQUAL(got.u.phase_vote.view, v);
        hs_msg_free(&got);
    }
    tn_hub_free(h); /* frees what is still queued for key 1 */
}

static void test_disconnected_endpoint_drops_both_ways(void) {
    hs_key keys[2] = {key_of(1), key_of(2)};
    tn_hub *h = tn_hub_new(keys, 2);
    hs_network a, b;
    CU_ASSERT_FATAL(h && tn_endpoint(h, &keys[0], &a) && tn_endpoint(h, &keys[1], &b));
    hs_msg v = vote_msg(1);
    tn_set_disconnected(h, &keys[1], true);
    a.send(a.self, &keys[1], &v); /* in */
    b.send(b.self, &keys[0], &v); /* out */
    b.send(b.self, &keys[1], &v); /* even to itself */
    CU_ASSERT(nothing_waiting(&a));
    CU_ASSERT(nothing_waiting(&b));
    tn_stats st;
    CU_ASSERT_FATAL(tn_get_stats(h, &keys[1], &st));
    CU_ASSERT(st.dropped_disconnected >= 2);

    tn_set_disconnected(h, &keys[1], false);
    a.send(a.self, &keys[1], &v);
    hs_key from;
    hs_msg got;
    CU_ASSERT_FATAL(recv_one(&b, &from, &got));
    hs_msg_free(&got);
    tn_hub_free(h);
}

static void test_inbox_is_bounded(void) {
    hs_key keys[2] = {key_of(1), key_of(2)};
    tn_hub *h = tn_hub_new(keys, 2);
    hs_network a;
    CU_ASSERT_FATAL(h && tn_endpoint(h, &keys[0], &a));
    hs_msg v = vote_msg(1);
    for (int i = 0; i < TN_INBOX_CAPACITY + 5; i++) a.send(a.self, &keys[1], &v);
    tn_stats st;
    CU_ASSERT_FATAL(tn_get_stats(h, &keys[1], &st));
    CU_ASSERT_EQUAL(st.queued, TN_INBOX_CAPACITY);
    CU_ASSERT_EQUAL(st.dropped_full, 5);
    tn_clear_inbox(h, &keys[1]);
    CU_ASSERT_FATAL(tn_get_stats(h, &keys[1], &st));
    CU_ASSERT_EQUAL(st.queued, 0);
    tn_hub_free(h);
}

typedef struct waiter {
    hs_network net;
    hs_status st;
} waiter;

static void *wait_forever(void *p) {
    waiter *w = p;
    hs_key from;
    hs_msg m;
    memset(&m, 0, sizeof m);
    w->st = w->net.recv(w->net.self, 10000, &from, &m);
    if (w->st == HS_OK) hs_msg_free(&m);
    return NULL;
}

static void test_close_wakes_receivers(void) {
    hs_key keys[1] = {key_of(1)};
    tn_hub *h = tn_hub_new(keys, 1);
    waiter w = {.st = HS_OK};
    CU_ASSERT_FATAL(h && tn_endpoint(h, &keys[0], &w.net));
    pthread_t t;
    uint64_t t0 = cu_now_ms();
    CU_ASSERT_FATAL(pthread_create(&t, NULL, wait_forever, &w) == 0);
    cu_sleep_ms(50); /* let it block; closing first would pass the test too */
    tn_hub_close(h);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(w.st, HS_ERR_CLOSED);
    CU_ASSERT(cu_now_ms() - t0 < 5000);
    hs_msg v = vote_msg(1);
    w.net.send(w.net.self, &keys[0], &v); /* dropped once closed */
    tn_stats st;
    CU_ASSERT_FATAL(tn_get_stats(h, &keys[0], &st));
    CU_ASSERT_EQUAL(st.queued, 0);
    tn_hub_free(h);
}

/* ---- NumberApp ---- */

/* Produces a block body from `a` and checks it the way validators do (no parent: number 0). */
static void produce(napp *a, hs_block *b) {
    hs_app app = napp_app(a);
    hs_produce_block_request req = {.cur_view = 1};
    hs_produce_block_response resp;
    memset(&resp, 0, sizeof resp);
    CU_ASSERT_FATAL(app.produce_block(app.self, &req, &resp) == HS_OK);
    memset(b, 0, sizeof *b);
    b->data = resp.data;
    b->data_hash = resp.data_hash;
    hs_app_updates_free(&resp.app_state_updates);
    hs_vs_updates_free(&resp.validator_set_updates);
}

static bool validate(napp *a, const hs_block *b, hs_validate_block_response *resp) {
    hs_app app = napp_app(a);
    hs_validate_block_request req = {.proposed_block = b, .tree = NULL};
    memset(resp, 0, sizeof *resp);
    CU_ASSERT_FATAL(app.validate_block_for_sync(app.self, &req, resp) == HS_OK);
    return resp->valid;
}

static void free_resp(hs_validate_block_response *r) {
    hs_app_updates_free(&r->app_state_updates);
    hs_vs_updates_free(&r->validator_set_updates);
}

static void test_number_app_block_roundtrip(void) {
    napp *a = napp_new();
    CU_ASSERT_FATAL(a != NULL);
    hs_block b;
    hs_validate_block_response r;

    /* Empty queue: one datum, Vec<Tx> of length 0; nothing changes. */
    produce(a, &b);
    CU_ASSERT_EQUAL(b.data.n, 1);
    CU_ASSERT_EQUAL(b.data.items[0].len, 4);
    CU_ASSERT(validate(a, &b, &r));
    CU_ASSERT(!r.has_app_state_updates && !r.has_validator_set_updates);
    free_resp(&r);
    CU_ASSERT_EQUAL(napp_count_increments(&b.data), 0);
    hs_block_free(&b);

    hs_key k1 = key_of(0x31), k2 = key_of(0x32);
    CU_ASSERT(napp_submit_increment(a));
    CU_ASSERT(napp_submit_set_validator(a, &k1, 5));
    CU_ASSERT(napp_submit_increment(a));
    CU_ASSERT(napp_submit_delete_validator(a, &k2));
    CU_ASSERT_EQUAL(napp_queued(a), 4);
    produce(a, &b);
    CU_ASSERT_EQUAL(napp_queued(a), 0); /* the block took the whole queue */
    hs_hash h;
    hs_sha256(b.data.items[0].p, b.data.items[0].len, &h);
    CU_ASSERT(memcmp(h.b, b.data_hash.b, HS_HASH_LEN) == 0);
    CU_ASSERT_EQUAL(napp_count_increments(&b.data), 2);
    CU_ASSERT_FATAL(validate(a, &b, &r));
    CU_ASSERT_FATAL(r.has_app_state_updates);
    CU_ASSERT_EQUAL(r.app_state_updates.n_inserts, 1);
    CU_ASSERT_EQUAL(r.app_state_updates.insert_keys[0].len, 1);
    CU_ASSERT_EQUAL(r.app_state_updates.insert_keys[0].p[0], NAPP_NUMBER_KEY);
    CU_ASSERT_EQUAL(r.app_state_updates.insert_values[0].len, 4);
    CU_ASSERT(memcmp(r.app_state_updates.insert_values[0].p, "\x02\0\0\0", 4) == 0);
    CU_ASSERT_FATAL(r.has_validator_set_updates);
    CU_ASSERT_EQUAL(r.validator_set_updates.n_inserts, 1);
    CU_ASSERT(memcmp(r.validator_set_updates.inserts[0].key.b, k1.b, HS_KEY_LEN) == 0);
    CU_ASSERT_EQUAL(r.validator_set_updates.inserts[0].power, 5);
    CU_ASSERT_EQUAL(r.validator_set_updates.n_deletes, 1);
    CU_ASSERT(memcmp(r.validator_set_updates.deletes[0].b, k2.b, HS_KEY_LEN) == 0);
    free_resp(&r);

    /* Invalid bodies: wrong hash, trailing byte, unknown tag, two datums, no datum. */
    b.data_hash.b[0] ^= 1;
    CU_ASSERT(!validate(a, &b, &r));
    b.data_hash.b[0] ^= 1;

    hs_bytes *d = &b.data.items[0];
    uint8_t *longer = realloc(d->p, d->len + 1);
    CU_ASSERT_FATAL(longer != NULL);
    d->p = longer;
    d->p[d->len++] = 0;
    hs_sha256(d->p, d->len, &b.data_hash);
    CU_ASSERT(!validate(a, &b, &r));
    CU_ASSERT_EQUAL(napp_count_increments(&b.data), -1);
    d->len--;
    d->p[4] = 7; /* first tx's tag */
    hs_sha256(d->p, d->len, &b.data_hash);
    CU_ASSERT(!validate(a, &b, &r));
    d->p[4] = NAPP_INCREMENT;
    hs_sha256(d->p, d->len, &b.data_hash);
    CU_ASSERT(validate(a, &b, &r)); /* restored: valid again */
    free_resp(&r);

    b.data.n = 0;
    CU_ASSERT(!validate(a, &b, &r));
    b.data.n = 1;
    hs_bytes *two = realloc(b.data.items, 2 * sizeof *two);
    CU_ASSERT_FATAL(two != NULL);
    b.data.items = two;
    CU_ASSERT(hs_bytes_copy(&b.data.items[1], &b.data.items[0]) == HS_OK);
    b.data.n = 2;
    CU_ASSERT(!validate(a, &b, &r));
    hs_block_free(&b);
    napp_free(a);
}

static const cu_test tests[] = {
    {"broadcast reaches every key including the sender",
     test_broadcast_reaches_everyone_including_sender},
    {"send to self; unknown keys dropped; recv timeout", test_send_to_self_and_to_unknown},
    {"a replica started late finds its mail", test_late_replica_finds_its_mail},
    {"a disconnected endpoint drops in and out", test_disconnected_endpoint_drops_both_ways},
    {"the inbox is bounded", test_inbox_is_bounded},
    {"closing the hub wakes receivers", test_close_wakes_receivers},
    {"NumberApp produce/validate round trip", test_number_app_block_roundtrip},
    {NULL, NULL},
};

int main(void) {
    hs_crypto_init();
    return cu_run("testkit", tests);
}
