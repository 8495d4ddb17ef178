/* hotstuff/crypto.h - SHA-256 and Ed25519 (libsodium), spec §2.2. */
#ifndef HOTSTUFF_CRYPTO_H
#define HOTSTUFF_CRYPTO_H

#include "hotstuff/types.h"

/* Initialises libsodium; safe to call many times and from many threads. */
hs_status hs_crypto_init(void);

void hs_sha256(const uint8_t *data, size_t len, hs_hash *out);

hs_status hs_keypair_generate(hs_keypair *out);
/* Deterministic key pair from a 32-byte seed (tests, simulation). */
hs_status hs_keypair_from_seed(const uint8_t seed[32], hs_keypair *out);

void hs_sign(const hs_keypair *kp, const uint8_t *msg, size_t len, hs_sig *out);
bool hs_verify(const hs_key *key, const uint8_t *msg, size_t len, const hs_sig *sig);

/* Standard Base64 without padding of `data`, truncated to the first 7 characters, as in the
 * spec's log lines (§9). out must hold 8 bytes. */
void hs_b64_short(const uint8_t *data, size_t len, char out[8]);

#endif
