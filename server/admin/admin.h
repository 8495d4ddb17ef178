/* server/admin/admin.h - hotstuffd's operator service (hotstuff.v1.Admin, proto/hotstuff/v1/
 * admin.proto) with grpc.health.v1.Health and server reflection (v1 and v1alpha), on its own
 * port and its own completion-queue thread.
 *
 * The module knows the daemon only through hs_admin_node: a bundle of callbacks for reading
 * the block tree, the replica's progress, the app state and the mempool. So it can be tested
 * with in-process replicas and restarted while the replica runs.
 *
 * Events: the daemon forwards every event of the replica into hs_admin_publish_event, which
 * never blocks: it copies a compact form of the event into each matching subscriber's bounded
 * queue and wakes the CQ thread. A subscriber whose queue overflows is ended with
 * RESOURCE_EXHAUSTED naming the last committed height delivered to it (it resumes from the
 * next one); nothing is ever skipped silently. CommitBlock events are delivered from the store
 * in height order, so a subscription that starts from a height replays the committed chain
 * and then continues live with no gap and no duplicate.
 *
 * Health entries: "" (the server), "hotstuff.v1.Admin", "grpc.health.v1.Health", both
 * reflection services (SERVING while running, NOT_SERVING once stop begins), and "ready":
 * SERVING only while the replica is not syncing and its committed height changed less than
 * ready_max_commit_age_ms ago.
 *
 * Threads: start/stop from one thread. publish_event and hs_admin_health from any thread,
 * until stop returns (the caller stops forwarding events before calling stop).
 */
#ifndef HS_SERVER_ADMIN_H
#define HS_SERVER_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "net/health.h"
#include "hotstuff/events.h"
#include "hotstuff/kv.h"
#include "hotstuff/replica.h"
#include "hotstuff/types.h"

#define HS_ADMIN_MAX_ADDR 256
#define HS_ADMIN_READY_SERVICE "ready"
#define HS_ADMIN_SERVICE "hotstuff.v1.Admin"

/* What the admin service reads and calls. ctx is passed back to every callback. The block
 * tree is read through snapshots (consistent, from the CQ thread). Optional callbacks may be
 * NULL. Every callback must return promptly: it runs on the admin CQ thread. */
typedef struct hs_admin_node {
    void *ctx;
    /* Required: a snapshot of the replica's store (hs_replica_snapshot or the store's own). */
    hs_status (*snapshot)(void *ctx, hs_kv_reader *out);
    void (*release_snapshot)(void *ctx, hs_kv_reader *snap);
    /* Optional: current view, syncing, drops. Absent: view 0, not syncing. */
    void (*stats)(void *ctx, hs_replica_stats *out);
    /* Optional: replica streams connected now. */
    uint32_t (*connected_peers)(void *ctx);
    /* Optional (absent: SubmitTransaction is UNIMPLEMENTED): add a transaction to the mempool.
     * Returns 0 or a gRPC status code with reason; fills *hash when the bytes were hashed. */
    int (*submit)(void *ctx, const uint8_t *tx, size_t len, hs_hash *hash, char reason[256]);
    /* Optional (absent: GetState is UNIMPLEMENTED): a committed app value (kvapp_read). */
    hs_status (*read_state)(void *ctx, const hs_kv_reader *r, const uint8_t *key, size_t klen,
                            hs_bytes *out);
    /* Optional (absent: wait_for_commit is UNIMPLEMENTED): height a transaction committed at,
     * HS_NOT_FOUND while it has not (kvapp_tx_height). */
    hs_status (*tx_height)(void *ctx, const hs_kv_reader *r, const hs_hash *tx,
                           uint64_t *height);
} hs_admin_node;

typedef struct hs_admin_config {
    char listen_address[HS_ADMIN_MAX_ADDR]; /* "127.0.0.1:7100", ":0" picks a port */
    uint64_t chain_id;
    hs_key key;                    /* this replica's key (reported; decides the role) */
    size_t max_recv_message_bytes; /* requests */
    size_t max_send_message_bytes; /* responses */
    uint32_t max_calls;            /* calls in progress at once; more get RESOURCE_EXHAUSTED */
    uint32_t max_concurrent_streams; /* per HTTP/2 connection */
    uint32_t max_subscribers;      /* Subscribe calls at once */
    uint32_t subscriber_queue;     /* events waiting per subscriber before it is cut off */
    uint32_t list_page;            /* blocks per ListBlocks call */
    uint64_t max_wait_ms;          /* wait_for_commit bound when the call has no deadline */
    uint64_t ready_max_commit_age_ms;
    uint64_t tick_ms;              /* how often watchers, waiters and readiness are checked */
} hs_admin_config;

/* Defaults for everything but listen_address, chain_id and key: 1 MiB requests, 64 MiB
 * responses, 256 calls, 100 streams per connection, 64 subscribers of 1024 events, pages of
 * 100 blocks, 60 s waits, ready within 10 s of a commit, 50 ms ticks. */
void hs_admin_config_defaults(hs_admin_config *c);

typedef struct hs_admin hs_admin;

/* Binds, starts the CQ thread. The node is copied (what it points to is borrowed until stop).
 * On failure writes why to err. */
hs_status hs_admin_start(const hs_admin_config *cfg, const hs_admin_node *node,
                         hs_admin **out, char *err, size_t errlen);
int hs_admin_port(const hs_admin *a);
/* Never blocks; see the header comment. */
void hs_admin_publish_event(hs_admin *a, const hs_event *e);
/* The health table, e.g. to add "hotstuff.v1.Replica" from the daemon. */
hs_health *hs_admin_health(hs_admin *a);
/* Health NOT_SERVING, ends every call (streams get UNAVAILABLE), joins the thread, frees. */
void hs_admin_stop(hs_admin *a);

typedef struct hs_admin_stats {
    uint64_t calls;               /* accepted */
    uint64_t refused_busy;        /* over max_calls or max_subscribers */
    uint64_t subscribers_cut;     /* slow subscribers ended with RESOURCE_EXHAUSTED */
    uint32_t subscribers;         /* now */
} hs_admin_stats;
void hs_admin_get_stats(hs_admin *a, hs_admin_stats *out);

#endif
