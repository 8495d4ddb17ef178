/* server/net/loop.c - see loop.h. */
#include "net/loop.h"

#include <assert.h>
#include <stdio.h>

#include "hotstuff/log.h"
#include "net/pb.h"

static hs_rpc_loop *of_kick(hs_rpc_tag *t) {
    return (hs_rpc_loop *)((char *)t - offsetof(hs_rpc_loop, kick_tag));
}
static hs_rpc_loop *of_shutdown(hs_rpc_tag *t) {
    return (hs_rpc_loop *)((char *)t - offsetof(hs_rpc_loop, shutdown_tag));
}

static void on_kick(hs_rpc_tag *t, bool ok) {
    (void)ok; /* an empty batch on a lame call: it always completes, ok or not */
    hs_rpc_loop *l = of_kick(t);
    hs_rpc_kick_taken(&l->kick); /* before looking at the work, so later work kicks again */
    if (l->ops.on_wake) l->ops.on_wake(l->ops.ctx);
}

static void on_shutdown(hs_rpc_tag *t, bool ok) {
    (void)ok;
    of_shutdown(t)->shutdown_done = true;
}

static void begin_drain(hs_rpc_loop *l, uint64_t now) {
    l->phase = HS_LOOP_DRAINING;
    l->grace_until_ms = now + l->grace_ms;
    if (l->ops.on_drain) l->ops.on_drain(l->ops.ctx);
    grpc_server_shutdown_and_notify(l->srv.server, l->srv.cq, &l->shutdown_tag);
}

static void cancel_all(hs_rpc_loop *l) {
    l->phase = HS_LOOP_CANCELLING;
    grpc_server_cancel_all_calls(l->srv.server);
    if (l->ops.on_cancel) l->ops.on_cancel(l->ops.ctx);
}

/* The last step, once nothing is outstanding. A kick still queued is waited for: its event is
 * on the way, and the call it runs on must outlive it. */
static void maybe_close(hs_rpc_loop *l) {
    if (l->phase == HS_LOOP_RUNNING || l->phase == HS_LOOP_CLOSING) return;
    if (!l->shutdown_done || !l->ops.idle(l->ops.ctx)) return;
    if (!hs_rpc_kick_close(&l->kick)) return;
    l->phase = HS_LOOP_CLOSING;
    grpc_server_destroy(l->srv.server);
    l->srv.server = NULL;
    grpc_completion_queue_shutdown(l->srv.cq);
}

/* The stop phases and the owner's timers; the next time the loop must look again. */
static uint64_t step(hs_rpc_loop *l) {
    uint64_t now = hs_mono_ms(), next = now + HS_LOOP_MAX_WAIT_MS;
    if (l->phase == HS_LOOP_CLOSING) return next;
    if (l->phase == HS_LOOP_RUNNING && atomic_load(&l->stop_requested)) begin_drain(l, now);
    if (l->phase == HS_LOOP_DRAINING) {
        if (now >= l->grace_until_ms || (l->ops.flushed && l->ops.flushed(l->ops.ctx)))
            cancel_all(l);
        else if (l->grace_until_ms < next)
            next = l->grace_until_ms;
    }
    if (l->ops.on_timers) {
        uint64_t due = l->ops.on_timers(l->ops.ctx, now);
        if (due < next) next = due;
    }
    maybe_close(l);
    return next;
}

static void *run(void *arg) {
    hs_rpc_loop *l = arg;
    for (;;) {
        uint64_t next = step(l), now = hs_mono_ms();
        grpc_event ev = grpc_completion_queue_next(
            l->srv.cq, hs_deadline_in_ms(next > now ? next - now : 0), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type == GRPC_QUEUE_TIMEOUT) continue;
        hs_rpc_tag *t = ev.tag;
        assert(t && t->done); /* every tag on this queue begins with an hs_rpc_tag */
        t->done(t, ev.success != 0);
        maybe_close(l);
    }
    assert(l->phase == HS_LOOP_CLOSING); /* the queue is shut down only by maybe_close */
    return NULL;
}

hs_status hs_rpc_loop_open(hs_rpc_loop *l, const char *listen_address,
                           const grpc_channel_args *args, const hs_rpc_method *methods,
                           size_t n, void **registered, const hs_rpc_loop_ops *ops,
                           uint32_t grace_ms, const char *who, char *err, size_t errlen) {
    assert(ops && ops->idle);
    l->ops = *ops;
    l->grace_ms = grace_ms;
    l->who = who;
    l->phase = HS_LOOP_RUNNING;
    l->shutdown_done = false;
    l->thread_started = false;
    l->kick_tag.done = on_kick;
    l->shutdown_tag.done = on_shutdown;
    atomic_store(&l->stop_requested, false);
    hs_status st = hs_rpc_server_open(&l->srv, listen_address, args, methods, n, registered,
                                      who, err, errlen);
    if (st != HS_OK) return st;
    if (!hs_rpc_kick_init(&l->kick, l->srv.cq, &l->kick_tag)) {
        snprintf(err, errlen, "%s: cannot create the wake-up call", who);
        hs_rpc_loop_stop(l); /* nothing is armed yet: the loop ends at once */
        return HS_ERR_STATE;
    }
    return HS_OK;
}

hs_status hs_rpc_loop_start(hs_rpc_loop *l) {
    if (pthread_create(&l->thread, NULL, run, l) != 0) return HS_ERR_STATE;
    l->thread_started = true;
    return HS_OK;
}

void hs_rpc_loop_wake(hs_rpc_loop *l) {
    hs_rpc_wake(&l->kick);
}

void hs_rpc_loop_stop(hs_rpc_loop *l) {
    atomic_store(&l->stop_requested, true);
    if (l->thread_started) {
        hs_rpc_wake(&l->kick);
        pthread_join(l->thread, NULL);
        l->thread_started = false;
    } else {
        run(l); /* never started (or failed to): the same sequence, on this thread */
    }
    hs_rpc_kick_destroy(&l->kick);
    grpc_completion_queue_destroy(l->srv.cq);
    l->srv.cq = NULL;
    grpc_shutdown(); /* pairs hs_rpc_server_open's grpc_init */
}
