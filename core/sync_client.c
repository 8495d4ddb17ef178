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
    c->blacklist[c->n_blacklist].expiry = c->now + c->cfg.block_sync_blacklist_expiry_time_ms;
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

    hs_hash stack[64];
    uint32_t depth = 0, visited = 0;
    stack[depth++] = root;
    while (depth > 0 && visited < HS_MAX_SYNC_ADDRESS_WALK && !*out) {
        hs_hash h = stack[--depth];
        visited++;
        hs_vsu_status vst;
        hs_vs_updates pending = {0};
        st = hs_bt_vsu_status(&c->rd, &h, &vst, &pending);
        if (st != HS_OK) return hs_core_fail(c, st, "read vs status");
        if (vst == HS_VSU_PENDING) {
            for (uint32_t i = 0; i < pending.n_inserts; i++)
                if (memcmp(pending.inserts[i].key.b, k->b, HS_KEY_LEN) == 0) *out = true;
        }
        hs_vs_updates_free(&pending);
        hs_hash *kids = NULL;
        uint32_t n = 0;
        st = hs_bt_children(&c->rd, &h, &kids, &n);
        if (st != HS_OK) return hs_core_fail(c, st, "read children");
        for (uint32_t i = 0; i < n && depth < 64; i++) stack[depth++] = kids[i];
        free(kids);
    }
    return HS_OK;
}

static hs_status send_request(hs_core *c) {
    bool has = false;
    uint64_t h = 0;
    hs_status st = committed_height(c, &has, &h);
    if (st != HS_OK) return st;
    hs_msg m = {.type = HS_MSG_SYNC_REQUEST};
    m.u.sync_request.chain_id = c->cfg.chain_id;
    m.u.sync_request.start_height = has ? h + 1 : 0;
    m.u.sync_request.limit = c->cfg.block_sync_request_limit;
    c->env.net.send(c->env.net.self, &c->sync_peer, &m);
    c->sync_deadline = c->now + c->cfg.block_sync_response_timeout_ms;
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
    if (n == 0) return HS_OK;
    hs_sync_server_entry peer = c->servers[idx[next_rand(c) % n]];
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
    uint64_t d = c->last_progress_or_sync_time + c->cfg.block_sync_trigger_timeout_ms;
    if (c->n_blacklist > 0 && c->blacklist[0].expiry < d) d = c->blacklist[0].expiry;
    return d;
}

/* spec §5.3 */
hs_status hs_sync_client_on_advertise(hs_core *c, const hs_key *origin, const hs_msg *m) {
    if (m->type == HS_MSG_ADVERTISE_BLOCK) {
        const hs_advertise_block *ab = &m->u.advertise_block;
        if (ab->chain_id != c->cfg.chain_id || is_blacklisted(c, origin)) return HS_OK;
        uint8_t bytes[HS_TIMEOUT_MSG_LEN];
        hs_timeout_vote_bytes(ab->chain_id, ab->height, bytes);
        if (!hs_verify(origin, bytes, sizeof bytes, &ab->sig)) return HS_OK;
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
        if (c->syncing || is_blacklisted(c, origin)) return HS_OK;
        if (pc->view < c->highest_view_entered) return HS_OK;
        if (pc->view - c->highest_view_entered < c->cfg.block_sync_trigger_min_view_difference)
            return HS_OK;
        hs_safety_ctx sc = hs_core_safety(c);
        bool ok = false;
        hs_status st = hs_pc_is_correct(&sc, pc, &ok);
        if (st != HS_OK) return hs_core_fail(c, st, "check advertised pc");
        if (!ok) return HS_OK;
        st = sync_now(c);
        c->last_progress_or_sync_time = c->now;
        return st;
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

/* Inserts one synced block; *stop set when the peer must be blacklisted. */
static hs_status sync_block(hs_core *c, const hs_block *b, bool *stop) {
    hs_safety_ctx sc = hs_core_safety(c);
    bool ok = false;
    hs_status st = hs_block_is_correct(&sc, b, &ok);
    if (st == HS_OK && ok) st = hs_safe_block(&sc, b, &ok);
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
    st = hs_core_apply_update(c, &b->justify, true);
    if (st != HS_OK) return st;
    c->sync_synced++;
    return HS_OK;
}

/* spec §5.4 steps 4-6 for one response. */
hs_status hs_sync_client_on_response(hs_core *c, const hs_key *origin,
                                     const hs_sync_response *resp) {
    if (!c->syncing || memcmp(origin->b, c->sync_peer.b, HS_KEY_LEN) != 0) return HS_OK;
    uint32_t first = 0;
    hs_status st = first_new_block(c, resp, &first);
    if (st != HS_OK) return st;
    if (first == resp->n_blocks) {
        end_sync_checking_promise(c);
        return HS_OK;
    }
    hs_safety_ctx sc;
    for (uint32_t i = first; i < resp->n_blocks; i++) {
        bool stop = false;
        st = sync_block(c, &resp->blocks[i], &stop);
        if (st != HS_OK) return st;
        if (stop) {
            blacklist(c, &c->sync_peer);
            end_sync(c);
            return HS_OK;
        }
        /* The server's highest PC, applied after each block (spec §5.4 step 5, §14.23: its VS
         * updates are not passed to the network on this path). */
        sc = hs_core_safety(c);
        bool ok = false;
        st = hs_pc_is_correct(&sc, &resp->highest_pc, &ok);
        if (st == HS_OK && ok) st = hs_safe_pc(&sc, &resp->highest_pc, &ok);
        if (st != HS_OK) return hs_core_fail(c, st, "check synced highest pc");
        if (ok) {
            st = hs_core_apply_update(c, &resp->highest_pc, false);
            if (st != HS_OK) return st;
        }
    }
    return send_request(c); /* step 6: ask for more */
}
