/* config.c - the replica Configuration (spec §10) and its builder.
 *
 * The spec makes every §10 field required, so the builder remembers which setters were called
 * and build names the first field (in §10 order) that was not. The port's own bounds (queue
 * capacities, decoding limits) start at their defaults. Range checks live in one function shared
 * by build and hs_config_validate, so both accept exactly the same configurations.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotstuff/config.h"

/* The §10 fields, in the spec's order: the order in which missing ones are reported. */
enum {
    F_ME,
    F_CHAIN_ID,
    F_REQUEST_LIMIT,
    F_ADVERTISE_TIME,
    F_RESPONSE_TIMEOUT,
    F_BLACKLIST_EXPIRY,
    F_TRIGGER_MIN_VIEW_DIFF,
    F_TRIGGER_TIMEOUT,
    F_BUFFER_CAPACITY,
    F_EPOCH_LENGTH,
    F_MAX_VIEW_TIME,
    F_LOG_EVENTS,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    [F_ME] = "me",
    [F_CHAIN_ID] = "chain_id",
    [F_REQUEST_LIMIT] = "block_sync_request_limit",
    [F_ADVERTISE_TIME] = "block_sync_server_advertise_time",
    [F_RESPONSE_TIMEOUT] = "block_sync_response_timeout",
    [F_BLACKLIST_EXPIRY] = "block_sync_blacklist_expiry_time",
    [F_TRIGGER_MIN_VIEW_DIFF] = "block_sync_trigger_min_view_difference",
    [F_TRIGGER_TIMEOUT] = "block_sync_trigger_timeout",
    [F_BUFFER_CAPACITY] = "progress_msg_buffer_capacity",
    [F_EPOCH_LENGTH] = "epoch_length",
    [F_MAX_VIEW_TIME] = "max_view_time",
    [F_LOG_EVENTS] = "log_events",
};

#define DEFAULT_EVENT_QUEUE_CAPACITY 65536u
#define DEFAULT_INBOX_CAPACITY 8192u
#define DEFAULT_SYNC_REQUEST_QUEUE_CAPACITY 256u
/* spec §10: the response timeout must stay far below u64::MAX seconds; a day is plenty. */
#define MAX_RESPONSE_TIMEOUT_MS (24ull * 60 * 60 * 1000)

struct hs_config_builder {
    hs_config c;
    bool set[F_COUNT];
};

/* Overwrites memory holding a secret key so it does not linger in freed heap. The volatile
 * pointer keeps the compiler from dropping stores to memory about to be freed. */
static void wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

static void set_defaults(hs_config *c) {
    c->event_queue_capacity = DEFAULT_EVENT_QUEUE_CAPACITY;
    c->inbox_capacity = DEFAULT_INBOX_CAPACITY;
    c->sync_request_queue_capacity = DEFAULT_SYNC_REQUEST_QUEUE_CAPACITY;
    c->limits = hs_limits_default();
    hs_config_default_liveness(c);
}

void hs_config_default_liveness(hs_config *c) {
    c->leader_selection = HS_LEADER_ACTIVE;
    c->vote_routing = HS_VOTES_TO_ALL;
    c->view_deadlines = HS_DEADLINES_ENTRY;
}

void hs_config_reference_liveness(hs_config *c) {
    c->leader_selection = HS_LEADER_ROUND_ROBIN;
    c->vote_routing = HS_VOTES_TO_NEXT_LEADER;
    c->view_deadlines = HS_DEADLINES_EPOCH;
}

hs_config_builder *hs_config_builder_new(void) {
    hs_config_builder *b = calloc(1, sizeof *b);
    if (b) set_defaults(&b->c);
    return b;
}

void hs_config_builder_free(hs_config_builder *b) {
    if (!b) return;
    wipe(b, sizeof *b);
    free(b);
}

/* Setters of §10 fields: store the value and mark the field as given. */
#define SETTER(fn, field, type, flag)                                                         \
    void hs_config_builder_##fn(hs_config_builder *b, type v) {                               \
        if (!b) return;                                                                       \
        b->c.field = v;                                                                       \
        b->set[flag] = true;                                                                  \
    }
SETTER(chain_id, chain_id, uint64_t, F_CHAIN_ID)
SETTER(block_sync_request_limit, block_sync_request_limit, uint32_t, F_REQUEST_LIMIT)
SETTER(block_sync_server_advertise_time, block_sync_server_advertise_time_ms, uint64_t,
       F_ADVERTISE_TIME)
SETTER(block_sync_response_timeout, block_sync_response_timeout_ms, uint64_t,
       F_RESPONSE_TIMEOUT)
SETTER(block_sync_blacklist_expiry_time, block_sync_blacklist_expiry_time_ms, uint64_t,
       F_BLACKLIST_EXPIRY)
SETTER(block_sync_trigger_min_view_difference, block_sync_trigger_min_view_difference, uint64_t,
       F_TRIGGER_MIN_VIEW_DIFF)
SETTER(block_sync_trigger_timeout, block_sync_trigger_timeout_ms, uint64_t, F_TRIGGER_TIMEOUT)
SETTER(progress_msg_buffer_capacity, progress_msg_buffer_capacity, uint64_t, F_BUFFER_CAPACITY)
SETTER(epoch_length, epoch_length, uint32_t, F_EPOCH_LENGTH)
SETTER(max_view_time, max_view_time_ms, uint64_t, F_MAX_VIEW_TIME)
SETTER(log_events, log_events, bool, F_LOG_EVENTS)
#undef SETTER

void hs_config_builder_me(hs_config_builder *b, const hs_keypair *me) {
    if (!b || !me) return;
    b->c.me = *me;
    b->set[F_ME] = true;
}

/* The port's bounds have defaults, so setting them is optional. */
void hs_config_builder_event_queue_capacity(hs_config_builder *b, uint32_t n) {
    if (b) b->c.event_queue_capacity = n;
}

void hs_config_builder_inbox_capacity(hs_config_builder *b, uint32_t n) {
    if (b) b->c.inbox_capacity = n;
}

void hs_config_builder_sync_request_queue_capacity(hs_config_builder *b, uint32_t n) {
    if (b) b->c.sync_request_queue_capacity = n;
}

void hs_config_builder_limits(hs_config_builder *b, const hs_limits *limits) {
    if (b && limits) b->c.limits = *limits;
}

void hs_config_builder_leader_selection(hs_config_builder *b, hs_leader_selection s) {
    if (b) b->c.leader_selection = s;
}

void hs_config_builder_vote_routing(hs_config_builder *b, hs_vote_routing r) {
    if (b) b->c.vote_routing = r;
}

void hs_config_builder_view_deadlines(hs_config_builder *b, hs_view_deadlines d) {
    if (b) b->c.view_deadlines = d;
}

/* ------------------------------------------------------------------------------------------ */

static hs_status fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hs_status fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return HS_ERR_INVALID;
}

#define BAD(field, why) fail(err, errlen, "configuration: invalid `%s`: %s", field, why)

hs_status hs_config_validate(const hs_config *c, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!c) return fail(err, errlen, "configuration: missing");

    /* spec §10 (and §1.4: N >= 1). Unsigned fields make "blacklist expiry >= 0" and
     * "buffer capacity >= 0" (0 = buffer disabled) hold by construction. */
    if (c->block_sync_request_limit < 1) return BAD("block_sync_request_limit", "must be >= 1");
    if (c->block_sync_server_advertise_time_ms == 0)
        return BAD("block_sync_server_advertise_time", "must be > 0");
    if (c->block_sync_response_timeout_ms == 0)
        return BAD("block_sync_response_timeout", "must be > 0");
    if (c->block_sync_response_timeout_ms > MAX_RESPONSE_TIMEOUT_MS)
        return BAD("block_sync_response_timeout", "must be <= 1 day");
    if (c->block_sync_trigger_timeout_ms == 0)
        return BAD("block_sync_trigger_timeout", "must be > 0");
    /* Durations are added to monotonic times: a day bounds every sum far from 2^64. */
    if (c->block_sync_server_advertise_time_ms > MAX_RESPONSE_TIMEOUT_MS)
        return BAD("block_sync_server_advertise_time", "must be <= 1 day");
    if (c->block_sync_blacklist_expiry_time_ms > MAX_RESPONSE_TIMEOUT_MS)
        return BAD("block_sync_blacklist_expiry_time", "must be <= 1 day");
    if (c->block_sync_trigger_timeout_ms > MAX_RESPONSE_TIMEOUT_MS)
        return BAD("block_sync_trigger_timeout", "must be <= 1 day");
    if (c->epoch_length < 1) return BAD("epoch_length", "must be >= 1");
    if (c->max_view_time_ms == 0) return BAD("max_view_time", "must be > 0");
    /* Bounds the deadline arithmetic of spec §4.2 (T * epoch_length stays far from 2^64). */
    if (c->max_view_time_ms > MAX_RESPONSE_TIMEOUT_MS)
        return BAD("max_view_time", "must be <= 1 day");
    /* libsodium's secret key ends with its public key: a mismatch means a broken key file. */
    if (memcmp(c->me.secret + 32, c->me.public_key.b, HS_KEY_LEN) != 0)
        return BAD("me", "public key does not match the secret key");

    /* The port's bounds. */
    if (c->event_queue_capacity < 1) return BAD("event_queue_capacity", "must be >= 1");
    if (c->inbox_capacity < 1) return BAD("inbox_capacity", "must be >= 1");
    if (c->sync_request_queue_capacity < 1)
        return BAD("sync_request_queue_capacity", "must be >= 1");
    if (c->leader_selection != HS_LEADER_ROUND_ROBIN && c->leader_selection != HS_LEADER_ACTIVE)
        return BAD("leader_selection", "unknown value");
    if (c->vote_routing != HS_VOTES_TO_NEXT_LEADER && c->vote_routing != HS_VOTES_TO_ALL)
        return BAD("vote_routing", "unknown value");
    if (c->view_deadlines != HS_DEADLINES_EPOCH && c->view_deadlines != HS_DEADLINES_ENTRY)
        return BAD("view_deadlines", "unknown value");

    const hs_limits *l = &c->limits;
    if (l->max_validators < 1) return BAD("limits.max_validators", "must be >= 1");
    if (l->max_datums == 0) return BAD("limits.max_datums", "must be > 0");
    if (l->max_datum_bytes == 0) return BAD("limits.max_datum_bytes", "must be > 0");
    if (l->max_block_bytes == 0) return BAD("limits.max_block_bytes", "must be > 0");
    if (l->max_sync_blocks == 0) return BAD("limits.max_sync_blocks", "must be > 0");
    /* A response to our own request may carry block_sync_request_limit blocks. */
    if (l->max_sync_blocks < c->block_sync_request_limit)
        return BAD("limits.max_sync_blocks", "must be >= block_sync_request_limit");
    if (l->max_update_entries == 0) return BAD("limits.max_update_entries", "must be > 0");
    if (l->max_app_key_bytes == 0) return BAD("limits.max_app_key_bytes", "must be > 0");
    if (l->max_app_value_bytes == 0) return BAD("limits.max_app_value_bytes", "must be > 0");
    return HS_OK;
}

#undef BAD

hs_status hs_config_builder_build(const hs_config_builder *b, hs_config *out, char *err,
                                  size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!b || !out) return fail(err, errlen, "configuration: no builder or output");
    for (int f = 0; f < F_COUNT; f++) {
        if (!b->set[f])
            return fail(err, errlen, "configuration: missing field `%s`", field_names[f]);
    }
    hs_status st = hs_config_validate(&b->c, err, errlen);
    if (st != HS_OK) return st;
    *out = b->c;
    return HS_OK;
}

hs_config hs_config_test_values(const hs_keypair *me) {
    hs_config c;
    memset(&c, 0, sizeof c);
    if (me) c.me = *me;
    c.chain_id = 0;
    c.block_sync_request_limit = 10;
    c.block_sync_server_advertise_time_ms = 10 * 1000;
    c.block_sync_response_timeout_ms = 3 * 1000;
    c.block_sync_blacklist_expiry_time_ms = 10 * 1000;
    c.block_sync_trigger_min_view_difference = 2;
    c.block_sync_trigger_timeout_ms = 60 * 1000;
    c.progress_msg_buffer_capacity = 1024;
    c.epoch_length = 50;
    c.max_view_time_ms = 2000;
    c.log_events = false;
    set_defaults(&c);
    hs_config_reference_liveness(&c);
    return c;
}
