/* tests/common/core_world.h - a harness for tests of the deterministic core (hotstuff/core.h):
 * a few cores (and, where needed, sync servers) over in-memory stores, a network that is a FIFO
 * of (time, from, to, message) with a constant latency, and a virtual clock that jumps to the
 * next delivery or deadline. Broadcast reaches every node, the sender included. Messages a test
 * crafts are signed with the validators' real keys and handed straight to a core.
 *
 * Keys: kps[0..3] are the validator set vs1 (power 1 each); kps[4] joins or stays outside.
 * Ownership: a world owns its nodes, their stores and every message in flight; world_close
 * frees them. Messages and blocks the make_* helpers fill are the caller's to free.
 */
#ifndef HS_TESTS_CORE_WORLD_H
#define HS_TESTS_CORE_WORLD_H

#include "hotstuff/core.h"
#include "hotstuff/crypto.h"
#include "hotstuff/store.h"
#include "number_app.h"

#define CHAIN 5
#define MAXN 5       /* kps[0..3] are VS1; kps[4] joins or stays outside */
#define LAT 5        /* ms per message */
#define T 1000       /* max_view_time, ms */
#define MAX_EVENTS 2000000u
#define VMAX UINT64_MAX
void keys_setup(void);
int key_index(const hs_key *k);
int leader_of(const hs_validator_set *vs, uint64_t view);
void make_pc(hs_pc *pc, uint64_t view, const hs_hash *block, hs_phase phase,
             const hs_validator_set *vs, unsigned who);
void make_tc(hs_tc *tc, uint64_t view, unsigned who);
void make_block(hs_block *b, uint64_t height, const hs_pc *justify, uint32_t incs);
hs_msg timeout_vote_msg(uint64_t view, int signer);
hs_msg advance_view_tc(uint64_t view);
hs_msg advance_view_pc(uint64_t view, const hs_hash *block);
hs_msg proposal_msg(uint64_t view, const hs_block *b);
void store_init(hs_kv_store *kv);
void store_apply(const hs_kv_store *kv, const hs_pc *pc);
void store_add(const hs_kv_store *kv, const hs_block *b);
typedef struct world world;
typedef struct node {
    world *w;
    int id;
    hs_mem_store *ms;
    hs_kv_store kv;
    napp *app;
    hs_core_env env;
    hs_core *core;        /* NULL while down or when the node has none */
    hs_sync_server *srv;  /* NULL when the node runs none */
    bool cut;             /* partitioned: nothing between it and another node is delivered */
    /* from its events */
    uint32_t commits;
    bool vs_updated;
    hs_hash vs_update_block;
    uint32_t lock_updates, lock_to_genesis;
    uint32_t start_syncs, end_syncs;
    uint32_t timeout_votes;
    uint64_t last_timeout_vote_view;
    uint32_t view_timeouts, proposals;
    /* views */
    uint64_t last_view;
    bool view_went_back;
} node;

typedef struct qmsg {
    uint64_t t;
    int from, to;
    bool bcast;
    hs_msg m;
} qmsg;

struct world {
    uint64_t now;
    int n;
    node nodes[MAXN];
    hs_config tmpl; /* `me` is filled per node */
    qmsg *q;
    size_t head, len, cap;
    uint64_t events;
};

void q_clear(world *w);
int q_count(world *w, int from, int to, hs_msg_type type, const qmsg **last);
void world_open(world *w, int n, uint32_t epoch_length);
hs_config node_cfg(world *w, int i);
void start_core(world *w, int i);
void start_server(world *w, int i);
void crash(world *w, int i);
void world_close(world *w);
void step(node *n, const hs_key *origin, hs_msg *m);
void inject(world *w, int to, int from, hs_msg *m);
/* Runs the next delivery or deadline if it is due by `limit`; false if none is. */
bool world_next(world *w, uint64_t limit);
typedef bool (*pred_fn)(world *w, void *ctx);
bool run_until(world *w, uint64_t limit, pred_fn pred, void *ctx);
void run_for(world *w, uint64_t ms);
hs_kv_reader rd(world *w, int i);
bool has_block(world *w, int i, const hs_hash *h);
hs_pc stored_pc(world *w, int i, bool locked);
uint64_t highest_pc_view(world *w, int i);
hs_vsu_status vsu_status(world *w, int i, const hs_hash *h);
hs_vss stored_vss(world *w, int i);
bool committed_height(world *w, int i, uint64_t *h);

extern hs_keypair kps[MAXN];
extern hs_validator_set vs1;

#endif
