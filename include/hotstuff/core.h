/* hotstuff/core.h - the protocol as deterministic state machines, driven one step at a time
 * (architecture §4).
 *
 * hs_core holds everything the algorithm thread owns in the reference: HotStuff, the
 * Pacemaker, the message intake buffer (spec §3.14) and the Block Sync client. It has no
 * threads, reads no clock and does no I/O except through the env's interfaces, so N cores can
 * be driven from one thread with a virtual clock. Same inputs at the same times, same outputs.
 *
 * hs_sync_server answers BlockSyncRequests from KV snapshots and advertises (spec §5.1). In a
 * threaded replica it runs on its own thread; in a simulation, on the same one.
 *
 * Errors: a non-OK status from a step means a KV write failed or the store is corrupt. The
 * object is then halted (every later step returns the same status): the protocol cannot
 * continue safely without knowing what was persisted. Restart from the store.
 */
#ifndef HOTSTUFF_CORE_H
#define HOTSTUFF_CORE_H

#include "hotstuff/app.h"
#include "hotstuff/config.h"
#include "hotstuff/events.h"
#include "hotstuff/kv.h"
#include "hotstuff/network.h"

/* What a core or sync server talks to. Every member is borrowed and must outlive the object. */
typedef struct hs_core_env {
    hs_app app;          /* unused by hs_sync_server */
    hs_network net;      /* broadcast, send, update_validator_set; recv is never called */
    hs_kv_store kv;
    hs_event_handler emit; /* may be NULL; the event is borrowed for the call only */
    void *emit_ctx;
    /* Wall clock for event timestamps, ms since the Unix epoch; NULL means the real clock. */
    uint64_t (*wall_clock_ms)(void *ctx);
    void *clock_ctx;
    uint64_t rng_seed; /* Block Sync's choice of server */
} hs_core_env;

typedef struct hs_core hs_core;

/* Reads the persistent state (spec §4.8 start-up view) and lays out the first epoch's deadlines
 * from now_ms (monotonic, ms). cfg is copied. */
hs_status hs_core_new(const hs_config *cfg, const hs_core_env *env, uint64_t now_ms,
                      hs_core **out);
void hs_core_free(hs_core *c);

/* One step at monotonic time now_ms: the Pacemaker's tick, entering a new view if the view
 * changed, the buffered messages of the current view, then `in` if not NULL, then the Block
 * Sync client's tick. `in` (from `origin`, authenticated by the network) is consumed: the core
 * takes ownership and *in is left empty. Sync requests are not the core's: pass them to the
 * sync server. */
hs_status hs_core_step(hs_core *c, uint64_t now_ms, const hs_key *origin, hs_msg *in);

/* The monotonic time at which hs_core_step must be called again if no message arrives. */
uint64_t hs_core_deadline(const hs_core *c);

uint64_t hs_core_view(const hs_core *c);
bool hs_core_is_syncing(const hs_core *c);
/* Bytes held by the future-view message buffer (spec §3.14 costs). */
uint64_t hs_core_buffer_bytes(const hs_core *c);

typedef struct hs_sync_server hs_sync_server;

hs_status hs_sync_server_new(const hs_config *cfg, const hs_core_env *env, uint64_t now_ms,
                             hs_sync_server **out);
void hs_sync_server_free(hs_sync_server *s);
/* Answers one request from a fresh snapshot; a request for another chain is ignored. */
hs_status hs_sync_server_handle(hs_sync_server *s, uint64_t now_ms, const hs_key *origin,
                                const hs_sync_request *req);
/* Broadcasts AdvertisePC and AdvertiseBlock when an advertise period has passed. */
hs_status hs_sync_server_tick(hs_sync_server *s, uint64_t now_ms);
uint64_t hs_sync_server_deadline(const hs_sync_server *s);

#endif
