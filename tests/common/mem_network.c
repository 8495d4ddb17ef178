/* tests/common/mem_network.c - see mem_network.h.
 *
 * A message is encoded once per send or broadcast into a reference-counted blob; each inbox
 * entry points at the blob, and recv decodes it into a fresh hs_msg owned by the receiver.
 * Decoding happens outside the inbox lock so a large BlockSyncResponse does not hold up
 * senders.
 */
#include "mem_network.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct tn_blob {
    atomic_uint refs;
    size_t len;
    uint8_t bytes[];
} tn_blob;

typedef struct tn_item {
    struct tn_item *next;
    hs_key origin;
    tn_blob *blob;
} tn_item;

typedef struct tn_ep {
    struct tn_hub *hub;
    hs_key key;
    atomic_bool disconnected;
    pthread_mutex_t mu; /* guards the queue and the counters */
    pthread_cond_t cv;  /* signalled on arrival and on close */
    tn_item *head, *tail;
    tn_stats st;
} tn_ep;

struct tn_hub {
    size_t n;
    tn_ep *eps;
    atomic_bool closed;
    atomic_uint_fast64_t codec_errors;
};

static void blob_release(tn_blob *b) {
    if (atomic_fetch_sub(&b->refs, 1) == 1) free(b);
}

static tn_ep *find_ep(tn_hub *h, const hs_key *k) {
    for (size_t i = 0; i < h->n; i++) {
        if (memcmp(h->eps[i].key.b, k->b, HS_KEY_LEN) == 0) return &h->eps[i];
    }
    return NULL;
}

tn_hub *tn_hub_new(const hs_key *keys, size_t n) {
    tn_hub *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->eps = calloc(n ? n : 1, sizeof *h->eps);
    if (!h->eps) {
        free(h);
        return NULL;
    }
    atomic_init(&h->closed, false);
    atomic_init(&h->codec_errors, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (size_t i = 0; i < n; i++) {
        if (find_ep(h, &keys[i])) continue; /* duplicate key: one endpoint */
        tn_ep *ep = &h->eps[h->n++];
        ep->hub = h;
        ep->key = keys[i];
        atomic_init(&ep->disconnected, false);
        pthread_mutex_init(&ep->mu, NULL);
        pthread_cond_init(&ep->cv, &ca);
    }
    pthread_condattr_destroy(&ca);
    return h;
}

static void drain_locked(tn_ep *ep) {
    tn_item *it = ep->head;
    while (it) {
        tn_item *next = it->next;
        blob_release(it->blob);
        free(it);
        it = next;
    }
    ep->head = ep->tail = NULL;
    ep->st.queued = 0;
}

void tn_hub_free(tn_hub *h) {
    if (!h) return;
    for (size_t i = 0; i < h->n; i++) {
        drain_locked(&h->eps[i]);
        pthread_mutex_destroy(&h->eps[i].mu);
        pthread_cond_destroy(&h->eps[i].cv);
    }
    free(h->eps);
    free(h);
}

void tn_hub_close(tn_hub *h) {
    atomic_store(&h->closed, true);
    for (size_t i = 0; i < h->n; i++) {
        tn_ep *ep = &h->eps[i];
        pthread_mutex_lock(&ep->mu);
        pthread_cond_broadcast(&ep->cv);
        pthread_mutex_unlock(&ep->mu);
    }
}

/* Encodes m into a blob holding one reference (the caller's). NULL if encoding failed. */
static tn_blob *encode(tn_hub *h, const hs_msg *m) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (hs_msg_encode(m, &buf, &len) != HS_OK) {
        atomic_fetch_add(&h->codec_errors, 1);
        fprintf(stderr, "mem_network: cannot encode %s\n", hs_msg_type_name(m->type));
        free(buf);
        return NULL;
    }
    tn_blob *b = malloc(sizeof *b + len);
    if (b) {
        atomic_init(&b->refs, 1);
        b->len = len;
        memcpy(b->bytes, buf, len);
    }
    free(buf);
    return b;
}

/* Queues blob for `to`, taking a new reference on success. */
static void deliver(tn_ep *from, tn_ep *to, tn_blob *blob) {
    if (atomic_load(&to->disconnected)) {
        pthread_mutex_lock(&to->mu);
        to->st.dropped_disconnected++;
        pthread_mutex_unlock(&to->mu);
        return;
    }
    tn_item *it = malloc(sizeof *it);
    pthread_mutex_lock(&to->mu);
    if (!it || to->st.queued >= TN_INBOX_CAPACITY) {
        to->st.dropped_full++;
        pthread_mutex_unlock(&to->mu);
        free(it);
        return;
    }
    it->next = NULL;
    it->origin = from->key;
    it->blob = blob;
    atomic_fetch_add(&blob->refs, 1);
    if (to->tail) to->tail->next = it;
    else to->head = it;
    to->tail = it;
    to->st.queued++;
    pthread_cond_signal(&to->cv);
    pthread_mutex_unlock(&to->mu);

    pthread_mutex_lock(&from->mu);
    from->st.sent++;
    pthread_mutex_unlock(&from->mu);
}

/* Whether `from` may send at all: the hub is open and the sender is connected. */
static bool may_send(tn_ep *from) {
    if (atomic_load(&from->hub->closed)) return false;
    if (atomic_load(&from->disconnected)) {
        pthread_mutex_lock(&from->mu);
        from->st.dropped_disconnected++;
        pthread_mutex_unlock(&from->mu);
        return false;
    }
    return true;
}

static void net_broadcast(void *self, const hs_msg *m) {
    tn_ep *from = self;
    if (!may_send(from)) return;
    tn_blob *blob = encode(from->hub, m);
    if (!blob) return;
    /* Every key, the sender included: the protocol relies on its own broadcasts looping back
     * (spec §8.1). */
    for (size_t i = 0; i < from->hub->n; i++) deliver(from, &from->hub->eps[i], blob);
    blob_release(blob);
}

static void net_send(void *self, const hs_key *to, const hs_msg *m) {
    tn_ep *from = self;
    tn_ep *dst = find_ep(from->hub, to);
    if (!dst) return; /* unknown keys are dropped, as in the reference */
    if (!may_send(from)) return;
    tn_blob *blob = encode(from->hub, m);
    if (!blob) return;
    deliver(from, dst, blob);
    blob_release(blob);
}

static void net_init_vs(void *self, const hs_validator_set *vs) {}
static void net_update_vs(void *self, const hs_vs_updates *u) {}

static void deadline_after(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* A negative timeout waits until a message arrives or the hub closes. */
static hs_status net_recv(void *self, int timeout_ms, hs_key *origin, hs_msg *out) {
    tn_ep *ep = self;
    tn_hub *h = ep->hub;
    struct timespec dl;
    if (timeout_ms >= 0) deadline_after(&dl, timeout_ms);
    hs_limits lim = hs_limits_default();
    for (;;) {
        pthread_mutex_lock(&ep->mu);
        for (;;) {
            if (atomic_load(&h->closed)) {
                pthread_mutex_unlock(&ep->mu);
                return HS_ERR_CLOSED;
            }
            /* A disconnected endpoint receives nothing, not even what was queued before. */
            if (ep->head && !atomic_load(&ep->disconnected)) break;
            int rc = timeout_ms < 0 ? pthread_cond_wait(&ep->cv, &ep->mu)
                                    : pthread_cond_timedwait(&ep->cv, &ep->mu, &dl);
            if (rc == ETIMEDOUT) {
                pthread_mutex_unlock(&ep->mu);
                return HS_TIMEOUT;
            }
        }
        tn_item *it = ep->head;
        ep->head = it->next;
        if (!ep->head) ep->tail = NULL;
        ep->st.queued--;
        pthread_mutex_unlock(&ep->mu);

        hs_msg m;
        memset(&m, 0, sizeof m);
        hs_status st = hs_msg_decode(it->blob->bytes, it->blob->len, &lim, &m);
        hs_key from = it->origin;
        blob_release(it->blob);
        free(it);
        if (st != HS_OK) {
            atomic_fetch_add(&h->codec_errors, 1);
            fprintf(stderr, "mem_network: cannot decode a message: %s\n", hs_status_str(st));
            continue;
        }
        pthread_mutex_lock(&ep->mu);
        ep->st.received++;
        if ((unsigned)m.type < HS_MSG_TYPE_COUNT) ep->st.received_by_type[m.type]++;
        pthread_mutex_unlock(&ep->mu);
        *origin = from;
        *out = m;
        return HS_OK;
    }
}

bool tn_endpoint(tn_hub *h, const hs_key *me, hs_network *out) {
    tn_ep *ep = find_ep(h, me);
    if (!ep) return false;
    memset(out, 0, sizeof *out);
    out->self = ep;
    out->init_validator_set = net_init_vs;
    out->update_validator_set = net_update_vs;
    out->broadcast = net_broadcast;
    out->send = net_send;
    out->recv = net_recv;
    return true;
}

void tn_set_disconnected(tn_hub *h, const hs_key *k, bool disconnected) {
    tn_ep *ep = find_ep(h, k);
    if (!ep) return;
    pthread_mutex_lock(&ep->mu);
    atomic_store(&ep->disconnected, disconnected);
    pthread_cond_broadcast(&ep->cv); /* a reconnected endpoint may have mail waiting */
    pthread_mutex_unlock(&ep->mu);
}

void tn_clear_inbox(tn_hub *h, const hs_key *k) {
    tn_ep *ep = find_ep(h, k);
    if (!ep) return;
    pthread_mutex_lock(&ep->mu);
    drain_locked(ep);
    pthread_mutex_unlock(&ep->mu);
}

bool tn_get_stats(tn_hub *h, const hs_key *k, tn_stats *out) {
    tn_ep *ep = find_ep(h, k);
    if (!ep) return false;
    pthread_mutex_lock(&ep->mu);
    *out = ep->st;
    pthread_mutex_unlock(&ep->mu);
    return true;
}

uint64_t tn_codec_errors(tn_hub *h) { return atomic_load(&h->codec_errors); }
