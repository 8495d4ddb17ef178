/* test_transport_peers.c - the gRPC replica transport (server/replica/transport.c) against
 * peers that misbehave: hostile streams (wrong chain, unknown key, forged handshake, garbage,
 * oversized frames) refused while honest peers are unaffected, a peer that never reads, two
 * streams for one pair, and the bound on streams in handshake. Clusters and the raw peers
 * that play the hostile side are in tp_cluster.h.
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
    return cl_stats(cl, i).refused_handshakes >= n;
}

static void test_hostile_peers_are_refused(void) {
    cluster cl;
    cl_init(&cl, 3, 1, 70); /* raw[0]: a configured peer the test plays */
    cl.base.max_message_bytes = 64 * 1024;
    cl.base.handshake_timeout_ms = 1500;
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));
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
    raw_handshake(r, &cl.n[1].kp, CHAIN, true);
    expect_status(r, GRPC_STATUS_UNAUTHENTICATED, "signature");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(refused_reaches(&cl, 0, ++refused), 5000));
    CU_ASSERT(cl_peer_stats(&cl, 0, &cl.n[1].kp.public_key).connected);

    /* A protocol message before the handshake. */
    r = raw_open(port, CONNECT);
    hs_msg m;
    cl_sample_msg(&m, HS_MSG_PHASE_VOTE, 3);
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
    CU_ASSERT(CU_AWAIT(cl_stats(&cl, 0).unimplemented_calls == 1, 5000));

    /* An authenticated peer: its messages are attributed to its key... */
    r = raw_open(port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.raw[0], CHAIN, false));
    CU_ASSERT(CU_AWAIT(cl_peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 5000));
    raw_send_msg(r, &m);
    hs_key o;
    hs_msg got;
    CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, 0, 1, &o, &got, 5000), 1);
    CU_ASSERT(memcmp(o.b, cl.raw[0].public_key.b, HS_KEY_LEN) == 0 && cl_msg_equal(&m, &got));
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
    CU_ASSERT(CU_AWAIT(cl_stats(&cl, 0).bad_messages == 1, 5000));
    CU_ASSERT(CU_AWAIT(!cl_peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 5000));

    /* A peer that hangs up, or whose connection drops, is not misbehaving. */
    for (int how = 0; how < 2; how++) {
        r = raw_open(port, CONNECT);
        CU_ASSERT_FATAL(raw_handshake(r, &cl.raw[0], CHAIN, false));
        CU_ASSERT(CU_AWAIT(cl_peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 5000));
        if (how == 1) raw_drop_connection(r);
        raw_close(r);
        CU_ASSERT(CU_AWAIT(!cl_peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 5000));
    }
    CU_ASSERT_EQUAL(cl_stats(&cl, 0).bad_messages, 1);

    /* An oversized message from an authenticated peer: gRPC's size check ends the call. */
    r = raw_open(port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.raw[0], CHAIN, false));
    hs_msg big;
    memset(&big, 0, sizeof big);
    big.type = HS_MSG_PROPOSAL;
    big.u.proposal.chain_id = CHAIN;
    cl_sample_block(&big.u.proposal.block, 1, 100 * 1024, 0xab);
    raw_send_msg(r, &big);
    hs_msg_free(&big);
    expect_status(r, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL);
    raw_close(r);
    CU_ASSERT(CU_AWAIT(cl_stats(&cl, 0).bad_messages == 2, 5000));

    /* The legitimate peers never noticed. */
    hs_msg_free(&m);
    cl_sample_msg(&m, HS_MSG_TIMEOUT_VOTE, 77);
    cl.n[0].net.broadcast(cl.n[0].net.self, &m);
    for (size_t i = 0; i < 3; i++) {
        hs_key oo[1];
        hs_msg g[1];
        CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, i, 1, oo, g, 5000), 1);
        CU_ASSERT(cl_index_of(&cl, &oo[0]) == 0 && cl_msg_equal(&m, &g[0]));
        hs_msg_free(&g[0]);
    }
    hs_msg_free(&m);
    CU_ASSERT(cl_all_connected(&cl));
    for (size_t i = 1; i < 3; i++) {
        CU_ASSERT_EQUAL(cl_stats(&cl, i).refused_handshakes, 0);
        CU_ASSERT_EQUAL(cl_peer_stats(&cl, i, &cl.n[0].kp.public_key).reconnects, 0);
    }
    CU_ASSERT_EQUAL(cl_stats(&cl, 0).refused_handshakes, refused);
    cl_stop(&cl);
}

/* ---- (d) a peer that never reads ---- */

/* Frames for `of` that node 0 has sent or dropped. */
static uint64_t accounted(cluster *cl, const hs_key *of) {
    hs_transport_peer_stats ps = cl_peer_stats(cl, 0, of);
    return ps.sent + ps.dropped_outbox_full;
}

static void test_slow_peer_fills_its_outbox_only(void) {
    cluster cl;
    cl_init(&cl, 2, 1, 90);
    cl.base.outbox_capacity = 32;
    cl.base.max_message_bytes = 1 << 20;
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));

    /* raw[0] authenticates to node 0, then stops reading. */
    raw *r = raw_open(cl.n[0].port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.raw[0], CHAIN, false));
    const hs_key *slow = &cl.raw[0].public_key;
    CU_ASSERT_FATAL(CU_AWAIT(cl_peer_stats(&cl, 0, slow).connected, 5000));

    /* Flood with 64 KiB proposals of increasing views until the slow peer's HTTP/2 window and
     * outbox are both full. The reading peer (node 1) is kept up to date - each broadcast waits
     * for its copy to node 1 to be sent - so only the slow peer lags. The broadcast call itself
     * must return at once every time. */
    const hs_key *reader = &cl.n[1].kp.public_key;
    uint64_t view = 0, worst_ms = 0, sent_total = 0;
    uint64_t t0 = cu_now_ms();
    while (cl_peer_stats(&cl, 0, slow).dropped_outbox_full < 64 && cu_now_ms() - t0 < 60000) {
        hs_msg m;
        memset(&m, 0, sizeof m);
        m.type = HS_MSG_PROPOSAL;
        m.u.proposal.chain_id = CHAIN;
        m.u.proposal.view = ++view;
        cl_sample_block(&m.u.proposal.block, view, 64 * 1024, (uint8_t)view);
        uint64_t b0 = cu_now_ms();
        cl.n[0].net.broadcast(cl.n[0].net.self, &m);
        uint64_t took = cu_now_ms() - b0;
        if (took > worst_ms) worst_ms = took;
        hs_msg_free(&m);
        sent_total++;
        CU_ASSERT_FATAL(CU_AWAIT(cl_peer_stats(&cl, 0, reader).sent == sent_total, 10000));
        hs_key o;
        hs_msg g;
        while (cl.n[0].net.recv(cl.n[0].net.self, 0, &o, &g) == HS_OK) hs_msg_free(&g);
        while (cl.n[1].net.recv(cl.n[1].net.self, 0, &o, &g) == HS_OK) hs_msg_free(&g);
    }
    printf("\n  %llu broadcasts, worst %llu ms; ", (unsigned long long)sent_total,
           (unsigned long long)worst_ms);
    CU_ASSERT(worst_ms < 500);
    hs_transport_peer_stats ps = cl_peer_stats(&cl, 0, slow);
    CU_ASSERT(ps.dropped_outbox_full >= 64);
    /* A sync response queued now survives the flood that follows: it ranks above progress. */
    hs_msg resp;
    cl_sample_msg(&resp, HS_MSG_SYNC_RESPONSE, 9999);
    cl.n[0].net.send(cl.n[0].net.self, slow, &resp);
    for (int k = 0; k < 30; k++) { /* fewer than the reader's outbox holds */
        hs_msg m;
        cl_sample_msg(&m, HS_MSG_PHASE_VOTE, ++view);
        uint64_t b0 = cu_now_ms();
        cl.n[0].net.broadcast(cl.n[0].net.self, &m);
        uint64_t took = cu_now_ms() - b0;
        if (took > worst_ms) worst_ms = took;
        hs_msg_free(&m);
        sent_total++;
    }
    CU_ASSERT(worst_ms < 500);
    uint64_t last_view = view;
    ps = cl_peer_stats(&cl, 0, slow);
    printf("slow peer: sent %llu dropped %llu ", (unsigned long long)ps.sent,
           (unsigned long long)ps.dropped_outbox_full);
    /* Every frame is sent, dropped, queued (<= 32) or in flight (1). */
    CU_ASSERT(ps.sent + ps.dropped_outbox_full <= sent_total + 1);
    CU_ASSERT(ps.sent + ps.dropped_outbox_full + 32 + 1 >= sent_total + 1);

    /* The reading peer lost nothing. */
    CU_ASSERT(CU_AWAIT(cl_peer_stats(&cl, 0, reader).sent == sent_total, 30000));
    CU_ASSERT_EQUAL(cl_peer_stats(&cl, 0, reader).dropped_outbox_full, 0);

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
                got_resp = cl_msg_equal(&g, &resp);
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
    cl_stop(&cl);
    raw_close(r);
}

/* ---- (f) duplicate streams ---- */

static void test_duplicate_streams_resolve_deterministically(void) {
    cluster cl;
    cl_init(&cl, 2, 0, 110);
    cl_start(&cl);
    CU_ASSERT_FATAL(CU_AWAIT(cl_all_connected(&cl), 10000));
    const hs_key *k0 = &cl.n[0].kp.public_key, *k1 = &cl.n[1].kp.public_key;

    /* Node 0 (lower key) dials node 1: that stream is the canonical one. A second stream
     * claiming to be node 1, dialed towards node 0, is not canonical: node 0 keeps its own
     * and ends the newcomer with ALREADY_EXISTS. */
    raw *r = raw_open(cl.n[0].port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.n[1].kp, CHAIN, false));
    expect_status(r, GRPC_STATUS_ALREADY_EXISTS, "duplicate");
    raw_close(r);
    CU_ASSERT_EQUAL(cl_peer_stats(&cl, 0, k1).reconnects, 0);
    CU_ASSERT(cl_peer_stats(&cl, 0, k1).connected);

    /* A second stream claiming to be node 0, dialed towards node 1: same direction as the
     * existing one, so the newer wins and node 0's own stream is ended. Node 0 redials, and
     * its new stream in turn displaces the impostor. */
    r = raw_open(cl.n[1].port, CONNECT);
    CU_ASSERT_FATAL(raw_handshake(r, &cl.n[0].kp, CHAIN, false));
    expect_status(r, GRPC_STATUS_ALREADY_EXISTS, "duplicate");
    raw_close(r);
    CU_ASSERT(CU_AWAIT(cl_all_connected(&cl) && cl_peer_stats(&cl, 0, k1).reconnects == 1, 10000));

    /* Traffic flows on the surviving stream. */
    hs_msg m, g;
    hs_key o;
    cl_sample_msg(&m, HS_MSG_NUDGE, 31);
    cl.n[1].net.send(cl.n[1].net.self, k0, &m);
    CU_ASSERT_EQUAL_FATAL(cl_recv_n(&cl, 0, 1, &o, &g, 5000), 1);
    CU_ASSERT(cl_msg_equal(&m, &g) && cl_index_of(&cl, &o) == 1);
    hs_msg_free(&m);
    hs_msg_free(&g);
    for (size_t i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(cl_stats(&cl, i).refused_handshakes, 0);
        CU_ASSERT_EQUAL(cl_stats(&cl, i).bad_messages, 0);
    }
    cl_stop(&cl);
}

/* ---- the bound on streams in handshake ---- */

static void test_handshake_bound(void) {
    cluster cl;
    cl_init(&cl, 1, 2, 150); /* one node, two configured peers: bound 16 + 2 * 2 = 20 */
    cl.base.handshake_timeout_ms = 20000;
    cl_start(&cl);
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
    CU_ASSERT_EQUAL(cl_stats(&cl, 0).refused_handshakes, 1);
    for (int i = 0; i < 20; i++) raw_close(silent[i]);
    /* Room again once they are gone. */
    raw *r = raw_open(cl.n[0].port, CONNECT);
    CU_ASSERT(CU_AWAIT(raw_handshake(r, &cl.raw[0], CHAIN, false), 10000));
    CU_ASSERT(CU_AWAIT(cl_peer_stats(&cl, 0, &cl.raw[0].public_key).connected, 10000));
    raw_close(r);
    cl_stop(&cl);
}

static const cu_test all_tests[] = {
    {"(c) hostile peers are refused, others unaffected", test_hostile_peers_are_refused},
    {"(d) a peer that never reads only fills its outbox", test_slow_peer_fills_its_outbox_only},
    {"(f) duplicate streams resolve deterministically",
     test_duplicate_streams_resolve_deterministically},
    {"streams in handshake are bounded", test_handshake_bound},
    {NULL, NULL},
};

int main(void) {
    return cl_main("transport_peers", all_tests);
}
