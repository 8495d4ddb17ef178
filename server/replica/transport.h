/* server/replica/transport.h - the replica-to-replica network of hotstuffd over gRPC (service
 * hotstuff.v1.Replica): libhotstuff's hs_network, plus gossip of app transactions and the
 * small SubmitTransaction RPC, on one port.
 *
 * Threads: one completion-queue thread owns every gRPC object. Other threads (the replica's
 * algorithm, sync server and poller threads; the app) hand work to it through locked, bounded
 * queues and a wake-up; they never block on a peer.
 *
 * Streams: one long-lived bidirectional stream per pair of peers. A handshake binds it to the
 * remote's Ed25519 key and the chain id (each side signs the other's fresh challenge); only
 * then are messages on it attributed to that key. Peers come from the configuration; an
 * inbound stream from a key not in the peer list is refused (PERMISSION_DENIED), as is one with
 * a wrong chain id (FAILED_PRECONDITION) or a bad signature (UNAUTHENTICATED), with a log line.
 * (The full list of refusals, the handshake transcript and the drop policy of the bounded
 * queues are in transport.c's header comment and replica.proto.)
 *
 * Ownership: hs_transport_start copies the configuration; the transport owns everything it
 * allocates; hs_transport_stop joins the CQ thread and frees it all.
 */
#ifndef HS_SERVER_TRANSPORT_H
#define HS_SERVER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "hotstuff/network.h"
#include "hotstuff/types.h"

#define HS_TRANSPORT_MAX_ADDR 256

typedef struct hs_transport_peer {
    hs_key key;
    char address[HS_TRANSPORT_MAX_ADDR]; /* "host:port" to dial */
} hs_transport_peer;

typedef struct hs_transport_config {
    hs_keypair me;
    uint64_t chain_id;
    char listen_address[HS_TRANSPORT_MAX_ADDR]; /* "0.0.0.0:7000", "127.0.0.1:0" */
    hs_transport_peer *peers;                   /* validators and listeners alike; copied */
    size_t n_peers;
    size_t max_message_bytes;   /* largest envelope either way (derive from block limits) */
    uint32_t outbox_capacity;   /* messages queued per peer before dropping */
    uint32_t inbox_capacity;    /* messages waiting for Network.recv before dropping */
    uint64_t reconnect_initial_ms;
    uint64_t reconnect_max_ms;
    uint64_t keepalive_time_ms; /* both sides' settings are derived so they accept each other */
    uint64_t handshake_timeout_ms;
    hs_limits limits;           /* decoding bounds for protocol messages */
} hs_transport_config;

/* Sensible defaults for every field except me, chain_id, listen_address and peers. */
void hs_transport_config_defaults(hs_transport_config *c);

typedef struct hs_transport hs_transport;

/* Called on the CQ thread for each transaction gossiped by a peer or submitted through the
 * SubmitTransaction RPC. For RPC submissions the return value becomes the call's status: 0 =
 * OK, or a gRPC status code with `reason` (NUL-terminated, at most 255 bytes) as its message.
 * Must not block. `from` is NULL for RPC submissions. */
typedef int (*hs_transport_tx_fn)(void *ctx, const hs_key *from, const uint8_t *tx, size_t len,
                                  char reason[256]);

/* Binds, starts the CQ thread and begins dialling peers. On failure writes why to err. */
hs_status hs_transport_start(const hs_transport_config *cfg, hs_transport **out, char *err,
                             size_t errlen);
/* The port actually bound (useful with ":0"). */
int hs_transport_port(const hs_transport *t);
/* Where transactions go; set before peers can send any (i.e. right after start). */
void hs_transport_set_tx_handler(hs_transport *t, hs_transport_tx_fn fn, void *ctx);
/* Gossip a transaction to every connected peer (not to self). Never blocks. Transactions
 * are batched: one frame per peer carries what was gossiped since the CQ thread last woke
 * (at most 256 KiB or half of max_message_bytes), so a busy replica sends few large frames.
 * A transaction over that bound is not gossiped (counted in dropped_too_large). */
void hs_transport_gossip_tx(hs_transport *t, const uint8_t *tx, size_t len);
/* libhotstuff's Network interface over this transport (valid until stop). */
hs_network hs_transport_network(hs_transport *t);
/* Closes every stream and the server (in-flight sends get a short grace period), joins the CQ
 * thread, frees everything. Network and gossip calls that overlap stop are safe: a recv blocked
 * in another thread returns HS_ERR_CLOSED, calls that begin after stop started do nothing
 * (recv returns HS_ERR_CLOSED), and stop waits for calls in progress to return before it frees
 * anything. No call may begin after stop has returned. */
void hs_transport_stop(hs_transport *t);

typedef struct hs_transport_peer_stats {
    hs_key key;
    bool connected;
    uint64_t sent, received;
    uint64_t dropped_outbox_full; /* by the drop policy */
    uint64_t reconnects;
} hs_transport_peer_stats;

typedef struct hs_transport_stats {
    uint64_t inbox_dropped;
    uint64_t refused_handshakes; /* wrong chain, unknown key, bad signature, timeout */
    uint64_t bad_messages;       /* undecodable or oversized from an authenticated peer */
    uint64_t dropped_too_large;  /* outbound frames over max_message_bytes, never queued */
    uint64_t dropped_unknown_peer; /* Network.send to a key that is neither ours nor a peer's */
    uint64_t dropped_gossip;       /* transactions not gossiped for lack of memory */
    uint64_t gossip_txs;           /* transactions gossiped (each counted once, not per peer) */
    uint64_t gossip_batches;       /* the frames that carried them */
    uint64_t unimplemented_calls;  /* calls to methods this server does not have */
} hs_transport_stats;

void hs_transport_get_stats(hs_transport *t, hs_transport_stats *out);
/* The port's grpc.health.v1 table ("" and "hotstuff.v1.Replica", SERVING until stop begins),
 * for a daemon that wants to add entries. Valid until stop. */
struct hs_health;
struct hs_health *hs_transport_health(hs_transport *t);
/* Fills up to cap entries; returns the number of peers. */
size_t hs_transport_get_peer_stats(hs_transport *t, hs_transport_peer_stats *out, size_t cap);

#endif
