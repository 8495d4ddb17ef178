/* tests/sim/live.c - the steady-fault scenarios: liveness with f faulty validators.
 *
 * The chaos scenario (sim.c) checks that the chain recovers once every fault heals. These check
 * the promise a BFT service makes while faults persist: with up to a third of the voting power
 * crashed for good (SCEN_CRASH: each faulty validator crashes at a random moment of the first
 * seconds, possibly while it leads, and never comes back) or silent from the start
 * (SCEN_SILENT: Byzantine validators that never send a message), every honest replica keeps
 * committing, and the time between two of its commits never exceeds --max-gap-ms for the whole
 * run (a minute of virtual time by default), counting from its first commit and from the last
 * crash (the start-up, a view-0 timeout certificate and round-robin leaders until certificates
 * name the active validators, is reported apart). The network delays and reorders messages
 * (exponential latency) but loses none.
 *
 * Powers are all 1 (--powers equal) or drawn from 1..5 (--powers unequal); the faulty set is
 * drawn in random order, taking each validator whose power keeps the faulty total strictly
 * below a third, so with equal powers it holds the largest f the quorum rule tolerates.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void live_setup(sim_world *w) {
    uint64_t power[SIM_MAX_NODES], total = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        power[i] = w->o->unequal ? rng_range(&w->rng, 1, 5) : 1;
        total += power[i];
    }
    hs_validator_set *vs = &w->configs[0];
    for (uint32_t i = 0; i < w->n; i++)
        if (hs_vs_put(vs, &w->nodes[i].kp.public_key, power[i]) != HS_OK) abort();
    w->n_configs = 1;
    w->vs_change_pm = 0;

    /* The faulty set: a random order, each validator taken while the total stays below P/3. */
    uint32_t order[SIM_MAX_NODES];
    for (uint32_t i = 0; i < w->n; i++) order[i] = i;
    for (uint32_t i = w->n; i > 1; i--) {
        uint32_t j = (uint32_t)rng_below(&w->rng, i);
        uint32_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    uint64_t faulty = 0;
    for (uint32_t k = 0; k < w->n; k++) {
        uint32_t i = order[k];
        if (3 * (faulty + power[i]) >= total) continue;
        faulty += power[i];
        sim_node *n = &w->nodes[i];
        n->faulty = true;
        if (w->o->scenario == SCEN_SILENT) {
            n->byz = n->silent = true; /* excluded from the honest checks */
        } else {
            n->never_restart = true;
            /* Crash at a random moment of the first 5 s: before, while or after it leads. */
            uint64_t t = rng_range(&w->rng, 500, 5000);
            if (t > w->faults_begin) w->faults_begin = t;
            sim_push(w, t, EV_CHAOS, (int)i, (int)i, 0, NULL);
        }
    }
}

void live_on_commit(sim_world *w, sim_node *n, uint64_t new_heights) {
    if (n->last_commit_t == 0) { /* the wait for the first commit is the start-up's */
        n->first_commit_t = w->now;
    } else if (w->now >= w->faults_begin) {
        uint64_t from = n->last_commit_t > w->faults_begin ? n->last_commit_t : w->faults_begin;
        if (w->now - from > n->max_gap) n->max_gap = w->now - from;
        n->commits_after += new_heights;
    }
    n->last_commit_t = w->now;
}

void live_check(sim_world *w) {
    for (uint32_t i = 0; i < w->n && !w->failed; i++) {
        sim_node *n = &w->nodes[i];
        if (n->faulty || n->byz) continue;
        /* The stretch from the last commit to the end of the run counts too. */
        uint64_t from = n->last_commit_t > w->faults_begin ? n->last_commit_t : w->faults_begin;
        if (w->now > from && w->now - from > n->max_gap) n->max_gap = w->now - from;
        if (n->last_commit_t == 0)
            sim_fail(w, "LIVENESS: honest replica %u never committed", i);
        else if (n->max_gap > w->o->max_gap_ms)
            sim_fail(w, "LIVENESS: honest replica %u went %" PRIu64 " ms without a commit "
                        "(bound %" PRIu64 " ms) with the faulty validators down; it committed "
                        "%" PRIu64 " heights after the faults began",
                     i, n->max_gap, w->o->max_gap_ms, n->commits_after);
    }
}

void live_report(const sim_world *w, uint64_t *max_gap, uint64_t *min_commits,
                 uint64_t *first_commit) {
    *max_gap = *first_commit = 0;
    *min_commits = UINT64_MAX;
    for (uint32_t i = 0; i < w->n; i++) {
        const sim_node *n = &w->nodes[i];
        if (n->faulty || n->byz) continue;
        if (n->max_gap > *max_gap) *max_gap = n->max_gap;
        if (n->commits_after < *min_commits) *min_commits = n->commits_after;
        if (n->first_commit_t > *first_commit) *first_commit = n->first_commit_t;
    }
}
