/* tests/common/server/tp_cluster.c - see tp_cluster.h. */
#include "tp_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <sodium.h>

#include "cu.h"
#include "samples.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"
#include "wire/mapping.h"

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
void cl_sample_block(hs_block *b, uint64_t height, size_t datum_len, uint8_t fill) {
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
void cl_sample_msg(hs_msg *m, hs_msg_type t, uint64_t salt) {
    memset(m, 0, sizeof *m);
    m->type = t;
    switch (t) {
    case HS_MSG_PROPOSAL:
        m->u.proposal.chain_id = CHAIN;
        m->u.proposal.view = salt;
        cl_sample_block(&m->u.proposal.block, salt, 16, (uint8_t)salt);
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
        cl_sample_block(&s->blocks[0], salt, 8, 1);
        cl_sample_block(&s->blocks[1], salt + 1, 0, 2);
        sample_pc(&s->highest_pc, 3, HS_PHASE_GENERIC, salt);
        break;
    }
    default:
        CU_FAIL("bad type");
    }
}

bool cl_msg_equal(const hs_msg *a, const hs_msg *b) {
    uint8_t *ea = NULL, *eb = NULL;
    size_t la = 0, lb = 0;
    bool eq = hs_msg_encode(a, &ea, &la) == HS_OK && hs_msg_encode(b, &eb, &lb) == HS_OK &&
              la == lb && memcmp(ea, eb, la) == 0;
    free(ea);
    free(eb);
    return eq;
}

/* ---- clusters ---- */


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

int cl_tx_count(tx_log *l) {
    pthread_mutex_lock(&l->mu);
    int c = l->count;
    pthread_mutex_unlock(&l->mu);
    return c;
}

void cl_init(cluster *cl, size_t count, size_t n_raw, uint32_t seed) {
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
void cl_node_start(cluster *cl, size_t i, int port) {
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

void cl_start(cluster *cl) {
    for (size_t i = cl->count; i-- > 0;) cl_node_start(cl, i, 0);
}

/* Peer stats of `of` as seen by node i. */
hs_transport_peer_stats cl_peer_stats(cluster *cl, size_t i, const hs_key *of) {
    hs_transport_peer_stats ps[MAX_NODES + MAX_RAW], none;
    memset(&none, 0, sizeof none);
    size_t n = hs_transport_get_peer_stats(cl->n[i].t, ps, MAX_NODES + MAX_RAW);
    for (size_t k = 0; k < n; k++)
        if (memcmp(ps[k].key.b, of->b, HS_KEY_LEN) == 0) return ps[k];
    CU_FAIL("no such peer");
    return none;
}

bool cl_all_connected(cluster *cl) {
    for (size_t i = 0; i < cl->count; i++)
        for (size_t j = 0; j < cl->count; j++)
            if (i != j && cl->n[i].t && cl->n[j].t &&
                !cl_peer_stats(cl, i, &cl->n[j].kp.public_key).connected)
                return false;
    return true;
}

hs_transport_stats cl_stats(cluster *cl, size_t i) {
    hs_transport_stats s;
    hs_transport_get_stats(cl->n[i].t, &s);
    return s;
}

void cl_stop(cluster *cl) {
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

int cl_index_of(cluster *cl, const hs_key *k) {
    for (size_t i = 0; i < cl->count; i++)
        if (memcmp(cl->n[i].kp.public_key.b, k->b, HS_KEY_LEN) == 0) return (int)i;
    return -1;
}

/* Receives exactly n messages at node i (or fails after timeout_ms). */
size_t cl_recv_n(cluster *cl, size_t i, size_t n, hs_key *origins, hs_msg *msgs,
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

/* ---- a raw gRPC client for hostile peers ---- */


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
void raw_drop_connection(raw *r) {
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

raw *raw_open(int port, const char *method) {
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

bool raw_send(raw *r, const uint8_t *p, size_t len) {
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
bool raw_recv(raw *r, uint8_t **out, size_t *len, int ms) {
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
grpc_status_code raw_status(raw *r, int ms, char *details, size_t cap) {
    if (!r->status_done) raw_pluck(r, RT_STATUS, ms);
    if (!r->status_done) return (grpc_status_code)-1;
    if (details) {
        char *d = grpc_slice_to_c_string(r->details);
        snprintf(details, cap, "%s", d);
        gpr_free(d);
    }
    return r->status;
}

void raw_close(raw *r) {
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

grpc_status_code raw_unary(int port, const char *method, const uint8_t *req, size_t len,
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

bool raw_send_frame(raw *r, Hotstuff__V1__Frame *f) {
    size_t n;
    uint8_t *b = pack_frame(f, &n);
    bool ok = raw_send(r, b, n);
    free(b);
    return ok;
}

bool raw_send_hello(raw *r, const hs_key *key, uint64_t chain) {
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
Hotstuff__V1__ConnectResponse *raw_recv_frame(raw *r, int ms) {
    uint8_t *b;
    size_t n;
    if (!raw_recv(r, &b, &n, ms)) return NULL;
    Hotstuff__V1__ConnectResponse *m = hotstuff__v1__connect_response__unpack(NULL, n, b);
    free(b);
    return m;
}

/* Full handshake as `kp`: Hello, the server's Hello and Auth (checked), our Auth. With
 * forge, our Auth carries a signature by the wrong key. */
bool raw_handshake(raw *r, const hs_keypair *kp, uint64_t chain, bool forge) {
    if (!raw_send_hello(r, &kp->public_key, chain)) return false;
    Hotstuff__V1__ConnectResponse *h = raw_recv_frame(r, 10000);
    CU_ASSERT_FATAL(h && h->frame && h->frame->kind_case == HOTSTUFF__V1__FRAME__KIND_HELLO);
    CU_ASSERT_FATAL(h->frame->hello->key.len == 32 && h->frame->hello->challenge.len == 32);
    CU_ASSERT_EQUAL(h->frame->hello->chain_id, chain);
    memcpy(r->server_key.b, h->frame->hello->key.data, 32);
    memcpy(r->server_challenge, h->frame->hello->challenge.data, 32);
    hotstuff__v1__connect_response__free_unpacked(h, NULL);

    Hotstuff__V1__ConnectResponse *a = raw_recv_frame(r, 10000);
    CU_ASSERT_FATAL(a && a->frame && a->frame->kind_case == HOTSTUFF__V1__FRAME__KIND_AUTH);
    uint8_t tr[160];
    handshake_transcript(chain, r->challenge, r->server_challenge, &kp->public_key,
                         &r->server_key, 1, tr);
    hs_sig sig;
    CU_ASSERT_FATAL(a->frame->auth->signature.len == 64);
    memcpy(sig.b, a->frame->auth->signature.data, 64);
    CU_ASSERT(hs_verify(&r->server_key, tr, sizeof tr, &sig)); /* the server's proof */
    hotstuff__v1__connect_response__free_unpacked(a, NULL);

    handshake_transcript(chain, r->challenge, r->server_challenge, &kp->public_key,
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

bool raw_send_msg(raw *r, const hs_msg *m) {
    hs_pb_arena a = {0};
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_MESSAGE;
    f.message = hs_map_msg_to_pb(&a, m);
    bool ok = raw_send_frame(r, &f);
    hs_pb_arena_free(&a);
    return ok;
}


int cl_main(const char *suite, const cu_test *tests) {
    hs_log_set_level(getenv("HS_TEST_VERBOSE") ? HS_LOG_DEBUG : HS_LOG_ERROR);
    grpc_init();
    int rc = cu_run(suite, tests);
    grpc_shutdown();
    return rc;
}
