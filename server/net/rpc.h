/* server/net/rpc.h - the bottom of the gRPC runtime: channels, listening ports and the
 * wake-up, used by the CQ loop (net/loop.h, under both of hotstuffd's servers) and by every
 * client (the transport's dialer, net/call.h).
 *
 *   - Channels and listening ports are made here and only here (hs_rpc_channel,
 *     hs_rpc_server_open), so transport security and per-call credentials have one home.
 *   - hs_rpc_server_open: grpc_init, one NEXT completion queue, the server with its
 *     registered methods, the port bound and the server started - or, on any failure, all of
 *     it undone and a reason in err. The loop's stop sequence undoes a successful open.
 *   - hs_rpc_kick: the wake-up another thread uses to get the CQ thread's attention: an empty
 *     batch on a never-started call of a lame channel, which gRPC completes at once
 *     (grpc-core.md §10.2; gRPC 1.51 has no other way). At most one kick is queued at a time.
 *
 * Threads: one CQ thread owns every gRPC object it creates (grpc-core.md §5); the kick
 * (hs_rpc_wake) is the only call here made from other threads.
 *
 * Ownership: hs_rpc_server_open's outputs belong to the caller (the loop). Each successful
 * open (and each hs_rpc_channel user that called grpc_init) pairs one grpc_init with one
 * grpc_shutdown.
 */
#ifndef HS_NET_RPC_H
#define HS_NET_RPC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <grpc/grpc.h>

#include "hotstuff/types.h"

/* A channel to target ("host:port") with args. Plaintext today; the one place TLS goes. */
grpc_channel *hs_rpc_channel(const char *target, const grpc_channel_args *args);

/* A method to register: its path and whether its first message arrives with the call (unary
 * and server-streaming requests) rather than by RECV_MESSAGE. */
typedef struct hs_rpc_method {
    const char *path;
    bool payload;
} hs_rpc_method;

typedef struct hs_rpc_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    int port; /* the port bound (useful with ":0") */
} hs_rpc_server;

/* Opens and starts a server on listen_address with args and the n methods; registered[i] is
 * the handle of methods[i] for grpc_server_request_registered_call. `who` prefixes err
 * ("admin: cannot listen on ..."). HS_ERR_IO when the address cannot be bound. */
hs_status hs_rpc_server_open(hs_rpc_server *s, const char *listen_address,
                             const grpc_channel_args *args, const hs_rpc_method *methods,
                             size_t n, void **registered, const char *who, char *err,
                             size_t errlen);

typedef struct hs_rpc_kick {
    pthread_mutex_t mu;
    grpc_channel *lame;
    grpc_call *call;
    void *tag;    /* what the CQ thread sees come back */
    bool pending; /* a kick is queued and the CQ thread has not taken it */
    bool closed;
} hs_rpc_kick;

/* Binds the kick to cq: each kick posts tag. false when gRPC cannot make the call. */
bool hs_rpc_kick_init(hs_rpc_kick *k, grpc_completion_queue *cq, void *tag);
/* Any thread: queue tag unless one is queued already or the kick is closed. Never blocks on
 * the CQ thread. */
void hs_rpc_wake(hs_rpc_kick *k);
/* CQ thread, when tag comes back: later work kicks again. Call before looking at the work. */
void hs_rpc_kick_taken(hs_rpc_kick *k);
/* CQ thread, at the end, before the queue shuts down: refuses further kicks (hs_rpc_kick
 * becomes a no-op) and frees the call and the lame channel. false while a kick is still
 * queued (its event is on the way: try again after it arrives). */
bool hs_rpc_kick_close(hs_rpc_kick *k);
/* Frees what close left (the mutex; after a failed start also the call and channel). Once no
 * other thread can call hs_rpc_wake. */
void hs_rpc_kick_destroy(hs_rpc_kick *k);

#endif
