/* collectors.c - phase-vote and timeout-vote collectors (spec §2.11).
 *
 * A collector turns individually verified votes into certificates: one SignatureSet slot per
 * member of its validator set, and a u128 tally of the signers' power. A pair of collectors
 * (CVS, and PVS while a validator-set update is undecided) follows the vss of spec §1.8.
 *
 * Every function that replaces a collector builds the new one first and swaps it in only on
 * success, so an allocation failure leaves the pair as it was.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "collectors.h"

/* ---- phase vote collector ----------------------------------------------------------------- */

static void phase_free(hs_phase_collector *pc) {
    for (uint32_t i = 0; i < pc->n_entries; i++) hs_sigset_free(&pc->entries[i].sigs);
    free(pc->entries);
    hs_vs_free(&pc->vs);
    memset(pc, 0, sizeof *pc);
}

/* *pc must be empty. */
static hs_status phase_init(hs_phase_collector *pc, uint64_t chain_id, uint64_t view,
                            const hs_validator_set *vs) {
    memset(pc, 0, sizeof *pc);
    pc->chain_id = chain_id;
    pc->view = view;
    hs_status st = hs_vs_copy(&pc->vs, vs);
    if (st != HS_OK) memset(pc, 0, sizeof *pc);
    return st;
}

/* Deep copy, votes included (the clone rule of ActiveCollectorPair). *dst must be empty. */
static hs_status phase_clone(hs_phase_collector *dst, const hs_phase_collector *src) {
    hs_status st = phase_init(dst, src->chain_id, src->view, &src->vs);
    if (st != HS_OK) return st;
    if (src->n_entries > 0) {
        dst->entries = calloc(src->n_entries, sizeof *dst->entries);
        if (!dst->entries) {
            phase_free(dst);
            return HS_ERR_NOMEM;
        }
        dst->cap_entries = src->n_entries;
    }
    for (uint32_t i = 0; i < src->n_entries; i++) {
        hs_vote_entry *d = &dst->entries[i];
        const hs_vote_entry *s = &src->entries[i];
        d->block = s->block;
        d->phase = s->phase;
        d->power = s->power;
        st = hs_sigset_copy(&d->sigs, &s->sigs);
        if (st != HS_OK) {
            phase_free(dst);
            return st;
        }
        dst->n_entries = i + 1;
    }
    return HS_OK;
}

static int phase_find_entry(const hs_phase_collector *pc, const hs_hash *block, hs_phase phase) {
    for (uint32_t i = 0; i < pc->n_entries; i++) {
        const hs_vote_entry *e = &pc->entries[i];
        if (e->phase == phase && memcmp(e->block.b, block->b, HS_HASH_LEN) == 0) return (int)i;
    }
    return -1;
}

static bool has_signed_any(const hs_phase_collector *pc, uint32_t pos) {
    for (uint32_t i = 0; i < pc->n_entries; i++)
        if (pc->entries[i].sigs.slots[pos].present) return true;
    return false;
}

/* spec §2.11 PhaseVoteCollector::collect. */
static hs_status phase_collect(hs_phase_collector *pc, const hs_key *signer,
                               const hs_phase_vote *v, bool *got, hs_pc *out) {
    *got = false;
    if (v->chain_id != pc->chain_id || v->view != pc->view) return HS_OK;
    int64_t pos = hs_vs_find(&pc->vs, signer);
    if (pos < 0) return HS_OK;
    assert((uint64_t)pos < pc->vs.n);

    int idx = phase_find_entry(pc, &v->block, v->phase);
    if (idx < 0) {
        /* Bound memory against signers voting for many blocks (collectors.h). */
        if (has_signed_any(pc, (uint32_t)pos)) return HS_OK;
        if (pc->n_entries == pc->cap_entries) {
            uint32_t cap = pc->cap_entries ? pc->cap_entries * 2 : 4;
            hs_vote_entry *grown = realloc(pc->entries, cap * sizeof *grown);
            if (!grown) return HS_ERR_NOMEM;
            pc->entries = grown;
            pc->cap_entries = cap;
        }
        assert(pc->n_entries < pc->vs.n);
        hs_vote_entry *e = &pc->entries[pc->n_entries];
        memset(e, 0, sizeof *e);
        hs_status st = hs_sigset_init(&e->sigs, pc->vs.n);
        if (st != HS_OK) return st;
        e->block = v->block;
        e->phase = v->phase;
        idx = (int)pc->n_entries++;
    }

    hs_vote_entry *e = &pc->entries[idx];
    assert(e->sigs.n == pc->vs.n);
    hs_sig_slot *slot = &e->sigs.slots[pos];
    if (slot->present) return HS_OK; /* a signer counts once */
    slot->present = true;
    slot->sig = v->sig;
    e->power += pc->vs.v[pos].power;
    if (e->power < hs_vs_quorum(&pc->vs)) return HS_OK;

    /* Quorum: hand the signatures over to the PC and remove the entry, so later votes for
     * the same (block, phase) start a fresh tally (spec §2.11). */
    memset(out, 0, sizeof *out);
    out->chain_id = pc->chain_id;
    out->view = pc->view;
    out->block = e->block;
    out->phase = e->phase;
    out->sigs = e->sigs;
    pc->n_entries--;
    memmove(&pc->entries[idx], &pc->entries[idx + 1],
            (pc->n_entries - (uint32_t)idx) * sizeof pc->entries[0]);
    memset(&pc->entries[pc->n_entries], 0, sizeof pc->entries[0]);
    *got = true;
    return HS_OK;
}

/* ---- timeout vote collector --------------------------------------------------------------- */

static void timeout_free(hs_timeout_collector *tc) {
    hs_sigset_free(&tc->sigs);
    hs_vs_free(&tc->vs);
    memset(tc, 0, sizeof *tc);
}

/* The signature set is allocated on the first accepted vote, so an idle collector (and the
 * empty validator set, for which hs_sigset_init(0) has nothing to allocate) costs nothing. */
static hs_status timeout_init(hs_timeout_collector *tc, uint64_t chain_id, uint64_t view,
                              const hs_validator_set *vs) {
    memset(tc, 0, sizeof *tc);
    tc->chain_id = chain_id;
    tc->view = view;
    hs_status st = hs_vs_copy(&tc->vs, vs);
    if (st != HS_OK) memset(tc, 0, sizeof *tc);
    return st;
}

static hs_status timeout_clone(hs_timeout_collector *dst, const hs_timeout_collector *src) {
    hs_status st = timeout_init(dst, src->chain_id, src->view, &src->vs);
    if (st != HS_OK) return st;
    if (src->sigs.slots) {
        st = hs_sigset_copy(&dst->sigs, &src->sigs);
        if (st != HS_OK) {
            timeout_free(dst);
            return st;
        }
    }
    dst->power = src->power;
    return HS_OK;
}

/* spec §2.11 TimeoutVoteCollector::collect: like the phase collector, but the tally is kept,
 * so every new vote after quorum yields another, larger TC. */
static hs_status timeout_collect(hs_timeout_collector *tc, const hs_key *signer,
                                 const hs_timeout_vote *v, bool *got, hs_tc *out) {
    *got = false;
    if (v->chain_id != tc->chain_id || v->view != tc->view) return HS_OK;
    int64_t pos = hs_vs_find(&tc->vs, signer);
    if (pos < 0) return HS_OK;
    assert((uint64_t)pos < tc->vs.n);

    if (!tc->sigs.slots) {
        hs_status st = hs_sigset_init(&tc->sigs, tc->vs.n);
        if (st != HS_OK) return st;
    }
    assert(tc->sigs.n == tc->vs.n);
    hs_sig_slot *slot = &tc->sigs.slots[pos];
    if (slot->present) return HS_OK;
    slot->present = true;
    slot->sig = v->sig;
    tc->power += tc->vs.v[pos].power;
    if (tc->power < hs_vs_quorum(&tc->vs)) return HS_OK;

    hs_tc cert;
    memset(&cert, 0, sizeof cert);
    cert.chain_id = tc->chain_id;
    cert.view = tc->view;
    hs_status st = hs_sigset_copy(&cert.sigs, &tc->sigs);
    if (st != HS_OK) return st;
    *out = cert;
    *got = true;
    return HS_OK;
}

/* ---- ActiveCollectorPair ------------------------------------------------------------------ */
/* The update rule of spec §2.11 in its C-port form (§14.8):
 *   1. CVS differs from the CVS collector's set -> fresh CVS collector;
 *   2. decided -> no PVS collector;
 *   3. else, no PVS collector or its set differs from the new PVS -> a clone of the (current)
 *      CVS collector if the new PVS equals its set, else a fresh collector.
 * The phase and timeout pairs are the same code over the two collector kinds. */

hs_status hs_phase_collectors_init(hs_phase_collectors *c, uint64_t chain_id, uint64_t view,
                                   const hs_vss *vss) {
    if (!c || !vss) return HS_ERR_INVALID;
    memset(c, 0, sizeof *c);
    hs_status st = phase_init(&c->cvs, chain_id, view, &vss->committed);
    if (st != HS_OK) return st;
    if (!vss->update_decided) {
        st = phase_init(&c->pvs, chain_id, view, &vss->previous);
        if (st != HS_OK) {
            phase_free(&c->cvs);
            return st;
        }
        c->has_pvs = true;
    }
    return HS_OK;
}

void hs_phase_collectors_free(hs_phase_collectors *c) {
    if (!c) return;
    phase_free(&c->cvs);
    phase_free(&c->pvs); /* empty when !has_pvs: a no-op */
    c->has_pvs = false;
}

hs_status hs_phase_collectors_update(hs_phase_collectors *c, const hs_vss *vss) {
    if (!c || !vss) return HS_ERR_INVALID;
    hs_status st;
    if (!hs_vs_equal(&c->cvs.vs, &vss->committed)) {
        hs_phase_collector fresh;
        st = phase_init(&fresh, c->cvs.chain_id, c->cvs.view, &vss->committed);
        if (st != HS_OK) return st;
        phase_free(&c->cvs);
        c->cvs = fresh;
    }
    if (vss->update_decided) {
        phase_free(&c->pvs);
        c->has_pvs = false;
    } else if (!c->has_pvs || !hs_vs_equal(&c->pvs.vs, &vss->previous)) {
        hs_phase_collector next;
        if (hs_vs_equal(&vss->previous, &c->cvs.vs))
            st = phase_clone(&next, &c->cvs);
        else
            st = phase_init(&next, c->cvs.chain_id, c->cvs.view, &vss->previous);
        if (st != HS_OK) return st;
        phase_free(&c->pvs);
        c->pvs = next;
        c->has_pvs = true;
    }
    return HS_OK;
}

/* The CVS collector first; the PVS collector only if the CVS one produced nothing. */
hs_status hs_phase_collectors_collect(hs_phase_collectors *c, const hs_key *signer,
                                      const hs_phase_vote *v, bool *got, hs_pc *out) {
    if (!c || !signer || !v || !got || !out) return HS_ERR_INVALID;
    hs_status st = phase_collect(&c->cvs, signer, v, got, out);
    if (st != HS_OK || *got || !c->has_pvs) return st;
    return phase_collect(&c->pvs, signer, v, got, out);
}

hs_status hs_timeout_collectors_init(hs_timeout_collectors *c, uint64_t chain_id, uint64_t view,
                                     const hs_vss *vss) {
    if (!c || !vss) return HS_ERR_INVALID;
    memset(c, 0, sizeof *c);
    hs_status st = timeout_init(&c->cvs, chain_id, view, &vss->committed);
    if (st != HS_OK) return st;
    if (!vss->update_decided) {
        st = timeout_init(&c->pvs, chain_id, view, &vss->previous);
        if (st != HS_OK) {
            timeout_free(&c->cvs);
            return st;
        }
        c->has_pvs = true;
    }
    return HS_OK;
}

void hs_timeout_collectors_free(hs_timeout_collectors *c) {
    if (!c) return;
    timeout_free(&c->cvs);
    timeout_free(&c->pvs);
    c->has_pvs = false;
}

hs_status hs_timeout_collectors_update(hs_timeout_collectors *c, const hs_vss *vss) {
    if (!c || !vss) return HS_ERR_INVALID;
    hs_status st;
    if (!hs_vs_equal(&c->cvs.vs, &vss->committed)) {
        hs_timeout_collector fresh;
        st = timeout_init(&fresh, c->cvs.chain_id, c->cvs.view, &vss->committed);
        if (st != HS_OK) return st;
        timeout_free(&c->cvs);
        c->cvs = fresh;
    }
    if (vss->update_decided) {
        timeout_free(&c->pvs);
        c->has_pvs = false;
    } else if (!c->has_pvs || !hs_vs_equal(&c->pvs.vs, &vss->previous)) {
        hs_timeout_collector next;
        if (hs_vs_equal(&vss->previous, &c->cvs.vs))
            st = timeout_clone(&next, &c->cvs);
        else
            st = timeout_init(&next, c->cvs.chain_id, c->cvs.view, &vss->previous);
        if (st != HS_OK) return st;
        timeout_free(&c->pvs);
        c->pvs = next;
        c->has_pvs = true;
    }
    return HS_OK;
}

hs_status hs_timeout_collectors_collect(hs_timeout_collectors *c, const hs_key *signer,
                                        const hs_timeout_vote *v, bool *got, hs_tc *out) {
    if (!c || !signer || !v || !got || !out) return HS_ERR_INVALID;
    hs_status st = timeout_collect(&c->cvs, signer, v, got, out);
    if (st != HS_OK || *got || !c->has_pvs) return st;
    return timeout_collect(&c->pvs, signer, v, got, out);
}
