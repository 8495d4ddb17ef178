/* core/msg_buffer.h - the view-aware buffer of future-view progress messages (spec §3.14).
 * Internal. Ordered by view, FIFO within a view, bounded by a byte capacity with the spec's
 * per-variant costs (192 + size_of, spec §2.12), and the eviction rule of spec §3.14. Costs are
 * subtracted when messages are popped or expire (the C port's fix of spec §14.7).
 */
#ifndef HS_CORE_MSG_BUFFER_H
#define HS_CORE_MSG_BUFFER_H

#include "hotstuff/messages.h"

typedef struct hs_msg_buffer hs_msg_buffer;

/* The spec's cost of buffering m: 192 + the per-variant size; 0 for unbufferable types. */
uint64_t hs_msg_buffer_cost(const hs_msg *m);

hs_msg_buffer *hs_msg_buffer_new(uint64_t capacity); /* NULL on allocation failure */
void hs_msg_buffer_free(hs_msg_buffer *b);
/* Applies the insert rule. On *inserted the buffer took ownership of *m (left empty);
 * otherwise *m is untouched and still the caller's. `view` is the message's view. */
hs_status hs_msg_buffer_insert(hs_msg_buffer *b, const hs_key *origin, uint64_t view, hs_msg *m,
                               bool *inserted);
/* Drops (and frees) every message of a view < view. */
void hs_msg_buffer_drop_below(hs_msg_buffer *b, uint64_t view);
/* Pops the oldest message of exactly `view`: true with *origin and *out (caller owns). */
bool hs_msg_buffer_pop(hs_msg_buffer *b, uint64_t view, hs_key *origin, hs_msg *out);
uint64_t hs_msg_buffer_bytes(const hs_msg_buffer *b);
size_t hs_msg_buffer_count(const hs_msg_buffer *b);

#endif
