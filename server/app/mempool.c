/* server/app/mempool.c - see mempool.h.
 *
 * Each entry sits on two lists: the arrival-ordered doubly linked list, and the chain of its
 * hash bucket. SHA-256 output is uniform, so its first bytes index the buckets directly.
 */
#include "app/mempool.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    struct entry *prev, *next; /* arrival order */
    struct entry *chain;       /* same bucket */
    uint64_t seq;
    hs_hash hash;
    uint32_t len;
    uint8_t tx[]; /* len bytes */
} entry;

struct mempool {
    pthread_mutex_t mu;
    pthread_cond_t added; /* signalled on every add, for mempool_wait_after */
    uint32_t max_txs;
    uint64_t max_bytes;
    entry *head, *tail;
    entry **buckets;
    size_t mask; /* buckets - 1 */
    uint32_t n;
    uint64_t bytes;
    uint64_t next_seq;
};

/* Buckets: the power of two at or above max_txs, capped so a huge bound does not allocate a
 * huge table up front (chains just get longer). */
#define MAX_BUCKETS (1u << 20)

mempool *mempool_new(uint32_t max_txs, uint64_t max_bytes) {
    if (max_txs == 0 || max_bytes == 0) return NULL;
    mempool *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    size_t nb = 16;
    while (nb < max_txs && nb < MAX_BUCKETS) nb *= 2;
    m->buckets = calloc(nb, sizeof *m->buckets);
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    m->mask = nb - 1;
    m->max_txs = max_txs;
    m->max_bytes = max_bytes;
    m->next_seq = 1;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->added, &ca);
    pthread_condattr_destroy(&ca);
    return m;
}

void mempool_free(mempool *m) {
    if (!m) return;
    entry *e = m->head;
    while (e) {
        entry *next = e->next;
        free(e);
        e = next;
    }
    free(m->buckets);
    pthread_cond_destroy(&m->added);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static entry **bucket_of(mempool *m, const hs_hash *h) {
    size_t idx;
    memcpy(&idx, h->b, sizeof idx);
    return &m->buckets[idx & m->mask];
}

/* The link pointing at h's entry (or at the NULL ending its chain): lets remove unlink it. */
static entry **find_link(mempool *m, const hs_hash *h) {
    entry **link = bucket_of(m, h);
    while (*link && memcmp((*link)->hash.b, h->b, HS_HASH_LEN) != 0) link = &(*link)->chain;
    return link;
}

mempool_result mempool_add(mempool *m, const hs_hash *h, const uint8_t *tx, size_t len) {
    if (len > UINT32_MAX) return MEMPOOL_FULL;
    pthread_mutex_lock(&m->mu);
    mempool_result r = MEMPOOL_ADDED;
    entry **link = find_link(m, h);
    if (*link) {
        r = MEMPOOL_DUPLICATE;
    } else if (m->n >= m->max_txs || len > m->max_bytes - m->bytes) {
        r = MEMPOOL_FULL;
    } else {
        entry *e = malloc(sizeof *e + (len ? len : 1));
        if (!e) {
            r = MEMPOOL_NOMEM;
        } else {
            memcpy(e->tx, tx, len);
            e->len = (uint32_t)len;
            e->hash = *h;
            e->seq = m->next_seq++;
            e->chain = NULL;
            *link = e;
            e->next = NULL;
            e->prev = m->tail;
            if (m->tail) m->tail->next = e;
            else m->head = e;
            m->tail = e;
            m->n++;
            m->bytes += len;
            assert(m->n <= m->max_txs && m->bytes <= m->max_bytes); /* the bounds just checked */
            pthread_cond_broadcast(&m->added);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return r;
}

bool mempool_remove(mempool *m, const hs_hash *h) {
    pthread_mutex_lock(&m->mu);
    entry **link = find_link(m, h);
    entry *e = *link;
    if (e) {
        assert(m->n > 0 && m->bytes >= e->len); /* every entry was counted when added */
        *link = e->chain;
        if (e->prev) e->prev->next = e->next;
        else m->head = e->next;
        if (e->next) e->next->prev = e->prev;
        else m->tail = e->prev;
        m->n--;
        m->bytes -= e->len;
        assert((m->n == 0) == (m->head == NULL) && (m->head == NULL) == (m->tail == NULL));
    }
    pthread_mutex_unlock(&m->mu);
    free(e);
    return e != NULL;
}

bool mempool_contains(mempool *m, const hs_hash *h) {
    pthread_mutex_lock(&m->mu);
    bool found = *find_link(m, h) != NULL;
    pthread_mutex_unlock(&m->mu);
    return found;
}

size_t mempool_collect(mempool *m, uint64_t *cursor, size_t max_n, uint64_t max_bytes,
                       mempool_item *out) {
    size_t k = 0;
    uint64_t bytes = 0;
    pthread_mutex_lock(&m->mu);
    entry *e = m->head;
    while (e && e->seq <= *cursor) e = e->next;
    for (; e && k < max_n; e = e->next) {
        assert(e->seq > *cursor); /* arrival order is seq order */
        /* bytes sums 32-bit lengths: the addition cannot overflow. */
        if (k > 0 && bytes + e->len > max_bytes) break;
        if (hs_bytes_set(&out[k].tx, e->tx, e->len) != HS_OK) break;
        out[k].seq = e->seq;
        out[k].hash = e->hash;
        bytes += e->len;
        *cursor = e->seq;
        k++;
    }
    pthread_mutex_unlock(&m->mu);
    return k;
}

void mempool_stats(mempool *m, uint32_t *n_txs, uint64_t *bytes) {
    pthread_mutex_lock(&m->mu);
    if (n_txs) *n_txs = m->n;
    if (bytes) *bytes = m->bytes;
    pthread_mutex_unlock(&m->mu);
}

bool mempool_wait_after(mempool *m, uint64_t cursor, uint64_t timeout_ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(timeout_ms / 1000);
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->mu);
    /* next_seq - 1 is the newest arrival; removals never lower it. */
    while (m->next_seq - 1 <= cursor) {
        if (pthread_cond_timedwait(&m->added, &m->mu, &until) != 0) break;
    }
    bool newer = m->next_seq - 1 > cursor;
    pthread_mutex_unlock(&m->mu);
    return newer;
}
