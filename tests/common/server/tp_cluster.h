/* tests/common/server/tp_cluster.h - fixtures of the replica transport's tests
 * (tests/server/test_transport*.c): sample messages, in-process clusters of transports on
 * 127.0.0.1 with kernel-chosen ports, and "raw" peers.
 *
 * Clusters are started highest key first: the lower key dials the higher one, so every node
 * knows the ports of the nodes it dials. A raw peer is a key configured as a peer but played
 * by a hand-written gRPC client (raw_*), which speaks (or abuses) the stream protocol of
 * replica.proto directly and computes the handshake transcript from the documented format,
 * independently of server/replica/. Every wait is bounded; nothing sleeps for a fixed time.
 */
#ifndef HS_TESTS_TP_CLUSTER_H
#define HS_TESTS_TP_CLUSTER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "cu.h"
#include "hotstuff/v1/replica.pb-c.h"
#include "hotstuff/messages.h"
#include "replica/transport.h"

#define CHAIN 7
#define MAX_NODES 4
#define MAX_RAW 2

/* A test program's main: quiet logs (HS_TEST_VERBOSE=1 for all), gRPC for the raw peers,
 * then cu_run. */
int cl_main(const char *suite, const cu_test *tests);

/* ---- sample messages ---- */

/* A block with one datum of datum_len bytes (filled with `fill`). */
void cl_sample_block(hs_block *b, uint64_t height, size_t datum_len, uint8_t fill);
/* One message of type t, made distinct by salt. */
void cl_sample_msg(hs_msg *m, hs_msg_type t, uint64_t salt);
/* Same encoding. */
bool cl_msg_equal(const hs_msg *a, const hs_msg *b);

/* ---- clusters ---- */

typedef struct cl_node {
    hs_keypair kp;
    hs_transport *t;
    hs_network net;
    int port;
} cl_node;

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
    cl_node n[MAX_NODES]; /* sorted ascending by key */
    size_t count;
    hs_keypair raw[MAX_RAW]; /* peers played by a raw client: configured, never dialed */
    size_t n_raw;
    hs_transport_config base; /* capacities, limits, timeouts */
    size_t max_message[MAX_NODES]; /* per-node override of base.max_message_bytes, if set */
    tx_log tx[MAX_NODES];
} cluster;

/* count nodes and n_raw raw peers with keys from seed; base config for tests (fast redial). */
void cl_init(cluster *cl, size_t count, size_t n_raw, uint32_t seed);
/* Starts node i listening on `port` (0 = any). Nodes with higher keys must be running. */
void cl_node_start(cluster *cl, size_t i, int port);
void cl_start(cluster *cl);
/* Stops every node; each stop must take under 3 s. */
void cl_stop(cluster *cl);
/* Peer stats of `of` as seen by node i. */
hs_transport_peer_stats cl_peer_stats(cluster *cl, size_t i, const hs_key *of);
bool cl_all_connected(cluster *cl);
hs_transport_stats cl_stats(cluster *cl, size_t i);
int cl_index_of(cluster *cl, const hs_key *k);
/* Receives exactly n messages at node i (or fewer, after timeout_ms). */
size_t cl_recv_n(cluster *cl, size_t i, size_t n, hs_key *origins, hs_msg *msgs,
                 int timeout_ms);
/* Transactions node i's tx handler saw. */
int cl_tx_count(tx_log *l);

/* ---- raw peers ---- */

typedef struct raw raw;
/* A call to method over a TCP connection of our own (so raw_drop_connection can cut it). */
raw *raw_open(int port, const char *method);
void raw_close(raw *r);
/* Cuts the client's TCP connection under the call (as if its process died). */
void raw_drop_connection(raw *r);
bool raw_send(raw *r, const uint8_t *p, size_t len);
/* Receives one message into a malloc'd buffer; false on end of stream or timeout (a
 * timed-out receive stays pending and is picked up by the next call). */
bool raw_recv(raw *r, uint8_t **out, size_t *len, int ms);
/* The call's final status (waits up to ms); -1 if none came. */
grpc_status_code raw_status(raw *r, int ms, char *details, size_t cap);
/* One unary call; the reply (truncated to *reply_len) and the status. */
grpc_status_code raw_unary(int port, const char *method, const uint8_t *req, size_t len,
                           uint8_t *reply, size_t *reply_len, char *details, size_t dcap);
/* Frames as the dialer (ConnectRequest), and one ConnectResponse back. */
bool raw_send_frame(raw *r, Hotstuff__V1__Frame *f);
Hotstuff__V1__ConnectResponse *raw_recv_frame(raw *r, int ms);
bool raw_send_hello(raw *r, const hs_key *key, uint64_t chain);
/* Full handshake as kp: Hello, the server's Hello and Auth (checked), our Auth. With forge,
 * our Auth carries a signature by the wrong key. */
bool raw_handshake(raw *r, const hs_keypair *kp, uint64_t chain, bool forge);
bool raw_send_msg(raw *r, const hs_msg *m);

#endif
