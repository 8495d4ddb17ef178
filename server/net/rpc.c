/* server/net/rpc.c - see rpc.h. */
#include "net/rpc.h"

#include <assert.h>
#include <stdio.h>

#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "hotstuff/log.h"
#include "net/pb.h"

grpc_channel *hs_rpc_channel(const char *target, const grpc_channel_args *args) {
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, cr, args);
    grpc_channel_credentials_release(cr);
    return ch;
}

/* Shuts cq down and discards what is still queued, until GRPC_QUEUE_SHUTDOWN. */
static void cq_drain(grpc_completion_queue *cq) {
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
}

hs_status hs_rpc_server_open(hs_rpc_server *s, const char *listen_address,
                             const grpc_channel_args *args, const hs_rpc_method *methods,
                             size_t n, void **registered, const char *who, char *err,
                             size_t errlen) {
    hs_grpc_log_to_hs();
    grpc_init();
    s->cq = grpc_completion_queue_create_for_next(NULL);
    s->server = grpc_server_create(args, NULL);
    grpc_server_register_completion_queue(s->server, s->cq, NULL);
    for (size_t i = 0; i < n; i++)
        registered[i] = grpc_server_register_method(
            s->server, methods[i].path, NULL,
            methods[i].payload ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE,
            0);
    grpc_server_credentials *cr = grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->server, listen_address, cr);
    grpc_server_credentials_release(cr);
    if (s->port == 0) {
        snprintf(err, errlen, "%s: cannot listen on %s", who, listen_address);
        grpc_server_destroy(s->server); /* never started: nothing to shut down */
        cq_drain(s->cq);
        grpc_completion_queue_destroy(s->cq);
        s->server = NULL;
        s->cq = NULL;
        grpc_shutdown();
        return HS_ERR_IO;
    }
    grpc_server_start(s->server);
    return HS_OK;
}

bool hs_rpc_kick_init(hs_rpc_kick *k, grpc_completion_queue *cq, void *tag) {
    pthread_mutex_init(&k->mu, NULL);
    k->tag = tag;
    k->pending = k->closed = false;
    k->lame = grpc_lame_client_channel_create(NULL, GRPC_STATUS_UNAVAILABLE, "kick");
    k->call = k->lame ? grpc_channel_create_call(k->lame, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                                 grpc_slice_from_static_string("/hotstuff.v1/kick"),
                                                 NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                      : NULL;
    return k->call != NULL;
}

void hs_rpc_wake(hs_rpc_kick *k) {
    pthread_mutex_lock(&k->mu);
    if (!k->pending && !k->closed) {
        grpc_call_error e = grpc_call_start_batch(k->call, NULL, 0, k->tag, NULL);
        if (e == GRPC_CALL_OK) k->pending = true;
        else hs_log(HS_LOG_ERROR, "rpc", "kick failed: call error %d", (int)e);
    }
    pthread_mutex_unlock(&k->mu);
}

void hs_rpc_kick_taken(hs_rpc_kick *k) {
    pthread_mutex_lock(&k->mu);
    assert(k->pending); /* a kick event without a queued kick is a bug */
    k->pending = false;
    pthread_mutex_unlock(&k->mu);
}

bool hs_rpc_kick_close(hs_rpc_kick *k) {
    pthread_mutex_lock(&k->mu);
    bool pending = k->pending;
    if (!pending) k->closed = true;
    pthread_mutex_unlock(&k->mu);
    if (pending) return false;
    /* No kick can start any more: the call goes now, while its queue is alive. */
    if (k->call) grpc_call_unref(k->call);
    if (k->lame) grpc_channel_destroy(k->lame);
    k->call = NULL;
    k->lame = NULL;
    return true;
}

void hs_rpc_kick_destroy(hs_rpc_kick *k) {
    if (k->call) grpc_call_unref(k->call);
    if (k->lame) grpc_channel_destroy(k->lame);
    k->call = NULL;
    k->lame = NULL;
    pthread_mutex_destroy(&k->mu);
}
