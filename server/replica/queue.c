/* server/replica/queue.c - encoded frames, shared by every outbox that queues them, and the
 * bounded queues with the drop policy (transport.c: OUTBOX AND DROP POLICY, INBOX). */
#include "replica/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Encoded frames: reference-counted, shared by every outbox that queues them.                */

static blob *blob_new(size_t len) {
    if (len > UINT32_MAX) return NULL;
    blob *b = malloc(sizeof *b + (len ? len : 1));
    if (!b) return NULL;
    atomic_init(&b->refs, 1);
    b->len = (uint32_t)len;
    return b;
}

blob *tp_blob_ref(blob *b) {
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

/* acq_rel: the last owner (possibly a gRPC thread, through blob_slice_done) must see every
 * write made before the other owners let go. */
void tp_blob_unref(blob *b) {
    if (!b) return;
    unsigned before = atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel);
    assert(before > 0); /* one unref too many: a double free in waiting */
    if (before == 1) free(b);
}

static void blob_slice_done(void *p) {
    tp_blob_unref(p);
}

/* A byte buffer that reads the blob in place; the slice holds its own blob reference. */
grpc_byte_buffer *tp_blob_to_bb(blob *b) {
    tp_blob_ref(b);
    grpc_slice s = grpc_slice_new_with_user_data(b->data, b->len, blob_slice_done, b);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* Packs a frame as a ConnectRequest. ConnectResponse is wire-identical (replica.proto), so
 * the same bytes serve streams we dialed and streams we accepted. */
blob *tp_frame_pack(Hotstuff__V1__Frame *f) {
    Hotstuff__V1__ConnectRequest req = HOTSTUFF__V1__CONNECT_REQUEST__INIT;
    req.frame = f;
    size_t n = hotstuff__v1__connect_request__get_packed_size(&req);
    blob *b = blob_new(n);
    if (b) hotstuff__v1__connect_request__pack(&req, b->data);
    return b;
}

/* ------------------------------------------------------------------------------------------ */
/* Bounded queues with the drop policy (outboxes and the inbox).                              */




bool tp_evq_init(evq *q, uint32_t cap) {
    memset(q, 0, sizeof *q);
    q->e = calloc(cap, sizeof *q->e);
    q->cap = cap;
    return q->e != NULL;
}

static qent *evq_at(evq *q, uint32_t i) {
    return &q->e[(q->head + i) % q->cap];
}

/* True if the drop policy drops a before b. */
static bool drops_before(const qent *a, const qent *b) {
    if (a->rank != b->rank) return a->rank < b->rank;
    if (a->view != b->view) return a->view < b->view;
    return a->seq < b->seq;
}

static void evq_remove_at(evq *q, uint32_t i) {
    for (; i + 1 < q->n; i++) *evq_at(q, i) = *evq_at(q, i + 1);
    q->n--;
}

/* Index of the entry to drop among the queue and x, or UINT32_MAX for x itself. O(n), only
 * on a full queue. */
static uint32_t evq_victim(evq *q, const qent *x) {
    uint32_t vi = UINT32_MAX;
    const qent *v = x;
    for (uint32_t i = 0; i < q->n; i++) {
        const qent *c = evq_at(q, i);
        if (drops_before(c, v)) v = c, vi = i;
    }
    return vi;
}

/* Appends x (at the tail, or at the head when `front`, keeping x's seq). On a full queue the
 * policy's victim is removed first and returned in *dropped (it may be x itself, which is
 * then not queued). Returns whether something was dropped. */
bool tp_evq_push(evq *q, qent x, bool front, qent *dropped) {
    if (!front) x.seq = q->next_seq++;
    bool full = q->n == q->cap;
    if (full) {
        uint32_t vi = evq_victim(q, &x);
        if (vi == UINT32_MAX) {
            *dropped = x;
            return true;
        }
        *dropped = *evq_at(q, vi);
        evq_remove_at(q, vi);
    }
    if (front) {
        q->head = (q->head + q->cap - 1) % q->cap;
        q->n++;
        *evq_at(q, 0) = x;
    } else {
        *evq_at(q, q->n) = x;
        q->n++;
    }
    assert(q->n <= q->cap); /* the bound every outbox and the inbox promise */
    return full;
}

bool tp_evq_pop(evq *q, qent *out) {
    if (q->n == 0) return false;
    *out = *evq_at(q, 0);
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return true;
}

/* Policy rank and view of a protocol message. */
uint8_t tp_msg_rank(const hs_msg *m, uint64_t *view) {
    *view = 0;
    switch (m->type) {
    case HS_MSG_ADVERTISE_BLOCK:
    case HS_MSG_ADVERTISE_PC: return RANK_ADVERTISE;
    case HS_MSG_SYNC_REQUEST: return RANK_SYNC_REQUEST;
    case HS_MSG_SYNC_RESPONSE: return RANK_SYNC_RESPONSE;
    default: hs_msg_view(m, view); return RANK_PROGRESS;
    }
}
