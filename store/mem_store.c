/* mem_store.c - the in-memory KV store: a persistent (path-copying) AVL tree.
 *
 * A published tree is immutable. A write builds a new version by applying the whole batch to a
 * private copy of the root path(s), then publishes it by swapping the root pointer under `mu`.
 * Readers and snapshots hold a reference to some root and walk it without any lock, so a
 * snapshot is O(1), never changes, and never blocks the writer or other readers.
 *
 * Memory is managed by atomic reference counts: a node holds one reference to each child and to
 * its entry (the key/value bytes, shared so that copying a node on a path never copies values);
 * the store holds one reference to its current root, and every snapshot or in-flight get one
 * more. Dropping the last reference to a node frees it and drops its references.
 *
 * Transient writes: each write has a generation number `gen`, and every node created by that
 * write carries it. Such a node is private to the write (reachable only through one parent, or
 * as the write's root, so its refcount is 1) and may be mutated in place; any other node is
 * shared and immutable and is copied before it changes (own()). Thus a batch touching k keys
 * copies each path node at most once instead of once per op.
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hotstuff/store.h"

typedef struct entry {
    atomic_uint refs;
    size_t klen, vlen;
    uint8_t data[]; /* key bytes, then value bytes */
} entry;

typedef struct node {
    atomic_uint refs;
    int height; /* of the subtree; a leaf has 1, NULL has 0 */
    uint64_t gen; /* the write that created this node */
    struct node *l, *r;
    entry *e;
} node;

struct hs_mem_store {
    pthread_mutex_t mu;       /* guards root and count: held only to read or swap them */
    pthread_mutex_t write_mu; /* serializes writers (the contract says one, be safe anyway) */
    node *root;
    size_t count;
    uint64_t gen; /* last write generation; guarded by write_mu */
    atomic_bool fail_writes;
};

/* A snapshot: just a counted reference to a root. */
typedef struct mem_snapshot {
    node *root;
} mem_snapshot;

/* ---- reference counting ---- */

static entry *entry_retain(entry *e) {
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

static void entry_release(entry *e) {
    if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) free(e);
}

static node *node_retain(node *n) {
    if (n) atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
    return n;
}

/* Recursion depth is the tree height, at most ~1.44 log2(count). */
static void node_release(node *n) {
    if (!n || atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) != 1) return;
    node_release(n->l);
    node_release(n->r);
    entry_release(n->e);
    free(n);
}

/* ---- keys ---- */

/* memcmp order; a proper prefix sorts before the longer key. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int key_cmp_entry(const uint8_t *k, size_t klen, const entry *e) {
    return key_cmp(k, klen, e->data, e->klen);
}

static const node *tree_find(const node *n, const uint8_t *k, size_t klen) {
    while (n) {
        int c = key_cmp_entry(k, klen, n->e);
        if (c == 0) return n;
        n = c < 0 ? n->l : n->r;
    }
    return NULL;
}

/* Returns a malloc'd copy of the value of k in the tree rooted at n (never NULL on HS_OK, even
 * for an empty value). */
static hs_status tree_get(const node *root, const uint8_t *k, size_t klen, uint8_t **val,
                          size_t *vlen) {
    if ((!k && klen) || !val || !vlen) return HS_ERR_INVALID;
    const node *n = tree_find(root, k, klen);
    if (!n) return HS_NOT_FOUND;
    const entry *e = n->e;
    uint8_t *copy = malloc(e->vlen ? e->vlen : 1);
    if (!copy) return HS_ERR_NOMEM;
    if (e->vlen) memcpy(copy, e->data + e->klen, e->vlen);
    *val = copy;
    *vlen = e->vlen;
    return HS_OK;
}

/* ---- transient AVL updates ---- */

typedef struct tx {
    uint64_t gen;
    node *root;   /* the version being built; a reference owned by the tx */
    size_t count; /* number of keys in root */
    bool failed;  /* an allocation failed: the tx will be discarded */
} tx;

static int height(const node *n) { return n ? n->height : 0; }

static void fix_height(node *n) {
    int hl = height(n->l), hr = height(n->r);
    n->height = 1 + (hl > hr ? hl : hr);
}

/* Makes *slot (non-NULL) mutable by the tx: a private node is returned as is, a shared one is
 * replaced in *slot by a private copy (the slot's reference to the original is dropped). On
 * allocation failure marks the tx failed, leaves *slot alone and returns false. */
static bool own(tx *t, node **slot) {
    node *n = *slot;
    assert(n);
    if (n->gen == t->gen) {
        assert(atomic_load_explicit(&n->refs, memory_order_relaxed) == 1);
        return true;
    }
    node *c = malloc(sizeof *c);
    if (!c) {
        t->failed = true;
        return false;
    }
    atomic_init(&c->refs, 1);
    c->height = n->height;
    c->gen = t->gen;
    c->l = node_retain(n->l);
    c->r = node_retain(n->r);
    c->e = entry_retain(n->e);
    node_release(n);
    *slot = c;
    return true;
}

/* Rotations take a slot holding a node and make it private first. If a copy fails the tree is
 * left valid (if unbalanced): the failed tx is dropped anyway. */
static void rotate_right(tx *t, node **slot) {
    if (!own(t, slot)) return;
    node *n = *slot;
    if (!own(t, &n->l)) return;
    node *l = n->l;
    n->l = l->r; /* references move, no count changes */
    l->r = n;
    fix_height(n);
    fix_height(l);
    *slot = l;
}

static void rotate_left(tx *t, node **slot) {
    if (!own(t, slot)) return;
    node *n = *slot;
    if (!own(t, &n->r)) return;
    node *r = n->r;
    n->r = r->l;
    r->l = n;
    fix_height(n);
    fix_height(r);
    *slot = r;
}

/* Restores the AVL property at *slot, a private node whose subtrees are AVL trees with heights
 * differing by at most 2. */
static void rebalance(tx *t, node **slot) {
    node *n = *slot;
    assert(n->gen == t->gen);
    fix_height(n);
    int bf = height(n->l) - height(n->r);
    if (bf > 1) {
        if (height(n->l->l) < height(n->l->r)) rotate_left(t, &n->l);
        rotate_right(t, slot);
    } else if (bf < -1) {
        if (height(n->r->r) < height(n->r->l)) rotate_right(t, &n->r);
        rotate_left(t, slot);
    }
}

static entry *entry_new(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen) {
    if (klen > SIZE_MAX / 2 || vlen > SIZE_MAX / 2 - klen - sizeof(entry)) return NULL;
    entry *e = malloc(sizeof *e + klen + vlen);
    if (!e) return NULL;
    atomic_init(&e->refs, 1);
    e->klen = klen;
    e->vlen = vlen;
    if (klen) memcpy(e->data, k, klen);
    if (vlen) memcpy(e->data + klen, v, vlen);
    return e;
}

static void tree_put(tx *t, node **slot, const uint8_t *k, size_t klen, const uint8_t *v,
                     size_t vlen) {
    if (t->failed) return;
    if (!*slot) {
        node *n = malloc(sizeof *n);
        entry *e = n ? entry_new(k, klen, v, vlen) : NULL;
        if (!e) {
            free(n);
            t->failed = true;
            return;
        }
        atomic_init(&n->refs, 1);
        n->height = 1;
        n->gen = t->gen;
        n->l = n->r = NULL;
        n->e = e;
        *slot = n;
        t->count++;
        return;
    }
    int c = key_cmp_entry(k, klen, (*slot)->e);
    if (!own(t, slot)) return;
    node *n = *slot;
    if (c == 0) {
        entry *e = entry_new(k, klen, v, vlen);
        if (!e) {
            t->failed = true;
            return;
        }
        entry_release(n->e);
        n->e = e;
        return;
    }
    tree_put(t, c < 0 ? &n->l : &n->r, k, klen, v, vlen);
    rebalance(t, slot);
}

/* Removes the leftmost node of the non-empty subtree at *slot. */
static void tree_del_min(tx *t, node **slot) {
    node *n = *slot;
    if (!n->l) {
        *slot = node_retain(n->r); /* take the child before n (maybe) frees it */
        node_release(n);
        return;
    }
    if (!own(t, slot)) return;
    tree_del_min(t, &(*slot)->l);
    rebalance(t, slot);
}

/* Removes k, which must be present in the subtree at *slot (checked by the caller, so that a
 * delete of an absent key copies nothing). */
static void tree_del(tx *t, node **slot, const uint8_t *k, size_t klen) {
    if (t->failed) return;
    node *n = *slot;
    assert(n);
    int c = key_cmp_entry(k, klen, n->e);
    if (c != 0) {
        if (!own(t, slot)) return;
        n = *slot;
        tree_del(t, c < 0 ? &n->l : &n->r, k, klen);
        rebalance(t, slot);
        return;
    }
    t->count--;
    if (!n->l || !n->r) {
        *slot = node_retain(n->l ? n->l : n->r);
        node_release(n);
        return;
    }
    /* Two children: take over the successor's entry, then remove the successor. */
    if (!own(t, slot)) return;
    n = *slot;
    const node *m = n->r;
    while (m->l) m = m->l;
    entry *succ = entry_retain(m->e);
    tree_del_min(t, &n->r);
    entry_release(n->e);
    n->e = succ;
    rebalance(t, slot);
}

static hs_status apply_op(void *ctx, hs_kv_op op, const uint8_t *key, size_t klen,
                          const uint8_t *val, size_t vlen) {
    tx *t = ctx;
    if (op == HS_KV_PUT)
        tree_put(t, &t->root, key, klen, val, vlen);
    else if (tree_find(t->root, key, klen))
        tree_del(t, &t->root, key, klen);
    return t->failed ? HS_ERR_NOMEM : HS_OK;
}

/* ---- the store ---- */

static node *root_acquire(hs_mem_store *s) {
    pthread_mutex_lock(&s->mu);
    node *r = node_retain(s->root);
    pthread_mutex_unlock(&s->mu);
    return r;
}

static hs_status mem_get(void *self, const uint8_t *key, size_t klen, uint8_t **val,
                         size_t *vlen) {
    hs_mem_store *s = self;
    if (!s) return HS_ERR_INVALID;
    node *root = root_acquire(s);
    hs_status st = tree_get(root, key, klen, val, vlen);
    node_release(root);
    return st;
}

static hs_status mem_write(void *self, const hs_write_batch *b) {
    hs_mem_store *s = self;
    if (!s || !b) return HS_ERR_INVALID;
    if (atomic_load(&s->fail_writes)) return HS_ERR_IO;

    pthread_mutex_lock(&s->write_mu);
    /* Only writers change root, and we are the writer: reading it needs no `mu`. */
    tx t = {.gen = ++s->gen, .root = node_retain(s->root), .count = s->count};
    hs_status st = hs_batch_iterate(b, apply_op, &t);
    if (st == HS_OK && t.failed) st = HS_ERR_NOMEM;
    if (st != HS_OK) {
        node_release(t.root); /* all or nothing: the published tree was never touched */
        pthread_mutex_unlock(&s->write_mu);
        return st;
    }
    pthread_mutex_lock(&s->mu);
    node *old = s->root;
    s->root = t.root;
    s->count = t.count;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->write_mu);
    node_release(old); /* may free a whole old version: do it outside both locks */
    return HS_OK;
}

static hs_status snap_get(void *self, const uint8_t *key, size_t klen, uint8_t **val,
                          size_t *vlen) {
    const mem_snapshot *snap = self;
    if (!snap) return HS_ERR_INVALID;
    return tree_get(snap->root, key, klen, val, vlen);
}

static hs_status mem_snapshot_open(void *self, hs_kv_reader *out) {
    hs_mem_store *s = self;
    if (!s || !out) return HS_ERR_INVALID;
    mem_snapshot *snap = malloc(sizeof *snap);
    if (!snap) return HS_ERR_NOMEM;
    snap->root = root_acquire(s);
    out->self = snap;
    out->get = snap_get;
    return HS_OK;
}

static void mem_snapshot_release(void *self, hs_kv_reader *r) {
    if (!r || !r->self) return;
    mem_snapshot *snap = r->self;
    node_release(snap->root);
    free(snap);
    r->self = NULL;
    r->get = NULL;
}

hs_mem_store *hs_mem_store_new(void) {
    hs_mem_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return NULL;
    }
    if (pthread_mutex_init(&s->write_mu, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    atomic_init(&s->fail_writes, false);
    return s;
}

void hs_mem_store_free(hs_mem_store *s) {
    if (!s) return;
    node_release(s->root); /* snapshots still open keep their versions alive */
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

hs_kv_store hs_mem_store_kv(hs_mem_store *s) {
    hs_kv_store kv = {s, mem_get, mem_write, mem_snapshot_open, mem_snapshot_release};
    return kv;
}

size_t hs_mem_store_count(hs_mem_store *s) {
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    size_t n = s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void hs_mem_store_fail_writes(hs_mem_store *s, bool fail_writes) {
    if (s) atomic_store(&s->fail_writes, fail_writes);
}
