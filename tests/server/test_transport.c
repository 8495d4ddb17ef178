/* test_transport.c - the gRPC replica transport (server/replica/transport.c), in process on
 * 127.0.0.1 with ports chosen by the kernel: delivery of every message type, transactions,
 * redialing, back-pressure, message size limits and configuration. The hostile and slow peers
 * are in test_transport_peers.c; the clusters and raw peers of both in tp_cluster.h.
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
#include "tp_cluster.h"

HS_TSAN_GRPC_SUPPRESSIONS


/* ---- (a) full mesh, broadcast and send, every message type ---- */

static void test_broadcast_and_send_every_type(void) {
    cluster cl;
    cl_init(&cl, 3, 0, 10);
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));

    for (int t = HS_MSG_PROPOSAL; t < HS_MSG_TYPE_COUNT; t++) {
        /* Every node broadcasts one message of type t; salt = 100 * type + sender. */
        for (size_t s = 0; s < 3; s++) {
            hs_msg m;
            cl_sample_msg(&m, (hs_msg_type)t, 100u * (uint64_t)t + s);
            cl.n[s].net.broadcast(cl.n[s].net.self, &m);
            hs_msg_free(&m);
        }
        for (size_t r = 0; r < 3; r++) {
            hs_key origins[3];
            hs_msg got[3];
            CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, r, 3, origins, got, 10000), 3);
            bool seen[3] = {false, false, false};
            for (size_t k = 0; k < 3; k++) {
                int s = cl_index_of(&cl, &origins[k]);
                CU_ASSERT_FATAL(s >= 0);
                CU_ASSERT(!seen[s]); /* exactly once per sender, itself included */
                seen[s] = true;
                hs_msg want;
                cl_sample_msg(&want, (hs_msg_type)t, 100u * (uint64_t)t + (uint64_t)s);
                CU_ASSERT(got[k].type == (hs_msg_type)t && cl_msg_equal(&want, &got[k]));
                hs_msg_free(&want);
                hs_msg_free(&got[k]);
            }
        }

        /* Each node sends to the next one and to itself, then broadcasts a marker. Streams
         * are FIFO per pair, so once a node has every marker, every send addressed to it has
         * arrived, and nothing addressed elsewhere did. */
        for (size_t s = 0; s < 3; s++) {
            hs_msg m;
            cl_sample_msg(&m, (hs_msg_type)t, 1000u + 10u * (uint64_t)t + s);
            cl.n[s].net.send(cl.n[s].net.self, &cl.n[(s + 1) % 3].kp.public_key, &m);
            cl.n[s].net.send(cl.n[s].net.self, &cl.n[s].kp.public_key, &m);
            hs_msg_free(&m);
            cl_sample_msg(&m, HS_MSG_ADVERTISE_BLOCK, 5000u + s);
            cl.n[s].net.broadcast(cl.n[s].net.self, &m);
            hs_msg_free(&m);
        }
        for (size_t r = 0; r < 3; r++) {
            hs_key origins[5];
            hs_msg got[5];
            CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, r, 5, origins, got, 10000), 5);
            int markers = 0, sends = 0;
            for (size_t k = 0; k < 5; k++) {
                int s = cl_index_of(&cl, &origins[k]);
                CU_ASSERT_FATAL(s >= 0);
                hs_msg want;
                bool marker = got[k].type == HS_MSG_ADVERTISE_BLOCK &&
                              got[k].u.advertise_block.height >= 5000;
                if (marker) {
                    markers++;
                    cl_sample_msg(&want, HS_MSG_ADVERTISE_BLOCK, 5000u + (uint64_t)s);
                } else {
                    sends++;
                    CU_ASSERT((size_t)s == r || (size_t)(s + 1) % 3 == r);
                    cl_sample_msg(&want, (hs_msg_type)t, 1000u + 10u * (uint64_t)t + (uint64_t)s);
                }
                CU_ASSERT(cl_msg_equal(&want, &got[k]));
                hs_msg_free(&want);
                hs_msg_free(&got[k]);
            }
            CU_ASSERT_EQUAL(markers, 3);
            CU_ASSERT_EQUAL(sends, 2);
        }
    }

    /* Counters: nothing dropped, refused or malformed; sends reached the wire. */
    for (size_t i = 0; i < 3; i++) {
        hs_transport_stats st = cl_stats(&cl, i);
        CU_ASSERT_EQUAL(st.inbox_dropped, 0);
        CU_ASSERT_EQUAL(st.refused_handshakes, 0);
        CU_ASSERT_EQUAL(st.bad_messages, 0);
        for (size_t j = 0; j < 3; j++) {
            if (i == j) continue;
            hs_transport_peer_stats ps = cl_peer_stats(&cl, i, &cl.n[j].kp.public_key);
            CU_ASSERT_EQUAL(ps.dropped_outbox_full, 0);
            CU_ASSERT(ps.received >= 20);
        }
    }
    /* A send to a key that is not a peer is counted, not delivered. */
    hs_key stranger;
    memset(stranger.b, 0xee, HS_KEY_LEN);
    hs_msg m;
    cl_sample_msg(&m, HS_MSG_SYNC_REQUEST, 1);
    cl.n[0].net.send(cl.n[0].net.self, &stranger, &m);
    hs_msg_free(&m);
    CU_ASSERT_EQUAL(cl_stats(&cl, 0).dropped_unknown_peer, 1);
    cl_stop(&cl);
}

/* ---- transactions: gossip and SubmitTransaction ---- */

typedef struct raw raw;

static void test_transactions(void) {
    cluster cl;
    cl_init(&cl, 3, 0, 30);
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));

    hs_transport_gossip_tx(cl.n[1].t, (const uint8_t *)"tx-one", 6);
    CU_ASSERT(CU_AWAIT(cl_tx_count(&cl.tx[0]) == 1 && cl_tx_count(&cl.tx[2]) == 1, 5000));
    CU_ASSERT_EQUAL(cl_tx_count(&cl.tx[1]), 0); /* not to itself */
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
    CU_ASSERT(CU_AWAIT(cl_tx_count(&cl.tx[0]) == 1 + BURST && cl_tx_count(&cl.tx[2]) == 1 + BURST,
                       10000));
    pthread_mutex_lock(&cl.tx[0].mu);
    CU_ASSERT(cl.tx[0].last_len == 10 && memcmp(cl.tx[0].last, "burst-0999", 10) == 0);
    pthread_mutex_unlock(&cl.tx[0].mu);
    hs_transport_stats gs = cl_stats(&cl, 1);
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
    CU_ASSERT_EQUAL(cl_tx_count(&cl.tx[2]), 2 + BURST); /* the gossip above, then this */
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
    cl_stop(&cl);
}

/* ---- (b2) a restarted higher key does not wait for the lower key's backoff ---- */

static void test_restarted_higher_key_dials_at_start(void) {
    cluster cl;
    cl_init(&cl, 2, 0, 60);
    /* A long backoff: once node 1 is gone, node 0 tries again only after 2.5-5 s. */
    cl.base.reconnect_initial_ms = 5000;
    cl.base.reconnect_max_ms = 5000;
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));
    int port = cl.n[1].port;
    hs_transport_stop(cl.n[1].t);
    cl.n[1].t = NULL;
    CU_ASSERT_FATAL(CU_AWAIT(!cl_peer_stats(&cl, 0, &cl.n[1].kp.public_key).connected, 5000));
    uint64_t t0 = cu_now_ms();
    cl_node_start(&cl, 1, port); /* it knows node 0's address now: its start-up dial */
    CU_ASSERT(CU_AWAIT(cl_all_connected(&cl), 2000)); /* well before node 0's redial */
    uint64_t took = cu_now_ms() - t0;
    CU_ASSERT(took < 2000);
    /* One stream per pair, whichever end dialed, and traffic flows on it. */
    hs_msg m;
    cl_sample_msg(&m, HS_MSG_NEW_VIEW, 77);
    cl.n[0].net.send(cl.n[0].net.self, &cl.n[1].kp.public_key, &m);
    hs_msg_free(&m);
    hs_key o;
    hs_msg got;
    CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, 1, 1, &o, &got, 10000), 1);
    CU_ASSERT(got.type == HS_MSG_NEW_VIEW && cl_index_of(&cl, &o) == 0);
    hs_msg_free(&got);
    cl_stop(&cl);
}

/* ---- (b) a peer restarts on the same port ---- */

static void test_restarted_peer_is_redialed(void) {
    cluster cl;
    cl_init(&cl, 3, 0, 50);
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));

    /* Node 2 has the highest key: the others dial it. */
    int port = cl.n[2].port;
    hs_transport_stop(cl.n[2].t);
    cl.n[2].t = NULL;
    CU_ASSERT(CU_AWAIT(!cl_peer_stats(&cl, 0, &cl.n[2].kp.public_key).connected &&
                           !cl_peer_stats(&cl, 1, &cl.n[2].kp.public_key).connected,
                       5000));
    cl_node_start(&cl, 2, port);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));
    CU_ASSERT(cl_peer_stats(&cl, 0, &cl.n[2].kp.public_key).reconnects >= 1);
    CU_ASSERT(cl_peer_stats(&cl, 1, &cl.n[2].kp.public_key).reconnects >= 1);

    /* Traffic resumes both ways. Messages queued for node 2 while it was down may arrive
     * first (outboxes survive reconnects), so look for the fresh ones. */
    hs_msg m;
    cl_sample_msg(&m, HS_MSG_NEW_VIEW, 4242);
    cl.n[0].net.broadcast(cl.n[0].net.self, &m);
    hs_msg_free(&m);
    cl_sample_msg(&m, HS_MSG_NEW_VIEW, 4343);
    cl.n[2].net.send(cl.n[2].net.self, &cl.n[1].kp.public_key, &m);
    hs_msg_free(&m);
    hs_key o[4];
    hs_msg got[4];
    CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, 2, 1, o, got, 10000), 1);
    CU_ASSERT(got[0].type == HS_MSG_NEW_VIEW && got[0].u.new_view.view == 4242);
    CU_ASSERT(cl_index_of(&cl, &o[0]) == 0);
    hs_msg_free(&got[0]);
    CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, 1, 2, o, got, 10000), 2);
    bool saw4242 = false, saw4343 = false;
    for (int k = 0; k < 2; k++) {
        CU_ASSERT(got[k].type == HS_MSG_NEW_VIEW);
        if (got[k].u.new_view.view == 4242) saw4242 = cl_index_of(&cl, &o[k]) == 0;
        if (got[k].u.new_view.view == 4343) saw4343 = cl_index_of(&cl, &o[k]) == 2;
        hs_msg_free(&got[k]);
    }
    CU_ASSERT(saw4242 && saw4343);
    /* A peer going away is neither a refusal nor a bad message. */
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(cl_stats(&cl, i).refused_handshakes, 0);
        CU_ASSERT_EQUAL(cl_stats(&cl, i).bad_messages, 0);
    }
    cl_stop(&cl);
}

/* ---- (g) a slow consumer pushes back instead of dropping ---- */

static void test_full_inbox_pushes_back(void) {
    cluster cl;
    cl_init(&cl, 2, 0, 130);
    cl.base.inbox_capacity = 8; /* stop reading at 6, resume at 4 */
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));
    const hs_key *k1 = &cl.n[1].kp.public_key;
    enum { N = 200 };
    for (uint64_t v = 1; v <= N; v++) {
        hs_msg m;
        cl_sample_msg(&m, HS_MSG_PHASE_VOTE, v);
        cl.n[0].net.send(cl.n[0].net.self, k1, &m);
        hs_msg_free(&m);
    }
    /* Node 1 reads nothing yet: its inbox stops at the high-water mark, the rest waits in
     * HTTP/2 buffers and node 0's outbox. */
    CU_ASSERT(CU_AWAIT(cl_peer_stats(&cl, 1, &cl.n[0].kp.public_key).received >= 6, 5000));
    for (uint64_t v = 1; v <= N; v++) {
        hs_key o;
        hs_msg g;
        CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, 1, 1, &o, &g, 5000), 1);
        CU_ASSERT(g.type == HS_MSG_PHASE_VOTE && g.u.phase_vote.view == v); /* all, in order */
        hs_msg_free(&g);
    }
    CU_ASSERT_EQUAL(cl_stats(&cl, 1).inbox_dropped, 0);
    CU_ASSERT_EQUAL(cl_peer_stats(&cl, 0, k1).dropped_outbox_full, 0);

    /* Broadcasts to itself are never blocked: past capacity the drop policy applies. */
    for (uint64_t v = 1; v <= 12; v++) {
        hs_msg m;
        cl_sample_msg(&m, HS_MSG_NEW_VIEW, v);
        cl.n[1].net.send(cl.n[1].net.self, k1, &m);
        hs_msg_free(&m);
    }
    CU_ASSERT_EQUAL(cl_stats(&cl, 1).inbox_dropped, 4);
    for (uint64_t v = 5; v <= 12; v++) { /* the lowest views went first */
        hs_key o;
        hs_msg g;
        CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, 1, 1, &o, &g, 5000), 1);
        CU_ASSERT(g.type == HS_MSG_NEW_VIEW && g.u.new_view.view == v);
        hs_msg_free(&g);
    }
    cl_stop(&cl);
}

/* ---- (h) peers with different message limits ---- */

static void test_oversized_both_directions(void) {
    cluster cl;
    cl_init(&cl, 2, 0, 170);
    cl.max_message[0] = 64 * 1024; /* node 0 dials node 1 and accepts less than it sends */
    cl.max_message[1] = 1 << 20;
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));
    const hs_key *k0 = &cl.n[0].kp.public_key, *k1 = &cl.n[1].kp.public_key;
    hs_msg big;
    memset(&big, 0, sizeof big);
    big.type = HS_MSG_PROPOSAL;
    big.u.proposal.chain_id = CHAIN;
    cl_sample_block(&big.u.proposal.block, 1, 100 * 1024, 0xcd);

    /* Node 0 will not send it at all (over its own limit). */
    cl.n[0].net.send(cl.n[0].net.self, k1, &big);
    CU_ASSERT_EQUAL(cl_stats(&cl, 0).dropped_too_large, 1);

    /* Node 1 sends it on the stream node 0 dialed: node 0's gRPC refuses it, and node 0 -
     * not node 1 - counts a bad message. */
    cl.n[1].net.send(cl.n[1].net.self, k0, &big);
    CU_ASSERT(CU_AWAIT(cl_stats(&cl, 0).bad_messages == 1, 5000));
    CU_ASSERT_EQUAL(cl_stats(&cl, 1).bad_messages, 0);
    CU_ASSERT(CU_AWAIT(cl_all_connected(&cl) && cl_peer_stats(&cl, 0, k1).reconnects == 1, 10000));

    /* Swap the roles with a fresh pair: the small limit on the accepting side. */
    hs_msg_free(&big);
    cl_stop(&cl);
    cl_init(&cl, 2, 0, 190);
    cl.max_message[0] = 1 << 20;
    cl.max_message[1] = 64 * 1024;
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));
    memset(&big, 0, sizeof big);
    big.type = HS_MSG_PROPOSAL;
    big.u.proposal.chain_id = CHAIN;
    cl_sample_block(&big.u.proposal.block, 1, 100 * 1024, 0xcd);
    cl.n[0].net.send(cl.n[0].net.self, &cl.n[1].kp.public_key, &big);
    CU_ASSERT(CU_AWAIT(cl_stats(&cl, 1).bad_messages == 1, 5000));
    CU_ASSERT(CU_AWAIT(cl_all_connected(&cl), 10000));
    CU_ASSERT_EQUAL(cl_stats(&cl, 0).bad_messages, 0); /* refused by the peer: not its fault */
    hs_msg_free(&big);
    cl_stop(&cl);
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
    cl_sample_msg(&m, HS_MSG_NUDGE, 5);
    net.broadcast(net.self, &m);
    CU_ASSERT_EQUAL(net.recv(net.self, 1000, &o, &g), HS_OK);
    CU_ASSERT(memcmp(o.b, kp.public_key.b, HS_KEY_LEN) == 0 && cl_msg_equal(&m, &g));
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

static const cu_test all_tests[] = {
    {"frames encode the same in both directions", test_frames_are_the_same_both_ways},
    {"bad configurations are refused", test_bad_configs_are_refused},
    {"stop wakes a blocked recv", test_stop_wakes_recv},
    {"(a) broadcast and send, every message type", test_broadcast_and_send_every_type},
    {"transactions: gossip and SubmitTransaction", test_transactions},
    {"(b) a restarted peer is redialed", test_restarted_peer_is_redialed},
    {"(b2) a restarted higher key dials at start", test_restarted_higher_key_dials_at_start},
    {"(g) a full inbox pushes back instead of dropping", test_full_inbox_pushes_back},
    {"(h) oversized messages, either side of the stream", test_oversized_both_directions},
    {NULL, NULL},
};

int main(void) {
    return cl_main("transport", all_tests);
}
