/* server/app/mempool.h - transactions waiting to be put in a block: a bounded set keyed by the
 * transaction hash, kept in arrival order.
 *
 * Bounded twice, by count and by bytes, so neither many small nor a few large transactions
 * can exhaust memory. Arrival order (first come, first packed) is what the proposer walks; the
 * hash index makes duplicates and removals on commit O(1).
 *
 * Thread-safe: one mutex, held only for pointer work and copies, never across I/O. Added by
 * the transport thread (submissions, gossip), read by the algorithm thread (produce_block),
 * trimmed by the event bus thread (committed blocks).
 */
#ifndef HS_SERVER_MEMPOOL_H
#define HS_SERVER_MEMPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "hotstuff/types.h"

typedef struct mempool mempool;

/* NULL on allocation failure or a zero bound. */
mempool *mempool_new(uint32_t max_txs, uint64_t max_bytes);
void mempool_free(mempool *m);

typedef enum mempool_result {
    MEMPOOL_ADDED = 0,
    MEMPOOL_DUPLICATE, /* a transaction with this hash is already waiting */
    MEMPOOL_FULL,      /* adding it would pass max_txs or max_bytes */
    MEMPOOL_NOMEM
} mempool_result;

/* Copies tx. */
mempool_result mempool_add(mempool *m, const hs_hash *h, const uint8_t *tx, size_t len);
/* Whether it was there. */
bool mempool_remove(mempool *m, const hs_hash *h);
bool mempool_contains(mempool *m, const hs_hash *h);

/* One waiting transaction, copied out: owns tx. */
typedef struct mempool_item {
    uint64_t seq; /* arrival number: strictly increasing */
    hs_hash hash;
    hs_bytes tx;
} mempool_item;

/* Copies, in arrival order, the transactions that arrived after *cursor (0 = from the
 * oldest): at most max_n of them and, beyond the first, at most max_bytes in all. Advances
 * *cursor past the last one copied. Returns how many were copied into out (the caller frees
 * each item's tx with hs_bytes_free); 0 when none are left (or on allocation failure). */
size_t mempool_collect(mempool *m, uint64_t *cursor, size_t max_n, uint64_t max_bytes,
                       mempool_item *out);

void mempool_stats(mempool *m, uint32_t *n_txs, uint64_t *bytes);

/* Waits until a transaction newer than `cursor` (see mempool_collect) arrives or timeout_ms
 * passes; returns whether one did. */
bool mempool_wait_after(mempool *m, uint64_t cursor, uint64_t timeout_ms);

#endif
