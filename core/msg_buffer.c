/* msg_buffer.c - the view-aware buffer of future-view progress messages (spec §3.14).
 *
 * Layout: an array of view buckets sorted ascending by view, each a doubly linked FIFO of
 * messages (oldest at head). Popping takes a bucket's head; eviction takes the tail of the last
 * bucket (highest view, newest first). The number of buckets stays small because the byte
 * capacity bounds the number of messages, so a sorted array with binary search is enough.
 *
 * Sizes are costed as in spec §2.12 so that a configured capacity means what it means for a
 * Rust replica; unlike the reference, costs are subtracted again on pop and expiry (§14.7).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "msg_buffer.h"

/* spec §3.14: the map key (a VerifyingKey, 192 bytes in ed25519-dalek 2.x) plus §2.12 sizes. */
#define COST_KEY 192u
#define COST_PROPOSAL 192u
#define COST_NUDGE 96u
#define COST_PHASE_VOTE 120u
#define COST_NEW_VIEW 96u
#define COST_TIMEOUT_VOTE 120u
#define COST_ADVANCE_VIEW 80u

typedef struct node {
    struct node *prev, *next;
    hs_key origin;
    uint64_t cost;
    hs_msg msg;
} node;

typedef struct bucket {
    uint64_t view;
    node *head, *tail; /* oldest, newest; never both NULL in a stored bucket */
} bucket;

struct hs_msg_buffer {
    uint64_t capacity; /* bytes */
    uint64_t bytes;    /* sum of the costs of the stored messages */
    size_t count;      /* stored messages */
    bucket *b;         /* sorted ascending by view, views unique, none empty */
    size_t n, cap;
};

uint64_t hs_msg_buffer_cost(const hs_msg *m) {
    if (!m) return 0;
    switch (m->type) {
    case HS_MSG_PROPOSAL: return COST_KEY + COST_PROPOSAL;
    case HS_MSG_NUDGE: return COST_KEY + COST_NUDGE;
    case HS_MSG_PHASE_VOTE: return COST_KEY + COST_PHASE_VOTE;
    case HS_MSG_NEW_VIEW: return COST_KEY + COST_NEW_VIEW;
    case HS_MSG_TIMEOUT_VOTE: return COST_KEY + COST_TIMEOUT_VOTE;
    case HS_MSG_ADVANCE_VIEW: return COST_KEY + COST_ADVANCE_VIEW;
    /* Not progress messages with a view: never buffered. */
    case HS_MSG_NONE:
    case HS_MSG_ADVERTISE_BLOCK:
    case HS_MSG_ADVERTISE_PC:
    case HS_MSG_SYNC_REQUEST:
    case HS_MSG_SYNC_RESPONSE:
        return 0;
    }
    return 0;
}

hs_msg_buffer *hs_msg_buffer_new(uint64_t capacity) {
    hs_msg_buffer *b = calloc(1, sizeof *b);
    if (b) b->capacity = capacity;
    return b;
}

static void node_free(node *nd) {
    hs_msg_free(&nd->msg);
    free(nd);
}

/* Frees every node of bucket i and accounts for them; the bucket itself stays in the array. */
static void bucket_clear(hs_msg_buffer *b, size_t i) {
    node *nd = b->b[i].head;
    while (nd) {
        node *next = nd->next;
        assert(b->bytes >= nd->cost && b->count > 0);
        b->bytes -= nd->cost;
        b->count--;
        node_free(nd);
        nd = next;
    }
    b->b[i].head = b->b[i].tail = NULL;
}

void hs_msg_buffer_free(hs_msg_buffer *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) bucket_clear(b, i);
    assert(b->bytes == 0 && b->count == 0);
    free(b->b);
    free(b);
}

/* Index of the first bucket with view >= `view` (b->n if none). */
static size_t lower_bound(const hs_msg_buffer *b, uint64_t view) {
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->b[mid].view < view)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void bucket_remove(hs_msg_buffer *b, size_t i) {
    assert(i < b->n && !b->b[i].head);
    memmove(&b->b[i], &b->b[i + 1], (b->n - i - 1) * sizeof b->b[0]);
    b->n--;
}

/* Makes room for one more bucket, so that inserting cannot fail after eviction started. */
static hs_status reserve_bucket(hs_msg_buffer *b) {
    if (b->n < b->cap) return HS_OK;
    size_t cap = b->cap ? b->cap * 2 : 8;
    if (cap > SIZE_MAX / sizeof b->b[0]) return HS_ERR_NOMEM;
    bucket *nb = realloc(b->b, cap * sizeof nb[0]);
    if (!nb) return HS_ERR_NOMEM;
    b->b = nb;
    b->cap = cap;
    return HS_OK;
}

/* Unlinks and accounts for the newest message of the highest view; returns its cost. */
static uint64_t evict_one(hs_msg_buffer *b) {
    assert(b->n > 0);
    bucket *bk = &b->b[b->n - 1];
    node *nd = bk->tail;
    assert(nd);
    bk->tail = nd->prev;
    if (bk->tail)
        bk->tail->next = NULL;
    else
        bk->head = NULL;
    uint64_t cost = nd->cost;
    assert(b->bytes >= cost && b->count > 0);
    b->bytes -= cost;
    b->count--;
    node_free(nd);
    if (!bk->head) bucket_remove(b, b->n - 1);
    return cost;
}

hs_status hs_msg_buffer_insert(hs_msg_buffer *b, const hs_key *origin, uint64_t view, hs_msg *m,
                               bool *inserted) {
    if (inserted) *inserted = false;
    if (!b || !origin || !m || !inserted) return HS_ERR_INVALID;
    uint64_t cost = hs_msg_buffer_cost(m);
    if (cost == 0) return HS_OK; /* not a bufferable progress message */

    /* The insert rule of spec §3.14, verbatim. */
    bool overloaded = cost > UINT64_MAX - b->bytes || b->bytes + cost > b->capacity;
    bool acceptable = b->count == 0 || view < b->b[b->n - 1].view;
    if (overloaded && !acceptable) return HS_OK;

    /* Allocate before evicting, so a failure leaves the buffer as it was. */
    node *nd = calloc(1, sizeof *nd);
    if (!nd) return HS_ERR_NOMEM;
    hs_status st = reserve_bucket(b);
    if (st != HS_OK) {
        free(nd);
        return st;
    }

    if (overloaded) {
        /* acceptable too: evict from the highest views down, newest first, until at least
         * `cost` bytes are gone (or nothing is left). */
        uint64_t evicted = 0;
        while (evicted < cost && b->count > 0) evicted += evict_one(b);
    }

    nd->origin = *origin;
    nd->cost = cost;
    nd->msg = *m;
    memset(m, 0, sizeof *m);

    size_t i = lower_bound(b, view);
    if (i == b->n || b->b[i].view != view) {
        assert(b->n < b->cap);
        memmove(&b->b[i + 1], &b->b[i], (b->n - i) * sizeof b->b[0]);
        b->b[i].view = view;
        b->b[i].head = b->b[i].tail = NULL;
        b->n++;
    }
    bucket *bk = &b->b[i];
    nd->prev = bk->tail;
    if (bk->tail)
        bk->tail->next = nd;
    else
        bk->head = nd;
    bk->tail = nd;

    b->bytes += cost; /* cannot wrap: checked above, and eviction only lowered bytes */
    b->count++;
    *inserted = true;
    return HS_OK;
}

void hs_msg_buffer_drop_below(hs_msg_buffer *b, uint64_t view) {
    if (!b) return;
    size_t k = lower_bound(b, view); /* buckets [0, k) have views < view */
    if (k == 0) return;
    for (size_t i = 0; i < k; i++) bucket_clear(b, i);
    memmove(&b->b[0], &b->b[k], (b->n - k) * sizeof b->b[0]);
    b->n -= k;
}

bool hs_msg_buffer_pop(hs_msg_buffer *b, uint64_t view, hs_key *origin, hs_msg *out) {
    if (!b || !out) return false;
    size_t i = lower_bound(b, view);
    if (i == b->n || b->b[i].view != view) return false;

    bucket *bk = &b->b[i];
    node *nd = bk->head;
    assert(nd);
    bk->head = nd->next;
    if (bk->head)
        bk->head->prev = NULL;
    else
        bk->tail = NULL;
    assert(b->bytes >= nd->cost && b->count > 0);
    b->bytes -= nd->cost;
    b->count--;
    if (!bk->head) bucket_remove(b, i);

    if (origin) *origin = nd->origin;
    *out = nd->msg; /* ownership moves to the caller */
    free(nd);
    return true;
}

uint64_t hs_msg_buffer_bytes(const hs_msg_buffer *b) { return b ? b->bytes : 0; }

size_t hs_msg_buffer_count(const hs_msg_buffer *b) { return b ? b->count : 0; }
