/* tests/common/node.h - one test replica: store + NumberApp + mem network endpoint + replica,
 * with event counters and block-tree queries (spec §12.1 "Node").
 *
 * A node owns its store (memory, or LevelDB in a directory so it can be closed and reopened),
 * initialises it with (VS0, VS0, no update height, decided) unless it already was, and can be
 * started, stopped and started again on the same store. Queries read a fresh KV snapshot, so
 * they work whether or not the replica is running.
 *
 * Set HS_TEST_LOG=1 in the environment to print every event of every node as a spec §9 log
 * line prefixed with the node's name (the library's own log_events lines do not say which
 * in-process replica wrote them).
 *
 * Set HS_TEST_TRACE=1 to keep each node's first NODE_TRACE_MAX events in memory instead, for
 * node_dump_trace after a failure (printing everything as it happens changes the timing enough
 * to hide some races).
 *
 * Threads: start/stop/reopen/free from one test thread; queries and counters from any thread.
 */
#ifndef HS_TEST_NODE_H
#define HS_TEST_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hotstuff/hotstuff.h"
#include "mem_network.h"
#include "number_app.h"

/* Test timing (see node.c for why each differs from spec §10). */
#define NODE_MAX_VIEW_TIME_MS 500
#define NODE_ADVERTISE_TIME_MS 1000
#define NODE_SYNC_TRIGGER_TIMEOUT_MS 3000

typedef struct node_opts {
    const char *name;          /* for messages, e.g. "n0"; copied */
    const char *leveldb_dir;   /* NULL: memory store; else a LevelDB store there; copied */
    uint64_t max_view_time_ms; /* 0: NODE_MAX_VIEW_TIME_MS */
    unsigned produce_delay_ms; /* NumberApp delays, default 0 */
    unsigned validate_delay_ms;
    bool log_events;           /* the library's log_events (spec §9 lines on its log) */
} node_opts;

typedef struct node node;

/* A deterministic key pair for test replica i (same keys every run). */
void node_test_keypair(uint32_t i, hs_keypair *out);

/* Opens the store and initialises it if needed. The node's network endpoint is kp's key on
 * `hub` (which must know it). NULL on failure, with the reason on stderr. */
node *node_new(tn_hub *hub, const hs_keypair *kp, const hs_validator_set *vs0,
               const node_opts *opts);
/* Stops the replica if running, closes the store (LevelDB files stay on disk), frees. */
void node_free(node *n);

hs_status node_start(node *n);
void node_stop(node *n); /* no-op when not running */
bool node_running(const node *n);
/* LevelDB nodes only, while stopped: close the store and open the same directory again, as a
 * restarted process would. */
hs_status node_reopen_store(node *n);

const char *node_name(const node *n);
const hs_key *node_key(const node *n);
napp *node_app(node *n);
hs_kv_store node_kv(const node *n);

/* The replica's statistics; zeroed when not running. */
void node_stats(node *n, hs_replica_stats *out);

/* ---- block-tree queries (fresh snapshot each; on a read error they print it and return the
 * sentinel noted, which no test expects) ---- */
uint32_t node_number(node *n);                 /* committed number; UINT32_MAX on error */
uint32_t node_vs_size(node *n);                /* committed VS size; UINT32_MAX on error */
bool node_committed_vs(node *n, hs_validator_set *out); /* caller frees with hs_vs_free */
bool node_vs_decided(node *n);                 /* false on error */
uint64_t node_highest_view_entered(node *n);   /* UINT64_MAX on error */
/* Highest committed height; -1 when nothing is committed yet, -2 on error. */
int64_t node_committed_height(node *n);
/* HIGHEST_VIEW_PHASE_VOTED; -1 when never voted, -2 on error. */
int64_t node_highest_view_phase_voted(node *n);
/* Start-up view per spec §4.8, computed from the store: max(HIGHEST_VIEW_ENTERED, highest PC
 * view, highest TC view), plus one unless that is 0. UINT64_MAX on error. */
uint64_t node_expected_initial_view(node *n);

/* ---- what the event handlers recorded (across every start of the node) ---- */
typedef struct node_counters {
    uint64_t commits;         /* CommitBlock */
    uint64_t inserts;         /* InsertBlock */
    uint64_t inserts_while_syncing; /* InsertBlock between StartSync and EndSync */
    uint64_t votes;           /* PhaseVote */
    uint64_t start_views;     /* StartView */
    uint64_t view_timeouts;   /* ViewTimeout */
    uint64_t timeout_votes;   /* TimeoutVote */
    uint64_t vs_updates;      /* UpdateValidatorSet */
    uint64_t start_syncs;     /* StartSync */
    uint64_t end_syncs;       /* EndSync */
    uint64_t blocks_synced;   /* sum of EndSync.blocks_synced */
} node_counters;
void node_get_counters(node *n, node_counters *out);

/* The view of every PhaseVote event, in the order they were handled. Returns the count and a
 * malloc'd copy in *out (caller frees; NULL when empty). */
size_t node_vote_views(node *n, uint64_t **out);

/* Called on the event bus thread for every CommitBlock, after the counters were updated. Set
 * before node_start. */
typedef void (*node_commit_fn)(void *ctx, node *n, const hs_hash *block);
void node_set_commit_hook(node *n, node_commit_fn fn, void *ctx);

/* One line of state for failure messages: name, view, numbers, heights, VS size, counters. */
void node_print_state(node *n, FILE *f);

/* The events kept under HS_TEST_TRACE, one spec §9 line each, prefixed with the node name. */
#define NODE_TRACE_MAX 5000
void node_dump_trace(node *n, FILE *f);

/* rm -rf of a test directory (for mkdtemp'd LevelDB directories). */
void node_remove_dir(const char *dir);

#endif
