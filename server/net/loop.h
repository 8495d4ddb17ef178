/* server/net/loop.h - the completion-queue thread both of hotstuffd's servers run on (the
 * replica port, replica/transport.h; the admin port, admin/admin.h), written once: the queue
 * and server (net/rpc.h), the wake-up, the dispatch of call tags, timers, and the stop
 * sequence. The owner supplies only what is its own, through hs_rpc_loop_ops.
 *
 * TAGS. Every tag the owner passes to gRPC begins with an hs_rpc_tag whose `done` the loop
 * calls with the event's success flag; the owner finds its call from the tag (tags are
 * embedded in their call). The loop's own tags (the wake-up, the server's shutdown notice)
 * are the same kind of thing, so the dispatch is one indirect call and no owner switch
 * needs to know them.
 *
 * STOP, in phases (hs_rpc_loop_phase), each entered once and in order:
 *   RUNNING     serving. hs_rpc_loop_stop (any thread) asks for the next phase.
 *   DRAINING    grpc_server_shutdown_and_notify: no new calls. ops.on_drain runs first (say
 *               NOT_SERVING, end what is not worth waiting for); open calls then get up to
 *               grace_ms to finish, or less once ops.flushed says nothing is left to flush.
 *   CANCELLING  grpc_server_cancel_all_calls, then ops.on_cancel for the owner's client calls.
 *   CLOSING     once the shutdown notice is back, ops.idle says no call or request of the
 *               owner is outstanding and no wake-up is queued: the server is destroyed and
 *               the queue shut down; the thread leaves when the queue reports it.
 * The loop can reach CLOSING from DRAINING when everything finished within the grace.
 *
 * THREADS. The loop thread owns every gRPC object the owner creates on this queue
 * (grpc-core.md §5); callbacks run on it. hs_rpc_loop_wake and hs_rpc_loop_stop are the only
 * calls for other threads. A start whose thread could not be made is undone by
 * hs_rpc_loop_stop running the same loop inline, so a failed start and a stop share one path.
 *
 * Ownership: the owner embeds the hs_rpc_loop; hs_rpc_loop_open's resources are released by
 * hs_rpc_loop_stop (also after a failed hs_rpc_loop_start). A failed open leaves nothing.
 */
#ifndef HS_NET_LOOP_H
#define HS_NET_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/rpc.h"

/* The head of every tag passed to gRPC on a loop's queue. */
typedef struct hs_rpc_tag hs_rpc_tag;
struct hs_rpc_tag {
    void (*done)(hs_rpc_tag *self, bool ok);
};

typedef enum hs_rpc_loop_phase {
    HS_LOOP_RUNNING,
    HS_LOOP_DRAINING,
    HS_LOOP_CANCELLING,
    HS_LOOP_CLOSING,
} hs_rpc_loop_phase;

/* The owner's part; every callback runs on the loop thread with ctx. Only idle is required. */
typedef struct hs_rpc_loop_ops {
    void *ctx;
    /* Another thread called hs_rpc_loop_wake: look at the work it left. */
    void (*on_wake)(void *ctx);
    /* Before every wait: the owner's timers. Returns the next time (hs_mono_ms) it wants to
     * run, or UINT64_MAX; the loop never waits longer than HS_LOOP_MAX_WAIT_MS anyway. */
    uint64_t (*on_timers)(void *ctx, uint64_t now_ms);
    /* Stop began (just before the server's shutdown). */
    void (*on_drain)(void *ctx);
    /* During the grace: true when open calls have nothing more worth waiting for. */
    bool (*flushed)(void *ctx);
    /* The grace is over and the server's calls are cancelled: cancel the owner's client calls. */
    void (*on_cancel)(void *ctx);
    /* No call and no request of the owner is outstanding. */
    bool (*idle)(void *ctx);
} hs_rpc_loop_ops;

#define HS_LOOP_MAX_WAIT_MS 1000

typedef struct hs_rpc_loop {
    hs_rpc_server srv; /* srv.server, srv.cq: for the owner's requests and calls */
    hs_rpc_loop_ops ops;
    uint32_t grace_ms;
    const char *who;

    /* loop thread only */
    hs_rpc_loop_phase phase;
    uint64_t grace_until_ms;
    bool shutdown_done;

    hs_rpc_kick kick;
    hs_rpc_tag kick_tag, shutdown_tag;
    atomic_bool stop_requested;
    pthread_t thread;
    bool thread_started;
} hs_rpc_loop;

/* Opens the server (hs_rpc_server_open's arguments and errors) and the wake-up. The owner
 * arms its requests after this and then calls hs_rpc_loop_start. */
hs_status hs_rpc_loop_open(hs_rpc_loop *l, const char *listen_address,
                           const grpc_channel_args *args, const hs_rpc_method *methods,
                           size_t n, void **registered, const hs_rpc_loop_ops *ops,
                           uint32_t grace_ms, const char *who, char *err, size_t errlen);
/* Starts the loop thread. On failure (HS_ERR_STATE) the caller still calls hs_rpc_loop_stop. */
hs_status hs_rpc_loop_start(hs_rpc_loop *l);
/* Any thread: run ops.on_wake soon. Never blocks on the loop thread. */
void hs_rpc_loop_wake(hs_rpc_loop *l);
/* Any thread but the loop's, once: runs the stop sequence to its end and releases what
 * hs_rpc_loop_open made (the queue, the server, grpc_init's reference). */
void hs_rpc_loop_stop(hs_rpc_loop *l);
/* Loop thread: still serving (new work should be refused with UNAVAILABLE otherwise). */
static inline bool hs_rpc_loop_running(const hs_rpc_loop *l) {
    return l->phase == HS_LOOP_RUNNING;
}

#endif
