/* tests/common/mem_network.h - an in-process network hub for N replicas (spec §12.1).
 *
 * The hub is created with every replica's key up front, so a replica started later finds the
 * messages sent to it meanwhile waiting in its inbox (like the reference mock network). Each
 * key gets an endpoint with its own bounded inbox; tn_endpoint returns the hs_network a
 * replica uses.
 *
 * Every message is Borsh-encoded when sent and decoded (with hs_limits_default()) when
 * received, so each integration test also exercises the wire codec; a message the codec cannot
 * round-trip is counted (tn_codec_errors) and dropped.
 *
 * Fault hooks: a disconnected endpoint neither sends nor receives (both are dropped, as a
 * crashed or partitioned host would), and tn_hub_close makes every recv return HS_ERR_CLOSED.
 *
 * Thread-safety: every function may be called from any thread, except tn_hub_free, which must
 * run after every replica using the hub was stopped.
 */
#ifndef HS_TEST_MEM_NETWORK_H
#define HS_TEST_MEM_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hotstuff/messages.h"
#include "hotstuff/network.h"

/* Messages an inbox holds at most; beyond that new ones are dropped and counted. */
#define TN_INBOX_CAPACITY 100000

typedef struct tn_hub tn_hub;

/* A hub with one endpoint per key (duplicates are ignored). NULL on allocation failure. */
tn_hub *tn_hub_new(const hs_key *keys, size_t n);
/* Frees the hub and every queued message. Only after the replicas using it were stopped. */
void tn_hub_free(tn_hub *h);
/* Wakes every waiting recv and makes all later ones return HS_ERR_CLOSED; sends are dropped. */
void tn_hub_close(tn_hub *h);

/* The network interface of the endpoint for `me`. Returns false if `me` is not a hub key. The
 * hs_network borrows the hub: it stays valid until tn_hub_free. */
bool tn_endpoint(tn_hub *h, const hs_key *me, hs_network *out);

/* Cut an endpoint off (drop everything it sends and everything sent to it) or reconnect it.
 * Messages already in its inbox stay there. */
void tn_set_disconnected(tn_hub *h, const hs_key *k, bool disconnected);
/* Discard whatever is waiting in an endpoint's inbox (a restarted host has lost its sockets). */
void tn_clear_inbox(tn_hub *h, const hs_key *k);

/* Counters of one endpoint, for tests and diagnostics. */
typedef struct tn_stats {
    uint64_t sent;            /* messages accepted from this endpoint (per recipient) */
    uint64_t received;        /* messages handed to recv */
    uint64_t dropped_full;    /* arrivals dropped because the inbox was full */
    uint64_t dropped_disconnected; /* arrivals or sends dropped while disconnected */
    uint64_t queued;          /* messages waiting in the inbox now */
    uint64_t received_by_type[HS_MSG_TYPE_COUNT];
} tn_stats;
bool tn_get_stats(tn_hub *h, const hs_key *k, tn_stats *out);

/* Messages that failed to encode or decode, over the whole hub. Must stay 0. */
uint64_t tn_codec_errors(tn_hub *h);

#endif
