/* tests/sim/check.c - what the simulator checks, and the trace it prints when a check fails.
 *
 * After every step of an honest replica its store is read back (the store is what survives a
 * crash, so it is what the invariants are about):
 *   - HIGHEST_PC view, HIGHEST_VIEW_ENTERED, HIGHEST_VIEW_PHASE_VOTED and HIGHEST_TC view never
 *     decrease, across restarts too; LOCKED_PC's view never exceeds HIGHEST_PC's;
 *   - the committed chain never shrinks and is contiguous from height 0: every new height has a
 *     BLOCK_AT_HEIGHT entry naming a stored block of that height whose justify links to the
 *     block committed one height below; committed blocks have no pending app updates and no
 *     pending validator-set updates; the committed counter equals the chain's length;
 *   - agreement: the block committed at a height is the one every other honest replica
 *     committed there;
 *   - the CommitBlock events of the step name exactly the newly committed heights, in order;
 *   - after a validator-set change the committed set is one the App allows (so Byzantine power
 *     stays under a third) and the previous set too.
 * Outgoing PhaseVotes of honest replicas are checked at the network: never two different ones
 * in a view, also across crash-restarts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotstuff/crypto.h"
#include "sim.h"

/* ---- trace ---- */

void trace_add(sim_world *w, tr_kind kind, int a, int b, int mtype, uint64_t x, uint64_t y,
               const char *note) {
    tr_entry *e = &w->trace[w->n_trace++ % SIM_TRACE_LEN];
    e->t = w->now;
    e->step = w->step;
    e->kind = (uint8_t)kind;
    e->a = (uint8_t)a;
    e->b = (uint8_t)b;
    e->mtype = (uint8_t)mtype;
    e->x = x;
    e->y = y;
    e->note[0] = 0;
    if (note) snprintf(e->note, sizeof e->note, "%s", note);
    if (w->o->verbose) trace_print_entry(w, e);
}

static const char *node_label(const sim_world *w, int i, char buf[8]) {
    if (i < 0 || (uint32_t)i >= w->n) return "-";
    snprintf(buf, 8, "n%d%s", i, w->nodes[i].byz ? "*" : "");
    return buf;
}

void trace_print_entry(const sim_world *w, const tr_entry *e) {
    char a[8], b[8];
    const char *na = node_label(w, e->a, a), *nb = node_label(w, e->b, b);
    printf("    t=%-8" PRIu64 " #%-7" PRIu64 " ", e->t, e->step);
    switch ((tr_kind)e->kind) {
    case TR_DELIVER:
        printf("deliver %-16s %s -> %s view %" PRIu64, hs_msg_type_name((hs_msg_type)e->mtype),
               na, nb, e->x);
        if (e->mtype == HS_MSG_PROPOSAL) printf(" height %" PRIu64, e->y);
        break;
    case TR_DROP_UNDECODABLE: printf("undecodable bytes %s -> %s dropped", na, nb); break;
    case TR_WAKE: printf("wake %s (view %" PRIu64 ")", na, e->x); break;
    case TR_SRV: printf("sync server tick %s", na); break;
    case TR_CRASH: printf("CRASH %s (crash #%" PRIu64 ")", na, e->x); break;
    case TR_CRASH_AFTER_WRITE: printf("CRASH after write %s (%" PRIu64 ")", na, e->x); break;
    case TR_IO_FAIL: printf("write failure %s", na); break;
    case TR_RESTART: printf("restart %s", na); break;
    case TR_PARTITION: printf("partition, side mask %#" PRIx64 ", %" PRIu64 " ms", e->x, e->y); break;
    case TR_ONEWAY: printf("one-way cut from mask %#" PRIx64 ", %" PRIu64 " ms", e->x, e->y); break;
    case TR_ISOLATE: printf("isolate %s, %" PRIu64 " ms", na, e->y); break;
    case TR_HEAL: printf("partition healed"); break;
    case TR_NETPROFILE: printf("network: drop %" PRIu64 "/1000, mean latency +%" PRIu64 " ms", e->x, e->y); break;
    case TR_BYZ: printf("byzantine %s", na); break;
    case TR_COMMIT: printf("%s commits height %" PRIu64, na, e->x); break;
    case TR_VS_UPDATE: printf("%s commits a validator-set update", na); break;
    case TR_LOG: printf("log %s level %d", na, e->mtype); break;
    case TR_PHASE_END: printf("ALL FAULTS HEALED; target height count %" PRIu64, e->x); break;
    }
    if (e->note[0]) printf(" [%s]", e->note);
    printf("\n");
}

void trace_print(const sim_world *w, unsigned last) {
    uint64_t n = w->n_trace < SIM_TRACE_LEN ? w->n_trace : SIM_TRACE_LEN;
    if (n > last) n = last;
    for (uint64_t i = w->n_trace - n; i < w->n_trace; i++)
        trace_print_entry(w, &w->trace[i % SIM_TRACE_LEN]);
}

/* ---- committed chain ---- */

static void canon_append(sim_world *w, const hs_hash *h) {
    if (w->n_canon == w->canon_cap) {
        w->canon_cap = w->canon_cap ? w->canon_cap * 2 : 256;
        w->canon = realloc(w->canon, w->canon_cap * sizeof *w->canon);
        if (!w->canon) abort();
    }
    w->canon[w->n_canon++] = *h;
}

static void hex8(const hs_hash *h, char out[17]) {
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", h->b[i]);
}

/* Checks the committed block at height h of replica n (heights below h already checked). */
static void check_committed_height(sim_world *w, sim_node *n, const hs_kv_reader *rd,
                                   uint64_t h) {
    hs_hash hash;
    hs_status st = hs_bt_block_at_height(rd, h, &hash);
    if (st != HS_OK) {
        sim_fail(w, "replica %d: committed chain not contiguous: no BLOCK_AT_HEIGHT %" PRIu64
                    " (%s)", n->id, h, hs_status_str(st));
        return;
    }
    hs_block b = {0};
    st = hs_bt_block(rd, &hash, &b);
    if (st != HS_OK) {
        sim_fail(w, "replica %d: committed block at height %" PRIu64 " unreadable: %s", n->id,
                 h, hs_status_str(st));
        return;
    }
    char hx[17];
    hex8(&hash, hx);
    if (b.height != h || memcmp(b.hash.b, hash.b, HS_HASH_LEN) != 0)
        sim_fail(w, "replica %d: BLOCK_AT_HEIGHT %" PRIu64 " names block %s of height %" PRIu64,
                 n->id, h, hx, b.height);
    if (h == 0 && !hs_pc_is_genesis(&b.justify))
        sim_fail(w, "replica %d: committed height-0 block %s does not extend genesis", n->id, hx);
    if (h > 0) {
        hs_hash parent;
        if (hs_bt_block_at_height(rd, h - 1, &parent) != HS_OK ||
            memcmp(parent.b, b.justify.block.b, HS_HASH_LEN) != 0)
            sim_fail(w, "replica %d: committed block %s at height %" PRIu64
                        " does not extend the committed block below it", n->id, hx, h);
    }
    hs_block_free(&b);

    hs_app_updates pending = {0};
    st = hs_bt_pending_app_updates(rd, &hash, &pending);
    hs_app_updates_free(&pending);
    if (st != HS_NOT_FOUND)
        sim_fail(w, "replica %d: committed block %s (height %" PRIu64 ") still has pending app "
                    "updates (%s)", n->id, hx, h, hs_status_str(st));
    hs_vsu_status vst;
    hs_vs_updates vsu = {0};
    st = hs_bt_vsu_status(rd, &hash, &vst, &vsu);
    hs_vs_updates_free(&vsu);
    if (st != HS_OK || vst == HS_VSU_PENDING)
        sim_fail(w, "replica %d: committed block %s (height %" PRIu64 ") has validator-set "
                    "updates still pending (%s)", n->id, hx, h, hs_status_str(st));

    /* Agreement. Heights are checked in order per replica, so h <= n_canon. */
    if (h < w->n_canon) {
        if (memcmp(w->canon[h].b, hash.b, HS_HASH_LEN) != 0) {
            char cx[17];
            hex8(&w->canon[h], cx);
            sim_fail(w, "AGREEMENT: replica %d committed block %s at height %" PRIu64
                        ", another honest replica committed %s there", n->id, hx, h, cx);
        }
    } else {
        canon_append(w, &hash);
    }
}

static bool vs_is_config(const sim_world *w, const hs_validator_set *vs) {
    for (uint32_t k = 0; k < w->n_configs; k++)
        if (hs_vs_equal(vs, &w->configs[k])) return true;
    return false;
}

static void check_validator_sets(sim_world *w, sim_node *n, const hs_kv_reader *rd) {
    hs_vss vss = {0};
    hs_status st = hs_bt_vss(rd, &vss);
    if (st != HS_OK) {
        sim_fail(w, "replica %d: validator set state unreadable: %s", n->id, hs_status_str(st));
        return;
    }
    if (!vs_is_config(w, &vss.committed) || !vs_is_config(w, &vss.previous))
        sim_fail(w, "replica %d: committed or previous validator set is not one the App allows",
                 n->id);
    else if (!sim_vs_byz_bound_ok(w, &vss.committed) || !sim_vs_byz_bound_ok(w, &vss.previous))
        sim_fail(w, "simulator bug: Byzantine power >= 1/3 in a validator set");
    hs_vss_free(&vss);
}

void check_after_step(sim_world *w, sim_node *n) {
    hs_kv_reader rd = hs_kv_store_reader(&n->inner);
    hs_pc hpc = {0}, lock = {0};
    uint64_t hve = 0, hvv = 0;
    hs_tc htc = {0};
    hs_status st = hs_bt_highest_pc(&rd, &hpc);
    if (st == HS_OK) st = hs_bt_locked_pc(&rd, &lock);
    if (st == HS_OK) st = hs_bt_highest_view_entered(&rd, &hve);
    if (st != HS_OK) {
        sim_fail(w, "replica %d: HIGHEST_PC / LOCKED_PC / HIGHEST_VIEW_ENTERED unreadable: %s",
                 n->id, hs_status_str(st));
        goto out;
    }
    hs_status vst = hs_bt_highest_view_phase_voted(&rd, &hvv);
    hs_status tst = hs_bt_highest_tc(&rd, &htc);
    if ((vst != HS_OK && vst != HS_NOT_FOUND) || (tst != HS_OK && tst != HS_NOT_FOUND)) {
        sim_fail(w, "replica %d: HIGHEST_VIEW_PHASE_VOTED / HIGHEST_TC unreadable", n->id);
        goto out;
    }
    if (n->seen) {
        if (hpc.view < n->hpc_view)
            sim_fail(w, "replica %d: HIGHEST_PC view went back from %" PRIu64 " to %" PRIu64,
                     n->id, n->hpc_view, hpc.view);
        if (hve < n->hve)
            sim_fail(w, "replica %d: HIGHEST_VIEW_ENTERED went back from %" PRIu64 " to %" PRIu64,
                     n->id, n->hve, hve);
        if (n->has_hvv && (vst != HS_OK || hvv < n->hvv))
            sim_fail(w, "replica %d: HIGHEST_VIEW_PHASE_VOTED went back from %" PRIu64, n->id,
                     n->hvv);
        if (n->has_htc && (tst != HS_OK || htc.view < n->htc_view))
            sim_fail(w, "replica %d: HIGHEST_TC view went back from %" PRIu64, n->id,
                     n->htc_view);
    }
    if (lock.view > hpc.view)
        sim_fail(w, "replica %d: LOCKED_PC view %" PRIu64 " above HIGHEST_PC view %" PRIu64,
                 n->id, lock.view, hpc.view);
    n->seen = true;
    n->hpc_view = hpc.view;
    n->hve = hve;
    n->has_hvv = vst == HS_OK;
    n->hvv = hvv;
    n->has_htc = tst == HS_OK;
    n->htc_view = htc.view;

    /* The committed chain. */
    uint64_t hc = 0, count;
    st = hs_bt_highest_committed_height(&rd, &hc);
    if (st != HS_OK && st != HS_NOT_FOUND) {
        sim_fail(w, "replica %d: highest committed height unreadable: %s", n->id,
                 hs_status_str(st));
        goto out;
    }
    count = st == HS_OK ? hc + 1 : 0;
    if (count < n->n_committed) {
        sim_fail(w, "replica %d: committed chain shrank from %" PRIu64 " to %" PRIu64 " blocks",
                 n->id, n->n_committed, count);
        goto out;
    }
    uint64_t old = n->n_committed;
    for (uint64_t h = old; h < count && !w->failed; h++) check_committed_height(w, n, &rd, h);
    if (!n->step_commit_overflow && n->n_step_commits != count - old)
        sim_fail(w, "replica %d: %u CommitBlock events in a step that committed %" PRIu64
                    " heights", n->id, n->n_step_commits, count - old);
    for (uint32_t i = 0; i < n->n_step_commits && !w->failed && i < count - old; i++) {
        hs_hash at;
        if (hs_bt_block_at_height(&rd, old + i, &at) != HS_OK ||
            memcmp(at.b, n->step_commits[i].b, HS_HASH_LEN) != 0)
            sim_fail(w, "replica %d: CommitBlock event %u does not name the block at height "
                        "%" PRIu64, n->id, i, old + i);
    }
    n->n_step_commits = 0;
    n->step_commit_overflow = false;
    if (count > old) {
        hs_bytes v = {0};
        st = hs_bt_committed_app_state(&rd, sim_counter_key, sizeof sim_counter_key, &v);
        uint64_t cnt = 0;
        if (st == HS_OK && v.len == 8)
            for (int i = 7; i >= 0; i--) cnt = cnt << 8 | v.p[i];
        if (st != HS_OK || cnt != count)
            sim_fail(w, "replica %d: committed app counter %" PRIu64 " after %" PRIu64
                        " committed blocks (%s)", n->id, cnt, count, hs_status_str(st));
        hs_bytes_free(&v);
    }
    /* Commits are irreversible: re-read one earlier height each step. */
    if (count > 1 && !w->failed) {
        uint64_t h = (w->step * 2654435761u) % count;
        hs_hash at;
        if (hs_bt_block_at_height(&rd, h, &at) != HS_OK ||
            memcmp(at.b, w->canon[h].b, HS_HASH_LEN) != 0)
            sim_fail(w, "replica %d: committed block at height %" PRIu64 " changed", n->id, h);
    }
    if (count > old) live_on_commit(w, n, count - old);
    n->n_committed = count;
    if (n->step_vs_update || old == 0) check_validator_sets(w, n, &rd);
    n->step_vs_update = false;
out:
    hs_pc_free(&hpc);
    hs_pc_free(&lock);
    hs_tc_free(&htc);
}

void check_outgoing_vote(sim_world *w, sim_node *n, const hs_phase_vote *v) {
    uint8_t bytes[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(v->chain_id, v->view, &v->block, v->phase, bytes);
    if (!hs_verify(&n->kp.public_key, bytes, sizeof bytes, &v->sig))
        sim_fail(w, "replica %d sent a PhaseVote with a bad signature", n->id);
    if (v->chain_id != n->cfg.chain_id)
        sim_fail(w, "replica %d sent a PhaseVote for chain %" PRIu64, n->id, v->chain_id);
    __typeof__(n->votes[0]) *slot = &n->votes[v->view % SIM_VOTE_RING];
    if (slot->used && slot->view == v->view) {
        if (slot->phase != v->phase || memcmp(slot->block.b, v->block.b, HS_HASH_LEN) != 0) {
            char a[17], b[17];
            hex8(&slot->block, a);
            hex8(&v->block, b);
            sim_fail(w, "DOUBLE VOTE: honest replica %d signed %s(%s) and %s(%s) in view %" PRIu64
                        " (crashes so far: %u)", n->id, hs_phase_name((hs_phase)slot->phase), a,
                     hs_phase_name(v->phase), b, v->view, n->crashes);
        }
        return;
    }
    if (slot->used && slot->view > v->view) return; /* too old to remember */
    slot->used = true;
    slot->view = v->view;
    slot->phase = (uint8_t)v->phase;
    slot->block = v->block;
}

/* ---- known liveness stalls ----
 * Two ways the protocol as specified (and as the reference behaves) stalls for good. With
 * --tolerate-known a liveness failure explained by one of them is counted apart instead of
 * as a violation; the seed still replays it.
 *
 * K1 (spec §14.13): a VS-updating block B is locked on its Precommit PC, the phased chain is
 * interrupted, and every later proposer re-proposes B, whose justify is older than the lock
 * and does not extend it, so safe_block rejects B on every locked replica. Detected when every
 * honest replica's highest PC certifies the same block in phase Prepare or Precommit and at
 * least one is locked on a Precommit PC of it.
 *
 * K2 (spec §5.4): a sync client always asks from its committed height + 1 and stops when the
 * whole response is blocks it already has; with `limit` or more uncommitted blocks of the
 * canonical chain in its tree it can never fetch past them. Detected when a stuck replica
 * would get only blocks it has from every honest replica that has a block it lacks. */
static bool k1_stall(sim_world *w) {
    bool first = true, locked = false;
    hs_hash b = {{0}};
    for (uint32_t i = 0; i < w->n; i++) {
        sim_node *n = &w->nodes[i];
        if (n->byz) continue;
        hs_kv_reader rd = hs_kv_store_reader(&n->inner);
        hs_pc hpc = {0}, lock = {0};
        bool ok = hs_bt_highest_pc(&rd, &hpc) == HS_OK && hs_bt_locked_pc(&rd, &lock) == HS_OK &&
                  (hpc.phase == HS_PHASE_PREPARE || hpc.phase == HS_PHASE_PRECOMMIT) &&
                  (first || memcmp(b.b, hpc.block.b, HS_HASH_LEN) == 0);
        if (ok) {
            b = hpc.block;
            first = false;
            if (lock.phase == HS_PHASE_PRECOMMIT && memcmp(lock.block.b, b.b, HS_HASH_LEN) == 0)
                locked = true;
        }
        hs_pc_free(&hpc);
        hs_pc_free(&lock);
        if (!ok) return false;
    }
    return locked;
}

static bool k2_stuck(sim_world *w, sim_node *r) {
    hs_kv_reader rr = hs_kv_store_reader(&r->inner);
    bool any = false;
    for (uint32_t i = 0; i < w->n; i++) {
        sim_node *s = &w->nodes[i];
        if (s->byz || s == r) continue;
        hs_kv_reader rs = hs_kv_store_reader(&s->inner);
        /* Only a peer whose highest PC certifies a block r lacks could help r. */
        hs_pc hpc = {0};
        bool has = true;
        if (hs_bt_highest_pc(&rs, &hpc) != HS_OK) return false;
        if (!hs_pc_is_genesis(&hpc) && hs_bt_contains(&rr, &hpc.block, &has) != HS_OK) has = true;
        hs_pc_free(&hpc);
        if (has) continue;
        uint32_t lim = r->cfg.block_sync_request_limit < s->cfg.block_sync_request_limit
                           ? r->cfg.block_sync_request_limit
                           : s->cfg.block_sync_request_limit;
        hs_block *blocks = NULL;
        uint32_t nb = 0;
        if (hs_bt_blocks_from_height_to_newest(&rs, r->n_committed, lim, &blocks, &nb) != HS_OK)
            return false;
        bool all_known = true;
        for (uint32_t k = 0; k < nb; k++) {
            bool known = false;
            if (hs_bt_contains(&rr, &blocks[k].hash, &known) != HS_OK || !known) all_known = false;
            hs_block_free(&blocks[k]);
        }
        free(blocks);
        if (!all_known) return false;
        any = true;
    }
    return any;
}

/* K3 (spec §4.8): a replica that restarts takes hvwp + 1 as its view. Crashed while parked in
 * an epoch-change view E (waiting for TC(E)), it comes back in E + 1 without any certificate
 * for E, soon parks in the next epoch-change view, and so on. Honest replicas then sit in
 * different epoch-change views, TimeoutVotes only count within one view, and nobody holds a
 * TC or PC that could move the others: no view gathers an honest quorum ever again. Detected
 * when the honest replicas are parked in at least two distinct epoch-change views, in none of
 * which the honest power parked there reaches a quorum, and no honest replica has a highest
 * TC or PC at or above the lowest of those views. */
static bool k3_stall(sim_world *w) {
    uint64_t views[SIM_MAX_NODES], low = UINT64_MAX, cert = 0;
    hs_validator_set vs = {0};
    uint32_t k = 0;
    bool ok = true;
    for (uint32_t i = 0; i < w->n && ok; i++) {
        sim_node *n = &w->nodes[i];
        if (n->byz) continue;
        if (!n->core) return false;
        uint64_t v = hs_core_view(n->core);
        if (v % w->epoch_length != 0) ok = false;
        hs_kv_reader rd = hs_kv_store_reader(&n->inner);
        hs_pc hpc = {0};
        hs_tc tc = {0};
        if (hs_bt_highest_pc(&rd, &hpc) == HS_OK && hpc.view > cert) cert = hpc.view;
        if (hs_bt_highest_tc(&rd, &tc) == HS_OK && tc.view > cert) cert = tc.view;
        hs_pc_free(&hpc);
        hs_tc_free(&tc);
        if (!vs.n && hs_bt_committed_vs(&rd, &vs) != HS_OK) ok = false;
        views[k++] = v;
        if (v < low) low = v;
    }
    bool distinct = false;
    for (uint32_t i = 1; i < k; i++) distinct |= views[i] != views[0];
    /* At view 0 a held TC(0) does not help either: hvwp == 0 restarts in view 0 (spec §4.8). */
    ok = ok && distinct && (cert < low || (low == 0 && cert == 0));
    for (uint32_t i = 0; i < k && ok; i++) { /* the power parked in each view */
        hs_u128 p = 0; /* Byzantine power is not counted on: it may stay away */
        for (uint32_t j = 0, h = 0; j < w->n; j++) {
            if (w->nodes[j].byz) continue;
            int64_t pos = hs_vs_find(&vs, &w->nodes[j].kp.public_key);
            if (views[h++] == views[i] && pos >= 0) p += vs.v[pos].power;
        }
        if (p >= hs_vs_quorum(&vs)) ok = false;
    }
    hs_vs_free(&vs);
    return ok;
}

/* 0: not a known stall; else which (1, 2, 3). */
static int known_stall(sim_world *w) {
    if (k1_stall(w)) return 1;
    if (k3_stall(w)) return 3;
    for (uint32_t i = 0; i < w->n; i++) {
        sim_node *n = &w->nodes[i];
        if (!n->byz && k2_stuck(w, n)) return 2;
    }
    return 0;
}

void check_liveness(sim_world *w) {
    bool late = w->now > w->heal_time + w->o->liveness_ms;
    for (uint32_t i = 0; i < w->n; i++) {
        sim_node *n = &w->nodes[i];
        if (n->byz || n->live_target_met) continue;
        if (n->n_committed > w->live_target) {
            n->live_target_met = w->now ? w->now : 1;
            continue;
        }
        if (late) {
            int k = known_stall(w);
            if (k) {
                w->known = k;
                if (w->o->tolerate_known) return;
            }
            sim_fail(w, "%sLIVENESS: %" PRIu64 " ms after every fault healed, honest replica %u "
                        "has %" PRIu64 " committed blocks, not above %" PRIu64 " (view %" PRIu64
                        "%s)",
                     k == 1   ? "[known stall K1, spec 14.13] "
                     : k == 2 ? "[known stall K2, spec 5.4] "
                     : k == 3 ? "[known stall K3, spec 4.8] "
                              : "",
                     w->o->liveness_ms, i, n->n_committed, w->live_target,
                     n->core ? hs_core_view(n->core) : 0,
                     n->core && hs_core_is_syncing(n->core) ? ", syncing" : "");
            return;
        }
    }
}

/* At the end: every honest replica's whole committed chain against the agreed one. */
void check_final(sim_world *w) {
    for (uint32_t i = 0; i < w->n && !w->failed; i++) {
        sim_node *n = &w->nodes[i];
        if (n->byz) continue;
        hs_kv_reader rd = hs_kv_store_reader(&n->inner);
        for (uint64_t h = 0; h < n->n_committed; h++) {
            hs_hash at;
            if (hs_bt_block_at_height(&rd, h, &at) != HS_OK ||
                memcmp(at.b, w->canon[h].b, HS_HASH_LEN) != 0) {
                sim_fail(w, "replica %u: committed block at height %" PRIu64 " changed", i, h);
                break;
            }
        }
    }
}
