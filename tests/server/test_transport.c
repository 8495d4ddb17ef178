/* test_transport.c - the gRPC replica transport (server/replica/transport.c), in process on
 * 127.0.0.1 with ports chosen by the kernel.
 *
 * Clusters are started highest key first: the lower key dials the higher one, so every node
 * knows the ports of the nodes it dials. "Raw" peers are keys configured as peers but played
 * by a hand-written gRPC client in this file, which speaks (or abuses) the stream protocol of
 * replica.proto directly; it computes the handshake transcript from the documented format.
 * Every wait is a CU_AWAIT on a condition; nothing sleeps for a fixed time.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <sodium.h>

#include "cu.h"
#include "samples.h"
#include "tsan_grpc.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"
#include "hotstuff/messages.h"
#include "wire/mapping.h"
#include "replica/transport.h"

HS_TSAN_GRPC_SUPPRESSIONS

#define CHAIN 7
#define MAX_NODES 4
#define MAX_RAW 2

/* ---- sample messages ---- */

static void sample_pc(hs_pc *pc, uint32_t n, hs_phase phase, uint64_t view) {
    sample_pc_at(pc, CHAIN, view, n, phase);
}

static void sample_tc(hs_tc *tc, uint32_t n, uint64_t view) {
    hs_pc pc;
    sample_pc(&pc, n, HS_PHASE_GENERIC, view);
    memset(tc, 0, sizeof *tc);
    tc->chain_id = CHAIN;
    tc->view = view;
    tc->sigs = pc.sigs;
}

/* A block with one datum of datum_len bytes (filled with `fill`). */
static void sample_block(hs_block *b, uint64_t height, size_t datum_len, uint8_t fill) {
    memset(b, 0, sizeof *b);
    b->height = height;
    memset(b->hash.b, 0x11, HS_HASH_LEN);
    sample_pc(&b->justify, 4, HS_PHASE_GENERIC, height);
    memset(b->data_hash.b, 0x33, HS_HASH_LEN);
    b->data.n = 1;
    b->data.items = calloc(1, sizeof(hs_bytes));
    CU_ASSERT_FATAL(b->data.items != NULL);
    uint8_t *d = malloc(datum_len ? datum_len : 1);
    memset(d, fill, datum_len);
    CU_ASSERT_EQUAL(hs_bytes_set(&b->data.items[0], d, datum_len), HS_OK);
    free(d);
}

/* One message of type t, made distinct by salt. */
static void sample_msg(hs_msg *m, hs_msg_type t, uint64_t salt) {
    memset(m, 0, sizeof *m);
    m->type = t;
    switch (t) {
    case HS_MSG_PROPOSAL:
        m->u.proposal.chain_id = CHAIN;
        m->u.proposal.view = salt;
        sample_block(&m->u.proposal.block, salt, 16, (uint8_t)salt);
        break;
    case HS_MSG_NUDGE:
        m->u.nudge.chain_id = CHAIN;
        m->u.nudge.view = salt;
        sample_pc(&m->u.nudge.justify, 4, HS_PHASE_PRECOMMIT, salt);
        break;
    case HS_MSG_PHASE_VOTE:
        m->u.phase_vote.chain_id = CHAIN;
        m->u.phase_vote.view = salt;
        memset(m->u.phase_vote.block.b, 0x55, HS_HASH_LEN);
        m->u.phase_vote.phase = HS_PHASE_COMMIT;
        memset(m->u.phase_vote.sig.b, 0x66, HS_SIG_LEN);
        break;
    case HS_MSG_NEW_VIEW:
        m->u.new_view.chain_id = CHAIN;
        m->u.new_view.view = salt;
        sample_pc(&m->u.new_view.highest_pc, 7, HS_PHASE_GENERIC, salt);
        break;
    case HS_MSG_TIMEOUT_VOTE:
        m->u.timeout_vote.chain_id = CHAIN;
        m->u.timeout_vote.view = salt;
        memset(m->u.timeout_vote.sig.b, 0x77, HS_SIG_LEN);
        m->u.timeout_vote.has_highest_tc = true;
        sample_tc(&m->u.timeout_vote.highest_tc, 5, salt);
        break;
    case HS_MSG_ADVANCE_VIEW:
        m->u.advance_view.is_tc = salt % 2;
        if (salt % 2) sample_tc(&m->u.advance_view.tc, 4, salt);
        else sample_pc(&m->u.advance_view.pc, 4, HS_PHASE_DECIDE, salt);
        break;
    case HS_MSG_ADVERTISE_BLOCK:
        m->u.advertise_block.chain_id = CHAIN;
        m->u.advertise_block.height = salt;
        memset(m->u.advertise_block.sig.b, 0x88, HS_SIG_LEN);
        break;
    case HS_MSG_ADVERTISE_PC:
        sample_pc(&m->u.advertise_pc.highest_pc, 2, HS_PHASE_GENERIC, salt);
        break;
    case HS_MSG_SYNC_REQUEST:
        m->u.sync_request.chain_id = CHAIN;
        m->u.sync_request.start_height = salt;
        m->u.sync_request.limit = 16;
        break;
    case HS_MSG_SYNC_RESPONSE: {
        hs_sync_response *s = &m->u.sync_response;
        s->blocks = calloc(2, sizeof *s->blocks);
        CU_ASSERT_FATAL(s->blocks != NULL);
        s->n_blocks = 2;
        sample_block(&s->blocks[0], salt, 8, 1);
        sample_block(&s->blocks[1], salt + 1, 0, 2);
        sample_pc(&s->highest_pc, 3, HS_PHASE_GENERIC, salt);
        break;
    }
    default:
        CU_FAIL("bad type");
    }
}

static bool msg_equal(const hs_msg *a, const hs_msg *b) {
    uint8_t *ea = NULL, *eb = NULL;
    size_t la = 0, lb = 0;
    bool eq = hs_msg_encode(a, &ea, &la) == HS_OK && hs_msg_encode(b, &eb, &lb) == HS_OK &&
              la == lb && memcmp(ea, eb, la) == 0;
    free(ea);
    free(eb);
    return eq;
}

/* ---- clusters ---- */

typedef struct node {
    hs_keypair kp;
    hs_transport *t;
    hs_network net;
    int port;
} node;

typedef struct tx_log {
    pthread_mutex_t mu;
    int count;
    bool last_from_null;
    hs_key last_from;
    uint8_t last[64];
    size_t last_len;
    int reply_code;
} tx_log;

typedef struct cluster {
    node n[MAX_NODES]; /* sorted ascending by key */
    size_t count;
    hs_keypair raw[MAX_RAW]; /* peers played by a raw client: configured, never dialed */
    size_t n_raw;
    hs_transport_config base; /* capacities, limits, timeouts */
    size_t max_message[MAX_NODES]; /* per-node override of base.max_message_bytes, if set */
    tx_log tx[MAX_NODES];
} cluster;

static int kp_cmp(const void *a, const void *b) {
    return memcmp(((const hs_keypair *)a)->public_key.b, ((const hs_keypair *)b)->public_key.b,
                  HS_KEY_LEN);
}

static int tx_handler(void *ctx, const hs_key *from, const uint8_t *tx, size_t len,
                      char reason[256]) {
    tx_log *l = ctx;
    pthread_mutex_lock(&l->mu);
    l->count++;
    l->last_from_null = from == NULL;
    if (from) l->last_from = *from;
    l->last_len = len < sizeof l->last ? len : sizeof l->last;
    memcpy(l->last, tx, l->last_len);
    int code = l->reply_code;
    pthread_mutex_unlock(&l->mu);
    if (code) snprintf(reason, 256, "mempool full");
    return code;
}

static int tx_count(tx_log *l) {
    pthread_mutex_lock(&l->mu);
    int c = l->count;
    pthread_mutex_unlock(&l->mu);
    return c;
}

static void cluster_init(cluster *cl, size_t count, size_t n_raw, uint32_t seed) {
    memset(cl, 0, sizeof *cl);
    cl->count = count;
    cl->n_raw = n_raw;
    hs_keypair kps[MAX_NODES + MAX_RAW];
    for (size_t i = 0; i < count + n_raw; i++) {
        uint8_t s[32] = {0};
        s[0] = (uint8_t)(seed + i);
        s[1] = (uint8_t)(seed >> 8);
        CU_ASSERT_EQUAL_FATAL(hs_keypair_from_seed(s, &kps[i]), HS_OK);
    }
    qsort(kps, count, sizeof *kps, kp_cmp);
    for (size_t i = 0; i < count; i++) cl->n[i].kp = kps[i];
    for (size_t i = 0; i < n_raw; i++) cl->raw[i] = kps[count + i];
    hs_transport_config_defaults(&cl->base);
    cl->base.chain_id = CHAIN;
    cl->base.reconnect_initial_ms = 20;
    cl->base.reconnect_max_ms = 400;
    cl->base.handshake_timeout_ms = 2000;
    cl->base.keepalive_time_ms = 5000;
    for (size_t i = 0; i < MAX_NODES; i++) pthread_mutex_init(&cl->tx[i].mu, NULL);
}

/* Starts node i listening on `port` (0 = any). Nodes with higher keys must be running. */
static void node_start(cluster *cl, size_t i, int port) {
    hs_transport_config c = cl->base;
    c.me = cl->n[i].kp;
    if (cl->max_message[i]) c.max_message_bytes = cl->max_message[i];
    snprintf(c.listen_address, sizeof c.listen_address, "127.0.0.1:%d", port);
    hs_transport_peer peers[MAX_NODES + MAX_RAW];
    memset(peers, 0, sizeof peers);
    size_t np = 0;
    for (size_t j = 0; j < cl->count; j++) {
        if (j == i) continue;
        peers[np].key = cl->n[j].kp.public_key;
        if (cl->n[j].port)
            snprintf(peers[np].address, sizeof peers[np].address, "127.0.0.1:%d", cl->n[j].port);
        np++;
    }
    for (size_t r = 0; r < cl->n_raw; r++) peers[np++].key = cl->raw[r].public_key;
    c.peers = peers;
    c.n_peers = np;
    char err[256];
    hs_status st = hs_transport_start(&c, &cl->n[i].t, err, sizeof err);
    if (st != HS_OK) printf("\nstart: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(st, HS_OK);
    cl->n[i].port = hs_transport_port(cl->n[i].t);
    CU_ASSERT_FATAL(cl->n[i].port > 0);
    cl->n[i].net = hs_transport_network(cl->n[i].t);
    hs_transport_set_tx_handler(cl->n[i].t, tx_handler, &cl->tx[i]);
}

static void cluster_start(cluster *cl) {
    for (size_t i = cl->count; i-- > 0;) node_start(cl, i, 0);
}

/* Peer stats of `of` as seen by node i. */
static hs_transport_peer_stats peer_stats(cluster *cl, size_t i, const hs_key *of) {
    hs_transport_peer_stats ps[MAX_NODES + MAX_RAW], none;
    memset(&none, 0, sizeof none);
    size_t n = hs_transport_get_peer_stats(cl->n[i].t, ps, MAX_NODES + MAX_RAW);
    for (size_t k = 0; k < n; k++)
        if (memcmp(ps[k].key.b, of->b, HS_KEY_LEN) == 0) return ps[k];
    CU_FAIL("no such peer");
    return none;
}

static bool all_connected(cluster *cl) {
    for (size_t i = 0; i < cl->count; i++)
        for (size_t j = 0; j < cl->count; j++)
            if (i != j && cl->n[i].t && cl->n[j].t &&
                !peer_stats(cl, i, &cl->n[j].kp.public_key).connected)
                return false;
    return true;
}

static hs_transport_stats stats_of(cluster *cl, size_t i) {
    hs_transport_stats s;
    hs_transport_get_stats(cl->n[i].t, &s);
    return s;
}

static void cluster_stop(cluster *cl) {
    for (size_t i = 0; i < cl->count; i++) {
        if (!cl->n[i].t) continue;
        uint64_t t0 = cu_now_ms();
        hs_transport_stop(cl->n[i].t);
        uint64_t took = cu_now_ms() - t0;
        if (took >= 3000) printf("\nstop took %llu ms\n", (unsigned long long)took);
        CU_ASSERT(took < 3000); /* (e) stop with streams open completes within seconds */
        cl->n[i].t = NULL;
    }
    for (size_t i = 0; i < MAX_NODES; i++) pthread_mutex_destroy(&cl->tx[i].mu);
}

static int index_of(cluster *cl, const hs_key *k) {
    for (size_t i = 0; i < cl->count; i++)
        if (memcmp(cl->n[i].kp.public_key.b, k->b, HS_KEY_LEN) == 0) return (int)i;
    return -1;
}

/* Receives exactly n messages at node i (or fails after timeout_ms). */
static size_t recv_n(cluster *cl, size_t i, size_t n, hs_key *origins, hs_msg *msgs,
                     int timeout_ms) {
    uint64_t deadline = cu_now_ms() + (uint64_t)timeout_ms;
    size_t got = 0;
    while (got < n && cu_now_ms() < deadline) {
        hs_status st = cl->n[i].net.recv(cl->n[i].net.self, 50, &origins[got], &msgs[got]);
        if (st == HS_OK) got++;
        else CU_ASSERT_EQUAL(st, HS_TIMEOUT);
    }
    return got;
}

/* ---- (a) full mesh, broadcast and send, every message type ---- */

static void test_broadcast_and_send_every_type(void) {
    cluster cl;
    cluster_init(&cl, 3, 0, 10);
    cluster_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));

    for (int t = HS_MSG_PROPOSAL; t < HS_MSG_TYPE_COUNT; t++) {
        /* Every node broadcasts one message of type t; salt = 100 * type + sender. */
        for (size_t s = 0; s < 3; s++) {
            hs_msg m;
            sample_msg(&m, (hs_msg_type)t, 100u * (uint64_t)t + s);
            cl.n[s].net.broadcast(cl.n[s].net.self, &m);
            hs_msg_free(&m);
        }
        for (size_t r = 0; r < 3; r++) {
            hs_key origins[3];
            hs_msg got[3];
            CU_ASSERT_EQUAL_FATAL(recv_n(&cl, r, 3, origins, got, 10000), 3);
            bool seen[3] = {false, false, false};
            for (size_t k = 0; k < 3; k++) {
                int s = index_of(&cl, &origins[k]);
                CU_ASSERT_FATAL(s >= 0);
                CU_ASSERT(!seen[s]); /* exactly once per sender, itself included */
                seen[s] = true;
                hs_msg want;
                sample_msg(&want, (hs_msg_type)t, 100u * (uint64_t)t + (uint64_t)s);
                CU_ASSERT(got[k].type == (hs_msg_type)t && msg_equal(&want, &got[k]));
                hs_msg_free(&want);
                hs_msg_free(&got[k]);
            }
        }

        /* Each node sends to the next one and to itself, then broadcasts a marker. Streams
         * are FIFO per pair, so once a node has every marker, every send addressed to it has
         * arrived, and nothing addressed elsewhere did. */
        for (size_t s = 0; s < 3; s++) {
            hs_msg m;
            sample_msg(&m, (hs_msg_type)t, 1000u + 10u * (uint64_t)t + s);
            cl.n[s].net.send(cl.n[s].net.self, &cl.n[(s + 1) % 3].kp.public_key, &m);
            cl.n[s].net.send(cl.n[s].net.self, &cl.n[s].kp.public_key, &m);
            hs_msg_free(&m);
            sample_msg(&m, HS_MSG_ADVERTISE_BLOCK, 5000u + s);
            cl.n[s].net.broadcast(cl.n[s].net.self, &m);
            hs_msg_free(&m);
        }
        for (size_t r = 0; r < 3; r++) {
            hs_key origins[5];
            hs_msg got[5];
            CU_ASSERT_EQUAL_FATAL(recv_n(&cl, r, 5, origins, got, 10000), 5);
            int markers = 0, sends = 0;
            for (size_t k = 0; k < 5; k++) {
                int s = index_of(&cl, &origins[k]);
                CU_ASSERT_FATAL(s >= 0);
                hs_msg want;
                bool marker = got[k].type == HS_MSG_ADVERTISE_BLOCK &&
                              got[k].u.advertise_block.height >= 5000;
                if (marker) {
                    markers++;
                    sample_msg(&want, HS_MSG_ADVERTISE_BLOCK, 5000u + (uint64_t)s);
                } else {
                    sends++;
                    CU_ASSERT((size_t)s == r || (size_t)(s + 1) % 3 == r);
                    sample_msg(&want, (hs_msg_type)t, 1000u + 10u * (uint64_t)t + (uint64_t)s);
                }
                CU_ASSERT(msg_equal(&want, &got[k]));
                hs_msg_free(&want);
                hs_msg_free(&got[k]);
            }
            CU_ASSERT_EQUAL(markers, 3);
            CU_ASSERT_EQUAL(sends, 2);
        }
    }

    /* Counters: nothing dropped, refused or malformed; sends reached the wire. */
    for (size_t i = 0; i < 3; i++) {
        hs_transport_stats st = stats_of(&cl, i);
        CU_ASSERT_EQUAL(st.inbox_dropped, 0);
        CU_ASSERT_EQUAL(st.refused_handshakes, 0);
        CU_ASSERT_EQUAL(st.bad_messages, 0);
        for (size_t j = 0; j < 3; j++) {
            if (i == j) continue;
            hs_transport_peer_stats ps = peer_stats(&cl, i, &cl.n[j].kp.public_key);
            CU_ASSERT_EQUAL(ps.dropped_outbox_full, 0);
            CU_ASSERT(ps.received >= 20);
        }
    }
    /* A send to a key that is not a peer is counted, not delivered. */
    hs_key stranger;
    memset(stranger.b, 0xee, HS_KEY_LEN);
    hs_msg m;
    sample_msg(&m, HS_MSG_SYNC_REQUEST, 1);
    cl.n[0].net.send(cl.n[0].net.self, &stranger, &m);
    hs_msg_free(&m);
    CU_ASSERT_EQUAL(stats_of(&cl, 0).dropped_unknown_peer, 1);
    cluster_stop(&cl);
}

/* ---- transactions: gossip and SubmitTransaction ---- */

typedef struct raw raw;
static raw *raw_open(int port, const char *method);
static void raw_close(raw *r);
static bool raw_send(raw *r, const uint8_t *p, size_t len);
static grpc_status_code raw_unary(int port, const char *method, const uint8_t *req, size_t len,
                                  uint8_t *reply, size_t *reply_len, char *details, size_t dcap);

static void test_transactions(void) {
    cluster cl;
    cluster_init(&cl, 3, 0, 30);
    cluster_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));

    hs_transport_gossip_tx(cl.n[1].t, (const uint8_t *)"tx-one", 6);
    CU_ASSERT(CU_AWAIT(tx_count(&cl.tx[0]) == 1 && tx_count(&cl.tx[2]) == 1, 5000));
    CU_ASSERT_EQUAL(tx_count(&cl.tx[1]), 0); /* not to itself */
    pthread_mutex_lock(&cl.tx[0].mu);
    CU_ASSERT(!cl.tx[0].last_from_null);
    CU_ASSERT(memcmp(cl.tx[0].last_from.b, cl.n[1].kp.public_key.b, HS_KEY_LEN) == 0);
    CU_ASSERT(cl.tx[0].last_len == 6 && memcmp(cl.tx[0].last, "tx-one", 6) == 0);
    pthread_mutex_unlock(&cl.tx[0].mu);

    /* A burst goes out in batches: every transaction arrives (the last one last), in fewer frames
     * than transactions (one frame per transaction would make them equal). */
    enum { BURST = 1000 };
    for (int i = 0; i < BURST; i++) {
        char tx[32];
        int len = snprintf(tx, sizeof tx, "burst-%04d", i);
        hs_transport_gossip_tx(cl.n[1].t, (const uint8_t *)tx, (size_t)len);
    }
    CU_ASSERT(CU_AWAIT(tx_count(&cl.tx[0]) == 1 + BURST && tx_count(&cl.tx[2]) == 1 + BURST,
                       10000));
    pthread_mutex_lock(&cl.tx[0].mu);
    CU_ASSERT(cl.tx[0].last_len == 10 && memcmp(cl.tx[0].last, "burst-0999", 10) == 0);
    pthread_mutex_unlock(&cl.tx[0].mu);
    hs_transport_stats gs = stats_of(&cl, 1);
    CU_ASSERT_EQUAL(gs.gossip_txs, 1 + BURST);
    CU_ASSERT(gs.gossip_batches >= 2 && gs.gossip_batches < gs.gossip_txs);

    /* SubmitTransaction: the reply is SHA-256 of the bytes; the handler sees from = NULL. */
    Hotstuff__V1__SubmitTransactionRequest req = HOTSTUFF__V1__SUBMIT_TRANSACTION_REQUEST__INIT;
    req.transaction.data = (uint8_t *)"pay bob 5";
    req.transaction.len = 9;
    uint8_t buf[128], reply[128];
    size_t n = hotstuff__v1__submit_transaction_request__pack(&req, buf), rlen = sizeof reply;
    char details[256];
    grpc_status_code code = raw_unary(cl.n[2].port, "/hotstuff.v1.Replica/SubmitTransaction",
                                      buf, n, reply, &rlen, details, sizeof details);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_OK);
    Hotstuff__V1__SubmitTransactionResponse *resp =
        hotstuff__v1__submit_transaction_response__unpack(NULL, rlen, reply);
    CU_ASSERT_FATAL(resp != NULL);
    hs_hash h;
    hs_sha256((const uint8_t *)"pay bob 5", 9, &h);
    CU_ASSERT(resp->transaction_hash.len == 32 &&
              memcmp(resp->transaction_hash.data, h.b, 32) == 0);
    hotstuff__v1__submit_transaction_response__free_unpacked(resp, NULL);
    CU_ASSERT_EQUAL(tx_count(&cl.tx[2]), 2 + BURST); /* the gossip above, then this */
    pthread_mutex_lock(&cl.tx[2].mu);
    CU_ASSERT(cl.tx[2].last_from_null);
    pthread_mutex_unlock(&cl.tx[2].mu);

    /* The handler's refusal becomes the status; an empty transaction is invalid. */
    pthread_mutex_lock(&cl.tx[2].mu);
    cl.tx[2].reply_code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    pthread_mutex_unlock(&cl.tx[2].mu);
    rlen = sizeof reply;
    code = raw_unary(cl.n[2].port, "/hotstuff.v1.Replica/SubmitTransaction", buf, n, reply, &rlen,
                     details, sizeof details);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT(strstr(details, "mempool full") != NULL);
    rlen = sizeof reply;
    code = raw_unary(cl.n[2].port, "/hotstuff.v1.Replica/SubmitTransaction", buf, 0, reply, &rlen,
                     details, sizeof details);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_INVALID_ARGUMENT);
    cluster_stop(&cl);
}

/* ---- (b) a peer restarts on the same port ---- */

static void test_restarted_peer_is_redialed(void) {
    cluster cl;
    cluster_init(&cl, 3, 0, 50);
    cluster_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));

    /* Node 2 has the highest key: the others dial it. */
    int port = cl.n[2].port;
    hs_transport_stop(cl.n[2].t);
    cl.n[2].t = NULL;
    CU_ASSERT(CU_AWAIT(!peer_stats(&cl, 0, &cl.n[2].kp.public_key).connected &&
                           !peer_stats(&cl, 1, &cl.n[2].kp.public_key).connected,
                       5000));
    node_start(&cl, 2, port);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));
    CU_ASSERT(peer_stats(&cl, 0, &cl.n[2].kp.public_key).reconnects >= 1);
    CU_ASSERT(peer_stats(&cl, 1, &cl.n[2].kp.public_key).reconnects >= 1);

    /* Traffic resumes both ways. Messages queued for node 2 while it was down may arrive
     * first (outboxes survive reconnects), so look for the fresh ones. */
    hs_msg m;
    sample_msg(&m, HS_MSG_NEW_VIEW, 4242);
    cl.n[0].net.broadcast(cl.n[0].net.self, &m);
    hs_msg_free(&m);
    sample_msg(&m, HS_MSG_NEW_VIEW, 4343);
    cl.n[2].net.send(cl.n[2].net.self, &cl.n[1].kp.public_key, &m);
    hs_msg_free(&m);
    hs_key o[4];
    hs_msg got[4];
    CU_ASSERT_EQUAL_FATAL(recv_n(&cl, 2, 1, o, got, 10000), 1);
    CU_ASSERT(got[0].type == HS_MSG_NEW_VIEW && got[0].u.new_view.view == 4242);
    CU_ASSERT(index_of(&cl, &o[0]) == 0);
    hs_msg_free(&got[0]);
    CU_ASSERT_EQUAL_FATAL(recv_n(&cl, 1, 2, o, got, 10000), 2);
    bool saw4242 = false, saw4343 = false;
    for (int k = 0; k < 2; k++) {
        CU_ASSERT(got[k].type == HS_MSG_NEW_VIEW);
        if (got[k].u.new_view.view == 4242) saw4242 = index_of(&cl, &o[k]) == 0;
        if (got[k].u.new_view.view == 4343) saw4343 = index_of(&cl, &o[k]) == 2;
        hs_msg_free(&got[k]);
    }
    CU_ASSERT(saw4242 && saw4343);
    /* A peer going away is neither a refusal nor a bad message. */
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(stats_of(&cl, i).refused_handshakes, 0);
        CU_ASSERT_EQUAL(stats_of(&cl, i).bad_messages, 0);
    }
    cluster_stop(&cl);
}

/* ---- a raw gRPC client for hostile peers ---- */

struct raw {
    int fd;
    grpc_completion_queue *cq;
    grpc_channel *ch;
    grpc_call *call;
    grpc_metadata_array imd, tmd;
    grpc_status_code status;
    grpc_slice details;
    bool status_done, md_done, recv_pending;
    grpc_byte_buffer *recv_bb;
    /* handshake */
    uint8_t challenge[32], server_challenge[32];
    hs_key server_key;
};

enum { RT_STATUS = 1, RT_MD, RT_SEND, RT_RECV };

static void *rt(int n) {
    return (void *)(intptr_t)n;
}

static gpr_timespec in_ms(int ms) {
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static bool raw_pluck(raw *r, int t, int ms) {
    grpc_event ev = grpc_completion_queue_pluck(r->cq, rt(t), in_ms(ms), NULL);
    if (ev.type != GRPC_OP_COMPLETE) return false;
    if (t == RT_STATUS) r->status_done = true;
    if (t == RT_MD) r->md_done = true;
    if (t == RT_RECV) r->recv_pending = false;
    return ev.success != 0;
}

/* Cuts the client's TCP connection under the call (as if its process died). */
static void raw_drop_connection(raw *r) {
    shutdown(r->fd, SHUT_RDWR);
}

/* A TCP connection of our own, so that a test can cut it; gRPC owns the fd afterwards. */
static int connect_tcp(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

static raw *raw_open(int port, const char *method) {
    raw *r = calloc(1, sizeof *r);
    r->cq = grpc_completion_queue_create_for_pluck(NULL);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_arg a = {GRPC_ARG_INTEGER, (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}};
    grpc_channel_args args = {1, &a};
    r->fd = connect_tcp(port);
    r->ch = grpc_channel_create_from_fd(target, r->fd, cr, &args);
    grpc_channel_credentials_release(cr);
    r->call = grpc_channel_create_call(r->ch, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq,
                                       grpc_slice_from_static_string(method), NULL,
                                       in_ms(300000), NULL);
    grpc_metadata_array_init(&r->imd);
    grpc_metadata_array_init(&r->tmd);
    r->details = grpc_empty_slice();
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &r->tmd;
    ops[0].data.recv_status_on_client.status = &r->status;
    ops[0].data.recv_status_on_client.status_details = &r->details;
    CU_ASSERT_EQUAL(grpc_call_start_batch(r->call, ops, 1, rt(RT_STATUS), NULL), GRPC_CALL_OK);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &r->imd;
    CU_ASSERT_EQUAL(grpc_call_start_batch(r->call, ops, 2, rt(RT_MD), NULL), GRPC_CALL_OK);
    return r;
}

static bool raw_send(raw *r, const uint8_t *p, size_t len) {
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)p, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    bool ok = grpc_call_start_batch(r->call, &op, 1, rt(RT_SEND), NULL) == GRPC_CALL_OK &&
              raw_pluck(r, RT_SEND, 10000);
    grpc_byte_buffer_destroy(bb);
    return ok;
}

/* Receives one message into a malloc'd buffer; false on end of stream or timeout (a
 * timed-out receive stays pending and is picked up by the next call). */
static bool raw_recv(raw *r, uint8_t **out, size_t *len, int ms) {
    if (!r->recv_pending) {
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &r->recv_bb;
        if (grpc_call_start_batch(r->call, &op, 1, rt(RT_RECV), NULL) != GRPC_CALL_OK) return false;
        r->recv_pending = true;
    }
    grpc_event ev = grpc_completion_queue_pluck(r->cq, rt(RT_RECV), in_ms(ms), NULL);
    if (ev.type != GRPC_OP_COMPLETE) return false;
    r->recv_pending = false;
    if (!r->recv_bb) return false;
    grpc_byte_buffer_reader rd;
    grpc_byte_buffer_reader_init(&rd, r->recv_bb);
    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    *len = GRPC_SLICE_LENGTH(s);
    *out = malloc(*len ? *len : 1);
    memcpy(*out, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    grpc_byte_buffer_destroy(r->recv_bb);
    r->recv_bb = NULL;
    return true;
}

/* The call's final status (waits up to ms). */
static grpc_status_code raw_status(raw *r, int ms, char *details, size_t cap) {
    if (!r->status_done) raw_pluck(r, RT_STATUS, ms);
    if (!r->status_done) return (grpc_status_code)-1;
    if (details) {
        char *d = grpc_slice_to_c_string(r->details);
        snprintf(details, cap, "%s", d);
        gpr_free(d);
    }
    return r->status;
}

static void raw_close(raw *r) {
    grpc_call_cancel(r->call, NULL);
    if (!r->status_done) raw_pluck(r, RT_STATUS, 10000);
    if (!r->md_done) raw_pluck(r, RT_MD, 10000);
    if (r->recv_pending) raw_pluck(r, RT_RECV, 10000);
    if (r->recv_bb) grpc_byte_buffer_destroy(r->recv_bb);
    grpc_call_unref(r->call);
    grpc_channel_destroy(r->ch);
    grpc_completion_queue_shutdown(r->cq);
    gpr_timespec forever = gpr_inf_future(GPR_CLOCK_REALTIME);
    while (grpc_completion_queue_pluck(r->cq, NULL, forever, NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(r->cq);
    grpc_metadata_array_destroy(&r->imd);
    grpc_metadata_array_destroy(&r->tmd);
    grpc_slice_unref(r->details);
    free(r);
}

static grpc_status_code raw_unary(int port, const char *method, const uint8_t *req, size_t len,
                                  uint8_t *reply, size_t *reply_len, char *details, size_t dcap) {
    raw *r = raw_open(port, method);
    raw_send(r, req, len);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    grpc_call_start_batch(r->call, &op, 1, rt(RT_SEND), NULL);
    raw_pluck(r, RT_SEND, 10000);
    uint8_t *got;
    size_t n;
    size_t cap = *reply_len;
    *reply_len = 0;
    if (raw_recv(r, &got, &n, 10000)) {
        memcpy(reply, got, n < cap ? n : cap);
        *reply_len = n < cap ? n : cap;
        free(got);
    }
    grpc_status_code code = raw_status(r, 10000, details, dcap);
    raw_close(r);
    return code;
}

/* Frame packing as the dialer (ConnectRequest). */
static uint8_t *pack_frame(Hotstuff__V1__Frame *f, size_t *len) {
    Hotstuff__V1__ConnectRequest req = HOTSTUFF__V1__CONNECT_REQUEST__INIT;
    req.frame = f;
    *len = hotstuff__v1__connect_request__get_packed_size(&req);
    uint8_t *b = malloc(*len);
    hotstuff__v1__connect_request__pack(&req, b);
    return b;
}

static bool raw_send_frame(raw *r, Hotstuff__V1__Frame *f) {
    size_t n;
    uint8_t *b = pack_frame(f, &n);
    bool ok = raw_send(r, b, n);
    free(b);
    return ok;
}

static bool raw_send_hello(raw *r, const hs_key *key, uint64_t chain) {
    randombytes_buf(r->challenge, sizeof r->challenge);
    Hotstuff__V1__Hello h = HOTSTUFF__V1__HELLO__INIT;
    h.protocol_version = 1;
    h.chain_id = chain;
    h.key.data = (uint8_t *)key->b;
    h.key.len = HS_KEY_LEN;
    h.challenge.data = r->challenge;
    h.challenge.len = 32;
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_HELLO;
    f.hello = &h;
    return raw_send_frame(r, &f);
}

/* The documented transcript (replica.proto), written out independently of transport.c. */
static void handshake_transcript(uint64_t chain, const uint8_t *dch, const uint8_t *ach,
                                 const hs_key *dkey, const hs_key *akey, uint8_t role,
                                 uint8_t out[160]) {
    memcpy(out, "hotstuff-c/v1/handshake", 23);
    for (int i = 0; i < 8; i++) out[23 + i] = (uint8_t)(chain >> (8 * i));
    memcpy(out + 31, dch, 32);
    memcpy(out + 63, ach, 32);
    memcpy(out + 95, dkey->b, 32);
    memcpy(out + 127, akey->b, 32);
    out[159] = role;
}

/* Reads one ConnectResponse frame. */
static Hotstuff__V1__ConnectResponse *raw_recv_frame(raw *r, int ms) {
    uint8_t *b;
    size_t n;
    if (!raw_recv(r, &b, &n, ms)) return NULL;
    Hotstuff__V1__ConnectResponse *m = hotstuff__v1__connect_response__unpack(NULL, n, b);
    free(b);
    return m;
}

/* Full handshake as `kp`: Hello, the server's Hello and Auth (checked), our Auth. With
 * forge, our Auth carries a signature by the wrong key. */
static bool raw_handshake(raw *r, const hs_keypair *kp, bool forge) {
    if (!raw_send_hello(r, &kp->public_key, CHAIN)) return false;
    Hotstuff__V1__ConnectResponse *h = raw_recv_frame(r, 10000);
    CU_ASSERT_FATAL(h && h->frame && h->frame->kind_case == HOTSTUFF__V1__FRAME__KIND_HELLO);
    CU_ASSERT_FATAL(h->frame->hello->key.len == 32 && h->frame->hello->challenge.len == 32);
    CU_ASSERT_EQUAL(h->frame->hello->chain_id, CHAIN);
    memcpy(r->server_key.b, h->frame->hello->key.data, 32);
    memcpy(r->server_challenge, h->frame->hello->challenge.data, 32);
    hotstuff__v1__connect_response__free_unpacked(h, NULL);

    Hotstuff__V1__ConnectResponse *a = raw_recv_frame(r, 10000);
    CU_ASSERT_FATAL(a && a->frame && a->frame->kind_case == HOTSTUFF__V1__FRAME__KIND_AUTH);
    uint8_t tr[160];
    handshake_transcript(CHAIN, r->challenge, r->server_challenge, &kp->public_key,
                         &r->server_key, 1, tr);
    hs_sig sig;
    CU_ASSERT_FATAL(a->frame->auth->signature.len == 64);
    memcpy(sig.b, a->frame->auth->signature.data, 64);
    CU_ASSERT(hs_verify(&r->server_key, tr, sizeof tr, &sig)); /* the server's proof */
    hotstuff__v1__connect_response__free_unpacked(a, NULL);

    handshake_transcript(CHAIN, r->challenge, r->server_challenge, &kp->public_key,
                         &r->server_key, 0, tr);
    if (forge) {
        hs_keypair other;
        hs_keypair_generate(&other);
        hs_sign(&other, tr, sizeof tr, &sig);
    } else {
        hs_sign(kp, tr, sizeof tr, &sig);
    }
    Hotstuff__V1__Auth au = HOTSTUFF__V1__AUTH__INIT;
    au.signature.data = sig.b;
    au.signature.len = 64;
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_AUTH;
    f.auth = &au;
    return raw_send_frame(r, &f);
}

static bool raw_send_msg(raw *r, const hs_msg *m) {
    hs_pb_arena a = {0};
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_MESSAGE;
    f.message = hs_map_msg_to_pb(&a, m);
    bool ok = raw_send_frame(r, &f);
    hs_pb_arena_free(&a);
    return ok;
}

/* ---- (c) hostile peers ---- */

#define CONNECT "/hotstuff.v1.Replica/Connect"

static void expect_status(raw *r, grpc_status_code want, const char *needle) {
    /* The status comes after every message the server sent: read them all first. */
    uint8_t *b;
    size_t n;
    while (raw_recv(r, &b, &n, 10000)) free(b);
    char details[256] = "";
    grpc_status_code got = raw_status(r, 10000, details, sizeof details);
    if (got != want) printf("\nwant status %d, got %d '%s'\n", want, got, details);
    CU_ASSERT_EQUAL(got, want);
    if (needle && !strstr(details, needle)) printf("\n'%s' lacks '%s'\n", details, needle);
    if (needle) CU_ASSERT(strstr(details, needle) != NULL);
}

static bool refused_reaches(cluster *cl, size_t i, uint64_t n) {
    return stats_of(cl, i).refused_handshakes >= n;
}

static void test_hostile_peers_are_refused(void) {
    cluster cl;
    cluster_init(&cl, 3, 1, 70); /* raw[0]: a configured peer the test plays */
    cl.base.max_message_bytes = 64 * 1024;
    cl.base.handshake_timeout_ms = 1500;
    cluster_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));
    int port = cl.n[0].port;
    uint64_t refused = 0;

    /* Garbage bytes as the first stream message. */
    raw *r = raw_open(port, CONNECT);
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x13, 0x37};
    raw_send(r, garbage, sizeof garbage);
    expect_status(r, GRPC_STATUS_INVALID_ARGUMENT, "undecodable");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(refused_reaches(&cl, 0, ++refused), 5000));

    /* Wrong chain id. */
    r = raw_open(port, CONNECT);
    raw_send_hello(r, &cl.raw[0].public_key, CHAIN + 1);
    expect_status(r, GRPC_STATUS_FAILED_PRECONDITION, "chain id");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(refused_reaches(&cl, 0, ++refused), 5000));

    /* A key that is not a peer. */
    hs_keypair stranger;
    hs_keypair_generate(&stranger);
    r = raw_open(port, CONNECT);
    raw_send_hello(r, &stranger.public_key, CHAIN);
    expect_status(r, GRPC_STATUS_PERMISSION_DENIED, "not a peer");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(refused_reaches(&cl, 0, ++refused), 5000));

    /* A forged handshake signature, claiming to be a legitimate, connected peer. */
    r = raw_open(port, CONNECT);
    raw_handshake(r, &cl.n[1].kp, true);
    expect_status(r, GRPC_STATUS_UNAUTHENTICATED, "signature");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(refused_reaches(&cl, 0, ++refused), 5000));
    CU_ASSERT(peer_stats(&cl, 0, &cl.n[1].kp.public_key).connected);

    /* A protocol message before the handshake. */
    r = raw_open(port, CONNECT);
    hs_msg m;
    sample_msg(&m, HS_MSG_PHASE_VOTE, 3);
    raw_send_msg(r, &m);
    expect_status(r, GRPC_STATUS_INVALID_ARGUMENT, "before the handshake");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(refused_reaches(&cl, 0, ++refused), 5000));

    /* Silence: the handshake times out. */
    r = raw_open(port, CONNECT);
    expect_status(r, GRPC_STATUS_DEADLINE_EXCEEDED, "timed out");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(refused_reaches(&cl, 0, ++refused), 5000));

    /* An unknown method. */
    uint8_t reply[16];
    size_t rlen = sizeof reply;
    char details[256];
    CU_ASSERT_EQUAL(raw_unary(port, "/hotstuff.v1.Replica/Nope", (const uint8_t *)"x", 1, reply,
                              &rlen, details, sizeof details),
                    GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT(strstr(details, "/hotstuff.v1.Replica/Nope") != NULL);
    CU_ASSERT(CU_AWAIT(stats_of(&cl, 0).unimplemented_calls == 1, 5000));

    /* An authenticated peer: its messages are attributed to its key... */
    r = raw_open(port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.raw[0], false));
    CU_ASSERT(CU_AWAIT(peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 5000));
    raw_send_msg(r, &m);
    hs_key o;
    hs_msg got;
    CU_ASSERT_EQUAL_FATAL(recv_n(&cl, 0, 1, &o, &got, 5000), 1);
    CU_ASSERT(memcmp(o.b, cl.raw[0].public_key.b, HS_KEY_LEN) == 0 && msg_equal(&m, &got));
    hs_msg_free(&got);
    /* ...but a malformed message ends its stream and counts as a bad message. */
    Hotstuff__V1__PhaseVote bad = HOTSTUFF__V1__PHASE_VOTE__INIT;
    bad.chain_id = CHAIN;
    bad.block.data = (uint8_t *)"short";
    bad.block.len = 5;
    bad.phase = HOTSTUFF__V1__PHASE__PHASE_GENERIC;
    Hotstuff__V1__Message bm = HOTSTUFF__V1__MESSAGE__INIT;
    bm.message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_PHASE_VOTE;
    bm.phase_vote = &bad;
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_MESSAGE;
    f.message = &bm;
    raw_send_frame(r, &f);
    expect_status(r, GRPC_STATUS_INVALID_ARGUMENT, "block: want 32 bytes");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(stats_of(&cl, 0).bad_messages == 1, 5000));
    CU_ASSERT(CU_AWAIT(!peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 5000));

    /* A peer that hangs up, or whose connection drops, is not misbehaving. */
    for (int how = 0; how < 2; how++) {
        r = raw_open(port, CONNECT);
        CU_ASSERT_FATAL(raw_handshake(r, &cl.raw[0], false));
        CU_ASSERT(CU_AWAIT(peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 5000));
        if (how == 1) raw_drop_connection(r);
        raw_close(r);
        CU_ASSERT(CU_AWAIT(!peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 5000));
    }
    CU_ASSERT_EQUAL(stats_of(&cl, 0).bad_messages, 1);

    /* An oversized message from an authenticated peer: gRPC's size check ends the call. */
    r = raw_open(port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.raw[0], false));
    hs_msg big;
    memset(&big, 0, sizeof big);
    big.type = HS_MSG_PROPOSAL;
    big.u.proposal.chain_id = CHAIN;
    sample_block(&big.u.proposal.block, 1, 100 * 1024, 0xab);
    raw_send_msg(r, &big);
    hs_msg_free(&big);
    expect_status(r, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL);
    raw_close(r);
    CU_ASSERT(CU_AWAIT(stats_of(&cl, 0).bad_messages == 2, 5000));

    /* The legitimate peers never noticed. */
    hs_msg_free(&m);
    sample_msg(&m, HS_MSG_TIMEOUT_VOTE, 77);
    cl.n[0].net.broadcast(cl.n[0].net.self, &m);
    for (size_t i = 0; i < 3; i++) {
        hs_key oo[1];
        hs_msg g[1];
        CU_ASSERT_EQUAL_FATAL(recv_n(&cl, i, 1, oo, g, 5000), 1);
        CU_ASSERT(index_of(&cl, &oo[0]) == 0 && msg_equal(&m, &g[0]));
        hs_msg_free(&g[0]);
    }
    hs_msg_free(&m);
    CU_ASSERT(all_connected(&cl));
    for (size_t i = 1; i < 3; i++) {
        CU_ASSERT_EQUAL(stats_of(&cl, i).refused_handshakes, 0);
        CU_ASSERT_EQUAL(peer_stats(&cl, i, &cl.n[0].kp.public_key).reconnects, 0);
    }
    CU_ASSERT_EQUAL(stats_of(&cl, 0).refused_handshakes, refused);
    cluster_stop(&cl);
}

/* ---- (d) a peer that never reads ---- */

/* Frames for `of` that node 0 has sent or dropped. */
static uint64_t accounted(cluster *cl, const hs_key *of) {
    hs_transport_peer_stats ps = peer_stats(cl, 0, of);
    return ps.sent + ps.dropped_outbox_full;
}

static void test_slow_peer_fills_its_outbox_only(void) {
    cluster cl;
    cluster_init(&cl, 2, 1, 90);
    cl.base.outbox_capacity = 32;
    cl.base.max_message_bytes = 1 << 20;
    cluster_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));

    /* raw[0] authenticates to node 0, then stops reading. */
    raw *r = raw_open(cl.n[0].port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.raw[0], false));
    const hs_key *slow = &cl.raw[0].public_key;
    CU_ASSERT_FATAL(CU_AWAIT(peer_stats(&cl, 0, slow).connected, 5000));

    /* Flood with 64 KiB proposals of increasing views until the slow peer's HTTP/2 window and
     * outbox are both full. The reading peer (node 1) is kept up to date - each broadcast waits
     * for its copy to node 1 to be sent - so only the slow peer lags. The broadcast call itself
     * must return at once every time. */
    const hs_key *reader = &cl.n[1].kp.public_key;
    uint64_t view = 0, worst_ms = 0, sent_total = 0;
    uint64_t t0 = cu_now_ms();
    while (peer_stats(&cl, 0, slow).dropped_outbox_full < 64 && cu_now_ms() - t0 < 60000) {
        hs_msg m;
        memset(&m, 0, sizeof m);
        m.type = HS_MSG_PROPOSAL;
        m.u.proposal.chain_id = CHAIN;
        m.u.proposal.view = ++view;
        sample_block(&m.u.proposal.block, view, 64 * 1024, (uint8_t)view);
        uint64_t b0 = cu_now_ms();
        cl.n[0].net.broadcast(cl.n[0].net.self, &m);
        uint64_t took = cu_now_ms() - b0;
        if (took > worst_ms) worst_ms = took;
        hs_msg_free(&m);
        sent_total++;
        CU_ASSERT_FATAL(CU_AWAIT(peer_stats(&cl, 0, reader).sent == sent_total, 10000));
        hs_key o;
        hs_msg g;
        while (cl.n[0].net.recv(cl.n[0].net.self, 0, &o, &g) == HS_OK) hs_msg_free(&g);
        while (cl.n[1].net.recv(cl.n[1].net.self, 0, &o, &g) == HS_OK) hs_msg_free(&g);
    }
    printf("\n  %llu broadcasts, worst %llu ms; ", (unsigned long long)sent_total,
           (unsigned long long)worst_ms);
    CU_ASSERT(worst_ms < 500);
    hs_transport_peer_stats ps = peer_stats(&cl, 0, slow);
    CU_ASSERT(ps.dropped_outbox_full >= 64);
    /* A sync response queued now survives the flood that follows: it ranks above progress. */
    hs_msg resp;
    sample_msg(&resp, HS_MSG_SYNC_RESPONSE, 9999);
    cl.n[0].net.send(cl.n[0].net.self, slow, &resp);
    for (int k = 0; k < 30; k++) { /* fewer than the reader's outbox holds */
        hs_msg m;
        sample_msg(&m, HS_MSG_PHASE_VOTE, ++view);
        uint64_t b0 = cu_now_ms();
        cl.n[0].net.broadcast(cl.n[0].net.self, &m);
        uint64_t took = cu_now_ms() - b0;
        if (took > worst_ms) worst_ms = took;
        hs_msg_free(&m);
        sent_total++;
    }
    CU_ASSERT(worst_ms < 500);
    uint64_t last_view = view;
    ps = peer_stats(&cl, 0, slow);
    printf("slow peer: sent %llu dropped %llu ", (unsigned long long)ps.sent,
           (unsigned long long)ps.dropped_outbox_full);
    /* Every frame is sent, dropped, queued (<= 32) or in flight (1). */
    CU_ASSERT(ps.sent + ps.dropped_outbox_full <= sent_total + 1);
    CU_ASSERT(ps.sent + ps.dropped_outbox_full + 32 + 1 >= sent_total + 1);

    /* The reading peer lost nothing. */
    CU_ASSERT(CU_AWAIT(peer_stats(&cl, 0, reader).sent == sent_total, 30000));
    CU_ASSERT_EQUAL(peer_stats(&cl, 0, reader).dropped_outbox_full, 0);

    /* Now the slow peer reads: views only go up, the newest votes and the sync response are
     * there, and what it got plus what was dropped is everything. */
    uint64_t prev_view = 0, n_read = 0;
    bool got_resp = false, got_last = false, ordered = true;
    while (!(got_resp && got_last)) {
        Hotstuff__V1__ConnectResponse *fr = raw_recv_frame(r, 10000);
        if (!fr) break;
        n_read++;
        hs_msg g;
        char why[HS_MAP_REASON_MAX];
        if (fr->frame && fr->frame->kind_case == HOTSTUFF__V1__FRAME__KIND_MESSAGE &&
            hs_map_msg_from_pb(fr->frame->message, NULL, &g, why) == HS_OK) {
            uint64_t v;
            if (g.type == HS_MSG_SYNC_RESPONSE) {
                got_resp = msg_equal(&g, &resp);
            } else if (hs_msg_view(&g, &v)) {
                if (v <= prev_view) ordered = false;
                prev_view = v;
                if (v == last_view) got_last = true;
            }
            hs_msg_free(&g);
        }
        hotstuff__v1__connect_response__free_unpacked(fr, NULL);
    }
    printf("read %llu ", (unsigned long long)n_read);
    CU_ASSERT(got_resp);
    CU_ASSERT(got_last);
    CU_ASSERT(ordered);
    CU_ASSERT(CU_AWAIT(accounted(&cl, slow) == sent_total + 1, 10000));
    hs_msg_free(&resp);

    /* (e) stop with this stream still open. */
    cluster_stop(&cl);
    raw_close(r);
}

/* ---- (f) duplicate streams ---- */

static void test_duplicate_streams_resolve_deterministically(void) {
    cluster cl;
    cluster_init(&cl, 2, 0, 110);
    cluster_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));
    const hs_key *k0 = &cl.n[0].kp.public_key, *k1 = &cl.n[1].kp.public_key;

    /* Node 0 (lower key) dials node 1: that stream is the canonical one. A second stream
     * claiming to be node 1, dialed towards node 0, is not canonical: node 0 keeps its own
     * and ends the newcomer with ALREADY_EXISTS. */
    raw *r = raw_open(cl.n[0].port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.n[1].kp, false));
    expect_status(r, GRPC_STATUS_ALREADY_EXISTS, "duplicate");
    raw_close(r);
    CU_ASSERT_EQUAL(peer_stats(&cl, 0, k1).reconnects, 0);
    CU_ASSERT(peer_stats(&cl, 0, k1).connected);

    /* A second stream claiming to be node 0, dialed towards node 1: same direction as the
     * existing one, so the newer wins and node 0's own stream is ended. Node 0 redials, and
     * its new stream in turn displaces the impostor. */
    r = raw_open(cl.n[1].port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.n[0].kp, false));
    expect_status(r, GRPC_STATUS_ALREADY_EXISTS, "duplicate");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(all_connected(&cl) && peer_stats(&cl, 0, k1).reconnects == 1, 10000));

    /* Traffic flows on the surviving stream. */
    hs_msg m, g;
    hs_key o;
    sample_msg(&m, HS_MSG_NUDGE, 31);
    cl.n[1].net.send(cl.n[1].net.self, k0, &m);
    CU_ASSERT_EQUAL_FATAL(recv_n(&cl, 0, 1, &o, &g, 5000), 1);
    CU_ASSERT(msg_equal(&m, &g) && index_of(&cl, &o) == 1);
    hs_msg_free(&m);
    hs_msg_free(&g);
    for (size_t i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(stats_of(&cl, i).refused_handshakes, 0);
        CU_ASSERT_EQUAL(stats_of(&cl, i).bad_messages, 0);
    }
    cluster_stop(&cl);
}

/* ---- (g) a slow consumer pushes back instead of dropping ---- */

static void test_full_inbox_pushes_back(void) {
    cluster cl;
    cluster_init(&cl, 2, 0, 130);
    cl.base.inbox_capacity = 8; /* stop reading at 6, resume at 4 */
    cluster_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));
    const hs_key *k1 = &cl.n[1].kp.public_key;
    enum { N = 200 };
    for (uint64_t v = 1; v <= N; v++) {
        hs_msg m;
        sample_msg(&m, HS_MSG_PHASE_VOTE, v);
        cl.n[0].net.send(cl.n[0].net.self, k1, &m);
        hs_msg_free(&m);
    }
    /* Node 1 reads nothing yet: its inbox stops at the high-water mark, the rest waits in
     * HTTP/2 buffers and node 0's outbox. */
    CU_ASSERT(CU_AWAIT(peer_stats(&cl, 1, &cl.n[0].kp.public_key).received >= 6, 5000));
    for (uint64_t v = 1; v <= N; v++) {
        hs_key o;
        hs_msg g;
        CU_ASSERT_EQUAL_FATAL(recv_n(&cl, 1, 1, &o, &g, 5000), 1);
        CU_ASSERT(g.type == HS_MSG_PHASE_VOTE && g.u.phase_vote.view == v); /* all, in order */
        hs_msg_free(&g);
    }
    CU_ASSERT_EQUAL(stats_of(&cl, 1).inbox_dropped, 0);
    CU_ASSERT_EQUAL(peer_stats(&cl, 0, k1).dropped_outbox_full, 0);

    /* Broadcasts to itself are never blocked: past capacity the drop policy applies. */
    for (uint64_t v = 1; v <= 12; v++) {
        hs_msg m;
        sample_msg(&m, HS_MSG_NEW_VIEW, v);
        cl.n[1].net.send(cl.n[1].net.self, k1, &m);
        hs_msg_free(&m);
    }
    CU_ASSERT_EQUAL(stats_of(&cl, 1).inbox_dropped, 4);
    for (uint64_t v = 5; v <= 12; v++) { /* the lowest views went first */
        hs_key o;
        hs_msg g;
        CU_ASSERT_EQUAL_FATAL(recv_n(&cl, 1, 1, &o, &g, 5000), 1);
        CU_ASSERT(g.type == HS_MSG_NEW_VIEW && g.u.new_view.view == v);
        hs_msg_free(&g);
    }
    cluster_stop(&cl);
}

/* ---- (h) peers with different message limits ---- */

static void test_oversized_both_directions(void) {
    cluster cl;
    cluster_init(&cl, 2, 0, 170);
    cl.max_message[0] = 64 * 1024; /* node 0 dials node 1 and accepts less than it sends */
    cl.max_message[1] = 1 << 20;
    cluster_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));
    const hs_key *k0 = &cl.n[0].kp.public_key, *k1 = &cl.n[1].kp.public_key;
    hs_msg big;
    memset(&big, 0, sizeof big);
    big.type = HS_MSG_PROPOSAL;
    big.u.proposal.chain_id = CHAIN;
    sample_block(&big.u.proposal.block, 1, 100 * 1024, 0xcd);

    /* Node 0 will not send it at all (over its own limit). */
    cl.n[0].net.send(cl.n[0].net.self, k1, &big);
    CU_ASSERT_EQUAL(stats_of(&cl, 0).dropped_too_large, 1);

    /* Node 1 sends it on the stream node 0 dialed: node 0's gRPC refuses it, and node 0 -
     * not node 1 - counts a bad message. */
    cl.n[1].net.send(cl.n[1].net.self, k0, &big);
    CU_ASSERT(CU_AWAIT(stats_of(&cl, 0).bad_messages == 1, 5000));
    CU_ASSERT_EQUAL(stats_of(&cl, 1).bad_messages, 0);
    CU_ASSERT(CU_AWAIT(all_connected(&cl) && peer_stats(&cl, 0, k1).reconnects == 1, 10000));

    /* Swap the roles with a fresh pair: the small limit on the accepting side. */
    hs_msg_free(&big);
    cluster_stop(&cl);
    cluster_init(&cl, 2, 0, 190);
    cl.max_message[0] = 1 << 20;
    cl.max_message[1] = 64 * 1024;
    cluster_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(all_connected(&cl), 10000));
    memset(&big, 0, sizeof big);
    big.type = HS_MSG_PROPOSAL;
    big.u.proposal.chain_id = CHAIN;
    sample_block(&big.u.proposal.block, 1, 100 * 1024, 0xcd);
    cl.n[0].net.send(cl.n[0].net.self, &cl.n[1].kp.public_key, &big);
    CU_ASSERT(CU_AWAIT(stats_of(&cl, 1).bad_messages == 1, 5000));
    CU_ASSERT(CU_AWAIT(all_connected(&cl), 10000));
    CU_ASSERT_EQUAL(stats_of(&cl, 0).bad_messages, 0); /* refused by the peer: not its fault */
    hs_msg_free(&big);
    cluster_stop(&cl);
}

/* ---- the bound on streams in handshake ---- */

static void test_handshake_bound(void) {
    cluster cl;
    cluster_init(&cl, 1, 2, 150); /* one node, two configured peers: bound 16 + 2 * 2 = 20 */
    cl.base.handshake_timeout_ms = 20000;
    cluster_start(&cl);
    raw *silent[20];
    for (int i = 0; i < 20; i++) {
        silent[i] = raw_open(cl.n[0].port, CONNECT);
        uint8_t *b;
        size_t n;
        CU_ASSERT_FATAL(raw_recv(silent[i], &b, &n, 10000)); /* accepted: the server's Hello */
        free(b);
    }
    raw *extra = raw_open(cl.n[0].port, CONNECT);
    expect_status(extra, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many streams in handshake");
    raw_close(extra);
    CU_ASSERT_EQUAL(stats_of(&cl, 0).refused_handshakes, 1);
    for (int i = 0; i < 20; i++) raw_close(silent[i]);
    /* Room again once they are gone. */
    raw *r = raw_open(cl.n[0].port, CONNECT);
    CU_ASSERT(CU_AWAIT(raw_handshake(r, &cl.raw[0], false), 10000));
    CU_ASSERT(CU_AWAIT(peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 10000));
    raw_close(r);
    cluster_stop(&cl);
}

/* ---- odds and ends ---- */

static void test_frames_are_the_same_both_ways(void) {
    Hotstuff__V1__Transaction x = HOTSTUFF__V1__TRANSACTION__INIT;
    x.data.data = (uint8_t *)"abc";
    x.data.len = 3;
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_TRANSACTION;
    f.transaction = &x;
    Hotstuff__V1__ConnectRequest req = HOTSTUFF__V1__CONNECT_REQUEST__INIT;
    Hotstuff__V1__ConnectResponse resp = HOTSTUFF__V1__CONNECT_RESPONSE__INIT;
    req.frame = resp.frame = &f;
    uint8_t a[64], b[64];
    size_t na = hotstuff__v1__connect_request__pack(&req, a);
    size_t nb = hotstuff__v1__connect_response__pack(&resp, b);
    CU_ASSERT(na == nb && memcmp(a, b, na) == 0);
}

static void test_bad_configs_are_refused(void) {
    hs_keypair kp;
    hs_keypair_generate(&kp);
    hs_transport_config c;
    memset(&c, 0, sizeof c);
    hs_transport_config_defaults(&c);
    c.me = kp;
    c.chain_id = CHAIN;
    snprintf(c.listen_address, sizeof c.listen_address, "127.0.0.1:0");
    hs_transport_peer self_peer = {.key = kp.public_key};
    c.peers = &self_peer;
    c.n_peers = 1;
    hs_transport *t = NULL;
    char err[256];
    CU_ASSERT_EQUAL(hs_transport_start(&c, &t, err, sizeof err), HS_ERR_INVALID);
    CU_ASSERT(strstr(err, "own key") != NULL);
    c.n_peers = 0;
    c.outbox_capacity = 0;
    CU_ASSERT_EQUAL(hs_transport_start(&c, &t, err, sizeof err), HS_ERR_INVALID);
    hs_transport_config_defaults(&c);
    snprintf(c.listen_address, sizeof c.listen_address, "256.1.1.1:99999");
    CU_ASSERT_EQUAL(hs_transport_start(&c, &t, err, sizeof err), HS_ERR_IO);
    CU_ASSERT(t == NULL);

    /* A transport with no peers still delivers to itself and stops cleanly. */
    snprintf(c.listen_address, sizeof c.listen_address, "127.0.0.1:0");
    CU_ASSERT_EQUAL_FATAL(hs_transport_start(&c, &t, err, sizeof err), HS_OK);
    hs_network net = hs_transport_network(t);
    hs_msg m, g;
    hs_key o;
    sample_msg(&m, HS_MSG_NUDGE, 5);
    net.broadcast(net.self, &m);
    CU_ASSERT_EQUAL(net.recv(net.self, 1000, &o, &g), HS_OK);
    CU_ASSERT(memcmp(o.b, kp.public_key.b, HS_KEY_LEN) == 0 && msg_equal(&m, &g));
    hs_msg_free(&g);
    CU_ASSERT_EQUAL(net.recv(net.self, 0, &o, &g), HS_TIMEOUT);
    hs_msg_free(&m);
    hs_transport_stop(t);
}

/* A recv blocked in another thread returns HS_ERR_CLOSED when the transport stops. */
static void *blocked_recv(void *arg) {
    hs_network *net = arg;
    hs_key o;
    hs_msg g;
    return (void *)(intptr_t)net->recv(net->self, -1, &o, &g);
}

static void test_stop_wakes_recv(void) {
    hs_keypair kp;
    hs_keypair_generate(&kp);
    hs_transport_config c;
    memset(&c, 0, sizeof c);
    hs_transport_config_defaults(&c);
    c.me = kp;
    snprintf(c.listen_address, sizeof c.listen_address, "127.0.0.1:0");
    hs_transport *t;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(hs_transport_start(&c, &t, err, sizeof err), HS_OK);
    hs_network net = hs_transport_network(t);
    pthread_t th;
    pthread_create(&th, NULL, blocked_recv, &net);
    hs_key o;
    hs_msg g;
    CU_ASSERT_EQUAL(net.recv(net.self, 20, &o, &g), HS_TIMEOUT);
    /* stop closes the inbox first and waits for the blocked thread to leave before freeing. */
    hs_transport_stop(t);
    void *rc;
    pthread_join(th, &rc);
    CU_ASSERT_EQUAL((hs_status)(intptr_t)rc, HS_ERR_CLOSED);
}

static void quiet_logs(void) {
    hs_log_set_level(getenv("HS_TEST_VERBOSE") ? HS_LOG_DEBUG : HS_LOG_ERROR);
}

static const cu_test all_tests[] = {
    {"frames encode the same in both directions", test_frames_are_the_same_both_ways},
    {"bad configurations are refused", test_bad_configs_are_refused},
    {"stop wakes a blocked recv", test_stop_wakes_recv},
    {"(a) broadcast and send, every message type", test_broadcast_and_send_every_type},
    {"transactions: gossip and SubmitTransaction", test_transactions},
    {"(b) a restarted peer is redialed", test_restarted_peer_is_redialed},
    {"(c) hostile peers are refused, others unaffected", test_hostile_peers_are_refused},
    {"(d) a peer that never reads only fills its outbox", test_slow_peer_fills_its_outbox_only},
    {"(f) duplicate streams resolve deterministically",
     test_duplicate_streams_resolve_deterministically},
    {"(g) a full inbox pushes back instead of dropping", test_full_inbox_pushes_back},
    {"(h) oversized messages, either side of the stream", test_oversized_both_directions},
    {"streams in handshake are bounded", test_handshake_bound},
    {NULL, NULL},
};

int main(void) {
    quiet_logs();
    grpc_init(); /* the raw clients of this file */
    /* HS_TEST_ONLY=<substring> runs the matching tests only (debugging aid). */
    static cu_test picked[16];
    const cu_test *tests = all_tests;
    const char *only = getenv("HS_TEST_ONLY");
    if (only) {
        size_t k = 0;
        for (const cu_test *t = all_tests; t->name && k < 15; t++)
            if (strstr(t->name, only)) picked[k++] = *t;
        tests = picked;
    }
    int rc = cu_run("transport", tests);
    grpc_shutdown();
    return rc;
}
