/* server/net/services.h - the operator services both ports serve, written once: health
 * (grpc.health.v1.Health Check and Watch, net/health.h) and server reflection v1 and v1alpha
 * (net/reflection.h), for grpcurl, load balancers and health probers.
 *
 * A port's acceptor requests these methods like its own and hands each call over with
 * hs_svc_accept before starting any batch on it; from then on the call belongs to the set,
 * runs on the loop thread and frees itself when its last batch completes.
 *   Check       one reply: the entry's status, or NOT_FOUND for an unknown entry.
 *   Watch       the entry's status at once (SERVICE_UNKNOWN for an unknown one), then again
 *               each time it changes (hs_svc_pump), until the client leaves; at stop, the
 *               last status (NOT_SERVING) and then UNAVAILABLE "shutting down".
 *   reflection  one answer per request, in order; OK after the client half-closes.
 *   reply       hs_svc_reply: a port's own unary answer, sent and forgotten.
 * Calls that arrive after stop began end UNAVAILABLE; malformed requests INVALID_ARGUMENT.
 *
 * Ownership: the set borrows its loop, health table and reflection index, which outlive it.
 * The owner's ops.idle includes hs_svc_live(set) == 0, so stop waits for these calls too.
 */
#ifndef HS_NET_SERVICES_H
#define HS_NET_SERVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "net/health.h"
#include "net/loop.h"
#include "net/reflection.h"

typedef enum hs_svc_kind {
    HS_SVC_CHECK,
    HS_SVC_WATCH,
    HS_SVC_REFLECTION,
    HS_SVC_REPLY, /* a unary answer a port made itself (hs_svc_reply) */
} hs_svc_kind;

typedef struct hs_svc_call hs_svc_call;

typedef struct hs_svc_set {
    hs_rpc_loop *loop;
    hs_health *health;
    const hs_reflection *refl;
    hs_svc_call *live;
    size_t n_live;
    uint64_t health_version; /* at the last pump */
} hs_svc_set;

void hs_svc_init(hs_svc_set *s, hs_rpc_loop *loop, hs_health *health,
                 const hs_reflection *refl);
/* Loop thread: takes over call (a server call with no batch started) and payload (the request
 * of Check and Watch; NULL for reflection), whatever happens. */
void hs_svc_accept(hs_svc_set *s, hs_svc_kind kind, grpc_call *call, grpc_byte_buffer *payload);
/* Loop thread: answers call (a server call with no batch started) with reply (may be NULL;
 * taken) and a status, then forgets it: the one-shot replies of a port's own unary methods
 * (the replica port's SubmitTransaction, UNIMPLEMENTED for unknown methods). */
void hs_svc_reply(hs_svc_set *s, grpc_call *call, grpc_byte_buffer *reply,
                  grpc_status_code code, const char *msg);
/* Loop thread: after the health table may have changed, each Watch sends the new status. */
void hs_svc_pump(hs_svc_set *s);
/* No call of the set has a message in flight and every Watch has ended: what a stop's grace
 * waits for (each Watch's NOT_SERVING, then its UNAVAILABLE status) has gone out. */
bool hs_svc_flushed(const hs_svc_set *s);
static inline size_t hs_svc_live(const hs_svc_set *s) {
    return s->n_live;
}

#endif
