/* tests/common/number_app.h - NumberApp, the test App of spec §12.1.
 *
 * App state key [0x00] holds a u32 LE number (absent means 0). Transactions are the Borsh enum
 *   0 Increment | 1 SetValidator([u8;32] key, u64 power) | 2 DeleteValidator([u8;32] key)
 * Each instance owns a mutex-protected queue of submitted transactions. produce_block takes the
 * whole queue as ONE datum, Borsh(Vec<Tx>), with data_hash = SHA-256(datum). Validation
 * executes the datum on top of the parent block's number: Increment adds one, Set/Delete go
 * into the block's validator-set updates.
 *
 * The reference sleeps 250 ms in produce_block and validate_block; here both delays are
 * parameters (default 0) so the tests run as fast as the protocol allows. validate_block_for_sync
 * never sleeps (spec §7).
 */
#ifndef HS_TEST_NUMBER_APP_H
#define HS_TEST_NUMBER_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hotstuff/app.h"
#include "hotstuff/kv.h"

/* The app state key holding the number. */
#define NAPP_NUMBER_KEY 0x00

typedef enum napp_tx_kind {
    NAPP_INCREMENT = 0,
    NAPP_SET_VALIDATOR = 1,
    NAPP_DELETE_VALIDATOR = 2
} napp_tx_kind;

typedef struct napp_tx {
    napp_tx_kind kind;
    hs_key key;     /* Set, Delete */
    uint64_t power; /* Set */
} napp_tx;

typedef struct napp napp;

napp *napp_new(void); /* NULL on allocation failure */
void napp_free(napp *a);
/* Milliseconds slept at the start of produce_block and validate_block. */
void napp_set_delays(napp *a, unsigned produce_ms, unsigned validate_ms);
/* The App interface; it borrows `a`, which must outlive the replica using it. */
hs_app napp_app(napp *a);

/* Queue transactions; all of them land in the same block (the next one this App produces).
 * False on allocation failure. */
bool napp_submit(napp *a, const napp_tx *txs, size_t n);
bool napp_submit_increment(napp *a);
bool napp_submit_set_validator(napp *a, const hs_key *key, uint64_t power);
bool napp_submit_delete_validator(napp *a, const hs_key *key);
/* Transactions waiting for the next block. */
size_t napp_queued(napp *a);
/* Blocks this App has produced so far. */
uint64_t napp_blocks_produced(napp *a);

/* The committed number in a block-tree reader (0 while absent). */
hs_status napp_committed_number(const hs_kv_reader *r, uint32_t *out);
/* Number of Increment transactions in a block's data, or -1 if it is not a valid NumberApp
 * block body. */
int64_t napp_count_increments(const hs_data *data);

#endif
