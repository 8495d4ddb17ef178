/* core/bt_write.c - the block tree's writers: initialize (spec §6.5), insert (§6.3), update
 * with commit and pruning (§3.5, §6.4) and the three single-key setters. Split from the readers
 * (block_tree.c) because only the algorithm thread writes, and each writer builds ONE
 * hs_write_batch; the readers are shared by every subprotocol and the App view.
 */
#include "bt_store.h"
#include "safety.h"

/* ---- batch helpers ---- */

static hs_status b_put(hs_write_batch *b, const bkey *k, const void *v, size_t n) {
    return hs_batch_put(b, k->b, k->len, v, n);
}

static hs_status b_del(hs_write_batch *b, const bkey *k) {
    return hs_batch_delete(b, k->b, k->len);
}

static hs_status b_put_u64(hs_write_batch *b, const bkey *k, uint64_t v) {
    uint8_t e[8];
    put_le64(e, v);
    return b_put(b, k, e, sizeof e);
}

static hs_status b_put_bool(hs_write_batch *b, const bkey *k, bool v) {
    uint8_t e = v ? 1 : 0;
    return b_put(b, k, &e, 1);
}

/* Puts the encoding that `buf` holds (an encoder may have latched oom). */
static hs_status b_put_buf(hs_write_batch *b, const bkey *k, const hs_buf *buf) {
    if (buf->oom) return HS_ERR_NOMEM;
    return b_put(b, k, buf->p, buf->len);
}

static hs_status b_put_pc(hs_write_batch *b, hs_buf *buf, const bkey *k, const hs_pc *pc) {
    hs_buf_reset(buf);
    hs_enc_pc(buf, pc);
    return b_put_buf(b, k, buf);
}

static hs_status b_put_vs(hs_write_batch *b, hs_buf *buf, const bkey *k,
                          const hs_validator_set *vs) {
    hs_buf_reset(buf);
    hs_enc_vs(buf, vs);
    return b_put_buf(b, k, buf);
}

static hs_status b_put_hashes(hs_write_batch *b, hs_buf *buf, const bkey *k, const hs_hash *h,
                              uint32_t n) {
    hs_buf_reset(buf);
    hs_enc_hashes(buf, h, n);
    return b_put_buf(b, k, buf);
}

/* Applies an app update set to committed app state: inserts set 03||k, deletes remove it. */
static hs_status b_apply_app_updates(hs_write_batch *b, hs_buf *kb, const hs_app_updates *u) {
    hs_status st = HS_OK;
    for (uint32_t i = 0; st == HS_OK && i < u->n_inserts; i++) {
        st = app_state_key(kb, u->insert_keys[i].p, u->insert_keys[i].len);
        if (st == HS_OK)
            st = hs_batch_put(b, kb->p, kb->len, u->insert_values[i].p, u->insert_values[i].len);
    }
    for (uint32_t i = 0; st == HS_OK && i < u->n_deletes; i++) {
        st = app_state_key(kb, u->delete_keys[i].p, u->delete_keys[i].len);
        if (st == HS_OK) st = hs_batch_delete(b, kb->p, kb->len);
    }
    return st;
}

static hs_status write_batch(const hs_kv_store *kv, const hs_write_batch *b) {
    if (hs_batch_count(b) == 0) return HS_OK;
    return kv->write(kv->self, b);
}

/* ---- initialize (spec §6.5) ---- */

hs_status hs_bt_initialize(const hs_kv_store *kv, const hs_app_updates *initial_app_state,
                           const hs_vss *vss) {
    hs_kv_reader r = hs_kv_store_reader(kv);
    bkey k = key_single(HS_KEY_HIGHEST_PC);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(&r, &k, &v, &vlen);
    free(v);
    if (st == HS_OK) {
        hs_log(HS_LOG_ERROR, MOD, "initialize: the block tree is already initialised");
        return HS_ERR_STATE;
    }
    if (st != HS_NOT_FOUND) return st;

    hs_write_batch *b = hs_batch_new();
    if (!b) return HS_ERR_NOMEM;
    hs_buf buf;
    hs_buf_init(&buf);
    hs_pc genesis = {0};
    hs_pc_genesis(&genesis);

    st = initial_app_state ? b_apply_app_updates(b, &buf, initial_app_state) : HS_OK;
    bkey cvs = key_single(HS_KEY_COMMITTED_VALIDATOR_SET);
    bkey pvs = key_single(HS_KEY_PREVIOUS_VALIDATOR_SET);
    bkey uh = key_single(HS_KEY_VALIDATOR_SET_UPDATE_BLOCK_HEIGHT);
    bkey dec = key_single(HS_KEY_VALIDATOR_SET_UPDATE_DECIDED);
    bkey lock = key_single(HS_KEY_LOCKED_PC);
    bkey hve = key_single(HS_KEY_HIGHEST_VIEW_ENTERED);
    if (st == HS_OK) st = b_put_vs(b, &buf, &cvs, &vss->committed);
    if (st == HS_OK) st = b_put_vs(b, &buf, &pvs, &vss->previous);
    if (st == HS_OK && vss->has_update_height) st = b_put_u64(b, &uh, vss->update_height);
    if (st == HS_OK) st = b_put_bool(b, &dec, vss->update_decided);
    if (st == HS_OK) st = b_put_pc(b, &buf, &lock, &genesis);
    if (st == HS_OK) st = b_put_u64(b, &hve, 0);
    if (st == HS_OK) st = b_put_pc(b, &buf, &k, &genesis);
    if (st == HS_OK) st = write_batch(kv, b);

    hs_pc_free(&genesis);
    hs_buf_free(&buf);
    hs_batch_free(b);
    return st;
}

/* ---- insert (spec §6.3) ---- */

/* A re-inserted block (same hash, data not hashed) may carry fewer datums than the stored copy:
 * delete the stored extra datum keys so no orphan survives pruning. */
static hs_status drop_stale_datums(const hs_kv_reader *r, hs_write_batch *b, const hs_block *blk) {
    uint32_t old;
    hs_status st = hs_bt_block_data_len(r, &blk->hash, &old);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    if (old > stored_limits().max_datums) return corrupt("block data length", &blk->hash);
    for (uint32_t i = blk->data.n; st == HS_OK && i < old; i++) {
        bkey k = key_datum(&blk->hash, i);
        st = b_del(b, &k);
    }
    return st;
}

/* children(parent) += child, read from the store (spec §6.3; duplicates allowed, §14.26). */
static hs_status append_child(const hs_kv_reader *r, hs_write_batch *b, hs_buf *buf,
                              const hs_hash *parent, const hs_hash *child) {
    hs_hash *kids;
    uint32_t n;
    hs_status st = hs_bt_children(r, parent, &kids, &n);
    if (st != HS_OK) return st;
    hs_hash *more = n == UINT32_MAX ? NULL : realloc(kids, ((size_t)n + 1) * sizeof *more);
    if (!more) {
        free(kids);
        return HS_ERR_NOMEM;
    }
    more[n] = *child;
    bkey k = key_hash(HS_KEY_BLOCK_TO_CHILDREN, parent);
    st = b_put_hashes(b, buf, &k, more, n + 1);
    free(more);
    return st;
}

static hs_status insert_into(const hs_kv_reader *r, hs_write_batch *b, hs_buf *buf,
                             const hs_block *blk, const hs_app_updates *asu,
                             const hs_vs_updates *vsu) {
    const hs_hash *h = &blk->hash;
    bkey k_height = key_field(h, HS_BLOCK_FIELD_HEIGHT);
    bkey k_justify = key_field(h, HS_BLOCK_FIELD_JUSTIFY);
    bkey k_data_hash = key_field(h, HS_BLOCK_FIELD_DATA_HASH);
    bkey k_data_len = key_field(h, HS_BLOCK_FIELD_DATA_LEN);
    bkey k_newest = key_single(HS_KEY_NEWEST_BLOCK);
    uint8_t len[4];
    put_le32(len, blk->data.n);

    hs_status st = drop_stale_datums(r, b, blk);
    if (st == HS_OK) st = b_put_u64(b, &k_height, blk->height);
    if (st == HS_OK) st = b_put_pc(b, buf, &k_justify, &blk->justify);
    if (st == HS_OK) st = b_put(b, &k_data_hash, blk->data_hash.b, HS_HASH_LEN);
    if (st == HS_OK) st = b_put(b, &k_data_len, len, sizeof len);
    for (uint32_t i = 0; st == HS_OK && i < blk->data.n; i++) {
        bkey k = key_datum(h, i); /* raw datum bytes, no length prefix */
        st = b_put(b, &k, blk->data.items[i].p, blk->data.items[i].len);
    }
    if (st == HS_OK) st = b_put(b, &k_newest, h->b, HS_HASH_LEN);
    if (st == HS_OK && asu) {
        bkey k = key_hash(HS_KEY_PENDING_APP_STATE_UPDATES, h);
        hs_buf_reset(buf);
        hs_enc_app_updates(buf, asu);
        st = b_put_buf(b, &k, buf);
    }
    if (st == HS_OK && vsu) { /* Some(empty) still makes a VS-updating block */
        bkey k = key_hash(HS_KEY_VALIDATOR_SET_UPDATES_STATUS, h);
        hs_buf_reset(buf);
        hs_put_u8(buf, VSU_TAG_PENDING);
        hs_enc_vs_updates(buf, vsu);
        st = b_put_buf(b, &k, buf);
    }
    if (st == HS_OK) st = append_child(r, b, buf, &blk->justify.block, h);
    return st;
}

hs_status hs_bt_insert(const hs_kv_store *kv, const hs_block *blk, const hs_app_updates *asu,
                       const hs_vs_updates *vsu) {
    hs_kv_reader r = hs_kv_store_reader(kv);
    /* A block already in the tree is left as it is. The reference writes it again (spec
     * §6.3, §14.26), which after its commit turns its VS status from Committed back to Pending
     * and brings back pending app updates of a committed block: certificates for it are then
     * checked against the wrong validator set, and the transition to the new set can never be
     * decided (a permanent stall the simulator found, reached through a re-proposal). Same hash,
     * same content: there is nothing to write. */
    bool known = false;
    hs_status kst = hs_bt_contains(&r, &blk->hash, &known);
    if (kst != HS_OK) return kst;
    if (known) return HS_OK;
    hs_write_batch *b = hs_batch_new();
    if (!b) return HS_ERR_NOMEM;
    hs_buf buf;
    hs_buf_init(&buf);
    hs_status st = insert_into(&r, b, &buf, blk, asu, vsu);
    if (st == HS_OK) st = write_batch(kv, b);
    hs_buf_free(&buf);
    hs_batch_free(b);
    return st;
}

/* ---- update (spec §3.5) with commit and pruning (spec §6.4) ---- */

/* A reader of the tree as the store will hold it once the batch is written: the batch's own
 * last op on a key wins over the store. Commit steps that must see what earlier steps of the
 * same batch did (children lists rewritten, branches already pruned) read through this. */
typedef struct overlay {
    hs_kv_reader base;
    const hs_write_batch *b;
} overlay;

static hs_status overlay_get(void *self, const uint8_t *key, size_t klen, uint8_t **val,
                             size_t *vlen) {
    const overlay *o = self;
    hs_kv_op op;
    const uint8_t *p;
    size_t n;
    assert(o->b != NULL);
    hs_status st = hs_batch_lookup(o->b, key, klen, &op, &p, &n);
    if (st == HS_NOT_FOUND) return o->base.get(o->base.self, key, klen, val, vlen);
    if (st != HS_OK) return st;
    if (op == HS_KV_DELETE) return HS_NOT_FOUND;
    *val = malloc(n ? n : 1);
    if (!*val) return HS_ERR_NOMEM;
    if (n) memcpy(*val, p, n);
    *vlen = n;
    return HS_OK;
}

typedef struct upd {
    hs_kv_reader r;     /* the tree before the update: every decision reads this */
    overlay ov;
    hs_kv_reader after; /* the tree with the batch so far applied */
    hs_write_batch *b;
    hs_buf buf; /* scratch encoding buffer */
} upd;

/* Was this block's height key already deleted by this batch? (A children list may name a
 * block twice, spec §14.26; each branch is deleted once.) */
static bool pruned_in_batch(const upd *u, const hs_hash *h) {
    bkey k = key_field(h, HS_BLOCK_FIELD_HEIGHT);
    hs_kv_op op;
    const uint8_t *p;
    size_t n;
    return hs_batch_lookup(u->b, k.b, k.len, &op, &p, &n) == HS_OK && op == HS_KV_DELETE;
}

/* Deletes every key of block h (spec §6.4 step 2) and pushes its children onto the stack. */
static hs_status prune_one(upd *u, const hs_hash *h, hash_vec *stack) {
    hs_hash *kids;
    uint32_t nk;
    hs_status st = hs_bt_children(&u->after, h, &kids, &nk);
    if (st != HS_OK) return st;
    for (uint32_t i = 0; st == HS_OK && i < nk; i++) st = hash_vec_push(stack, &kids[i]);
    free(kids);
    if (st != HS_OK) return st;

    uint32_t len = 0;
    st = hs_bt_block_data_len(&u->after, h, &len);
    if (st == HS_NOT_FOUND) { /* only stray keys left: delete those */
        st = HS_OK;
        len = 0;
    }
    if (st != HS_OK) return st;
    if (len > stored_limits().max_datums) return corrupt("block data length", h);

    const bkey keys[] = {
        key_hash(HS_KEY_BLOCK_TO_CHILDREN, h),
        key_hash(HS_KEY_PENDING_APP_STATE_UPDATES, h),
        key_hash(HS_KEY_VALIDATOR_SET_UPDATES_STATUS, h),
        key_field(h, HS_BLOCK_FIELD_HEIGHT),
        key_field(h, HS_BLOCK_FIELD_JUSTIFY),
        key_field(h, HS_BLOCK_FIELD_DATA_HASH),
        key_field(h, HS_BLOCK_FIELD_DATA_LEN),
    };
    for (size_t i = 0; st == HS_OK && i < sizeof keys / sizeof keys[0]; i++)
        st = b_del(u->b, &keys[i]);
    for (uint32_t i = 0; st == HS_OK && i < len; i++) {
        bkey k = key_datum(h, i);
        st = b_del(u->b, &k);
    }
    return st;
}

/* Deletes the branches rooted at the blocks on the stack, depth-first, without recursion. */
static hs_status prune_branches(upd *u, hash_vec *stack) {
    hs_status st = HS_OK;
    while (st == HS_OK && stack->n > 0) {
        hs_hash h = stack->v[--stack->n];
        if (!pruned_in_batch(u, &h)) st = prune_one(u, &h, stack);
    }
    return st;
}

/* spec §6.4 step 2: prune x's siblings and their descendants; children(p) := [x]. */
static hs_status prune_siblings(upd *u, const hs_hash *p, const hs_hash *x) {
    assert(!hash_eq(p, x)); /* a block is never its own parent (hashes chain) */
    hs_hash *kids;
    uint32_t nk;
    hs_status st = hs_bt_children(&u->after, p, &kids, &nk);
    if (st != HS_OK) return st;
    hash_vec stack = {0};
    for (uint32_t i = 0; st == HS_OK && i < nk; i++)
        if (!hash_eq(&kids[i], x)) st = hash_vec_push(&stack, &kids[i]);
    free(kids);
    if (st == HS_OK) st = prune_branches(u, &stack);
    hash_vec_free(&stack);
    bkey k = key_hash(HS_KEY_BLOCK_TO_CHILDREN, p);
    if (st == HS_OK) st = b_put_hashes(u->b, &u->buf, &k, x, 1);
    return st;
}

/* spec §6.4 step 3: pending app updates become committed state. */
static hs_status commit_app_updates(upd *u, const hs_hash *x) {
    hs_app_updates au = {0};
    hs_status st = hs_bt_pending_app_updates(&u->after, x, &au);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    bkey k = key_hash(HS_KEY_PENDING_APP_STATE_UPDATES, x);
    st = b_apply_app_updates(u->b, &u->buf, &au);
    if (st == HS_OK) st = b_del(u->b, &k);
    hs_app_updates_free(&au);
    return st;
}

/* spec §6.4 step 4: a pending VS update becomes the committed set. The VS status Committed is
 * written under x itself (spec §14.4). The committed set is read through the batch, so it is
 * right even if two VS-updating blocks commit in one batch (the reference reads the store). */
static hs_status commit_vs_updates(upd *u, const hs_hash *x, uint64_t height,
                                   hs_bt_committed *rec) {
    hs_vsu_status status;
    hs_vs_updates vsu = {0};
    hs_status st = hs_bt_vsu_status(&u->after, x, &status, &vsu);
    if (st != HS_OK || status != HS_VSU_PENDING) return st;

    hs_validator_set old = {0}, next = {0};
    st = hs_bt_committed_vs(&u->after, &old);
    if (st == HS_NOT_FOUND) st = corrupt("committed validator set (missing)", NULL);
    if (st == HS_OK) st = hs_vs_copy(&next, &old);
    if (st == HS_OK) st = hs_vs_apply(&next, &vsu);
    bkey k_cvs = key_single(HS_KEY_COMMITTED_VALIDATOR_SET);
    bkey k_pvs = key_single(HS_KEY_PREVIOUS_VALIDATOR_SET);
    bkey k_uh = key_single(HS_KEY_VALIDATOR_SET_UPDATE_BLOCK_HEIGHT);
    bkey k_dec = key_single(HS_KEY_VALIDATOR_SET_UPDATE_DECIDED);
    bkey k_status = key_hash(HS_KEY_VALIDATOR_SET_UPDATES_STATUS, x);
    uint8_t committed = VSU_TAG_COMMITTED;
    if (st == HS_OK) st = b_put_vs(u->b, &u->buf, &k_cvs, &next);
    if (st == HS_OK) st = b_put_vs(u->b, &u->buf, &k_pvs, &old);
    if (st == HS_OK) st = b_put_u64(u->b, &k_uh, height);
    if (st == HS_OK) st = b_put_bool(u->b, &k_dec, false);
    if (st == HS_OK) st = b_put(u->b, &k_status, &committed, 1);
    if (st == HS_OK) {
        rec->has_vsu = true;
        rec->vsu = vsu;
        vsu = (hs_vs_updates){0};
    }
    hs_vs_updates_free(&vsu);
    hs_vs_free(&old);
    hs_vs_free(&next);
    return st;
}

/* spec §6.4 steps 1-5 for one block x. */
static hs_status commit_one(upd *u, const hs_hash *x, hs_bt_committed *rec) {
    uint64_t height;
    hs_pc j = {0};
    hs_status st = hs_bt_block_height(&u->r, x, &height);
    if (st == HS_OK) st = hs_bt_block_justify(&u->r, x, &j);
    if (st == HS_NOT_FOUND) st = corrupt("block (missing while committing)", x);
    if (st != HS_OK) return st;
    hs_hash parent = j.block; /* [0;32] for a genesis block: the genesis blocks' list */
    hs_pc_free(&j);

    rec->block = *x;
    bkey k_at = key_height(height);
    bkey k_hcb = key_single(HS_KEY_HIGHEST_COMMITTED_BLOCK);
    st = b_put(u->b, &k_at, x->b, HS_HASH_LEN);
    if (st == HS_OK) st = prune_siblings(u, &parent, x);
    if (st == HS_OK) st = commit_app_updates(u, x);
    if (st == HS_OK) st = commit_vs_updates(u, x, height, rec);
    if (st == HS_OK) st = b_put(u->b, &k_hcb, x->b, HS_HASH_LEN);
    return st;
}

/* The blocks commit(b) commits: b and its ancestors above the highest committed block, newest
 * first. The walk stops at the first block at or below the highest committed height (or at the
 * highest committed block itself), which equals filtering the whole chain by height since
 * committed heights form the chain below (spec §6.8), without walking to genesis each time. */
static hs_status uncommitted_chain(const upd *u, const hs_hash *b, hash_vec *out) {
    hs_hash hcb;
    uint64_t hcb_height = 0;
    hs_status st = hs_bt_highest_committed_block(&u->r, &hcb);
    bool has_hcb = st == HS_OK;
    if (st != HS_OK && st != HS_NOT_FOUND) return st;
    if (has_hcb && (st = hs_bt_highest_committed_height(&u->r, &hcb_height)) != HS_OK) return st;

    hs_hash cur = *b;
    for (;;) {
        if (has_hcb && hash_eq(&cur, &hcb)) return HS_OK;
        uint64_t height;
        st = hs_bt_block_height(&u->r, &cur, &height);
        if (st == HS_NOT_FOUND) st = corrupt("block height (missing while committing)", &cur);
        if (st != HS_OK) return st;
        if (has_hcb && height <= hcb_height) return HS_OK;
        if ((st = hash_vec_push(out, &cur)) != HS_OK) return st;
        bool genesis;
        st = bt_step_down(&u->r, &cur, &genesis, "block justify (missing while committing)");
        if (st != HS_OK) return st;
        if (genesis) return HS_OK;
    }
}

/* spec §6.4 commit(b), oldest first, recording the committed blocks in res. */
static hs_status commit(upd *u, const hs_hash *b, hs_bt_update_result *res) {
    assert(res->n_committed == 0 && res->committed == NULL); /* one commit per update */
    hash_vec chain = {0};
    hs_status st = uncommitted_chain(u, b, &chain);
    if (st == HS_OK && chain.n > UINT32_MAX) st = HS_ERR_LIMIT;
    if (st == HS_OK && chain.n > 0) {
        res->committed = calloc(chain.n, sizeof *res->committed);
        if (!res->committed) st = HS_ERR_NOMEM;
    }
    for (size_t i = chain.n; st == HS_OK && i-- > 0;) {
        st = commit_one(u, &chain.v[i], &res->committed[res->n_committed]);
        res->n_committed++; /* counted even on failure, so the result frees what it holds */
    }
    hash_vec_free(&chain);
    if (st != HS_OK) return st;
    /* The update's return value: the newest committed block's VS updates (spec §3.5, §14.24). */
    for (uint32_t i = res->n_committed; i-- > 0;) {
        if (!res->committed[i].has_vsu) continue;
        st = hs_vs_updates_copy(&res->vsu, &res->committed[i].vsu);
        res->has_vsu = st == HS_OK;
        break;
    }
    return st;
}

/* Decisions whose inputs are missing blocks mean the caller broke the precondition (justify
 * passed the safety gate, so its block is stored). */
static hs_status precondition(hs_status st, const char *what) {
    if (st != HS_NOT_FOUND) return st;
    hs_log(HS_LOG_ERROR, MOD, "update: %s refers to a block not in the tree", what);
    return HS_ERR_INVALID;
}

static hs_status update_into(upd *u, const hs_pc *justify, hs_bt_update_result *res) {
    /* 1. HIGHEST_PC */
    hs_pc hpc = {0};
    hs_status st = hs_bt_highest_pc(&u->r, &hpc);
    if (st == HS_NOT_FOUND) {
        hs_log(HS_LOG_ERROR, MOD, "update: the block tree is not initialised");
        return HS_ERR_STATE;
    }
    if (st != HS_OK) return st;
    bool higher = justify->view > hpc.view;
    hs_pc_free(&hpc);
    bkey k_hpc = key_single(HS_KEY_HIGHEST_PC);
    if (higher && (st = b_put_pc(u->b, &u->buf, &k_hpc, justify)) != HS_OK) return st;
    res->highest_pc_updated = higher;

    /* 2. LOCKED_PC */
    bool has = false;
    st = precondition(hs_pc_to_lock(&u->r, justify, &has, &res->locked_pc), "pc_to_lock");
    if (st != HS_OK) return st;
    res->locked_pc_updated = has;
    bkey k_lock = key_single(HS_KEY_LOCKED_PC);
    if (has && (st = b_put_pc(u->b, &u->buf, &k_lock, &res->locked_pc)) != HS_OK) return st;

    /* 3. commit */
    hs_hash target;
    st = precondition(hs_block_to_commit(&u->r, justify, &has, &target), "block_to_commit");
    if (st == HS_OK && has) st = commit(u, &target, res);
    if (st != HS_OK) return st;

    /* The Commit PC of a VS-updating block it commits is kept for Block Sync: a peer that
     * missed it can commit the block only with it, since the next block's justify is a Decide
     * PC of the new set, which that peer cannot verify before the commit (sync_server.c). */
    if (justify->phase == HS_PHASE_COMMIT) {
        for (uint32_t i = 0; st == HS_OK && i < res->n_committed; i++) {
            if (!res->committed[i].has_vsu || !hash_eq(&res->committed[i].block, &justify->block))
                continue;
            bkey k_cpc = key_hash(HS_KEY_VS_UPDATE_COMMIT_PC, &justify->block);
            st = b_put_pc(u->b, &u->buf, &k_cpc, justify);
        }
        if (st != HS_OK) return st;
    }

    /* 4. a Decide PC ends the VS transition, overriding a false written by step 3 */
    bkey k_dec = key_single(HS_KEY_VALIDATOR_SET_UPDATE_DECIDED);
    if (justify->phase == HS_PHASE_DECIDE) st = b_put_bool(u->b, &k_dec, true);
    return st;
}

hs_status hs_bt_update(const hs_kv_store *kv, const hs_pc *justify, hs_bt_update_result *res) {
    assert(kv && justify && res);
    *res = (hs_bt_update_result){0};
    upd u = {.r = hs_kv_store_reader(kv)};
    u.ov = (overlay){.base = u.r};
    u.after = (hs_kv_reader){.self = &u.ov, .get = overlay_get};
    u.b = hs_batch_new();
    if (!u.b) return HS_ERR_NOMEM;
    u.ov.b = u.b;
    hs_buf_init(&u.buf);

    hs_status st = update_into(&u, justify, res);
    if (st == HS_OK) st = write_batch(kv, u.b);
    if (st != HS_OK) hs_bt_update_result_free(res);

    hs_buf_free(&u.buf);
    hs_batch_free(u.b);
    return st;
}

void hs_bt_update_result_free(hs_bt_update_result *r) {
    hs_pc_free(&r->locked_pc);
    for (uint32_t i = 0; i < r->n_committed; i++) hs_vs_updates_free(&r->committed[i].vsu);
    free(r->committed);
    hs_vs_updates_free(&r->vsu);
    *r = (hs_bt_update_result){0};
}

/* ---- the single-key writers (spec §6.9) ---- */

static hs_status write_one(const hs_kv_store *kv, const bkey *k, const void *v, size_t n) {
    hs_write_batch *b = hs_batch_new();
    if (!b) return HS_ERR_NOMEM;
    hs_status st = b_put(b, k, v, n);
    if (st == HS_OK) st = kv->write(kv->self, b);
    hs_batch_free(b);
    return st;
}

static hs_status write_u64(const hs_kv_store *kv, uint8_t prefix, uint64_t v) {
    bkey k = key_single(prefix);
    uint8_t e[8];
    put_le64(e, v);
    return write_one(kv, &k, e, sizeof e);
}

hs_status hs_bt_set_highest_view_entered(const hs_kv_store *kv, uint64_t view) {
    return write_u64(kv, HS_KEY_HIGHEST_VIEW_ENTERED, view);
}

hs_status hs_bt_set_highest_view_phase_voted(const hs_kv_store *kv, uint64_t view) {
    return write_u64(kv, HS_KEY_HIGHEST_VIEW_PHASE_VOTED, view);
}

hs_status hs_bt_set_highest_tc(const hs_kv_store *kv, const hs_tc *tc) {
    bkey k = key_single(HS_KEY_HIGHEST_TC);
    hs_buf buf;
    hs_buf_init(&buf);
    hs_enc_tc(&buf, tc);
    hs_status st = buf.oom ? HS_ERR_NOMEM : write_one(kv, &k, buf.p, buf.len);
    hs_buf_free(&buf);
    return st;
}
