/* tests/sim/byz.c - Byzantine replicas.
 *
 * A Byzantine replica runs an honest core whose outputs pass through here: during the fault
 * phase they may be dropped, tampered with, or doubled into equivocations. It also attacks
 * unprompted (EV_BYZ) with crafted messages: far-future views, certificates with forged or too
 * few signatures, wrong chain ids, bad signatures, garbage bytes, fake advertisements and sync
 * responses. It stays Byzantine after the network faults heal: the validator sets keep runs of
 * honest leaders (app.c) so that the honest replicas must make progress without its help.
 *
 * Everything sent is signed with the replica's own key: the network authenticates origins, so
 * a Byzantine replica can lie about anything but who it is.
 */
#include <stdlib.h>
#include <string.h>

#include "hotstuff/crypto.h"
#include "sim.h"

static void note(sim_node *n, const char *what) {
    n->w->byz_attacks++;
    trace_add(n->w, TR_BYZ, n->id, 0, 0, 0, 0, what);
}

static void sign_vote(const sim_node *n, hs_phase_vote *v) {
    uint8_t bytes[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(v->chain_id, v->view, &v->block, v->phase, bytes);
    hs_sign(&n->kp, bytes, sizeof bytes, &v->sig);
}

static void sign_timeout(const sim_node *n, hs_timeout_vote *tv) {
    uint8_t bytes[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(tv->chain_id, tv->view, bytes);
    hs_sign(&n->kp, bytes, sizeof bytes, &tv->sig);
}

static void random_hash(sim_world *w, hs_hash *h) {
    for (int i = 0; i < HS_HASH_LEN; i += 8) {
        uint64_t r = rng_next(&w->rng);
        memcpy(h->b + i, &r, 8);
    }
}

/* A certificate the signers never made: same signatures, another view (or block). */
static void forge_pc(sim_world *w, hs_pc *pc) {
    switch (rng_below(&w->rng, 4)) {
    case 0: pc->view += 1 + rng_below(&w->rng, 5); break;
    case 1: random_hash(w, &pc->block); break;
    case 2: pc->phase = (hs_phase)((pc->phase + 1) % HS_PHASE_COUNT); break;
    default: /* too few signatures: keep only the first present one */
        for (uint32_t i = 0, kept = 0; i < pc->sigs.n; i++) {
            if (pc->sigs.slots[i].present && kept++) pc->sigs.slots[i].present = false;
        }
    }
}

static void forge_tc(sim_world *w, hs_tc *tc) {
    if (rng_chance(&w->rng, 500)) {
        tc->view += w->epoch_length;
    } else {
        for (uint32_t i = 0, kept = 0; i < tc->sigs.n; i++)
            if (tc->sigs.slots[i].present && kept++) tc->sigs.slots[i].present = false;
    }
}

/* Gives `b` a different valid body: another nonce, with the hashes recomputed. */
static bool rebody(sim_world *w, hs_block *b) {
    if (b->data.n != 1 || b->data.items[0].len != SIM_DATUM_LEN) return false;
    uint8_t *d = b->data.items[0].p;
    d[5] ^= (uint8_t)(1 + rng_below(&w->rng, 255));
    hs_sha256(d, SIM_DATUM_LEN, &b->data_hash);
    return hs_block_compute_hash(b, &b->hash) == HS_OK;
}

static void send_corrupted(sim_node *n, int to, const hs_msg *m, bool truncate) {
    sim_world *w = n->w;
    uint8_t *p = NULL;
    size_t len = 0;
    if (hs_msg_encode(m, &p, &len) != HS_OK) return;
    if (truncate && len > 1) {
        len = rng_below(&w->rng, len);
    } else if (len > 0) {
        int flips = (int)rng_range(&w->rng, 1, 4);
        for (int i = 0; i < flips; i++) p[rng_below(&w->rng, len)] ^= (uint8_t)(1u << rng_below(&w->rng, 8));
    }
    sim_net_send_bytes(w, n->id, to, p, len);
    free(p);
}

/* ---- the core's own messages ---- */

void byz_broadcast(sim_node *n, const hs_msg *m) {
    sim_world *w = n->w;
    if (w->o->calm) {
        sim_net_broadcast_from(w, n->id, m);
        return;
    }
    uint64_t r = rng_below(&w->rng, 1000);
    hs_msg c = {0};
    if (hs_msg_copy(&c, m) != HS_OK) abort();
    switch (m->type) {
    case HS_MSG_PROPOSAL:
        if (r < 350) { /* equivocate: two blocks in one view, one to each half */
            hs_msg alt = {0};
            if (hs_msg_copy(&alt, m) != HS_OK) abort();
            if (rebody(w, &alt.u.proposal.block)) {
                note(n, "equivocating proposal");
                uint64_t mask = rng_next(&w->rng);
                for (uint32_t j = 0; j < w->n; j++)
                    sim_net_send(w, n->id, (int)j, (mask >> j) & 1 ? &alt : m);
            }
            hs_msg_free(&alt);
            goto out;
        }
        if (r < 450) {
            note(n, "proposal withheld");
            goto out;
        }
        if (r < 520) {
            note(n, "proposal with forged justify");
            forge_pc(w, &c.u.proposal.block.justify);
            hs_block_compute_hash(&c.u.proposal.block, &c.u.proposal.block.hash);
            sim_net_broadcast_from(w, n->id, &c);
            goto out;
        }
        break;
    case HS_MSG_NUDGE:
        if (r < 200) {
            note(n, "nudge withheld");
            goto out;
        }
        if (r < 300) {
            note(n, "nudge with forged justify");
            forge_pc(w, &c.u.nudge.justify);
            sim_net_broadcast_from(w, n->id, &c);
            goto out;
        }
        break;
    case HS_MSG_TIMEOUT_VOTE:
        if (r < 150) {
            note(n, "timeout vote with bad signature");
            c.u.timeout_vote.sig.b[rng_below(&w->rng, HS_SIG_LEN)] ^= 0x20;
            sim_net_broadcast_from(w, n->id, &c);
            goto out;
        }
        if (r < 300 && c.u.timeout_vote.has_highest_tc) {
            note(n, "timeout vote carrying a forged TC");
            forge_tc(w, &c.u.timeout_vote.highest_tc);
            sim_net_broadcast_from(w, n->id, &c);
            goto out;
        }
        break;
    case HS_MSG_ADVANCE_VIEW:
        if (r < 250) {
            note(n, "advance view with forged certificate");
            if (c.u.advance_view.is_tc) forge_tc(w, &c.u.advance_view.tc);
            else forge_pc(w, &c.u.advance_view.pc);
            sim_net_broadcast_from(w, n->id, &c);
            goto out;
        }
        break;
    case HS_MSG_ADVERTISE_BLOCK:
        if (r < 500) { /* a height it does not have, correctly signed */
            note(n, "advertises a height it lacks");
            c.u.advertise_block.height += 1 + rng_below(&w->rng, 1000);
            uint8_t bytes[HS_TIMEOUT_MSG_LEN];
            hs_timeout_vote_bytes(c.u.advertise_block.chain_id, c.u.advertise_block.height, bytes);
            hs_sign(&n->kp, bytes, sizeof bytes, &c.u.advertise_block.sig);
            sim_net_broadcast_from(w, n->id, &c);
            goto out;
        }
        break;
    case HS_MSG_ADVERTISE_PC:
        if (r < 300) {
            note(n, "advertises a forged PC");
            forge_pc(w, &c.u.advertise_pc.highest_pc);
            c.u.advertise_pc.highest_pc.view += 10;
            sim_net_broadcast_from(w, n->id, &c);
            goto out;
        }
        break;
    default:
        break;
    }
    sim_net_broadcast_from(w, n->id, m);
out:
    hs_msg_free(&c);
}

void byz_send(sim_node *n, const hs_key *to_key, const hs_msg *m) {
    sim_world *w = n->w;
    int to = sim_node_by_key(w, to_key);
    if (to < 0) return;
    if (w->o->calm) {
        sim_net_send(w, n->id, to, m);
        return;
    }
    uint64_t r = rng_below(&w->rng, 1000);
    hs_msg c = {0};
    if (hs_msg_copy(&c, m) != HS_OK) abort();
    switch (m->type) {
    case HS_MSG_PHASE_VOTE:
        if (r < 300) { /* two votes in one view */
            note(n, "double vote");
            sim_net_send(w, n->id, to, m);
            if (rng_chance(&w->rng, 500)) random_hash(w, &c.u.phase_vote.block);
            else c.u.phase_vote.phase = (hs_phase)((c.u.phase_vote.phase + 1) % HS_PHASE_COUNT);
            sign_vote(n, &c.u.phase_vote);
            sim_net_send(w, n->id, to, &c);
            goto out;
        }
        if (r < 400) {
            note(n, "vote with bad signature");
            c.u.phase_vote.sig.b[rng_below(&w->rng, HS_SIG_LEN)] ^= 0x01;
            sim_net_send(w, n->id, to, &c);
            goto out;
        }
        if (r < 450) {
            note(n, "vote for another chain");
            c.u.phase_vote.chain_id++;
            sign_vote(n, &c.u.phase_vote);
            sim_net_send(w, n->id, to, &c);
            goto out;
        }
        if (r < 500) {
            note(n, "vote withheld");
            goto out;
        }
        break;
    case HS_MSG_NEW_VIEW:
        if (r < 300) {
            note(n, "new view with forged PC");
            forge_pc(w, &c.u.new_view.highest_pc);
            sim_net_send(w, n->id, to, &c);
            goto out;
        }
        break;
    case HS_MSG_SYNC_RESPONSE:
        if (r < 250) {
            note(n, "corrupted sync response");
            send_corrupted(n, to, m, false);
            goto out;
        }
        if (r < 400) {
            note(n, "truncated sync response");
            send_corrupted(n, to, m, true);
            goto out;
        }
        if (r < 550 && c.u.sync_response.n_blocks > 0) {
            note(n, "sync response with a tampered block");
            hs_block *b = &c.u.sync_response.blocks[rng_below(&w->rng, c.u.sync_response.n_blocks)];
            if (rng_chance(&w->rng, 500)) rebody(w, b); /* valid hash, but a block nobody certified */
            else b->height += 1;                          /* hash no longer matches */
            sim_net_send(w, n->id, to, &c);
            goto out;
        }
        if (r < 650) {
            note(n, "empty sync response with forged PC");
            for (uint32_t i = 0; i < c.u.sync_response.n_blocks; i++)
                hs_block_free(&c.u.sync_response.blocks[i]);
            c.u.sync_response.n_blocks = 0;
            forge_pc(w, &c.u.sync_response.highest_pc);
            sim_net_send(w, n->id, to, &c);
            goto out;
        }
        break;
    default:
        break;
    }
    sim_net_send(w, n->id, to, m);
out:
    hs_msg_free(&c);
}

/* ---- unprompted attacks ---- */

static int random_target(sim_world *w) { return (int)rng_below(&w->rng, w->n); }

void byz_attack(sim_node *n) {
    sim_world *w = n->w;
    hs_kv_reader rd = hs_kv_store_reader(&n->inner);
    hs_pc hpc = {0};
    if (hs_bt_highest_pc(&rd, &hpc) != HS_OK) return;
    uint64_t cur = hs_core_view(n->core), chain = n->cfg.chain_id;
    hs_msg m = {0};
    switch (rng_below(&w->rng, 12)) {
    case 0: { /* far-future timeout vote, correctly signed */
        m.type = HS_MSG_TIMEOUT_VOTE;
        m.u.timeout_vote.chain_id = chain;
        uint64_t far = rng_chance(&w->rng, 200) ? UINT64_MAX - rng_below(&w->rng, 3)
                                                : cur + rng_range(&w->rng, 2, 1000000);
        m.u.timeout_vote.view = far - far % w->epoch_length;
        sign_timeout(n, &m.u.timeout_vote);
        note(n, "far-future timeout vote");
        sim_net_broadcast_from(w, n->id, &m);
        break;
    }
    case 1: /* far-future nudge: sits in the intake buffers */
        m.type = HS_MSG_NUDGE;
        m.u.nudge.chain_id = chain;
        m.u.nudge.view = rng_chance(&w->rng, 200) ? UINT64_MAX : cur + rng_range(&w->rng, 1, 100000);
        if (hs_pc_copy(&m.u.nudge.justify, &hpc) != HS_OK) abort();
        m.u.nudge.justify.phase = HS_PHASE_PREPARE;
        note(n, "far-future nudge");
        sim_net_broadcast_from(w, n->id, &m);
        break;
    case 2: /* AdvanceView with a forged PC */
    case 3:
        m.type = HS_MSG_ADVANCE_VIEW;
        if (hs_pc_copy(&m.u.advance_view.pc, &hpc) != HS_OK) abort();
        if (hs_pc_is_genesis(&hpc)) m.u.advance_view.pc.view = cur + 3; /* unsigned */
        else forge_pc(w, &m.u.advance_view.pc);
        if (m.u.advance_view.pc.view < cur) m.u.advance_view.pc.view = cur;
        note(n, "advance view with forged PC");
        sim_net_broadcast_from(w, n->id, &m);
        break;
    case 4: /* wrong chain id, otherwise valid */
        m.type = HS_MSG_TIMEOUT_VOTE;
        m.u.timeout_vote.chain_id = chain + 1;
        m.u.timeout_vote.view = cur - cur % w->epoch_length + w->epoch_length;
        sign_timeout(n, &m.u.timeout_vote);
        note(n, "timeout vote for another chain");
        sim_net_broadcast_from(w, n->id, &m);
        break;
    case 5: { /* garbage: delivered only in the rare case that it decodes */
        uint8_t junk[256];
        size_t len = rng_range(&w->rng, 1, sizeof junk);
        for (size_t i = 0; i < len; i++) junk[i] = (uint8_t)rng_next(&w->rng);
        junk[0] = (uint8_t)rng_below(&w->rng, 2); /* plausible outer tag */
        if (len > 1) junk[1] = (uint8_t)rng_below(&w->rng, 3);
        note(n, "garbage bytes");
        sim_net_send_bytes(w, n->id, random_target(w), junk, len);
        break;
    }
    case 6: { /* advertises a height it does not have */
        m.type = HS_MSG_ADVERTISE_BLOCK;
        m.u.advertise_block.chain_id = chain;
        m.u.advertise_block.height = n->n_committed + rng_range(&w->rng, 1, 500);
        uint8_t bytes[HS_TIMEOUT_MSG_LEN];
        hs_timeout_vote_bytes(chain, m.u.advertise_block.height, bytes);
        hs_sign(&n->kp, bytes, sizeof bytes, &m.u.advertise_block.sig);
        note(n, "advertises a height it lacks");
        sim_net_broadcast_from(w, n->id, &m);
        break;
    }
    case 7: { /* unsolicited sync response with a block that does not hash */
        m.type = HS_MSG_SYNC_RESPONSE;
        m.u.sync_response.blocks = calloc(1, sizeof(hs_block));
        if (!m.u.sync_response.blocks) abort();
        m.u.sync_response.n_blocks = 1;
        hs_block *b = &m.u.sync_response.blocks[0];
        b->height = rng_below(&w->rng, 50);
        random_hash(w, &b->hash);
        if (hs_pc_copy(&b->justify, &hpc) != HS_OK) abort();
        if (hs_pc_copy(&m.u.sync_response.highest_pc, &hpc) != HS_OK) abort();
        note(n, "unsolicited sync response");
        sim_net_send(w, n->id, random_target(w), &m);
        break;
    }
    case 8: { /* correctly signed votes for blocks nobody proposed */
        m.type = HS_MSG_PHASE_VOTE;
        m.u.phase_vote.chain_id = chain;
        m.u.phase_vote.view = cur + rng_below(&w->rng, 2);
        random_hash(w, &m.u.phase_vote.block);
        m.u.phase_vote.phase = (hs_phase)rng_below(&w->rng, HS_PHASE_COUNT);
        sign_vote(n, &m.u.phase_vote);
        note(n, "vote for an unknown block");
        sim_net_send(w, n->id, random_target(w), &m);
        break;
    }
    case 9: { /* AdvanceView with a forged TC */
        hs_tc tc = {0};
        if (hs_bt_highest_tc(&rd, &tc) != HS_OK) break;
        m.type = HS_MSG_ADVANCE_VIEW;
        m.u.advance_view.is_tc = true;
        m.u.advance_view.tc = tc;
        forge_tc(w, &m.u.advance_view.tc);
        note(n, "advance view with forged TC");
        sim_net_broadcast_from(w, n->id, &m);
        break;
    }
    case 10: { /* a proposal out of turn, or in turn with a forged justify */
        m.type = HS_MSG_PROPOSAL;
        m.u.proposal.chain_id = chain;
        m.u.proposal.view = cur;
        hs_block *b = &m.u.proposal.block;
        if (hs_pc_copy(&b->justify, &hpc) != HS_OK) abort();
        if (!hs_pc_is_genesis(&hpc) && rng_chance(&w->rng, 500)) forge_pc(w, &b->justify);
        uint64_t h = 0;
        if (!hs_pc_is_genesis(&hpc) && hs_bt_block_height(&rd, &hpc.block, &h) == HS_OK) h++;
        b->height = h;
        b->data.items = calloc(1, sizeof *b->data.items);
        if (!b->data.items) abort();
        b->data.n = 1;
        uint8_t d[SIM_DATUM_LEN];
        sim_app_datum(d, 0, 0, rng_next(&w->rng));
        if (hs_bytes_set(&b->data.items[0], d, sizeof d) != HS_OK) abort();
        hs_sha256(d, sizeof d, &b->data_hash);
        hs_block_compute_hash(b, &b->hash);
        note(n, "unasked-for proposal");
        sim_net_broadcast_from(w, n->id, &m);
        break;
    }
    default: { /* a corrupted copy of a real certificate-carrying message */
        m.type = HS_MSG_ADVANCE_VIEW;
        if (hs_pc_copy(&m.u.advance_view.pc, &hpc) != HS_OK) abort();
        note(n, "corrupted advance view bytes");
        send_corrupted(n, random_target(w), &m, rng_chance(&w->rng, 300));
        break;
    }
    }
    hs_msg_free(&m);
    hs_pc_free(&hpc);
}
