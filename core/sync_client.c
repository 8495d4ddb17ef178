/* core/sync_client.c - the Block Sync client (spec §5.2-5.4).
 *
 * The reference's sync_with is a blocking loop on the algorithm thread. Here it is a state of
 * the core: a request is outstanding to `sync_peer` until `sync_deadline`; the response is
 * handled when it arrives, and the next request sent. In the meantime the core keeps handling
 * progress messages and Pacemaker timeouts rather than letting them pile up, which only adds
 * liveness: every block still passes the same checks before insertion, whichever path
 * brought it. Responses from anyone but the peer are dropped, as in the reference.
 */
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "bt.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

static uint64_t next_rand(hs_core *c) {
    /* xorshift64*: deterministic from env.rng_seed, so a simulation replays exactly. */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int find_server(const hs_core *c, const hs_key *k) {
    for (uint32_t i = 0; i < c->n_servers; i++)
        if (memcmp(c->servers[i].key.b, k->b, HS_KEY_LEN) == 0) return (int)i;
    return -1;
}

static void remove_server(hs_core *c, const hs_key *k) {
    int i = find_server(c, k);
    if (i < 0) return;
    c->servers[i] = c->servers[--c->n_servers];
}

static bool is_blacklisted(const hs_core *c, const hs_key *k) {
    for (uint32_t i = 0; i < c->n_blacklist; i++)
        if (memcmp(c->blacklist[i].key.b, k->b, HS_KEY_LEN) == 0) return true;
    return false;
}

static void blacklist(hs_core *c, const hs_key *k) {
    remove_server(c, k);
    if (c->n_blacklist == HS_MAX_BLACKLIST) { /* full: the oldest entry goes first */
        memmove(&c->blacklist[0], &c->blacklist[1], (HS_MAX_BLACKLIST - 1) * sizeof c->blacklist[0]);
        c->n_blacklist--;
    }
    c->blacklist[c->n_blacklist].key = *k;
    c->blacklist[c->n_blacklist].expiry = sat_add(c->now, c->cfg.block_sync_blacklist_expiry_time_ms);
    c->n_blacklist++;
}

void hs_sync_client_init(hs_core *c) {
    c->n_servers = 0;
    c->n_blacklist = 0;
    c->last_progress_or_sync_time = c->now;
    c->highest_pc_view_seen = 0;
    c->syncing = false;
}

static hs_status committed_height(hs_core *c, bool *has, uint64_t *h) {
    hs_status st = hs_bt_highest_committed_height(&c->rd, h);
    if (st == HS_NOT_FOUND) {
        *has = false;
        *h = 0;
        return HS_OK;
    }
    if (st != HS_OK) return hs_core_fail(c, st, "read highest committed height");
    *has = true;
    return HS_OK;
}

/* spec §5.2: a key may serve blocks if it is in the committed set, or about to join it through
 * a pending update in the branch above the highest committed block. */
static hs_status is_sync_server_address(hs_core *c, const hs_key *k, bool *out) {
    *out = hs_vs_contains(&c->vss.committed, k);
    if (*out) return HS_OK;
    hs_hash root;
    hs_status st = hs_bt_highest_committed_block(&c->rd, &root);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return hs_core_fail(c, st, "read highest committed block");

    /* Depth-first, with an explicit stack bounded by the walk's visit budget. */
    uint32_t cap = 64, depth = 0, visited = 0;
    hs_hash *stack = malloc(cap * sizeof *stack);
    if (!stack) return hs_core_fail(c, HS_ERR_NOMEM, "sync address walk");
    stack[depth++] = root;
    while (depth > 0 && visited < HS_MAX_SYNC_ADDRESS_WALK && !*out) {
        hs_hash h = stack[--depth];
        visited++;
        hs_vsu_status vst;
        hs_vs_updates pending = {0};
        st = hs_bt_vsu_status(&c->rd, &h, &vst, &pending);
        if (st != HS_OK) break;
        if (vst == HS_VSU_PENDING) {
            for (uint32_t i = 0; i < pending.n_inserts; i++)
                if (memcmp(pending.inserts[i].key.b, k->b, HS_KEY_LEN) == 0) *out = true;
        }
        hs_vs_updates_free(&pending);
        hs_hash *kids = NULL;
        uint32_t n = 0;
        st = hs_bt_children(&c->rd, &h, &kids, &n);
        if (st != HS_OK) break;
        for (uint32_t i = 0; i < n && depth < HS_MAX_SYNC_ADDRESS_WALK; i++) {
            if (depth == cap) {
                hs_hash *grown = realloc(stack, 2 * cap * sizeof *stack);
                if (!grown) {
                    st = HS_ERR_NOMEM;
                    break;
                }
                stack = grown;
                cap *= 2;
            }
            stack[depth++] = kids[i];
        }
        free(kids);
        if (st != HS_OK) break;
    }
    free(stack);
    if (st != HS_OK) return hs_core_fail(c, st, "sync address walk");
    return HS_OK;
}

static hs_status send_request(hs_core *c) {
    bool has = false;
    uint64_t h = 0;
    hs_status st = committed_height(c, &has, &h);
    if (st != HS_OK) return st;
    hs_msg m = {.type = HS_MSG_SYNC_REQUEST};
    m.u.sync_request.chain_id = c->cfg.chain_id;
    uint64_t start = has ? h + 1 : 0;
    if (c->sync_cursor > start) start = c->sync_cursor;
    m.u.sync_request.start_height = start;
    m.u.sync_request.limit = c->cfg.block_sync_request_limit;
    c->env.net.send(c->env.net.self, &c->sync_peer, &m);
    c->sync_deadline = sat_add(c->now, c->cfg.block_sync_response_timeout_ms);
    return HS_OK;
}

static void end_sync(hs_core *c) {
    hs_event e = {.type = HS_EV_END_SYNC};
    e.u.end_sync.peer = c->sync_peer;
    e.u.end_sync.blocks_synced = c->sync_synced;
    hs_core_emit(c, &e);
    c->syncing = false;
    c->last_progress_or_sync_time = c->now;
}

/* spec §5.4 step 3: a peer that gave less than it advertised is blacklisted. */
static void end_sync_checking_promise(hs_core *c) {
    uint64_t promised = c->sync_advertised > c->sync_h0 ? c->sync_advertised - c->sync_h0 : 0;
    if (c->sync_synced < promised) blacklist(c, &c->sync_peer);
    end_sync(c);
}

static hs_status start_sync(hs_core *c, const hs_sync_server_entry *peer) {
    bool has = false;
    uint64_t h = 0;
    hs_status st = committed_height(c, &has, &h);
    if (st != HS_OK) return st;
    c->syncing = true;
    c->sync_peer = peer->key;
    c->sync_advertised = peer->height;
    c->sync_synced = 0;
    c->sync_h0 = h;
    c->sync_cursor = 0;
    hs_event e = {.type = HS_EV_START_SYNC};
    e.u.start_sync.peer = peer->key;
    hs_core_emit(c, &e);
    return send_request(c);
}

/* spec §5.3 sync(): a random server that is not behind us. */
static hs_status sync_now(hs_core *c) {
    if (c->syncing) return HS_OK;
    bool has = false;
    uint64_t h = 0;
    hs_status st = committed_height(c, &has, &h);
    if (st != HS_OK) return st;
    uint32_t idx[HS_MAX_SYNC_SERVERS], n = 0;
    for (uint32_t i = 0; i < c->n_servers; i++)
        if (!has || c->servers[i].height >= h) idx[n++] = i;
    /* The spec picks only servers not behind our committed height, and does nothing if there
     * is none. But a replica can have committed more than every peer while lacking the
     * uncommitted blocks they all build on (it committed through a certificate they have not
     * applied yet); it can then never catch up and, if its vote is needed, nobody commits
     * again (a stall the simulator found). Responses carry the server's uncommitted chain
     * too, so any server will do then. */
    if (n == 0)
        for (uint32_t i = 0; i < c->n_servers; i++) idx[n++] = i;
    if (n == 0) return HS_OK;
    hs_sync_server_entry peer = c->servers[idx[next_rand(c) % n]];
    return start_sync(c, &peer);
}

/* A Proposal's basis, or an AdvanceView's PC, certifies a block this replica does not hold:
 * it missed the block's proposal (lost, or overtaken by the certificate on a faster path, after
 * which the proposal's view is past and its proposal dropped). Without the block it cannot
 * vote in this view, and while it waits for an advertisement or the no-progress timeout every
 * view that needs its vote fails. The sender holds the block (it built on it, or applied the
 * PC), so ask it at once; the usual checks apply to everything it returns. A proposer holds
 * the block it builds on; an AdvanceView's sender may only have relayed the PC, so only a
 * proposer preempts. */
hs_status hs_sync_client_fetch(hs_core *c, const hs_key *origin, const hs_pc *pc, bool preempt,
                               bool *started) {
    *started = false;
    if (hs_pc_is_genesis(pc) || pc->view <= c->highest_pc.view) return HS_OK;
    if (memcmp(origin->b, hs_core_me(c)->b, HS_KEY_LEN) == 0 || is_blacklisted(c, origin))
        return HS_OK;
    bool same_peer = c->syncing && memcmp(c->sync_peer.b, origin->b, HS_KEY_LEN) == 0;
    /* A sync already running goes on, unless a proposer asks to be fetched from while the
     * running one has brought nothing yet, or its request has waited half a view: its peer
     * may be the one that crashed, and the proposer is alive and holds the blocks. Nothing
     * is lost: the new sync asks from our committed height on. */
    uint64_t sent = c->sync_deadline - c->cfg.block_sync_response_timeout_ms;
    bool stale = c->syncing &&
                 (c->sync_synced == 0 || c->now - sent > c->cfg.max_view_time_ms / 2);
    if (c->syncing && (same_peer || !preempt || !stale)) {
        *started = true;
        return HS_OK;
    }
    bool known = true, ok = false;
    hs_status st = hs_bt_contains(&c->rd, &pc->block, &known);
    if (st != HS_OK) return hs_core_fail(c, st, "read block");
    if (known) return HS_OK;
    st = is_sync_server_address(c, origin, &ok);
    if (st != HS_OK || !ok) return st;
    hs_safety_ctx sc = hs_core_safety(c);
    st = hs_pc_is_correct(&sc, pc, &ok);
    if (st != HS_OK) return hs_core_fail(c, st, "check certificate to fetch");
    if (!ok) return HS_OK;
    if (c->syncing) end_sync(c); /* preempted: not blacklisted, it may just be slow */
    int i = find_server(c, origin);
    hs_sync_server_entry peer = {.key = *origin, .height = i >= 0 ? c->servers[i].height : 0};
    *started = true;
    return start_sync(c, &peer);
}

hs_status hs_sync_client_tick(hs_core *c) {
    /* Expired entries leave from the front (spec §14.5: only those whose time has come). */
    uint32_t drop = 0;
    while (drop < c->n_blacklist && c->blacklist[drop].expiry <= c->now) drop++;
    if (drop) {
        memmove(&c->blacklist[0], &c->blacklist[drop],
                (c->n_blacklist - drop) * sizeof c->blacklist[0]);
        c->n_blacklist -= drop;
    }
    if (c->syncing) {
        if (c->now >= c->sync_deadline) end_sync_checking_promise(c); /* step 3: timeout */
        return HS_OK;
    }
    if (c->highest_pc.view > c->highest_pc_view_seen) {
        c->highest_pc_view_seen = c->highest_pc.view;
        c->last_progress_or_sync_time = c->now;
    }
    if (c->now - c->last_progress_or_sync_time >= c->cfg.block_sync_trigger_timeout_ms) {
        hs_status st = sync_now(c);
        c->last_progress_or_sync_time = c->now;
        return st;
    }
    return HS_OK;
}

uint64_t hs_sync_client_deadline(const hs_core *c) {
    if (c->syncing) return c->sync_deadline;
    uint64_t d = sat_add(c->last_progress_or_sync_time, c->cfg.block_sync_trigger_timeout_ms);
    if (c->n_blacklist > 0 && c->blacklist[0].expiry < d) d = c->blacklist[0].expiry;
    return d;
}

/* An advertised PC higher than ours is applied like a NewView's (spec §3.11): if correct and
 * safe_pc, update the tree with it. The spec uses AdvertisePC only as a sync trigger, so a
 * replica that missed a certificate its peers moved past (a Decide PC ending a validator-set
 * transition, the PC of the view before an epoch change) could never learn it once they stopped
 * sending it: replicas then split between decided and undecided, or between epoch-change views,
 * and none gathers a quorum (stalls the simulator found). Applying a certificate through the
 * same gate as every other changes no rule of the protocol. */
static hs_status apply_advertised_pc(hs_core *c, const hs_pc *pc) {
    if (hs_pc_is_genesis(pc) || pc->view <= c->highest_pc.view) return HS_OK;
    hs_safety_ctx sc = hs_core_safety(c);
    bool ok = false;
    hs_status st = hs_pc_is_correct(&sc, pc, &ok);
    if (st == HS_OK && ok) st = hs_safe_pc(&sc, pc, &ok);
    if (st != HS_OK) return hs_core_fail(c, st, "check advertised pc");
    if (!ok) return HS_OK;
    return hs_core_apply_update(c, pc, true);
}

/* spec §5.3 */
hs_status hs_sync_client_on_advertise(hs_core *c, const hs_key *origin, const hs_msg *m) {
    if (m->type == HS_MSG_ADVERTISE_BLOCK) {
        const hs_advertise_block *ab = &m->u.advertise_block;
        if (ab->chain_id != c->cfg.chain_id || is_blacklisted(c, origin)) return HS_OK;
        uint8_t bytes[HS_TIMEOUT_MSG_LEN];
        hs_timeout_vote_bytes(ab->chain_id, ab->height, bytes);
        if (!hs_sig_cache_verify(c->sig_cache, origin, bytes, sizeof bytes, &ab->sig))
            return HS_OK;
        if (memcmp(origin->b, hs_core_me(c)->b, HS_KEY_LEN) == 0) return HS_OK; /* our own */
        bool ok = false;
        hs_status st = is_sync_server_address(c, origin, &ok);
        if (st != HS_OK || !ok) return st;
        int i = find_server(c, origin);
        if (i >= 0) {
            c->servers[i].height = ab->height;
        } else if (c->n_servers < HS_MAX_SYNC_SERVERS) {
            c->servers[c->n_servers].key = *origin;
            c->servers[c->n_servers].height = ab->height;
            c->n_servers++;
        }
        return HS_OK;
    }
    if (m->type == HS_MSG_ADVERTISE_PC) {
        const hs_pc *pc = &m->u.advertise_pc.highest_pc;
        if (is_blacklisted(c, origin)) return HS_OK;
        hs_status st = apply_advertised_pc(c, pc);
        if (st != HS_OK || c->syncing) return st;
        /* The spec's trigger: the certificate is some views ahead of us. The port's second
         * one: it is ahead of our highest PC and certifies a block we do not have. A replica
         * that keeps up with views (AdvanceViews move it) but missed blocks otherwise waits
         * for the no-progress timeout, which its rising highest PC keeps postponing (a stall
         * the simulator found). */
        bool views_ahead = pc->view >= c->highest_view_entered &&
                           pc->view - c->highest_view_entered >=
                               c->cfg.block_sync_trigger_min_view_difference;
        bool missing = false;
        if (!views_ahead && !hs_pc_is_genesis(pc) && pc->view > c->highest_pc.view) {
            bool known = true;
            st = hs_bt_contains(&c->rd, &pc->block, &known);
            if (st != HS_OK) return hs_core_fail(c, st, "read block");
            missing = !known;
        }
        if (!views_ahead && !missing) return HS_OK;
        hs_safety_ctx sc = hs_core_safety(c);
        bool ok = false;
        st = hs_pc_is_correct(&sc, pc, &ok);
        if (st != HS_OK) return hs_core_fail(c, st, "check advertised pc");
        if (!ok) return HS_OK;
        st = sync_now(c);
        c->last_progress_or_sync_time = c->now;
        return st;
    }
    return HS_OK;
}

/* Moves the request cursor above `b`, which is in the tree; its height is read from the tree,
 * not from the peer's copy. *advanced tells whether the cursor moved. */
static hs_status advance_cursor(hs_core *c, const hs_block *b, bool *advanced) {
    *advanced = false;
    uint64_t h;
    hs_status st = hs_bt_block_height(&c->rd, &b->hash, &h);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return hs_core_fail(c, st, "read synced block height");
    if (h < UINT64_MAX && h + 1 > c->sync_cursor) {
        c->sync_cursor = h + 1;
        *advanced = true;
    }
    return HS_OK;
}

/* Index of the first block of resp not already in the tree (spec §5.4 step 4 drops only the
 * leading run of known blocks). */
static hs_status first_new_block(hs_core *c, const hs_sync_response *resp, uint32_t *first) {
    uint32_t i = 0;
    for (; i < resp->n_blocks; i++) {
        bool known = false;
        hs_status st = hs_bt_contains(&c->rd, &resp->blocks[i].hash, &known);
        if (st != HS_OK) return hs_core_fail(c, st, "read block");
        if (!known) break;
    }
    *first = i;
    return HS_OK;
}

/* Whether the response's highest PC may take this replica off the branch it is locked on:
 * correct, and of a higher view than the lock (safe_pc's liveness clause, spec §13). */
static hs_status response_outranks_lock(hs_core *c, const hs_sync_response *resp, bool *out) {
    *out = false;
    if (hs_pc_is_genesis(&resp->highest_pc) || resp->highest_pc.chain_id != c->cfg.chain_id)
        return HS_OK;
    hs_pc lock = {0};
    hs_status st = hs_bt_locked_pc(&c->rd, &lock);
    if (st != HS_OK) return hs_core_fail(c, st, "read locked pc");
    bool higher = resp->highest_pc.view > lock.view;
    hs_pc_free(&lock);
    if (!higher) return HS_OK;
    hs_safety_ctx sc = hs_core_safety(c);
    st = hs_pc_is_correct(&sc, &resp->highest_pc, out);
    if (st != HS_OK) return hs_core_fail(c, st, "check synced highest pc");
    return HS_OK;
}

/* Inserts one synced block; *stop set when the peer must be blacklisted.
 *
 * A replica locked on a branch that lost must still be able to sync the branch that won. The
 * spec gates every synced block with safe_block, so the old blocks of the winning branch, whose
 * justifies have lower views than the lock and do not extend it, are refused one by one, and
 * the replica can never reach the high-view certificate that would let it switch (a permanent
 * stall the simulator found). So when the response's highest PC outranks the lock
 * (`outranks`), a block that fails safe_block only because of the lock is inserted without
 * applying its justify: the tree gains certified blocks, while the lock, the highest PC and the
 * commits still move only through certificates that pass safe_pc. Votes are unaffected. */
static hs_status sync_block(hs_core *c, const hs_block *b, bool outranks, bool *stop) {
    hs_safety_ctx sc = hs_core_safety(c);
    bool ok = false, apply_justify = true;
    hs_status st = hs_block_is_correct(&sc, b, &ok);
    if (st == HS_OK && ok) st = hs_safe_block(&sc, b, &ok);
    if (st == HS_OK && !ok && outranks) {
        st = hs_block_is_correct(&sc, b, &ok);
        if (st == HS_OK && ok) st = hs_safe_block_ignoring_lock(&sc, b, &ok);
        apply_justify = false;
    }
    if (st != HS_OK) return hs_core_fail(c, st, "check synced block");
    if (!ok) {
        *stop = true;
        return HS_OK;
    }
    bool genesis = hs_pc_is_genesis(&b->justify);
    hs_app_view *av = NULL;
    st = hs_app_view_open(&c->rd, genesis ? NULL : &b->justify.block, &av);
    if (st != HS_OK) return hs_core_fail(c, st, "open app view");
    hs_validate_block_request req = {.proposed_block = b, .tree = av};
    hs_validate_block_response resp = {0};
    hs_status ast = c->env.app.validate_block_for_sync(c->env.app.self, &req, &resp);
    hs_app_view_close(av);
    if (ast != HS_OK || !resp.valid) {
        if (ast != HS_OK)
            hs_log(HS_LOG_WARN, "sync", "App validate_block_for_sync failed: %s",
                   hs_status_str(ast));
        hs_app_updates_free(&resp.app_state_updates);
        hs_vs_updates_free(&resp.validator_set_updates);
        *stop = true;
        return HS_OK;
    }
    st = hs_bt_insert(&c->env.kv, b, resp.has_app_state_updates ? &resp.app_state_updates : NULL,
                      resp.has_validator_set_updates ? &resp.validator_set_updates : NULL);
    hs_app_updates_free(&resp.app_state_updates);
    hs_vs_updates_free(&resp.validator_set_updates);
    if (st != HS_OK) return hs_core_fail(c, st, "insert synced block");
    hs_event e = {.type = HS_EV_INSERT_BLOCK};
    e.u.insert_block.block = *b;
    hs_core_emit(c, &e);
    if (apply_justify) {
        st = hs_core_apply_update(c, &b->justify, true);
        if (st != HS_OK) return st;
    }
    c->sync_synced++;
    return HS_OK;
}

/* The server's highest PC, applied if correct and safe (spec §5.4 step 5, §14.23: its VS updates
 * are not passed to the network on this path). */
static hs_status apply_response_pc(hs_core *c, const hs_sync_response *resp) {
    hs_safety_ctx sc = hs_core_safety(c);
    bool ok = false;
    hs_status st = hs_pc_is_correct(&sc, &resp->highest_pc, &ok);
    if (st == HS_OK && ok) st = hs_safe_pc(&sc, &resp->highest_pc, &ok);
    if (st != HS_OK) return hs_core_fail(c, st, "check synced highest pc");
    if (!ok) return HS_OK;
    return hs_core_apply_update(c, &resp->highest_pc, false);
}

/* spec §5.4 steps 4-6 for one response. */
hs_status hs_sync_client_on_response(hs_core *c, const hs_key *origin,
                                     const hs_sync_response *resp) {
    if (!c->syncing || memcmp(origin->b, c->sync_peer.b, HS_KEY_LEN) != 0) return HS_OK;
    /* The server's highest PC may already apply to blocks we hold: applied here too, not only
     * after each new block (spec §5.4 step 5), or a response of known blocks ending with a
     * VS-updating block and its Commit PC (sync_server.c) would be ignored. */
    hs_status st = apply_response_pc(c, resp);
    if (st != HS_OK) return st;
    uint32_t first = 0;
    st = first_new_block(c, resp, &first);
    if (st != HS_OK) return st;
    if (first == resp->n_blocks) {
        /* Every block was known. The spec ends the sync here (§5.4 step 4), which strands a
         * replica holding at least `limit` uncommitted blocks: every request from its
         * committed height returns the same known blocks (a stall the simulator found). So
         * while the known blocks reach past the cursor, ask again from above them. */
        bool advanced = false;
        if (resp->n_blocks > 0) {
            st = advance_cursor(c, &resp->blocks[resp->n_blocks - 1], &advanced);
            if (st != HS_OK) return st;
        }
        if (!advanced) {
            end_sync_checking_promise(c);
            return HS_OK;
        }
        return send_request(c);
    }
    bool outranks = false;
    st = response_outranks_lock(c, resp, &outranks);
    if (st != HS_OK) return st;
    for (uint32_t i = first; i < resp->n_blocks; i++) {
        bool stop = false;
        st = sync_block(c, &resp->blocks[i], outranks, &stop);
        if (st != HS_OK) return st;
        if (stop) {
            blacklist(c, &c->sync_peer);
            end_sync(c);
            return HS_OK;
        }
        st = apply_response_pc(c, resp);
        if (st != HS_OK) return st;
    }
    bool advanced;
    st = advance_cursor(c, &resp->blocks[resp->n_blocks - 1], &advanced);
    if (st != HS_OK) return st;
    return send_request(c); /* step 6: ask for more */
}
