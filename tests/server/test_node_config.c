/* test_node_config.c - config.json, key.json and genesis.json (server/config/node_config.c): what a
 * good set of files yields, that every error names the file, the field and the problem, the
 * key file's permission rule, and that a store refuses a genesis other than its own. */
#define _GNU_SOURCE /* mkdtemp */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cu.h"
#include "hotstuff/crypto.h"
#include "hotstuff/replica.h"
#include "hotstuff/store.h"
#include "node.h" /* node_remove_dir */
#include "config/node_config.h"

static char dir[256];
static char cfg_path[300], key_path[300], gen_path[300];
static hs_keypair kp[5], admin;
static char hexkey[5][65], admin_hex[65];

/* ---- fixtures ---- */

static void write_file(const char *path, mode_t mode, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void write_file(const char *path, mode_t mode, const char *fmt, ...) {
    unlink(path);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    chmod(path, mode);
}

static void setup(void) {
    hs_crypto_init();
    snprintf(dir, sizeof dir, "/tmp/hs-config-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    snprintf(key_path, sizeof key_path, "%s/key.json", dir);
    snprintf(gen_path, sizeof gen_path, "%s/genesis.json", dir);
    for (int i = 0; i < 5; i++) {
        uint8_t seed[32];
        memset(seed, 0x30 + i, sizeof seed);
        hs_keypair_from_seed(seed, &kp[i]);
        sodium_bin2hex(hexkey[i], 65, kp[i].public_key.b, HS_KEY_LEN);
    }
    uint8_t seed[32];
    memset(seed, 0x77, sizeof seed);
    hs_keypair_from_seed(seed, &admin);
    sodium_bin2hex(admin_hex, 65, admin.public_key.b, HS_KEY_LEN);
    char err[512];
    unlink(key_path);
    CU_ASSERT_EQUAL_FATAL(node_key_write(key_path, &kp[0], err, sizeof err), HS_OK);
}

static void teardown(void) { node_remove_dir(dir); }

static void good_genesis(void) {
    write_file(gen_path, 0644,
               "{\"chain_id\": 7, \"validators\": ["
               "{\"key\": \"%s\", \"power\": 1}, {\"key\": \"%s\", \"power\": 2},"
               "{\"key\": \"%s\", \"power\": 3}], \"admin_key\": \"%s\","
               "\"app_state\": {\"greeting\": \"hello\"}}",
               hexkey[0], hexkey[1], hexkey[2], admin_hex);
}

static void minimal_config(void) {
    write_file(cfg_path, 0644,
               "{\"listen\": {\"replica\": \"127.0.0.1:7000\"}, \"peers\": ["
               "{\"key\": \"%s\", \"address\": \"127.0.0.1:7001\"}]}",
               hexkey[1]);
}

/* Loads cfg_path and expects failure with all of the given fragments in the message. */
static void expect_error(const char *what, ...) {
    node_config c;
    char err[1024] = "";
    hs_status st = node_config_load(cfg_path, &c, err, sizeof err);
    CU_ASSERT_NOT_EQUAL(st, HS_OK);
    va_list ap;
    va_start(ap, what);
    for (const char *frag = what; frag; frag = va_arg(ap, const char *)) {
        if (!strstr(err, frag)) {
            fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", err, frag);
            CU_FAIL("error message lacks an expected part");
        }
    }
    va_end(ap);
    if (st == HS_OK) node_config_free(&c);
}

/* ---- tests ---- */

static void test_good_files_and_defaults(void) {
    setup();
    good_genesis();
    minimal_config();
    node_config c;
    char err[1024] = "";
    CU_ASSERT_EQUAL_FATAL(node_config_load(cfg_path, &c, err, sizeof err), HS_OK);
    CU_ASSERT_STRING_EQUAL(c.listen_replica, "127.0.0.1:7000");
    CU_ASSERT_EQUAL(c.n_peers, 1);
    CU_ASSERT_STRING_EQUAL(c.peers[0].address, "127.0.0.1:7001");
    CU_ASSERT(memcmp(c.key.public_key.b, kp[0].public_key.b, HS_KEY_LEN) == 0);
    CU_ASSERT(memcmp(c.consensus.me.secret, kp[0].secret, HS_SECRET_LEN) == 0);
    CU_ASSERT_EQUAL(c.genesis.chain_id, 7);
    CU_ASSERT_EQUAL(c.consensus.chain_id, 7);
    CU_ASSERT_EQUAL(c.app.chain_id, 7);
    CU_ASSERT(c.app.has_admin);
    CU_ASSERT_EQUAL(c.genesis.validators.n, 3);
    CU_ASSERT_EQUAL(c.genesis.app_state.n_inserts, 1);
    /* Relative paths are relative to config.json's directory. */
    CU_ASSERT_STRING_EQUAL(c.key_path, key_path);
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    CU_ASSERT_STRING_EQUAL(c.data_dir, data);
    /* Defaults. */
    CU_ASSERT_EQUAL(c.consensus.max_view_time_ms, 2000);
    CU_ASSERT_EQUAL(c.consensus.epoch_length, 50);
    CU_ASSERT_EQUAL(c.consensus.block_sync_request_limit, 10);
    /* The robust liveness choices (docs/liveness.md) are the defaults. */
    CU_ASSERT_EQUAL(c.consensus.leader_selection, HS_LEADER_ACTIVE);
    CU_ASSERT_EQUAL(c.consensus.vote_routing, HS_VOTES_TO_ALL);
    CU_ASSERT_EQUAL(c.consensus.view_deadlines, HS_DEADLINES_ENTRY);
    CU_ASSERT_EQUAL(c.log_level, HS_LOG_INFO);
    CU_ASSERT(c.sync_writes);
    CU_ASSERT_EQUAL(c.app.max_tx_bytes, 64u << 10);
    CU_ASSERT_EQUAL(c.consensus.limits.max_datums, c.app.max_block_txs);
    CU_ASSERT(c.max_message_bytes >= node_config_min_message_bytes(&c));
    CU_ASSERT_EQUAL(hs_config_validate(&c.consensus, err, sizeof err), HS_OK);
    node_config_free(&c);
    teardown();
}

static void test_every_field_set(void) {
    setup();
    good_genesis();
    write_file(cfg_path, 0644,
               "{\"listen\": {\"replica\": \"[::1]:7000\", \"admin\": \"127.0.0.1:7100\"},"
               " \"key_file\": \"%s\", \"genesis_file\": \"genesis.json\", \"data_dir\": \"/tmp/x\","
               " \"log_level\": \"debug\", \"sync_writes\": false, \"peers\": [],"
               " \"consensus\": {\"block_sync_request_limit\": 4,"
               "  \"block_sync_server_advertise_time_ms\": 1000,"
               "  \"block_sync_response_timeout_ms\": 900, \"block_sync_blacklist_expiry_time_ms\": 0,"
               "  \"block_sync_trigger_min_view_difference\": 3,"
               "  \"block_sync_trigger_timeout_ms\": \"4000\", \"progress_msg_buffer_capacity\": 2048,"
               "  \"epoch_length\": 10, \"max_view_time_ms\": 700, \"log_events\": true,"
               "  \"leader_selection\": \"round_robin\", \"vote_routing\": \"next_leader\","
               "  \"view_deadlines\": \"epoch\"},"
               " \"limits\": {\"max_message_bytes\": 100000000, \"transport_inbox_capacity\": 5,"
               "  \"transport_outbox_capacity\": 6, \"replica_inbox_capacity\": 7,"
               "  \"event_queue_capacity\": 8, \"sync_request_queue_capacity\": 9,"
               "  \"mempool_max_txs\": 10, \"mempool_max_bytes\": 100000, \"max_tx_bytes\": 1000,"
               "  \"max_key_bytes\": 100, \"max_block_txs\": 11, \"max_block_bytes\": 20000,"
               "  \"max_validators\": 12},"
               " \"network\": {\"reconnect_initial_ms\": 50, \"reconnect_max_ms\": 500,"
               "  \"keepalive_time_ms\": 30000, \"handshake_timeout_ms\": 2000},"
               " \"app\": {\"empty_block_wait_ms\": 100}}",
               key_path);
    node_config c;
    char err[1024] = "";
    hs_status st = node_config_load(cfg_path, &c, err, sizeof err);
    if (st != HS_OK) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(st, HS_OK);
    CU_ASSERT_STRING_EQUAL(c.listen_replica, "[::1]:7000");
    CU_ASSERT_STRING_EQUAL(c.listen_admin, "127.0.0.1:7100");
    CU_ASSERT_STRING_EQUAL(c.data_dir, "/tmp/x");
    CU_ASSERT_EQUAL(c.log_level, HS_LOG_DEBUG);
    CU_ASSERT(!c.sync_writes);
    CU_ASSERT_EQUAL(c.consensus.block_sync_request_limit, 4);
    CU_ASSERT_EQUAL(c.consensus.block_sync_trigger_timeout_ms, 4000);
    CU_ASSERT_EQUAL(c.consensus.epoch_length, 10);
    CU_ASSERT(c.consensus.log_events);
    CU_ASSERT_EQUAL(c.consensus.leader_selection, HS_LEADER_ROUND_ROBIN);
    CU_ASSERT_EQUAL(c.consensus.vote_routing, HS_VOTES_TO_NEXT_LEADER);
    CU_ASSERT_EQUAL(c.consensus.view_deadlines, HS_DEADLINES_EPOCH);
    CU_ASSERT_EQUAL(c.max_message_bytes, 100000000);
    CU_ASSERT_EQUAL(c.consensus.inbox_capacity, 7);
    CU_ASSERT_EQUAL(c.app.mempool_max_txs, 10);
    CU_ASSERT_EQUAL(c.app.max_block_bytes, 20000);
    CU_ASSERT_EQUAL(c.consensus.limits.max_sync_blocks, 4);
    CU_ASSERT_EQUAL(c.reconnect_max_ms, 500);
    CU_ASSERT_EQUAL(c.handshake_timeout_ms, 2000);
    CU_ASSERT_EQUAL(c.app.empty_block_wait_ms, 100);
    node_config_free(&c);
    teardown();
}

static void test_config_errors(void) {
    setup();
    good_genesis();
    write_file(cfg_path, 0644, "{\n  \"listen\": {\n    \"replica\": 7000,\n  }\n}");
    expect_error("config.json: (syntax): not valid JSON at line 4", NULL);
    write_file(cfg_path, 0644, "[1, 2]");
    expect_error("config.json: (document): must be a JSON object", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": {\"max_view_tme_ms\": 5}}");
    expect_error("config.json: consensus.max_view_tme_ms: unknown field", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": {\"leader_selection\": \"random\"}}");
    expect_error("config.json: consensus.leader_selection: is \"random\" but must be "
                 "\"round_robin\" or \"active\"", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": {\"view_deadlines\": 3}}");
    expect_error("config.json: consensus.view_deadlines: must be a string", NULL);
    write_file(cfg_path, 0644, "{\"listen\": {\"replica\": 7000}}");
    expect_error("config.json: listen.replica: must be a string", NULL);
    write_file(cfg_path, 0644, "{\"listen\": {\"replica\": \"localhost\"}}");
    expect_error("config.json: listen.replica: must be \"host:port\"", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": {\"epoch_length\": 0}}");
    expect_error("config.json: consensus.epoch_length: must be a positive integer", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": {\"max_view_time_ms\": 1.5}}");
    expect_error("config.json: consensus.max_view_time_ms: must be a positive integer", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": {\"max_view_time_ms\": -3}}");
    expect_error("config.json: consensus.max_view_time_ms: must be a positive integer", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": {\"log_events\": \"yes\"}}");
    expect_error("config.json: consensus.log_events: must be true or false", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": {\"epoch_length\": 5, \"epoch_length\": 6}}");
    expect_error("config.json: consensus.epoch_length: appears twice", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": 5}");
    expect_error("config.json: consensus: must be an object", NULL);
    write_file(cfg_path, 0644, "{\"log_level\": \"loud\"}");
    expect_error("config.json: log_level: must be one of", NULL);
    write_file(cfg_path, 0644, "{\"peers\": {}}");
    expect_error("config.json: peers: must be an array", NULL);
    write_file(cfg_path, 0644,
               "{\"peers\": [{\"key\": \"%s\", \"address\": \"127.0.0.1:1\"},"
               " {\"key\": \"%s\", \"address\": \"127.0.0.1\"}]}",
               hexkey[1], hexkey[2]);
    expect_error("config.json: peers[1].address: must be \"host:port\"", NULL);
    write_file(cfg_path, 0644, "{\"peers\": [{\"key\": \"abcd\", \"address\": \"h:1\"}]}");
    expect_error("config.json: peers[0].key: must be a 32-byte Ed25519 public key", NULL);
    write_file(cfg_path, 0644, "{\"peers\": [{\"address\": \"h:1\"}]}");
    expect_error("config.json: peers[0].key: is required", NULL);
    write_file(cfg_path, 0644,
               "{\"peers\": [{\"key\": \"%s\", \"address\": \"h:1\"},"
               " {\"key\": \"%s\", \"address\": \"h:2\"}]}",
               hexkey[1], hexkey[1]);
    expect_error("config.json: peers[1].key: is also the key of peers[0]", NULL);
    write_file(cfg_path, 0644, "{\"peers\": [{\"key\": \"%s\", \"address\": \"h:1\"}]}",
               hexkey[0]);
    expect_error("config.json: peers[0].key: is this node's own key", NULL);
    write_file(cfg_path, 0644, "{\"limits\": {\"max_key_bytes\": 2000, \"max_tx_bytes\": 1000}}");
    expect_error("config.json: limits.max_key_bytes: must not exceed max_tx_bytes", NULL);
    write_file(cfg_path, 0644, "{\"limits\": {\"max_message_bytes\": 1000}}");
    expect_error("config.json: limits.max_message_bytes: is 1000 but must be at least", NULL);
    write_file(cfg_path, 0644, "{\"limits\": {\"max_validators\": 2}}");
    expect_error("config.json: limits.max_validators: is 2 but", "lists 3 validators", NULL);
    write_file(cfg_path, 0644,
               "{\"network\": {\"reconnect_initial_ms\": 500, \"reconnect_max_ms\": 50}}");
    expect_error("config.json: network.reconnect_max_ms: must be at least", NULL);
    write_file(cfg_path, 0644, "{\"consensus\": {\"block_sync_request_limit\": 5000}}");
    expect_error("config.json: consensus.block_sync_request_limit: must be between 1 and 1024",
                 NULL);
    write_file(cfg_path, 0644,
               "{\"consensus\": {\"max_view_time_ms\": 700}, \"app\": {\"empty_block_wait_ms\": 400}}");
    expect_error("config.json: app.empty_block_wait_ms: is 400 but must be below half", NULL);
    write_file(cfg_path, 0644, "{\"app\": {\"wait\": 1}}");
    expect_error("config.json: app.wait: unknown field", NULL);
    write_file(cfg_path, 0644, "{\"key_file\": \"missing.json\"}");
    expect_error("missing.json: (file): cannot open: No such file or directory", NULL);
    unlink(cfg_path);
    expect_error("config.json: (file): cannot open", NULL);
    teardown();
}

static void test_genesis_errors(void) {
    setup();
    minimal_config();
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"admin_key\": null, \"validators\": ["
               "{\"key\": \"%s\", \"power\": 1}, {\"key\": \"%s\", \"power\": 1},"
               "{\"key\": \"%s\", \"power\": 0}]}",
               hexkey[0], hexkey[1], hexkey[2]);
    expect_error("genesis.json: validators[2].power: must be a positive integer", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"admin_key\": null, \"validators\": ["
               "{\"key\": \"%s\", \"power\": \"lots\"}]}",
               hexkey[0]);
    expect_error("genesis.json: validators[0].power: must be a positive integer", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"admin_key\": null, \"validators\": [{\"key\": \"%s\"}]}",
               hexkey[0]);
    expect_error("genesis.json: validators[0].power: is required", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"admin_key\": null, \"validators\": ["
               "{\"key\": \"%s\", \"power\": 1}, {\"key\": \"%s\", \"power\": 4}]}",
               hexkey[0], hexkey[0]);
    expect_error("genesis.json: validators[1].key: appears twice in validators", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"admin_key\": null, \"validators\": ["
               "{\"key\": \"%s\", \"power\": 1, \"weight\": 2}]}",
               hexkey[0]);
    expect_error("genesis.json: validators[0].weight: unknown field", NULL);
    write_file(gen_path, 0644, "{\"chain_id\": 1, \"admin_key\": null, \"validators\": []}");
    expect_error("genesis.json: validators: must list at least one validator", NULL);
    write_file(gen_path, 0644,
               "{\"admin_key\": null, \"validators\": [{\"key\": \"%s\", \"power\": 1}]}",
               hexkey[0]);
    expect_error("genesis.json: chain_id: is required", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"validators\": [{\"key\": \"%s\", \"power\": 1}]}",
               hexkey[0]);
    expect_error("genesis.json: admin_key: is required", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"admin_key\": \"00\", \"validators\": "
               "[{\"key\": \"%s\", \"power\": 1}]}",
               hexkey[0]);
    expect_error("genesis.json: admin_key: must be a 32-byte Ed25519 public key", NULL);
    /* 32 bytes but not a point on the curve. */
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"admin_key\": null, \"validators\": [{\"key\": \"%064d\","
               " \"power\": 1}]}",
               0);
    expect_error("genesis.json: validators[0].key: is not a valid Ed25519 public key", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"admin_key\": null, \"validators\": [{\"key\": \"%s\","
               " \"power\": 1}], \"app_state\": {\"a\": 5}}",
               hexkey[0]);
    expect_error("genesis.json: app_state[\"a\"]: must be a string", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": 1e30, \"admin_key\": null, \"validators\": [{\"key\": \"%s\","
               " \"power\": 1}]}",
               hexkey[0]);
    expect_error("genesis.json: chain_id: is too large for a JSON number", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": \"99999999999999999999\", \"admin_key\": null, \"validators\": "
               "[{\"key\": \"%s\", \"power\": 1}]}",
               hexkey[0]);
    expect_error("genesis.json: chain_id: does not fit in 64 bits", NULL);
    write_file(gen_path, 0644,
               "{\"chain_id\": 1, \"admin_key\": null, \"validators\": ["
               "{\"key\": \"%s\", \"power\": \"9223372036854775807\"},"
               "{\"key\": \"%s\", \"power\": \"9223372036854775807\"}]}",
               hexkey[0], hexkey[1]);
    expect_error("genesis.json: validators: total power must be below 2^63", NULL);
    teardown();
}

static void test_genesis_values(void) {
    setup();
    /* Big chain ids as strings; Base64 keys; null admin; order and spacing do not change the
     * hash, a power does. */
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, kp[1].public_key.b, HS_KEY_LEN,
                      sodium_base64_VARIANT_ORIGINAL);
    write_file(gen_path, 0644,
               "{\"chain_id\": \"18446744073709551615\", \"admin_key\": null, \"validators\": ["
               "{\"key\": \"%s\", \"power\": 1}, {\"key\": \"%s\", \"power\": 2}]}",
               hexkey[0], b64);
    node_genesis a, b;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(node_genesis_load(gen_path, &a, err, sizeof err), HS_OK);
    CU_ASSERT_EQUAL(a.chain_id, UINT64_MAX);
    CU_ASSERT(!a.has_admin);
    CU_ASSERT_EQUAL(a.validators.n, 2);
    write_file(gen_path, 0644,
               "{ \"validators\" : [ {\"power\": 2, \"key\": \"%s\"},\n{\"key\": \"%s\","
               " \"power\": 1} ],\n \"admin_key\": null, \"chain_id\": \"18446744073709551615\"}",
               hexkey[1], hexkey[0]);
    CU_ASSERT_EQUAL_FATAL(node_genesis_load(gen_path, &b, err, sizeof err), HS_OK);
    CU_ASSERT(memcmp(a.hash.b, b.hash.b, HS_HASH_LEN) == 0);
    node_genesis_free(&b);
    write_file(gen_path, 0644,
               "{\"chain_id\": \"18446744073709551615\", \"admin_key\": null, \"validators\": ["
               "{\"key\": \"%s\", \"power\": 1}, {\"key\": \"%s\", \"power\": 3}]}",
               hexkey[0], hexkey[1]);
    CU_ASSERT_EQUAL_FATAL(node_genesis_load(gen_path, &b, err, sizeof err), HS_OK);
    CU_ASSERT(memcmp(a.hash.b, b.hash.b, HS_HASH_LEN) != 0);
    node_genesis_free(&a);
    node_genesis_free(&b);
    teardown();
}

static void test_key_file(void) {
    setup();
    good_genesis();
    minimal_config();
    char sec[2 * HS_SECRET_LEN + 1];
    sodium_bin2hex(sec, sizeof sec, kp[0].secret, HS_SECRET_LEN);
    hs_keypair out;
    char err[1024] = "";

    /* Too open: refused with the mode and the fix, without the secret. */
    chmod(key_path, 0644);
    expect_error("key.json: (file mode): is 0644; a key file must be 0600 or stricter", NULL);
    CU_ASSERT_NOT_EQUAL(node_key_load(key_path, &out, err, sizeof err), HS_OK);
    CU_ASSERT_PTR_NULL(strstr(err, sec));
    CU_ASSERT_PTR_NULL(strstr(err, sec + 64)); /* not the seed half either */
    chmod(key_path, 0640);
    expect_error("key.json: (file mode): is 0640", NULL);
    chmod(key_path, 0400);
    CU_ASSERT_EQUAL(node_key_load(key_path, &out, err, sizeof err), HS_OK);
    CU_ASSERT(memcmp(out.secret, kp[0].secret, HS_SECRET_LEN) == 0);

    /* A 32-byte seed in Base64 is accepted too. */
    char seed64[64];
    sodium_bin2base64(seed64, sizeof seed64, kp[0].secret, 32, sodium_base64_VARIANT_ORIGINAL);
    write_file(key_path, 0600, "{\"public_key\": \"%s\", \"secret_key\": \"%s\"}", hexkey[0],
               seed64);
    CU_ASSERT_EQUAL(node_key_load(key_path, &out, err, sizeof err), HS_OK);
    CU_ASSERT(memcmp(out.secret, kp[0].secret, HS_SECRET_LEN) == 0);

    /* Mismatched halves. */
    write_file(key_path, 0600, "{\"public_key\": \"%s\", \"secret_key\": \"%s\"}", hexkey[1],
               sec);
    expect_error("key.json: public_key: does not match secret_key", NULL);
    CU_ASSERT_NOT_EQUAL(node_key_load(key_path, &out, err, sizeof err), HS_OK);
    CU_ASSERT_PTR_NULL(strstr(err, sec));
    /* A malformed secret is described, never echoed. */
    write_file(key_path, 0600, "{\"public_key\": \"%s\", \"secret_key\": \"%.100s\"}",
               hexkey[0], sec);
    CU_ASSERT_NOT_EQUAL(node_key_load(key_path, &out, err, sizeof err), HS_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "key.json: secret_key: must be"));
    char prefix[21];
    snprintf(prefix, sizeof prefix, "%.20s", sec);
    CU_ASSERT_PTR_NULL(strstr(err, prefix));
    write_file(key_path, 0600, "{\"public_key\": \"%s\"}", hexkey[0]);
    expect_error("key.json: secret_key: is required", NULL);
    write_file(key_path, 0600, "{\"type\": \"rsa\", \"public_key\": \"%s\", \"secret_key\": \"%s\"}",
               hexkey[0], sec);
    expect_error("key.json: type: must be \"ed25519\"", NULL);

    /* node_key_write never overwrites. */
    CU_ASSERT_EQUAL(node_key_write(key_path, &kp[1], err, sizeof err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already exists"));
    teardown();
}

static void test_store_genesis_binding(void) {
    setup();
    good_genesis();
    node_genesis g, other;
    char err[1024] = "";
    CU_ASSERT_EQUAL_FATAL(node_genesis_load(gen_path, &g, err, sizeof err), HS_OK);
    write_file(gen_path, 0644,
               "{\"chain_id\": 8, \"validators\": [{\"key\": \"%s\", \"power\": 1}],"
               " \"admin_key\": null}",
               hexkey[0]);
    CU_ASSERT_EQUAL_FATAL(node_genesis_load(gen_path, &other, err, sizeof err), HS_OK);

    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    hs_leveldb_store *db = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_leveldb_store_open(data, NULL, &db, err, sizeof err), HS_OK);
    hs_kv_store kv = hs_leveldb_store_kv(db);
    bool fresh = false;
    CU_ASSERT_EQUAL(node_store_bind_genesis(&kv, &g, data, &fresh, err, sizeof err), HS_OK);
    CU_ASSERT(fresh);
    /* The genesis app state is there, under the user prefix. */
    hs_kv_reader r = hs_kv_store_reader(&kv);
    hs_bytes v = {0};
    CU_ASSERT_EQUAL(kvapp_read(&r, (const uint8_t *)"greeting", 8, &v), HS_OK);
    CU_ASSERT(v.len == 5 && memcmp(v.p, "hello", 5) == 0);
    hs_bytes_free(&v);
    hs_validator_set vs = {0};
    CU_ASSERT_EQUAL(hs_bt_committed_vs(&r, &vs), HS_OK);
    CU_ASSERT(hs_vs_equal(&vs, &g.validators));
    hs_vs_free(&vs);
    hs_leveldb_store_close(db);

    /* Restart with the same genesis: fine. With another: refused, naming the directory. */
    CU_ASSERT_EQUAL_FATAL(hs_leveldb_store_open(data, NULL, &db, err, sizeof err), HS_OK);
    kv = hs_leveldb_store_kv(db);
    CU_ASSERT_EQUAL(node_store_bind_genesis(&kv, &g, data, &fresh, err, sizeof err), HS_OK);
    CU_ASSERT(!fresh);
    CU_ASSERT_EQUAL(node_store_bind_genesis(&kv, &other, data, &fresh, err, sizeof err),
                    HS_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, data));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "belongs to a different genesis"));
    hs_leveldb_store_close(db);

    /* A store initialised by something else (no recorded genesis) is refused too. */
    hs_mem_store *mem = hs_mem_store_new();
    hs_kv_store mkv = hs_mem_store_kv(mem);
    hs_vss vss;
    memset(&vss, 0, sizeof vss);
    vss.committed = g.validators;
    vss.previous = g.validators;
    vss.update_decided = true;
    hs_app_updates empty;
    memset(&empty, 0, sizeof empty);
    CU_ASSERT_EQUAL(hs_replica_initialize(&mkv, &empty, &vss), HS_OK);
    CU_ASSERT_EQUAL(node_store_bind_genesis(&mkv, &g, "mem", &fresh, err, sizeof err),
                    HS_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no recorded genesis hash"));
    hs_mem_store_free(mem);

    /* Interrupted first start (hash recorded, not initialised): finished on the next one. */
    mem = hs_mem_store_new();
    mkv = hs_mem_store_kv(mem);
    hs_write_batch *b = hs_batch_new();
    hs_batch_put(b, (const uint8_t *)NODE_GENESIS_KEY, sizeof NODE_GENESIS_KEY - 1, g.hash.b,
                 HS_HASH_LEN);
    CU_ASSERT_EQUAL(mkv.write(mkv.self, b), HS_OK);
    hs_batch_free(b);
    CU_ASSERT_EQUAL(node_store_bind_genesis(&mkv, &g, "mem", &fresh, err, sizeof err), HS_OK);
    CU_ASSERT(fresh);
    hs_mem_store_free(mem);

    node_genesis_free(&g);
    node_genesis_free(&other);
    teardown();
}

static void test_parsers(void) {
    hs_key k;
    CU_ASSERT(node_parse_address("127.0.0.1:7000", false));
    CU_ASSERT(node_parse_address("[::1]:7000", false));
    CU_ASSERT(node_parse_address("example.org:1", false));
    CU_ASSERT(node_parse_address("0.0.0.0:0", true));
    CU_ASSERT(!node_parse_address("0.0.0.0:0", false));
    CU_ASSERT(!node_parse_address("::1:7000", false));
    CU_ASSERT(!node_parse_address("host:70000", false));
    CU_ASSERT(!node_parse_address("host:", false));
    CU_ASSERT(!node_parse_address(":80", false));
    CU_ASSERT(!node_parse_address("a b:80", false));
    CU_ASSERT(node_parse_key("0000000000000000000000000000000000000000000000000000000000000000",
                             &k));
    CU_ASSERT(!node_parse_key("00", &k));
    CU_ASSERT(!node_parse_key("zz00000000000000000000000000000000000000000000000000000000000000",
                              &k));
}

int main(void) {
    static const cu_test tests[] = {
        {"good files and defaults", test_good_files_and_defaults},
        {"every field set", test_every_field_set},
        {"config.json errors name file, field and problem", test_config_errors},
        {"genesis.json errors name file, field and problem", test_genesis_errors},
        {"genesis values and hash", test_genesis_values},
        {"key.json permissions and content", test_key_file},
        {"store bound to its genesis", test_store_genesis_binding},
        {"address and key parsers", test_parsers},
        {NULL, NULL}};
    return cu_run("node_config", tests);
}
