/* core/block_tree.c - the persistent block tree's readers (spec §6).
 *
 *   - getters over an hs_kv_reader, one per key of the schema (spec §6.1-6.2, §6.7);
 *   - Block Sync's range read, blocks_from_height_to_newest (spec §5.1);
 *   - the App's speculative view (spec §6.6).
 * The writers (initialize, insert, update with commit/prune) are in bt_write.c; the key schema
 * and codecs both use are in bt_store.h.
 *
 * Stored bytes are treated as possibly damaged: a value that fails to decode is HS_ERR_CORRUPT
 * plus a log line naming the key kind, never a crash. Walks over justify links and children
 * lists use explicit arrays, not recursion: a Byzantine leader can build deep branches.
 */
#include "bt_store.h"


/* ---- block getters (spec §6.2) ---- */

hs_status hs_bt_contains(const hs_kv_reader *r, const hs_hash *h, bool *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_HEIGHT);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    *out = st == HS_OK;
    free(v);
    return st == HS_NOT_FOUND ? HS_OK : st;
}

hs_status hs_bt_block_height(const hs_kv_reader *r, const hs_hash *h, uint64_t *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_HEIGHT);
    return get_u64(r, &k, "block height", h, out);
}

hs_status hs_bt_block_justify(const hs_kv_reader *r, const hs_hash *h, hs_pc *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_JUSTIFY);
    return get_pc(r, &k, "block justify", h, out);
}

hs_status hs_bt_block_data_hash(const hs_kv_reader *r, const hs_hash *h, hs_hash *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_DATA_HASH);
    return get_fixed(r, &k, "block data hash", h, out->b, HS_HASH_LEN);
}

hs_status hs_bt_block_data_len(const hs_kv_reader *r, const hs_hash *h, uint32_t *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_DATA_LEN);
    uint8_t b[4];
    hs_status st = get_fixed(r, &k, "block data length", h, b, sizeof b);
    if (st == HS_OK) *out = le32(b);
    return st;
}

hs_status hs_bt_block_datum(const hs_kv_reader *r, const hs_hash *h, uint32_t i, hs_bytes *out) {
    bkey k = key_datum(h, i);
    return get_bytes_value(r, k.b, k.len, "block datum", h, out);
}

/* All datums 0..len-1; every one must exist (spec §6.2, §14.3: the C port returns them all). */
hs_status hs_bt_block_data(const hs_kv_reader *r, const hs_hash *h, hs_data *out) {
    uint32_t n;
    hs_status st = hs_bt_block_data_len(r, h, &n);
    if (st != HS_OK) return st;
    hs_limits lim = stored_limits();
    if (n > lim.max_datums) return corrupt("block data length", h);
    hs_data d = {0};
    if (n) {
        d.items = calloc(n, sizeof *d.items);
        if (!d.items) return HS_ERR_NOMEM;
        d.n = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        st = hs_bt_block_datum(r, h, i, &d.items[i]);
        if (st == HS_NOT_FOUND) st = corrupt("block datum (missing)", h);
        if (st != HS_OK) {
            hs_data_free(&d);
            return st;
        }
    }
    *out = d;
    return HS_OK;
}

/* The whole block. Absent height key: HS_NOT_FOUND; a block with only some of its keys is
 * corrupt (insert and prune write and delete them together). */
hs_status hs_bt_block(const hs_kv_reader *r, const hs_hash *h, hs_block *out) {
    hs_block b = {0};
    b.hash = *h;
    hs_status st = hs_bt_block_height(r, h, &b.height);
    if (st != HS_OK) return st;
    st = hs_bt_block_justify(r, h, &b.justify);
    if (st == HS_NOT_FOUND) st = corrupt("block justify (missing)", h);
    if (st == HS_OK) {
        st = hs_bt_block_data_hash(r, h, &b.data_hash);
        if (st == HS_NOT_FOUND) st = corrupt("block data hash (missing)", h);
    }
    if (st == HS_OK) {
        st = hs_bt_block_data(r, h, &b.data);
        if (st == HS_NOT_FOUND) st = corrupt("block data length (missing)", h);
    }
    if (st != HS_OK) {
        hs_block_free(&b);
        return st;
    }
    *out = b;
    return HS_OK;
}

hs_status hs_bt_block_at_height(const hs_kv_reader *r, uint64_t height, hs_hash *out) {
    bkey k = key_height(height);
    return get_fixed(r, &k, "block at height", NULL, out->b, HS_HASH_LEN);
}

hs_status hs_bt_children(const hs_kv_reader *r, const hs_hash *h, hs_hash **out, uint32_t *n) {
    *out = NULL;
    *n = 0;
    bkey k = key_hash(HS_KEY_BLOCK_TO_CHILDREN, h);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    if (st == HS_NOT_FOUND) return HS_OK; /* absent: no children */
    if (st != HS_OK) return st;
    hs_rd rd;
    hs_rd_init(&rd, v, vlen);
    /* The count cannot exceed what the value holds; the bound only stops a bogus allocation. */
    uint32_t max = vlen / HS_HASH_LEN > UINT32_MAX ? UINT32_MAX : (uint32_t)(vlen / HS_HASH_LEN);
    st = hs_dec_hashes(&rd, max, out, n);
    if (st == HS_OK && !hs_rd_done(&rd)) {
        free(*out);
        *out = NULL;
        *n = 0;
        st = HS_ERR_INVALID;
    }
    free(v);
    return decoded(st, "children list", h);
}

/* ---- app state, VS status, validator sets (spec §6.2) ---- */


hs_status hs_bt_committed_app_state(const hs_kv_reader *r, const uint8_t *key, size_t klen,
                                    hs_bytes *out) {
    hs_buf kb;
    hs_buf_init(&kb);
    hs_status st = app_state_key(&kb, key, klen);
    if (st == HS_OK) st = get_bytes_value(r, kb.p, kb.len, "committed app state", NULL, out);
    hs_buf_free(&kb);
    return st;
}

hs_status hs_bt_pending_app_updates(const hs_kv_reader *r, const hs_hash *h, hs_app_updates *out) {
    bkey k = key_hash(HS_KEY_PENDING_APP_STATE_UPDATES, h);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    if (st != HS_OK) return st;
    hs_limits lim = stored_limits();
    hs_rd rd;
    hs_rd_init(&rd, v, vlen);
    st = hs_dec_app_updates(&rd, &lim, out);
    if (st == HS_OK && !hs_rd_done(&rd)) {
        hs_app_updates_free(out);
        st = HS_ERR_INVALID;
    }
    free(v);
    return decoded(st, "pending app state updates", h);
}

hs_status hs_bt_vsu_status(const hs_kv_reader *r, const hs_hash *h, hs_vsu_status *status,
                           hs_vs_updates *pending) {
    *status = HS_VSU_NONE;
    bkey k = key_hash(HS_KEY_VALIDATOR_SET_UPDATES_STATUS, h);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    if (st == HS_NOT_FOUND) return HS_OK; /* absent => None */
    if (st != HS_OK) return st;
    st = HS_ERR_INVALID;
    if (vlen == 1 && v[0] == VSU_TAG_NONE) {
        st = HS_OK;
    } else if (vlen == 1 && v[0] == VSU_TAG_COMMITTED) {
        *status = HS_VSU_COMMITTED;
        st = HS_OK;
    } else if (vlen >= 1 && v[0] == VSU_TAG_PENDING) {
        hs_limits lim = stored_limits();
        hs_vs_updates u = {0};
        hs_rd rd;
        hs_rd_init(&rd, v + 1, vlen - 1);
        st = hs_dec_vs_updates(&rd, &lim, &u);
        if (st == HS_OK && !hs_rd_done(&rd)) st = HS_ERR_INVALID;
        if (st == HS_OK) {
            *status = HS_VSU_PENDING;
            if (pending) {
                *pending = u;
                u = (hs_vs_updates){0};
            }
        }
        hs_vs_updates_free(&u);
    }
    free(v);
    return decoded(st, "validator set updates status", h);
}

hs_status hs_bt_committed_vs(const hs_kv_reader *r, hs_validator_set *out) {
    bkey k = key_single(HS_KEY_COMMITTED_VALIDATOR_SET);
    return get_vs(r, &k, "committed validator set", out);
}

hs_status hs_bt_previous_vs(const hs_kv_reader *r, hs_validator_set *out) {
    bkey k = key_single(HS_KEY_PREVIOUS_VALIDATOR_SET);
    return get_vs(r, &k, "previous validator set", out);
}

hs_status hs_bt_vs_update_height(const hs_kv_reader *r, uint64_t *out) {
    bkey k = key_single(HS_KEY_VALIDATOR_SET_UPDATE_BLOCK_HEIGHT);
    return get_u64(r, &k, "validator set update block height", NULL, out);
}

hs_status hs_bt_vs_update_decided(const hs_kv_reader *r, bool *out) {
    bkey k = key_single(HS_KEY_VALIDATOR_SET_UPDATE_DECIDED);
    uint8_t b;
    hs_status st = get_fixed(r, &k, "validator set update decided", NULL, &b, 1);
    if (st != HS_OK) return st;
    if (b > 1) return corrupt("validator set update decided", NULL); /* Borsh bool */
    *out = b == 1;
    return HS_OK;
}

hs_status hs_bt_vss(const hs_kv_reader *r, hs_vss *out) {
    hs_vss s = {0};
    hs_status st = hs_bt_committed_vs(r, &s.committed);
    if (st == HS_OK) st = hs_bt_previous_vs(r, &s.previous);
    if (st == HS_OK) {
        st = hs_bt_vs_update_height(r, &s.update_height);
        s.has_update_height = st == HS_OK;
        if (st == HS_NOT_FOUND) st = HS_OK; /* absent => None */
    }
    if (st == HS_OK) st = hs_bt_vs_update_decided(r, &s.update_decided);
    if (st != HS_OK) {
        hs_vss_free(&s);
        return st;
    }
    *out = s;
    return HS_OK;
}

/* ---- the singletons (spec §6.2) ---- */

hs_status hs_bt_vs_update_commit_pc(const hs_kv_reader *r, const hs_hash *h, hs_pc *out) {
    bkey k = key_hash(HS_KEY_VS_UPDATE_COMMIT_PC, h);
    return get_pc(r, &k, "VS update commit PC", h, out);
}

hs_status hs_bt_locked_pc(const hs_kv_reader *r, hs_pc *out) {
    bkey k = key_single(HS_KEY_LOCKED_PC);
    return get_pc(r, &k, "locked PC", NULL, out);
}

hs_status hs_bt_highest_pc(const hs_kv_reader *r, hs_pc *out) {
    bkey k = key_single(HS_KEY_HIGHEST_PC);
    return get_pc(r, &k, "highest PC", NULL, out);
}

hs_status hs_bt_highest_tc(const hs_kv_reader *r, hs_tc *out) {
    bkey k = key_single(HS_KEY_HIGHEST_TC);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    if (st != HS_OK) return st;
    hs_limits lim = stored_limits();
    st = hs_decode_tc(v, vlen, &lim, out);
    free(v);
    return decoded(st, "highest TC", NULL);
}

hs_status hs_bt_highest_view_entered(const hs_kv_reader *r, uint64_t *out) {
    bkey k = key_single(HS_KEY_HIGHEST_VIEW_ENTERED);
    return get_u64(r, &k, "highest view entered", NULL, out);
}

hs_status hs_bt_highest_view_phase_voted(const hs_kv_reader *r, uint64_t *out) {
    bkey k = key_single(HS_KEY_HIGHEST_VIEW_PHASE_VOTED);
    return get_u64(r, &k, "highest view phase voted", NULL, out);
}

hs_status hs_bt_highest_committed_block(const hs_kv_reader *r, hs_hash *out) {
    bkey k = key_single(HS_KEY_HIGHEST_COMMITTED_BLOCK);
    return get_fixed(r, &k, "highest committed block", NULL, out->b, HS_HASH_LEN);
}

hs_status hs_bt_newest_block(const hs_kv_reader *r, hs_hash *out) {
    bkey k = key_single(HS_KEY_NEWEST_BLOCK);
    return get_fixed(r, &k, "newest block", NULL, out->b, HS_HASH_LEN);
}

hs_status hs_bt_highest_committed_height(const hs_kv_reader *r, uint64_t *out) {
    hs_hash h;
    hs_status st = hs_bt_highest_committed_block(r, &h);
    if (st != HS_OK) return st;
    st = hs_bt_block_height(r, &h, out);
    /* A committed block is never pruned: its absence is damage, not "nothing committed". */
    if (st == HS_NOT_FOUND) st = corrupt("highest committed block (block missing)", &h);
    return st;
}

typedef struct block_vec {
    hs_block *v;
    uint32_t n, cap;
} block_vec;

/* Appends b by moving it (b is left empty). */
static hs_status block_vec_push(block_vec *a, hs_block *b) {
    if (a->n == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 8;
        hs_block *v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) return HS_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *b;
    *b = (hs_block){0};
    return HS_OK;
}

static void block_vec_free(block_vec *a) {
    for (uint32_t i = 0; i < a->n; i++) hs_block_free(&a->v[i]);
    free(a->v);
    *a = (block_vec){0};
}

/* ---- Block Sync's read (spec §5.1) ---- */

/* Is h a committed block? (BLOCK_AT_HEIGHT at its height names it.) */
static hs_status is_committed(const hs_kv_reader *r, const hs_hash *h, bool *out) {
    *out = false;
    uint64_t height;
    hs_status st = hs_bt_block_height(r, h, &height);
    if (st != HS_OK) return st;
    hs_hash at;
    st = hs_bt_block_at_height(r, height, &at);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st == HS_OK) *out = hash_eq(&at, h);
    return st;
}

/* The speculative chain from the block of HIGHEST_PC back to (not including) the highest
 * committed block, newest first.
 *
 * The spec (§5.1) walks from NEWEST_BLOCK, the block inserted last, which may sit on an
 * abandoned fork (a Byzantine leader's block, a proposal that never got a PC): a lagging peer
 * then receives a branch it cannot build on while the chain everyone extends stays out of
 * reach (a stall the simulator found). The chain certified by the highest PC is the one the
 * response's highest_pc lets the peer continue from, so the port serves that one. It is left
 * empty when that block is committed, pruned, or on a branch that does not reach the highest
 * committed block (spec §14.25: the committed part is still served). */
static hs_status speculative_chain(const hs_kv_reader *r, hash_vec *out) {
    hs_pc hp = {0};
    hs_status st = hs_bt_highest_pc(r, &hp);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    bool hp_genesis = hs_pc_is_genesis(&hp);
    hs_hash cur = hp.block;
    hs_pc_free(&hp);
    if (hp_genesis) return HS_OK;
    bool known;
    st = hs_bt_contains(r, &cur, &known);
    if (st != HS_OK || !known) return st;
    hs_hash hcb;
    st = hs_bt_highest_committed_block(r, &hcb);
    bool has_hcb = st == HS_OK;
    if (st != HS_OK && st != HS_NOT_FOUND) return st;

    bool canonical = false;
    for (;;) {
        bool committed = has_hcb && hash_eq(&cur, &hcb);
        if (!committed && has_hcb) {
            st = is_committed(r, &cur, &committed);
            if (st == HS_NOT_FOUND) break; /* pruned */
            if (st != HS_OK) return st;
        }
        if (committed) break; /* NEWEST_BLOCK itself committed, or a stray branch */
        hs_pc j = {0};
        st = hs_bt_block_justify(r, &cur, &j);
        if (st == HS_NOT_FOUND) break; /* pruned */
        if (st != HS_OK) return st;
        bool genesis = hs_pc_is_genesis(&j);
        hs_hash parent = j.block;
        hs_pc_free(&j);
        if ((st = hash_vec_push(out, &cur)) != HS_OK) return st;
        if (genesis) {
            canonical = !has_hcb; /* with a committed block, a root here is off the chain */
            break;
        }
        if (has_hcb && hash_eq(&parent, &hcb)) {
            canonical = true;
            break;
        }
        if (hash_eq(&parent, &cur)) return corrupt("block justify (self link)", &cur);
        cur = parent;
    }
    if (!canonical) out->n = 0;
    return HS_OK;
}

hs_status hs_bt_blocks_from_height_to_newest(const hs_kv_reader *r, uint64_t start,
                                             uint32_t limit, hs_block **out, uint32_t *n) {
    *out = NULL;
    *n = 0;
    block_vec res = {0};
    hash_vec spec = {0};
    hs_block b = {0};
    hs_status st = HS_OK;

    /* Committed part: BLOCK_AT_HEIGHT[start], [start + 1], ... */
    for (uint64_t h = start; res.n < limit; h++) {
        hs_hash bh;
        st = hs_bt_block_at_height(r, h, &bh);
        if (st == HS_NOT_FOUND) {
            st = HS_OK;
            break;
        }
        if (st == HS_OK) st = hs_bt_block(r, &bh, &b);
        if (st == HS_NOT_FOUND) st = corrupt("block at height (block missing)", &bh);
        if (st == HS_OK) st = block_vec_push(&res, &b);
        if (st != HS_OK) goto out;
        if (h == UINT64_MAX) break;
    }

    /* Speculative part, oldest first. Only hashes are gathered by the walk, so a long branch
     * costs 32 bytes a block; full blocks are read for the ones that fit under the limit. */
    if (res.n < limit) {
        st = speculative_chain(r, &spec);
        for (size_t i = spec.n; st == HS_OK && i-- > 0 && res.n < limit;) {
            /* Heights below `start` were asked not to be sent: a client that already holds
             * them asks from above them (sync_client.c). */
            uint64_t h;
            st = hs_bt_block_height(r, &spec.v[i], &h);
            if (st == HS_OK && h < start) continue;
            if (st == HS_OK) st = hs_bt_block(r, &spec.v[i], &b);
            if (st == HS_NOT_FOUND) st = corrupt("block (missing in its chain)", &spec.v[i]);
            if (st == HS_OK) st = block_vec_push(&res, &b);
        }
    }
out:
    hash_vec_free(&spec);
    if (st != HS_OK) {
        hs_block_free(&b);
        block_vec_free(&res);
        return st;
    }
    *out = res.v;
    *n = res.n;
    return HS_OK;
}

/* ---- the App's view (spec §6.6) ---- */

struct hs_app_view {
    const hs_kv_reader *r;
    uint32_t n;
    hs_app_updates *pending; /* parent's first, then its uncommitted ancestors', newest first */
};

void hs_app_view_close(hs_app_view *v) {
    if (!v) return;
    for (uint32_t i = 0; i < v->n; i++) hs_app_updates_free(&v->pending[i]);
    free(v->pending);
    free(v);
}

static hs_status view_push(hs_app_view *v, uint32_t *cap, hs_app_updates *u) {
    if (v->n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 4;
        hs_app_updates *p = realloc(v->pending, (size_t)c * sizeof *p);
        if (!p) return HS_ERR_NOMEM;
        v->pending = p;
        *cap = c;
    }
    v->pending[v->n++] = *u;
    *u = (hs_app_updates){0};
    return HS_OK;
}

/* Walks from parent over justify links while blocks are above the highest committed height
 * (and not the highest committed block itself), collecting their pending app updates. */
static hs_status view_collect(hs_app_view *v, const hs_hash *parent) {
    const hs_kv_reader *r = v->r;
    uint64_t hcb_height = 0;
    hs_hash hcb;
    hs_status st = hs_bt_highest_committed_block(r, &hcb);
    bool has_hcb = st == HS_OK;
    if (st != HS_OK && st != HS_NOT_FOUND) return st;
    if (has_hcb && (st = hs_bt_highest_committed_height(r, &hcb_height)) != HS_OK) return st;

    uint32_t cap = 0;
    hs_hash cur = *parent;
    for (bool first = true;; first = false) {
        if (has_hcb && hash_eq(&cur, &hcb)) return HS_OK;
        uint64_t height;
        st = hs_bt_block_height(r, &cur, &height);
        if (st == HS_NOT_FOUND && !first) st = corrupt("block height (ancestor missing)", &cur);
        if (st != HS_OK) return st; /* HS_NOT_FOUND: the caller's parent is unknown */
        if (has_hcb && height <= hcb_height) return HS_OK;
        hs_app_updates u = {0};
        st = hs_bt_pending_app_updates(r, &cur, &u);
        if (st == HS_OK) st = view_push(v, &cap, &u);
        hs_app_updates_free(&u);
        if (st != HS_OK && st != HS_NOT_FOUND) return st;
        bool genesis;
        if ((st = bt_step_down(r, &cur, &genesis, "block justify (missing)")) != HS_OK) return st;
        if (genesis) return HS_OK;
    }
}

hs_status hs_app_view_open(const hs_kv_reader *r, const hs_hash *parent, hs_app_view **out) {
    *out = NULL;
    hs_app_view *v = calloc(1, sizeof *v);
    if (!v) return HS_ERR_NOMEM;
    v->r = r;
    hs_status st = parent ? view_collect(v, parent) : HS_OK;
    if (st != HS_OK) {
        hs_app_view_close(v);
        return st;
    }
    *out = v;
    return HS_OK;
}

/* Binary search in a sorted key array (update sets are kept sorted, and the decoder checks). */
static int32_t find_key(const hs_bytes *keys, uint32_t n, const uint8_t *key, size_t klen) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = hs_bytes_cmp(keys[mid].p, keys[mid].len, key, klen);
        if (c == 0) return (int32_t)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

hs_status hs_app_view_state(const hs_app_view *v, const uint8_t *key, size_t klen, hs_bytes *out) {
    for (uint32_t i = 0; i < v->n; i++) {
        const hs_app_updates *u = &v->pending[i];
        if (find_key(u->delete_keys, u->n_deletes, key, klen) >= 0) return HS_NOT_FOUND;
        int32_t at = find_key(u->insert_keys, u->n_inserts, key, klen);
        if (at >= 0) return hs_bytes_copy(out, &u->insert_values[at]);
    }
    return hs_bt_committed_app_state(v->r, key, klen, out);
}

const hs_kv_reader *hs_app_view_reader(const hs_app_view *v) {
    return v->r;
}

hs_status hs_app_view_validator_set(const hs_app_view *v, hs_validator_set *out) {
    return hs_bt_committed_vs(v->r, out);
}

