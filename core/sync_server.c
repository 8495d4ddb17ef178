/* core/sync_server.c - the Block Sync server (spec §5.1): answers BlockSyncRequests from a
 * consistent snapshot and advertises this replica's highest PC and committed height.
 * It reads the store only through snapshots, so it can run on its own thread beside the
 * algorithm thread that writes it.
 */
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "hotstuff/block_tree.h"
#include "hotstuff/core.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"

struct hs_sync_server {
    hs_config cfg;
    hs_core_env env;
    uint64_t last_advertisement;
};

static void emit(hs_sync_server *s, hs_event *e) {
    if (!s->env.emit) return;
    e->timestamp_ms = hs_env_wall_ms(&s->env);
    s->env.emit(s->env.emit_ctx, e);
}

hs_status hs_sync_server_new(const hs_config *cfg, const hs_core_env *env, uint64_t now_ms,
                             hs_sync_server **out) {
    *out = NULL;
    if (!env->kv.snapshot || !env->kv.release_snapshot || !env->net.send || !env->net.broadcast)
        return HS_ERR_INVALID;
    hs_sync_server *s = calloc(1, sizeof *s);
    if (!s) return HS_ERR_NOMEM;
    s->cfg = *cfg;
    s->env = *env;
    /* The first advertisement comes one period after start (spec §5.1). */
    s->last_advertisement = now_ms;
    *out = s;
    return HS_OK;
}

void hs_sync_server_free(hs_sync_server *s) { free(s); }

/* A response that crosses a committed validator-set update ends with the VS-updating block B,
 * and carries the Commit PC that committed B instead of the server's highest PC. The block
 * after B is justified by B's Decide PC, signed by the NEW set, which a peer that has not yet
 * committed B checks against its old set and refuses (spec §2.10); without B's Commit PC,
 * signed by the old set, such a peer can never cross the update (a stall the simulator found).
 * The wire format is unchanged: it is an ordinary response with a shorter list. *stopped
 * tells whether such a block was found (and resp->highest_pc filled). */
static hs_status stop_at_vs_update(const hs_kv_reader *snap, hs_sync_response *resp,
                                   bool *stopped) {
    for (uint32_t i = 0; i < resp->n_blocks; i++) {
        hs_vsu_status vst;
        hs_status st = hs_bt_vsu_status(snap, &resp->blocks[i].hash, &vst, NULL);
        if (st != HS_OK) return st;
        if (vst != HS_VSU_COMMITTED) continue;
        hs_pc cpc = {0};
        st = hs_bt_vs_update_commit_pc(snap, &resp->blocks[i].hash, &cpc);
        if (st == HS_NOT_FOUND) continue;
        if (st != HS_OK) return st;
        for (uint32_t j = i + 1; j < resp->n_blocks; j++) hs_block_free(&resp->blocks[j]);
        resp->n_blocks = i + 1;
        resp->highest_pc = cpc;
        *stopped = true;
        return HS_OK;
    }
    return HS_OK;
}

hs_status hs_sync_server_handle(hs_sync_server *s, uint64_t now_ms, const hs_key *origin,
                                const hs_sync_request *req) {
    (void)now_ms;
    if (req->chain_id != s->cfg.chain_id) return HS_OK;
    hs_event e = {.type = HS_EV_RECEIVE_SYNC_REQUEST};
    e.u.receive_sync_request.peer = *origin;
    e.u.receive_sync_request.start_height = req->start_height;
    e.u.receive_sync_request.limit = req->limit;
    emit(s, &e);

    /* The server's own limit caps what a peer may ask for (spec §14.6: min, not max). */
    uint32_t limit = req->limit < s->cfg.block_sync_request_limit ? req->limit
                                                                  : s->cfg.block_sync_request_limit;
    hs_kv_reader snap;
    hs_status st = s->env.kv.snapshot(s->env.kv.self, &snap);
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, "sync_server", "snapshot failed: %s", hs_status_str(st));
        return HS_OK; /* on any read error nothing is sent (spec §5.1) */
    }
    hs_msg m = {.type = HS_MSG_SYNC_RESPONSE};
    hs_sync_response *r = &m.u.sync_response;
    st = hs_bt_blocks_from_height_to_newest(&snap, req->start_height, limit, &r->blocks,
                                            &r->n_blocks);
    bool stopped = false;
    if (st == HS_OK) st = stop_at_vs_update(&snap, r, &stopped);
    if (st == HS_OK && !stopped) st = hs_bt_highest_pc(&snap, &r->highest_pc);
    s->env.kv.release_snapshot(s->env.kv.self, &snap);
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, "sync_server", "reading blocks for a sync request failed: %s",
               hs_status_str(st));
        hs_msg_free(&m);
        return HS_OK;
    }
    s->env.net.send(s->env.net.self, origin, &m);
    e = (hs_event){.type = HS_EV_SEND_SYNC_RESPONSE};
    e.u.send_sync_response.peer = *origin;
    e.u.send_sync_response.n_blocks = r->n_blocks;
    e.u.send_sync_response.blocks = r->blocks;
    e.u.send_sync_response.highest_pc = r->highest_pc;
    emit(s, &e);
    hs_msg_free(&m);
    return HS_OK;
}

hs_status hs_sync_server_tick(hs_sync_server *s, uint64_t now_ms) {
    if (now_ms < hs_sync_server_deadline(s)) return HS_OK;
    s->last_advertisement = now_ms;

    hs_kv_reader snap;
    hs_status st = s->env.kv.snapshot(s->env.kv.self, &snap);
    if (st != HS_OK) return HS_OK;
    hs_msg pcm = {.type = HS_MSG_ADVERTISE_PC};
    uint64_t height = 0;
    st = hs_bt_highest_pc(&snap, &pcm.u.advertise_pc.highest_pc);
    if (st == HS_OK) {
        hs_status hst = hs_bt_highest_committed_height(&snap, &height);
        if (hst == HS_NOT_FOUND) height = 0;
        else if (hst != HS_OK) st = hst;
    }
    s->env.kv.release_snapshot(s->env.kv.self, &snap);
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, "sync_server", "reading state to advertise failed: %s",
               hs_status_str(st));
        hs_msg_free(&pcm);
        return HS_OK;
    }
    s->env.net.broadcast(s->env.net.self, &pcm);
    hs_msg_free(&pcm);

    hs_msg bm = {.type = HS_MSG_ADVERTISE_BLOCK};
    bm.u.advertise_block.chain_id = s->cfg.chain_id;
    bm.u.advertise_block.height = height;
    uint8_t bytes[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(s->cfg.chain_id, height, bytes);
    hs_sign(&s->cfg.me, bytes, sizeof bytes, &bm.u.advertise_block.sig);
    s->env.net.broadcast(s->env.net.self, &bm);
    return HS_OK;
}

uint64_t hs_sync_server_deadline(const hs_sync_server *s) {
    uint64_t period = s->cfg.block_sync_server_advertise_time_ms;
    return s->last_advertisement > UINT64_MAX - period ? UINT64_MAX
                                                       : s->last_advertisement + period;
}
