/* server/config/node_config.h - the three files a hotstuffd node reads (config.json in
 * node_config.c, key.json in key_file.c, genesis.json in genesis.c, all over json_read.h), and
 * binding a store to its genesis (store_bind.c).
 *
 * Every error names the file, the field and the problem, in one line:
 *     genesis.json: validators[2].power: must be a positive integer
 * Unknown fields are errors too (a misspelt option must not be silently ignored). Relative
 * paths inside config.json are relative to the directory config.json is in. The fields, their
 * meaning and their defaults are documented in server/README.md.
 *
 * Ownership: node_config_load fills a caller-owned struct; node_config_free releases what it
 * points to and wipes the secret key.
 */
#ifndef HS_SERVER_NODE_CONFIG_H
#define HS_SERVER_NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "hotstuff/config.h"
#include "hotstuff/kv.h"
#include "hotstuff/log.h"
#include "hotstuff/types.h"
#include "app/kvapp.h"
#include "replica/transport.h"

/* genesis.json */
typedef struct node_genesis {
    uint64_t chain_id;
    hs_validator_set validators; /* the initial committed (and previous) set */
    hs_app_updates app_state;    /* user keys and values, unprefixed */
    bool has_admin;              /* "admin_key": null disables validator-set updates */
    hs_key admin_key;
    hs_hash hash;                /* node_genesis_hash of the above */
} node_genesis;

void node_genesis_free(node_genesis *g);
/* Errors name the file by the path given. */
hs_status node_genesis_load(const char *path, node_genesis *out, char *err, size_t errlen);
/* SHA-256 over a canonical encoding of the contents (not of the file's bytes, so reformatting
 * the JSON does not change it). */
void node_genesis_hash(const node_genesis *g, hs_hash *out);

/* key.json: refuses a file readable or writable by anyone but its owner (mode must be 0600 or
 * stricter). The secret never appears in an error. */
hs_status node_key_load(const char *path, hs_keypair *out, char *err, size_t errlen);
/* Writes a new key file with mode 0600; refuses to overwrite an existing file. */
hs_status node_key_write(const char *path, const hs_keypair *kp, char *err, size_t errlen);
/* mkdir -p: creates path and its missing parents with mode (existing ones are left as they
 * are). 0, or -1 with errno set. */
int node_make_dirs(const char *path, unsigned mode);

/* config.json, with the key and genesis files it names. */
typedef struct node_config {
    char *config_path;
    char *key_path;     /* resolved */
    char *genesis_path; /* resolved */
    char *data_dir;     /* resolved */
    char listen_replica[HS_TRANSPORT_MAX_ADDR];
    char listen_admin[HS_TRANSPORT_MAX_ADDR]; /* the admin service; "" = not served */
    hs_transport_peer *peers;
    size_t n_peers;
    hs_log_level log_level;
    hs_config consensus; /* complete: me and chain_id included */
    kvapp_config app;    /* chain_id and admin key from genesis */
    /* transport */
    uint64_t max_message_bytes;
    uint32_t transport_inbox_capacity;
    uint32_t transport_outbox_capacity;
    /* 0 = the transport's own default */
    uint64_t reconnect_initial_ms, reconnect_max_ms, keepalive_time_ms, handshake_timeout_ms;
    bool sync_writes; /* LevelDB fsync per batch */
    /* config.json "admin": the admin service's limits (server/admin/admin.h, hs_admin_config). The
     * defaults are hs_admin_config_defaults' values, repeated in NODE_ADMIN_DEF_*: node_config
     * does not depend on the gRPC server modules (hotstuffctl links it too). */
    struct {
        uint64_t max_recv_message_bytes, max_send_message_bytes;
        uint32_t max_calls, max_concurrent_streams;
        uint32_t max_subscribers, subscriber_queue;
        uint64_t ready_max_commit_age_ms; /* "ready" needs a commit at most this long ago */
    } admin;
    hs_keypair key;
    node_genesis genesis;
} node_config;

/* Every default (no paths, key or genesis): what a config.json of "{}" means. */
void node_config_defaults(node_config *c);

/* HS_OK, or HS_ERR_INVALID (bad content) / HS_ERR_IO (unreadable file) with the message. */
hs_status node_config_load(const char *path, node_config *out, char *err, size_t errlen);
void node_config_free(node_config *c);

/* The smallest max_message_bytes that carries a Block Sync response of
 * block_sync_request_limit full blocks plus their certificates (the largest message). */
uint64_t node_config_min_message_bytes(const node_config *c);

/* Binds a store to a genesis. On an empty store: records the genesis hash (under key
 * NODE_GENESIS_KEY, outside the block tree's prefixes 0x00-0x10) and then runs
 * hs_replica_initialize, so a crash in between is finished on the next start. On a used store:
 * HS_OK if the recorded hash matches, else HS_ERR_STATE with a message naming data_dir.
 * *fresh tells whether the store was initialised now. */
#define NODE_GENESIS_KEY "\xF0genesis"
hs_status node_store_bind_genesis(const hs_kv_store *kv, const node_genesis *g,
                                  const char *data_dir, bool *fresh, char *err, size_t errlen);

/* Parsers shared with hotstuffctl: a 32-byte key in hex (64 digits) or Base64; a "host:port"
 * address (port 1-65535, or 0 too when allow_port0). Return false if malformed. */
bool node_parse_key(const char *text, hs_key *out);
bool node_parse_address(const char *text, bool allow_port0);
hs_log_level node_log_level_default(void);

/* config.json names of the liveness choices, indexed by their hs_config enum values. */
extern const char *const node_leader_selection_names[];
extern const char *const node_vote_routing_names[];
extern const char *const node_view_deadlines_names[];

#endif
