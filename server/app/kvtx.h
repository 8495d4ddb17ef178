/* server/app/kvtx.h - transactions of hotstuffd's built-in key-value app
 * (proto/hotstuff/v1/kvapp.proto): building and signing them (hotstuffctl, tests) and decoding
 * and checking untrusted ones (every replica, for the mempool and for validate_block).
 *
 * A transaction's identity is the SHA-256 of its bytes. kvtx_decode therefore accepts only the
 * canonical encoding - what protobuf-c itself produces for the decoded message, with no
 * unknown fields - so that nobody can re-encode a signed transaction into a second one with a
 * different hash and have it commit twice.
 *
 * Everything here is a pure function of its arguments (no clock, no randomness), as block
 * validation requires.
 */
#ifndef HS_SERVER_KVTX_H
#define HS_SERVER_KVTX_H

#include <stddef.h>
#include <stdint.h>

#include "hotstuff/types.h"

typedef enum kvtx_kind {
    KVTX_PUT = 1,
    KVTX_DELETE = 2,
    KVTX_UPDATE_VALIDATORS = 3
} kvtx_kind;

/* What decoding checks a transaction against. */
typedef struct kvtx_rules {
    uint64_t chain_id;      /* bound into validator-update signatures */
    bool has_admin;         /* false: validator-set updates are refused */
    hs_key admin_key;
    uint32_t max_tx_bytes;  /* encoded size */
    uint32_t max_key_bytes; /* user keys */
    uint32_t max_validators; /* updates per UpdateValidators */
} kvtx_rules;

/* A decoded and checked transaction; owns its members. Zero it before use; kvtx_free. */
typedef struct kvtx {
    hs_hash hash; /* SHA-256 of the encoded bytes */
    uint64_t nonce;
    kvtx_kind kind;
    hs_bytes key;   /* PUT, DELETE */
    hs_bytes value; /* PUT */
    uint32_t n_updates;      /* UPDATE_VALIDATORS, in transaction order */
    hs_validator *updates;   /* power 0 = remove */
} kvtx;

void kvtx_free(kvtx *t);

/* Decodes and checks `len` bytes: size, canonical encoding, a known operation, non-empty keys
 * within limits, and for validator updates 1..max_validators distinct valid Ed25519 keys
 * signed by the admin key. HS_OK with *out filled, HS_ERR_INVALID with why in reason (truncated
 * to rlen, NUL-terminated), or HS_ERR_NOMEM. */
hs_status kvtx_decode(const kvtx_rules *rules, const uint8_t *p, size_t len, kvtx *out,
                      char *reason, size_t rlen);
/* The same for bytes whose SHA-256 the caller already computed (*hash): saves hashing again,
 * which at 100-byte transactions costs as much as the rest of decoding. */
hs_status kvtx_decode_hashed(const kvtx_rules *rules, const uint8_t *p, size_t len,
                             const hs_hash *hash, kvtx *out, char *reason, size_t rlen);

/* ---- building (each returns a malloc'd encoding in *out, *len; caller frees) ---- */
hs_status kvtx_encode_put(uint64_t nonce, const uint8_t *key, size_t klen, const uint8_t *val,
                          size_t vlen, uint8_t **out, size_t *len);
hs_status kvtx_encode_delete(uint64_t nonce, const uint8_t *key, size_t klen, uint8_t **out,
                             size_t *len);
/* Signs with `admin` (the key named in genesis.json) for chain `chain_id`. */
hs_status kvtx_encode_update_validators(uint64_t chain_id, uint64_t nonce,
                                        const hs_validator *updates, size_t n,
                                        const hs_keypair *admin, uint8_t **out, size_t *len);
/* The same with a given signature, or none when sig is NULL (tests of rejection). */
hs_status kvtx_encode_update_validators_raw(uint64_t nonce, const hs_validator *updates,
                                            size_t n, const hs_sig *sig, uint8_t **out,
                                            size_t *len);

/* The bytes the admin signs (see kvapp.proto). malloc'd into *out; caller frees. */
hs_status kvtx_vs_signing_bytes(uint64_t chain_id, uint64_t nonce, const hs_validator *updates,
                                size_t n, uint8_t **out, size_t *len);

/* Lower-case hex of a hash (65 bytes with the NUL). */
void kvtx_hex(const hs_hash *h, char out[65]);

#endif
