/* tests/sim/sim.h - a deterministic simulator for hs_core (the `sim` tool).
 *
 * N replicas, each an hs_core plus an hs_sync_server on its own in-memory store, run in one
 * thread against a virtual clock. Everything that happens is an event in one min-heap ordered
 * by (virtual time, sequence number): message deliveries, timer wake-ups, and the faults the
 * simulator injects. Every random choice comes from one generator seeded by the seed, so a
 * seed replays exactly.
 *
 * Modules: sim.c (world, network, event loop, command line), app.c (the replicated test App and
 * the validator sets it may switch to), byz.c (Byzantine behaviour), check.c (the invariants
 * checked after every step, and the trace of the last events).
 */
#ifndef HS_SIM_H
#define HS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hotstuff/block_tree.h"
#include "hotstuff/config.h"
#include "hotstuff/core.h"
#include "hotstuff/store.h"

#define SIM_MAX_NODES 16
#define SIM_MAX_CONFIGS 8
#define SIM_TRACE_LEN 64
#define SIM_VOTE_RING 4096 /* views remembered per replica for the double-vote check */

/* ---- randomness: xoshiro256** seeded through splitmix64 ---- */
typedef struct sim_rng {
    uint64_t s[4];
} sim_rng;

void rng_seed(sim_rng *r, uint64_t seed);
uint64_t rng_next(sim_rng *r);
uint64_t rng_below(sim_rng *r, uint64_t n); /* uniform in [0, n); 0 when n == 0 */
bool rng_chance(sim_rng *r, uint32_t per_mille);
uint64_t rng_range(sim_rng *r, uint64_t lo, uint64_t hi); /* uniform in [lo, hi] */

/* ---- encoded messages in flight, shared by the copies of one broadcast ---- */
typedef struct sim_buf {
    uint32_t refs;
    uint32_t len;
    uint8_t data[];
} sim_buf;

sim_buf *buf_new(const uint8_t *p, size_t len);
void buf_unref(sim_buf *b);

typedef enum ev_kind {
    EV_DELIVER = 0, /* buf from `from` arrives at `to` */
    EV_WAKE,        /* core deadline of `to` (valid if gen matches) */
    EV_SRV_WAKE,    /* sync server deadline of `to` */
    EV_CHAOS,       /* the fault injector's next move */
    EV_RESTART,     /* `to` comes back up (valid if gen matches its crash count) */
    EV_HEAL,        /* the partition numbered gen ends */
    EV_BYZ,         /* a Byzantine replica's next unprompted attack */
    EV_KIND_COUNT
} ev_kind;

typedef struct sim_ev {
    uint64_t t, seq;
    uint8_t kind;
    uint8_t to, from;
    uint32_t gen;
    sim_buf *buf;
} sim_ev;

/* ---- trace ring ---- */
typedef enum tr_kind {
    TR_DELIVER = 0,
    TR_DROP_UNDECODABLE,
    TR_WAKE,
    TR_SRV,
    TR_CRASH,
    TR_CRASH_AFTER_WRITE,
    TR_IO_FAIL,
    TR_RESTART,
    TR_PARTITION,
    TR_ONEWAY,
    TR_ISOLATE,
    TR_HEAL,
    TR_NETPROFILE,
    TR_BYZ,
    TR_COMMIT,
    TR_VS_UPDATE,
    TR_LOG,
    TR_PHASE_END
} tr_kind;

typedef struct tr_entry {
    uint64_t t;
    uint64_t step;
    uint8_t kind;
    uint8_t a, b;   /* nodes */
    uint8_t mtype;  /* hs_msg_type for deliveries */
    uint64_t x, y;  /* kind-specific: view, height, ... */
    char note[40];  /* short text (byz attack name, log excerpt) */
} tr_entry;

/* ---- the simulated App (app.c) ---- */
typedef struct sim_app_ctx {
    struct sim_world *w;
    int id;
} sim_app_ctx;

/* ---- one replica ---- */
typedef struct sim_node {
    struct sim_world *w;
    int id;
    bool byz;
    hs_keypair kp;
    hs_config cfg;
    hs_mem_store *store;
    hs_kv_store inner;  /* the mem store */
    hs_kv_store kv;     /* the wrapper the core sees: crash and I/O fault injection */
    hs_network net;
    sim_app_ctx app_ctx;
    hs_core_env env;
    hs_core *core;      /* NULL while down */
    hs_sync_server *srv;

    bool up;
    uint32_t crashes;         /* also the generation of EV_RESTART events */
    int crash_after_writes;   /* > 0: crash right after that many more successful writes */
    bool dying;               /* crashed inside the current step: sends and writes are void */
    bool fail_next_write;     /* the next write returns HS_ERR_IO without applying */
    bool io_failed;
    uint64_t wake_at, srv_wake_at; /* scheduled times (UINT64_MAX: none) */
    uint32_t wake_gen, srv_gen;

    /* Monotonic values last seen in this replica's store (check.c). */
    bool seen;
    uint64_t hpc_view, hve, hvv, htc_view;
    bool has_hvv, has_htc;
    uint64_t n_committed;     /* committed heights 0..n_committed-1 */
    /* CommitBlock events of the current step, checked against the store after it. */
    uint32_t n_step_commits;
    hs_hash step_commits[64];
    bool step_commit_overflow;
    bool step_vs_update;

    /* Outgoing PhaseVotes by view (ring), for the double-vote check. */
    struct {
        uint64_t view;
        bool used;
        uint8_t phase;
        hs_hash block;
    } votes[SIM_VOTE_RING];

    uint64_t live_target_met; /* liveness phase: time it committed past the target (0: not) */

    /* Steady-fault scenarios (live.c). */
    bool faulty;          /* crashed for good (crash) or silent from the start (silent) */
    bool silent;          /* sends nothing at all */
    bool never_restart;
    uint64_t first_commit_t; /* virtual time of its first commit */
    uint64_t last_commit_t;  /* virtual time of its last new commit (0: none yet) */
    uint64_t max_gap;       /* longest time without a new commit after the faults began */
    uint64_t commits_after; /* heights it committed after the faults began */
} sim_node;

typedef enum sim_scenario {
    SCEN_CHAOS = 0, /* faults of every kind, then heal and recover (sim.c) */
    SCEN_CRASH,     /* up to a third of the power crashes for good at random moments (live.c) */
    SCEN_SILENT,    /* up to a third of the power is Byzantine and never sends anything */
} sim_scenario;

typedef struct sim_opts {
    uint32_t n, f;
    uint64_t steps;
    bool verbose;
    bool quiet;
    bool calm; /* no injected faults, for comparison (Byzantine cores then behave) */
    bool tolerate_known; /* known protocol stalls (check.c) are counted, not violations */
    int vs_pm; /* per-mille chance that a block changes the validator set; -1: per seed */
    uint64_t liveness_ms; /* bound on recovery after the last fault heals */
    bool reference;       /* the reference's liveness behaviour (hs_config_reference_liveness) */
    sim_scenario scenario;
    bool unequal;         /* steady-fault scenarios: random powers 1..5 (else all 1) */
    uint64_t duration_ms; /* steady-fault scenarios: virtual time run */
    uint64_t max_gap_ms;  /* steady-fault scenarios: bound on the time between commits */
} sim_opts;

/* Network conditions, re-drawn by the fault injector. */
typedef struct sim_netcfg {
    uint32_t drop_pm, dup_pm, spike_pm; /* per mille */
    uint64_t lat_min, lat_mean, spike_max; /* ms */
    bool blocked[SIM_MAX_NODES][SIM_MAX_NODES]; /* [from][to] */
    uint32_t partition_gen;
} sim_netcfg;

typedef struct sim_world {
    const sim_opts *o;
    uint64_t seed;
    sim_rng rng;
    uint64_t now, step, seq;
    bool faults_on; /* false once the fault phase ended */
    uint64_t heal_time;
    uint64_t faults_begin; /* steady-fault scenarios: the last crash (commit gaps count after) */
    uint64_t live_target; /* committed height count every honest replica must exceed */

    sim_ev *heap;
    size_t heap_n, heap_cap;

    uint32_t n;
    sim_node nodes[SIM_MAX_NODES];
    sim_netcfg net;

    /* Protocol parameters of this seed. */
    uint32_t epoch_length;
    uint64_t max_view_time;
    uint32_t vs_change_pm; /* chance that a produced block switches the validator set */

    /* Validator sets the App may switch to; configs[0] is the initial one. */
    uint32_t n_configs;
    hs_validator_set configs[SIM_MAX_CONFIGS];

    /* The agreed chain: canon[h] is the block committed at height h by the first honest
     * replica to commit it. */
    hs_hash *canon;
    uint64_t n_canon, canon_cap;

    /* Trace. */
    tr_entry trace[SIM_TRACE_LEN];
    uint64_t n_trace;
    int cur_node; /* replica being stepped, for log lines (-1: none) */

    /* Outcome. */
    bool failed;
    int known; /* the liveness phase ended in known stall K1 or K2 (check.c) */
    char why[512];

    /* Statistics. */
    uint64_t deliveries, drops, undecodable, crashes, restarts, byz_attacks, vs_updates,
        partitions, max_commit;
    uint64_t live_max_gap, live_min_commits, live_first_commit; /* steady faults, all seeds */
} sim_world;

/* sim.c */
void sim_crash(sim_world *w, sim_node *n);
void sim_push(sim_world *w, uint64_t t, ev_kind kind, int to, int from, uint32_t gen,
              sim_buf *buf);
/* Encodes m and sends it from `from` to `to` through the network's faults. */
void sim_net_send(sim_world *w, int from, int to, const hs_msg *m);
void sim_net_broadcast_from(sim_world *w, int from, const hs_msg *m); /* to all, itself too */
/* Delivers already-encoded bytes (Byzantine garbage) from `from` to `to`, only if they decode. */
void sim_net_send_bytes(sim_world *w, int from, int to, const uint8_t *p, size_t len);
int sim_node_by_key(const sim_world *w, const hs_key *k);
void sim_fail(sim_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* app.c */
hs_app sim_app(sim_app_ctx *ctx);
/* Draws the validator sets of this seed (configs[0] first). Byzantine power stays below a
 * third of every set's total. */
void sim_make_configs(sim_world *w);
bool sim_vs_byz_bound_ok(const sim_world *w, const hs_validator_set *vs);
/* A valid block body (one datum) for this App: kind 0 with `nonce`, or a switch to config k. */
void sim_app_datum(uint8_t out[13], int kind, uint32_t config, uint64_t nonce);
#define SIM_DATUM_LEN 13
extern const uint8_t sim_counter_key[1];

/* live.c: the steady-fault scenarios */
void live_setup(sim_world *w);       /* powers, the faulty set, crash times */
void live_on_commit(sim_world *w, sim_node *n, uint64_t new_heights);
void live_check(sim_world *w);       /* at the end of the run: the commit gaps */
void live_report(const sim_world *w, uint64_t *max_gap, uint64_t *min_commits,
                 uint64_t *first_commit);

/* byz.c */
/* A Byzantine replica's outgoing message: may be tampered with, duplicated, or replaced. */
void byz_broadcast(sim_node *n, const hs_msg *m);
void byz_send(sim_node *n, const hs_key *to, const hs_msg *m);
/* An unprompted attack (EV_BYZ). */
void byz_attack(sim_node *n);

/* check.c */
void check_after_step(sim_world *w, sim_node *n);
void check_outgoing_vote(sim_world *w, sim_node *n, const hs_phase_vote *v);
void check_final(sim_world *w);
void check_liveness(sim_world *w);
void trace_add(sim_world *w, tr_kind kind, int a, int b, int mtype, uint64_t x, uint64_t y,
               const char *note);
void trace_print(const sim_world *w, unsigned last);
void trace_print_entry(const sim_world *w, const tr_entry *e);

#endif
