/* server/app/kvapp.h - hotstuffd's built-in replicated key-value app: libhotstuff's App (spec §7)
 * over a mempool of transactions (kvtx.h).
 *
 * Blocks. Each datum of a block is one encoded transaction. The proposer packs waiting
 * transactions in arrival order up to max_block_txs and max_block_bytes. data_hash =
 * SHA-256(u32le(n) || SHA-256(datum 0) || ... || SHA-256(datum n-1)).
 *
 * App state (spec §1.9) holds two kinds of keys:
 *   'u' || user key   -> value                 what Put and Delete change
 *   't' || SHA-256(tx) -> u64le(block height)  "committed" marker of every transaction
 * A block is valid only if each of its transactions decodes and passes kvtx_decode, appears
 * once in the block and has no marker in the parent's app view - which includes the pending
 * (uncommitted) ancestors - so a transaction commits at most once on every branch.
 * Validator-set updates become the block's validator_set_updates (which puts the block in
 * phased mode); the resulting committed set must keep at least one validator, at most
 * max_validators, and a total power below 2^63 (leader selection works on a u64 total).
 *
 * validate_block is a pure function of the block and the view; produce_block returns exactly
 * what validate_block returns for the block it produced.
 *
 * Threads: produce/validate run on the algorithm thread, kvapp_submit on the transport's
 * thread, kvapp_on_commit on the event bus thread; they share only the (locked) mempool.
 */
#ifndef HS_SERVER_KVAPP_H
#define HS_SERVER_KVAPP_H

#include <stddef.h>
#include <stdint.h>

#include "hotstuff/app.h"
#include "hotstuff/kv.h"
#include "app/kvtx.h"

#define KVAPP_PREFIX_USER 'u'
#define KVAPP_PREFIX_TX 't'

typedef struct kvapp_config {
    uint64_t chain_id;
    bool has_admin; /* false: validator-set updates are refused */
    hs_key admin_key;
    uint32_t max_tx_bytes;      /* one encoded transaction */
    uint32_t max_key_bytes;     /* one user key */
    uint32_t max_block_txs;     /* transactions per block */
    uint64_t max_block_bytes;   /* sum of transaction bytes per block */
    uint32_t mempool_max_txs;
    uint64_t mempool_max_bytes;
    uint32_t max_validators;    /* size of the validator set, and updates per transaction */
    /* How long produce_block waits for a transaction before proposing an empty block. Keeps
     * an idle chain from committing empty blocks as fast as the network allows; must stay
     * well inside max_view_time (spec §7's timing rule). 0 = never wait. No wait while an
     * uncommitted ancestor carries transactions: they commit only once blocks follow. */
    uint64_t empty_block_wait_ms;
} kvapp_config;

/* The production defaults (documented in server/README.md): 64 KiB transactions, 1 KiB keys,
 * 2000 transactions or 1 MiB per block, 10000 transactions or 64 MiB waiting, 1024
 * validators, 250 ms wait before an empty block. chain_id 0 and no admin key. */
kvapp_config kvapp_config_default(void);
/* Checks the bounds are usable; HS_ERR_INVALID naming the field in err. */
hs_status kvapp_config_check(const kvapp_config *c, char *err, size_t errlen);

typedef struct kvapp kvapp;

/* kv is the replica's store, borrowed: read (never written) to refuse transactions that are
 * already committed and to read committed blocks. NULL on a bad config or no memory. */
kvapp *kvapp_new(const kvapp_config *c, const hs_kv_store *kv);
void kvapp_free(kvapp *a);

/* The App to give hs_spec_app; borrows a. */
hs_app kvapp_app(kvapp *a);

typedef enum kvapp_verdict {
    KVAPP_ACCEPTED = 0,
    KVAPP_INVALID,   /* oversized, undecodable, badly signed, ... -> INVALID_ARGUMENT */
    KVAPP_DUPLICATE, /* already waiting or already committed -> ALREADY_EXISTS */
    KVAPP_FULL,      /* mempool full -> RESOURCE_EXHAUSTED */
    KVAPP_INTERNAL   /* out of memory, store read error -> INTERNAL */
} kvapp_verdict;

/* Checks a submitted or gossiped transaction and adds it to the mempool. Writes the reason
 * for anything but ACCEPTED into reason, and the transaction's hash (when it decoded) into
 * *hash (may be NULL). Never blocks on anything but the mempool lock and one store read. */
kvapp_verdict kvapp_submit(kvapp *a, const uint8_t *tx, size_t len, hs_hash *hash,
                           char *reason, size_t rlen);

/* For a CommitBlock event: drops the block's transactions from the mempool. Fills *height and
 * *n_txs (either may be NULL), and calls each_tx (when not NULL) for every transaction. */
typedef void (*kvapp_tx_fn)(void *ctx, const hs_hash *tx, uint64_t height);
hs_status kvapp_on_commit(kvapp *a, const hs_hash *block, uint64_t *height, uint32_t *n_txs,
                          kvapp_tx_fn each_tx, void *ctx);

void kvapp_mempool_stats(kvapp *a, uint32_t *n_txs, uint64_t *bytes);

/* ---- the app state layout, for genesis and readers ---- */

/* Genesis user key/values (unprefixed) as the initial app state (prefixed). out must be
 * empty; on failure it is left empty. */
hs_status kvapp_genesis_state(const hs_app_updates *user, hs_app_updates *out);
/* A committed user value: HS_OK, HS_NOT_FOUND, or a read error. */
hs_status kvapp_read(const hs_kv_reader *r, const uint8_t *key, size_t klen, hs_bytes *out);
/* Height at which a transaction committed: HS_OK, HS_NOT_FOUND, or a read error. */
hs_status kvapp_tx_height(const hs_kv_reader *r, const hs_hash *tx, uint64_t *height);

/* data_hash of a block's data (see above). */
void kvapp_data_hash(const hs_data *d, hs_hash *out);

#endif
