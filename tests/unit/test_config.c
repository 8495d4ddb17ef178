/* test_config.c - the Configuration builder and validation (spec §10). */
#include <stdio.h>
#include <string.h>

#include "cu.h"
#include "hotstuff/config.h"
#include "hotstuff/crypto.h"

/* Field by field: hs_limits has padding, which struct assignment need not copy. */
static bool limits_equal(const hs_limits *a, const hs_limits *b) {
    return a->max_validators == b->max_validators && a->max_datums == b->max_datums &&
           a->max_datum_bytes == b->max_datum_bytes && a->max_block_bytes == b->max_block_bytes &&
           a->max_sync_blocks == b->max_sync_blocks &&
           a->max_update_entries == b->max_update_entries &&
           a->max_app_key_bytes == b->max_app_key_bytes &&
           a->max_app_value_bytes == b->max_app_value_bytes;
}

static hs_keypair test_key(void) {
    uint8_t seed[32];
    memset(seed, 7, sizeof seed);
    hs_keypair kp;
    CU_ASSERT_FATAL(hs_keypair_from_seed(seed, &kp) == HS_OK);
    return kp;
}

/* The §10 fields, in spec order; fill_all(b, skip) sets all but field `skip` (-1: none). */
#define N_FIELDS 12
static const char *const spec_fields[N_FIELDS] = {
    "me",
    "chain_id",
    "block_sync_request_limit",
    "block_sync_server_advertise_time",
    "block_sync_response_timeout",
    "block_sync_blacklist_expiry_time",
    "block_sync_trigger_min_view_difference",
    "block_sync_trigger_timeout",
    "progress_msg_buffer_capacity",
    "epoch_length",
    "max_view_time",
    "log_events",
};

static void fill_all(hs_config_builder *b, const hs_keypair *kp, int skip) {
    if (skip != 0) hs_config_builder_me(b, kp);
    if (skip != 1) hs_config_builder_chain_id(b, 42);
    if (skip != 2) hs_config_builder_block_sync_request_limit(b, 10);
    if (skip != 3) hs_config_builder_block_sync_server_advertise_time(b, 10000);
    if (skip != 4) hs_config_builder_block_sync_response_timeout(b, 3000);
    if (skip != 5) hs_config_builder_block_sync_blacklist_expiry_time(b, 10000);
    if (skip != 6) hs_config_builder_block_sync_trigger_min_view_difference(b, 2);
    if (skip != 7) hs_config_builder_block_sync_trigger_timeout(b, 60000);
    if (skip != 8) hs_config_builder_progress_msg_buffer_capacity(b, 1024);
    if (skip != 9) hs_config_builder_epoch_length(b, 50);
    if (skip != 10) hs_config_builder_max_view_time(b, 2000);
    if (skip != 11) hs_config_builder_log_events(b, true);
}

static void test_build_ok(void) {
    hs_keypair kp = test_key();
    hs_config_builder *b = hs_config_builder_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fill_all(b, &kp, -1);
    hs_config c;
    char err[128] = "untouched";
    CU_ASSERT_EQUAL_FATAL(hs_config_builder_build(b, &c, err, sizeof err), HS_OK);
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_EQUAL(memcmp(&c.me, &kp, sizeof kp), 0);
    CU_ASSERT_EQUAL(c.chain_id, 42);
    CU_ASSERT_EQUAL(c.block_sync_request_limit, 10);
    CU_ASSERT_EQUAL(c.block_sync_server_advertise_time_ms, 10000);
    CU_ASSERT_EQUAL(c.block_sync_response_timeout_ms, 3000);
    CU_ASSERT_EQUAL(c.block_sync_blacklist_expiry_time_ms, 10000);
    CU_ASSERT_EQUAL(c.block_sync_trigger_min_view_difference, 2);
    CU_ASSERT_EQUAL(c.block_sync_trigger_timeout_ms, 60000);
    CU_ASSERT_EQUAL(c.progress_msg_buffer_capacity, 1024);
    CU_ASSERT_EQUAL(c.epoch_length, 50);
    CU_ASSERT_EQUAL(c.max_view_time_ms, 2000);
    CU_ASSERT_TRUE(c.log_events);
    /* The port's fields keep their defaults. */
    CU_ASSERT_EQUAL(c.event_queue_capacity, 65536);
    CU_ASSERT_EQUAL(c.inbox_capacity, 8192);
    CU_ASSERT_EQUAL(c.sync_request_queue_capacity, 256);
    hs_limits def = hs_limits_default();
    CU_ASSERT_TRUE(limits_equal(&c.limits, &def));
    /* The liveness choices default to the robust ones (docs/liveness.md). */
    CU_ASSERT_EQUAL(c.leader_selection, HS_LEADER_ACTIVE);
    CU_ASSERT_EQUAL(c.vote_routing, HS_VOTES_TO_ALL);
    CU_ASSERT_EQUAL(c.view_deadlines, HS_DEADLINES_ENTRY);
    CU_ASSERT_EQUAL(hs_config_validate(&c, NULL, 0), HS_OK);
    hs_config ref = c;
    hs_config_reference_liveness(&ref);
    CU_ASSERT_EQUAL(ref.leader_selection, HS_LEADER_ROUND_ROBIN);
    CU_ASSERT_EQUAL(ref.vote_routing, HS_VOTES_TO_NEXT_LEADER);
    CU_ASSERT_EQUAL(ref.view_deadlines, HS_DEADLINES_EPOCH);
    hs_config_builder_leader_selection(b, HS_LEADER_ROUND_ROBIN);
    hs_config_builder_vote_routing(b, HS_VOTES_TO_NEXT_LEADER);
    hs_config_builder_view_deadlines(b, HS_DEADLINES_EPOCH);
    CU_ASSERT_EQUAL_FATAL(hs_config_builder_build(b, &c, NULL, 0), HS_OK);
    CU_ASSERT_EQUAL(c.leader_selection, HS_LEADER_ROUND_ROBIN);
    CU_ASSERT_EQUAL(c.vote_routing, HS_VOTES_TO_NEXT_LEADER);
    CU_ASSERT_EQUAL(c.view_deadlines, HS_DEADLINES_EPOCH);

    /* Overriding the port's fields. */
    hs_config_builder_event_queue_capacity(b, 5);
    hs_config_builder_inbox_capacity(b, 6);
    hs_config_builder_sync_request_queue_capacity(b, 7);
    hs_limits l = def;
    l.max_validators = 4;
    hs_config_builder_limits(b, &l);
    /* A later call to a setter wins. */
    hs_config_builder_chain_id(b, 43);
    CU_ASSERT_EQUAL_FATAL(hs_config_builder_build(b, &c, NULL, 0), HS_OK);
    CU_ASSERT_EQUAL(c.event_queue_capacity, 5);
    CU_ASSERT_EQUAL(c.inbox_capacity, 6);
    CU_ASSERT_EQUAL(c.sync_request_queue_capacity, 7);
    CU_ASSERT_EQUAL(c.limits.max_validators, 4);
    CU_ASSERT_EQUAL(c.chain_id, 43);
    hs_config_builder_free(b);
}

/* Zero is a value: setting a field to 0 (where 0 is in range) counts as set. */
static void test_zero_values_allowed(void) {
    hs_keypair kp = test_key();
    hs_config_builder *b = hs_config_builder_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fill_all(b, &kp, -1);
    hs_config_builder_chain_id(b, 0);
    hs_config_builder_block_sync_blacklist_expiry_time(b, 0);
    hs_config_builder_block_sync_trigger_min_view_difference(b, 0);
    hs_config_builder_progress_msg_buffer_capacity(b, 0); /* buffer disabled */
    hs_config_builder_log_events(b, false);
    hs_config c;
    char err[128];
    CU_ASSERT_EQUAL(hs_config_builder_build(b, &c, err, sizeof err), HS_OK);
    CU_ASSERT_EQUAL(c.progress_msg_buffer_capacity, 0);
    CU_ASSERT_EQUAL(c.block_sync_blacklist_expiry_time_ms, 0);
    CU_ASSERT_FALSE(c.log_events);
    hs_config_builder_free(b);
}

static void test_missing_each_field(void) {
    hs_keypair kp = test_key();
    for (int f = 0; f < N_FIELDS; f++) {
        hs_config_builder *b = hs_config_builder_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        fill_all(b, &kp, f);
        hs_config c;
        unsigned char before[sizeof c];
        memset(&c, 0x5a, sizeof c);
        memcpy(before, &c, sizeof c);
        char err[128], want[128];
        CU_ASSERT_EQUAL(hs_config_builder_build(b, &c, err, sizeof err), HS_ERR_INVALID);
        snprintf(want, sizeof want, "configuration: missing field `%s`", spec_fields[f]);
        CU_ASSERT_STRING_EQUAL(err, want);
        CU_ASSERT_EQUAL(memcmp(&c, before, sizeof c), 0); /* out untouched on failure */
        hs_config_builder_free(b);
    }
}

/* The first missing field in spec order is the one reported. */
static void test_missing_first_named(void) {
    hs_config_builder *b = hs_config_builder_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    hs_config c;
    char err[128];
    CU_ASSERT_EQUAL(hs_config_builder_build(b, &c, err, sizeof err), HS_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "configuration: missing field `me`");

    hs_keypair kp = test_key();
    hs_config_builder_me(b, &kp);
    CU_ASSERT_EQUAL(hs_config_builder_build(b, &c, err, sizeof err), HS_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "configuration: missing field `chain_id`");

    hs_config_builder_epoch_length(b, 0); /* bad, but missing fields are reported first */
    CU_ASSERT_EQUAL(hs_config_builder_build(b, &c, err, sizeof err), HS_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "configuration: missing field `chain_id`");

    /* A NULL key does not count as setting `me`. */
    hs_config_builder *b2 = hs_config_builder_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
    fill_all(b2, &kp, 0);
    hs_config_builder_me(b2, NULL);
    CU_ASSERT_EQUAL(hs_config_builder_build(b2, &c, err, sizeof err), HS_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "configuration: missing field `me`");

    /* A tiny error buffer is still NUL-terminated. */
    char small[8];
    CU_ASSERT_EQUAL(hs_config_builder_build(b2, &c, small, sizeof small), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    hs_config_builder_free(b2);
    hs_config_builder_free(b);
}

/* A bad value and the field its error must name. */
typedef struct bad_case {
    const char *field;
    void (*apply)(hs_config *c);
} bad_case;

static void bad_request_limit(hs_config *c) { c->block_sync_request_limit = 0; }
static void bad_advertise(hs_config *c) { c->block_sync_server_advertise_time_ms = 0; }
static void bad_response_zero(hs_config *c) { c->block_sync_response_timeout_ms = 0; }
static void bad_response_long(hs_config *c) {
    c->block_sync_response_timeout_ms = 24ull * 3600 * 1000 + 1;
}
static void bad_trigger_timeout(hs_config *c) { c->block_sync_trigger_timeout_ms = 0; }
static void bad_epoch(hs_config *c) { c->epoch_length = 0; }
static void bad_max_view_time(hs_config *c) { c->max_view_time_ms = 0; }
static void bad_max_view_time_long(hs_config *c) { c->max_view_time_ms = 24ull * 3600 * 1000 + 1; }
static void bad_advertise_long(hs_config *c) { c->block_sync_server_advertise_time_ms = UINT64_MAX; }
static void bad_blacklist_long(hs_config *c) { c->block_sync_blacklist_expiry_time_ms = UINT64_MAX; }
static void bad_trigger_long(hs_config *c) { c->block_sync_trigger_timeout_ms = UINT64_MAX; }
static void bad_me_mismatch(hs_config *c) { c->me.public_key.b[0] ^= 1; }
static void bad_event_queue(hs_config *c) { c->event_queue_capacity = 0; }
static void bad_inbox(hs_config *c) { c->inbox_capacity = 0; }
static void bad_sync_queue(hs_config *c) { c->sync_request_queue_capacity = 0; }
static void bad_max_validators(hs_config *c) { c->limits.max_validators = 0; }
static void bad_max_datums(hs_config *c) { c->limits.max_datums = 0; }
static void bad_max_datum_bytes(hs_config *c) { c->limits.max_datum_bytes = 0; }
static void bad_max_block_bytes(hs_config *c) { c->limits.max_block_bytes = 0; }
static void bad_max_sync_zero(hs_config *c) { c->limits.max_sync_blocks = 0; }
static void bad_max_sync_small(hs_config *c) {
    c->limits.max_sync_blocks = c->block_sync_request_limit - 1;
}
static void bad_max_update(hs_config *c) { c->limits.max_update_entries = 0; }
static void bad_max_key(hs_config *c) { c->limits.max_app_key_bytes = 0; }
static void bad_max_value(hs_config *c) { c->limits.max_app_value_bytes = 0; }

static void bad_leader_selection(hs_config *c) { c->leader_selection = (hs_leader_selection)7; }
static void bad_vote_routing(hs_config *c) { c->vote_routing = (hs_vote_routing)7; }
static void bad_view_deadlines(hs_config *c) { c->view_deadlines = (hs_view_deadlines)7; }

static const bad_case bad_cases[] = {
    {"leader_selection", bad_leader_selection},
    {"vote_routing", bad_vote_routing},
    {"view_deadlines", bad_view_deadlines},
    {"block_sync_request_limit", bad_request_limit},
    {"block_sync_server_advertise_time", bad_advertise},
    {"block_sync_response_timeout", bad_response_zero},
    {"block_sync_response_timeout", bad_response_long},
    {"block_sync_trigger_timeout", bad_trigger_timeout},
    {"epoch_length", bad_epoch},
    {"max_view_time", bad_max_view_time},
    {"max_view_time", bad_max_view_time_long},
    {"me", bad_me_mismatch},
    {"block_sync_server_advertise_time", bad_advertise_long},
    {"block_sync_blacklist_expiry_time", bad_blacklist_long},
    {"block_sync_trigger_timeout", bad_trigger_long},
    {"event_queue_capacity", bad_event_queue},
    {"inbox_capacity", bad_inbox},
    {"sync_request_queue_capacity", bad_sync_queue},
    {"limits.max_validators", bad_max_validators},
    {"limits.max_datums", bad_max_datums},
    {"limits.max_datum_bytes", bad_max_datum_bytes},
    {"limits.max_block_bytes", bad_max_block_bytes},
    {"limits.max_sync_blocks", bad_max_sync_zero},
    {"limits.max_sync_blocks", bad_max_sync_small},
    {"limits.max_update_entries", bad_max_update},
    {"limits.max_app_key_bytes", bad_max_key},
    {"limits.max_app_value_bytes", bad_max_value},
    {NULL, NULL},
};

static bool names_field(const char *err, const char *field) {
    char want[128];
    snprintf(want, sizeof want, "configuration: invalid `%s`", field);
    return strncmp(err, want, strlen(want)) == 0;
}

/* Every bad value, through hs_config_validate on a filled struct. */
static void test_validate_bad_values(void) {
    hs_keypair kp = test_key();
    for (const bad_case *bc = bad_cases; bc->field; bc++) {
        hs_config c = hs_config_test_values(&kp);
        CU_ASSERT_EQUAL(hs_config_validate(&c, NULL, 0), HS_OK);
        bc->apply(&c);
        char err[160] = "";
        CU_ASSERT_EQUAL(hs_config_validate(&c, err, sizeof err), HS_ERR_INVALID);
        CU_ASSERT_TRUE(names_field(err, bc->field));
        if (!names_field(err, bc->field)) fprintf(stderr, "\n  %s: got \"%s\"\n", bc->field, err);
    }
    CU_ASSERT_EQUAL(hs_config_validate(NULL, NULL, 0), HS_ERR_INVALID);
}

/* The builder applies the same checks: each §10 bad value set through a setter. */
static void test_build_bad_values(void) {
    hs_keypair kp = test_key();
    struct {
        const char *field;
        int which;
    } cases[] = {
        {"block_sync_request_limit", 0}, {"block_sync_server_advertise_time", 1},
        {"block_sync_response_timeout", 2}, {"block_sync_response_timeout", 3},
        {"block_sync_trigger_timeout", 4}, {"epoch_length", 5}, {"max_view_time", 6},
        {"event_queue_capacity", 7}, {"inbox_capacity", 8},
        {"sync_request_queue_capacity", 9}, {"limits.max_sync_blocks", 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hs_config_builder *b = hs_config_builder_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        fill_all(b, &kp, -1);
        switch (cases[i].which) {
        case 0: hs_config_builder_block_sync_request_limit(b, 0); break;
        case 1: hs_config_builder_block_sync_server_advertise_time(b, 0); break;
        case 2: hs_config_builder_block_sync_response_timeout(b, 0); break;
        case 3: hs_config_builder_block_sync_response_timeout(b, UINT64_MAX); break;
        case 4: hs_config_builder_block_sync_trigger_timeout(b, 0); break;
        case 5: hs_config_builder_epoch_length(b, 0); break;
        case 6: hs_config_builder_max_view_time(b, 0); break;
        case 7: hs_config_builder_event_queue_capacity(b, 0); break;
        case 8: hs_config_builder_inbox_capacity(b, 0); break;
        case 9: hs_config_builder_sync_request_queue_capacity(b, 0); break;
        case 10: {
            hs_limits l = hs_limits_default();
            l.max_sync_blocks = 5; /* below the request limit of 10 */
            hs_config_builder_limits(b, &l);
            break;
        }
        }
        hs_config c;
        char err[160] = "";
        CU_ASSERT_EQUAL(hs_config_builder_build(b, &c, err, sizeof err), HS_ERR_INVALID);
        CU_ASSERT_TRUE(names_field(err, cases[i].field));
        if (!names_field(err, cases[i].field))
            fprintf(stderr, "\n  %s: got \"%s\"\n", cases[i].field, err);
        hs_config_builder_free(b);
    }
}

/* Boundary values that are in range. */
static void test_boundaries_ok(void) {
    hs_keypair kp = test_key();
    hs_config c = hs_config_test_values(&kp);
    c.block_sync_request_limit = 1;
    c.limits.max_sync_blocks = 1;
    c.block_sync_response_timeout_ms = 24ull * 3600 * 1000; /* exactly one day */
    c.block_sync_server_advertise_time_ms = 1;
    c.block_sync_trigger_timeout_ms = 1;
    c.epoch_length = 1;
    c.max_view_time_ms = 1;
    c.event_queue_capacity = c.inbox_capacity = c.sync_request_queue_capacity = 1;
    c.progress_msg_buffer_capacity = 0;
    c.block_sync_blacklist_expiry_time_ms = 0;
    char err[128];
    CU_ASSERT_EQUAL(hs_config_validate(&c, err, sizeof err), HS_OK);
    c.progress_msg_buffer_capacity = UINT64_MAX;
    c.epoch_length = UINT32_MAX;
    c.chain_id = UINT64_MAX;
    CU_ASSERT_EQUAL(hs_config_validate(&c, err, sizeof err), HS_OK);
}

static void test_test_values(void) {
    hs_keypair kp = test_key();
    hs_config c = hs_config_test_values(&kp);
    CU_ASSERT_EQUAL(memcmp(&c.me, &kp, sizeof kp), 0);
    CU_ASSERT_EQUAL(c.chain_id, 0);
    CU_ASSERT_EQUAL(c.block_sync_request_limit, 10);
    CU_ASSERT_EQUAL(c.block_sync_server_advertise_time_ms, 10000);
    CU_ASSERT_EQUAL(c.block_sync_response_timeout_ms, 3000);
    CU_ASSERT_EQUAL(c.block_sync_blacklist_expiry_time_ms, 10000);
    CU_ASSERT_EQUAL(c.block_sync_trigger_min_view_difference, 2);
    CU_ASSERT_EQUAL(c.block_sync_trigger_timeout_ms, 60000);
    CU_ASSERT_EQUAL(c.progress_msg_buffer_capacity, 1024);
    CU_ASSERT_EQUAL(c.epoch_length, 50);
    /* The reference's liveness behaviour, so that the spec's tests run as written. */
    CU_ASSERT_EQUAL(c.leader_selection, HS_LEADER_ROUND_ROBIN);
    CU_ASSERT_EQUAL(c.vote_routing, HS_VOTES_TO_NEXT_LEADER);
    CU_ASSERT_EQUAL(c.view_deadlines, HS_DEADLINES_EPOCH);
    CU_ASSERT_EQUAL(c.max_view_time_ms, 2000);
    CU_ASSERT_FALSE(c.log_events);
    CU_ASSERT_EQUAL(c.event_queue_capacity, 65536);
    CU_ASSERT_EQUAL(c.inbox_capacity, 8192);
    CU_ASSERT_EQUAL(c.sync_request_queue_capacity, 256);
    hs_limits def = hs_limits_default();
    CU_ASSERT_TRUE(limits_equal(&c.limits, &def));
    CU_ASSERT_EQUAL(hs_config_validate(&c, NULL, 0), HS_OK);
}

static void test_null_handling(void) {
    hs_config c;
    char err[128];
    CU_ASSERT_EQUAL(hs_config_builder_build(NULL, &c, err, sizeof err), HS_ERR_INVALID);
    hs_config_builder *b = hs_config_builder_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(hs_config_builder_build(b, NULL, err, sizeof err), HS_ERR_INVALID);
    hs_config_builder_free(b);
    hs_config_builder_free(NULL);
    hs_config_builder_chain_id(NULL, 1); /* setters ignore a NULL builder */
    hs_config_builder_limits(NULL, NULL);
}

static const cu_test tests[] = {
    {"build with every field", test_build_ok},
    {"zero values are values", test_zero_values_allowed},
    {"each missing field is named", test_missing_each_field},
    {"first missing field in spec order", test_missing_first_named},
    {"validate names each bad value", test_validate_bad_values},
    {"build names each bad value", test_build_bad_values},
    {"boundary values accepted", test_boundaries_ok},
    {"spec test values", test_test_values},
    {"NULL arguments", test_null_handling},
    {NULL, NULL},
};

int main(void) { return cu_run("config", tests); }
