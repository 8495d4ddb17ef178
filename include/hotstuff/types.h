/* hotstuff/types.h - the protocol's data types (spec §1-2).
 *
 * Ownership: every struct here that holds a pointer owns what it points to. Such a struct is
 * initialised by zeroing it (= {0} is a valid empty value), released with its *_free function
 * (which frees the members, never the struct itself, and leaves it zeroed), and deep-copied
 * with its *_copy function (dst must be empty or freed; on failure dst is left empty).
 * Plain-value structs (hs_hash, hs_key, hs_sig, votes) need no freeing.
 */
#ifndef HOTSTUFF_TYPES_H
#define HOTSTUFF_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hotstuff/status.h"

#define HS_HASH_LEN 32
#define HS_KEY_LEN 32
#define HS_SIG_LEN 64
#define HS_SECRET_LEN 64 /* libsodium's secret key layout: 32-byte seed || public key */

typedef unsigned __int128 hs_u128; /* TotalPower (spec §1.7) */

typedef struct hs_hash { uint8_t b[HS_HASH_LEN]; } hs_hash;  /* CryptoHash */
typedef struct hs_key { uint8_t b[HS_KEY_LEN]; } hs_key;     /* Ed25519 verifying key */
typedef struct hs_sig { uint8_t b[HS_SIG_LEN]; } hs_sig;     /* Ed25519 signature R||S */

/* An Ed25519 key pair. The secret is never logged or encoded by the library. */
typedef struct hs_keypair {
    uint8_t secret[HS_SECRET_LEN];
    hs_key public_key;
} hs_keypair;

/* A byte string: Datum, app keys and values. */
typedef struct hs_bytes {
    uint32_t len;
    uint8_t *p;
} hs_bytes;

/* spec §2.3 */
typedef enum hs_phase {
    HS_PHASE_GENERIC = 0,
    HS_PHASE_PREPARE = 1,
    HS_PHASE_PRECOMMIT = 2,
    HS_PHASE_COMMIT = 3,
    HS_PHASE_DECIDE = 4
} hs_phase;
#define HS_PHASE_COUNT 5

/* "Generic", "Prepare", ... exactly as the spec's log lines print them; "?" if out of range. */
const char *hs_phase_name(hs_phase p);

/* SignatureSet: one slot per member of the signing validator set, in its sorted order. */
typedef struct hs_sig_slot {
    bool present;
    hs_sig sig;
} hs_sig_slot;

typedef struct hs_sigset {
    uint32_t n;
    hs_sig_slot *slots; /* owned; n entries */
} hs_sigset;

/* PhaseCertificate (spec §2.4). */
typedef struct hs_pc {
    uint64_t chain_id;
    uint64_t view;
    hs_hash block;
    hs_phase phase;
    hs_sigset sigs;
} hs_pc;

/* TimeoutCertificate (spec §2.6). */
typedef struct hs_tc {
    uint64_t chain_id;
    uint64_t view;
    hs_sigset sigs;
} hs_tc;

/* Data: a list of Datums. */
typedef struct hs_data {
    uint32_t n;
    hs_bytes *items; /* owned; n entries, each owning its bytes */
} hs_data;

/* Block (spec §2.5). */
typedef struct hs_block {
    uint64_t height;
    hs_hash hash;
    hs_pc justify;
    hs_hash data_hash;
    hs_data data;
} hs_block;

typedef struct hs_validator {
    hs_key key;
    uint64_t power;
} hs_validator;

/* ValidatorSet (spec §1.7): sorted ascending by key, keys unique, every power > 0 is not
 * required by the spec (power 0 members are kept but never lead or count). */
typedef struct hs_validator_set {
    uint32_t n;
    hs_validator *v; /* owned; n entries sorted by key */
} hs_validator_set;

/* AppStateUpdates (spec §2.7): inserts sorted by key, deletes sorted; a key is never in both. */
typedef struct hs_app_updates {
    uint32_t n_inserts;
    hs_bytes *insert_keys;   /* owned */
    hs_bytes *insert_values; /* owned, parallel to insert_keys */
    uint32_t n_deletes;
    hs_bytes *delete_keys; /* owned */
} hs_app_updates;

/* ValidatorSetUpdates (spec §2.7). */
typedef struct hs_vs_updates {
    uint32_t n_inserts;
    hs_validator *inserts; /* owned, sorted by key */
    uint32_t n_deletes;
    hs_key *deletes; /* owned, sorted */
} hs_vs_updates;

/* Validator set state (spec §1.8). */
typedef struct hs_vss {
    hs_validator_set committed;
    hs_validator_set previous;
    bool has_update_height;
    uint64_t update_height;
    bool update_decided;
} hs_vss;

/* Decoding bounds for untrusted bytes (messages from peers, files). Every count or length read
 * from input is checked against these before anything is allocated. */
typedef struct hs_limits {
    uint32_t max_validators;     /* SignatureSet and validator set length */
    uint32_t max_datums;         /* datums per block */
    uint32_t max_datum_bytes;    /* bytes per datum */
    uint64_t max_block_bytes;    /* sum of datum bytes of one block */
    uint32_t max_sync_blocks;    /* blocks per BlockSyncResponse */
    uint32_t max_update_entries; /* inserts + deletes in an update set */
    uint32_t max_app_key_bytes;  /* app state key/value length */
    uint32_t max_app_value_bytes;
} hs_limits;

/* Generous defaults: 1024 validators, 65536 datums, 16 MiB datum, 64 MiB block, 64 blocks. */
hs_limits hs_limits_default(void);

/* ---- lifecycle ---- */
void hs_bytes_free(hs_bytes *b);
hs_status hs_bytes_copy(hs_bytes *dst, const hs_bytes *src);
hs_status hs_bytes_set(hs_bytes *dst, const void *p, size_t len); /* dst := copy of p[0..len) */
int hs_bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen); /* prefix first */

void hs_sigset_free(hs_sigset *s);
hs_status hs_sigset_init(hs_sigset *s, uint32_t n); /* n empty slots */
hs_status hs_sigset_copy(hs_sigset *dst, const hs_sigset *src);
uint32_t hs_sigset_count(const hs_sigset *s); /* number of present slots */

void hs_pc_free(hs_pc *pc);
hs_status hs_pc_copy(hs_pc *dst, const hs_pc *src);
bool hs_pc_equal(const hs_pc *a, const hs_pc *b); /* field-for-field, signatures included */
void hs_pc_genesis(hs_pc *out);                    /* out must be empty */
bool hs_pc_is_genesis(const hs_pc *pc);
bool hs_pc_is_block_justify(const hs_pc *pc); /* phase Generic or Decide */
bool hs_pc_is_nudge_justify(const hs_pc *pc); /* phase Prepare, Precommit or Commit */

void hs_tc_free(hs_tc *tc);
hs_status hs_tc_copy(hs_tc *dst, const hs_tc *src);

void hs_data_free(hs_data *d);
hs_status hs_data_copy(hs_data *dst, const hs_data *src);

void hs_block_free(hs_block *b);
hs_status hs_block_copy(hs_block *dst, const hs_block *src);
/* hash = SHA256(u64LE(height) || borsh(justify) || data_hash)  (spec §2.5) */
hs_status hs_block_compute_hash(const hs_block *b, hs_hash *out);

/* ---- validator sets (spec §1.7, §4.3) ---- */
void hs_vs_free(hs_validator_set *vs);
hs_status hs_vs_copy(hs_validator_set *dst, const hs_validator_set *src);
bool hs_vs_equal(const hs_validator_set *a, const hs_validator_set *b);
/* Index of key in vs, or -1. */
int64_t hs_vs_find(const hs_validator_set *vs, const hs_key *key);
bool hs_vs_contains(const hs_validator_set *vs, const hs_key *key);
/* Insert key at its sorted position, or set its power if present. */
hs_status hs_vs_put(hs_validator_set *vs, const hs_key *key, uint64_t power);
void hs_vs_remove(hs_validator_set *vs, const hs_key *key);
/* All inserts first, then all deletes (spec §1.7). */
hs_status hs_vs_apply(hs_validator_set *vs, const hs_vs_updates *u);
hs_u128 hs_vs_total_power(const hs_validator_set *vs);
/* floor(total * 2 / 3) + 1 (spec §1.7, §14.1) */
hs_u128 hs_vs_quorum(const hs_validator_set *vs);
/* Interleaved weighted round robin (spec §4.3). HS_ERR_STATE if vs is empty or powerless. */
hs_status hs_vs_leader(const hs_validator_set *vs, uint64_t view, hs_key *out);
/* The first validator marked in active[] (one flag per position) at or after view's slot in
 * that round robin, cyclically: the leader of `view` if the unmarked ones are skipped. Its
 * position in *pos; HS_ERR_STATE if none is marked (or vs is powerless). */
hs_status hs_vs_leader_among(const hs_validator_set *vs, uint64_t view, const bool *active,
                             uint32_t *pos);

/* ---- update sets (spec §2.7) ---- */
void hs_app_updates_free(hs_app_updates *u);
hs_status hs_app_updates_copy(hs_app_updates *dst, const hs_app_updates *src);
/* insert: removes key from deletes, then sets inserts[key] = value. */
hs_status hs_app_updates_insert(hs_app_updates *u, const uint8_t *key, size_t klen,
                                const uint8_t *val, size_t vlen);
/* delete: removes key from inserts, then adds it to deletes. */
hs_status hs_app_updates_delete(hs_app_updates *u, const uint8_t *key, size_t klen);

void hs_vs_updates_free(hs_vs_updates *u);
hs_status hs_vs_updates_copy(hs_vs_updates *dst, const hs_vs_updates *src);
hs_status hs_vs_updates_insert(hs_vs_updates *u, const hs_key *key, uint64_t power);
hs_status hs_vs_updates_delete(hs_vs_updates *u, const hs_key *key);

void hs_vss_free(hs_vss *s);
hs_status hs_vss_copy(hs_vss *dst, const hs_vss *src);

#endif
