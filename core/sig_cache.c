/* core/sig_cache.c - see sig_cache.h. */
#include "sig_cache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hotstuff/crypto.h"

#define DIGEST_LEN 32

struct hs_sig_cache {
    uint8_t digest[HS_SIG_CACHE_SLOTS][DIGEST_LEN];
    bool used[HS_SIG_CACHE_SLOTS];
    hs_sig_cache_stats stats;
};

/* The slot count is a power of two: the digest's first bytes index it directly. */
_Static_assert((HS_SIG_CACHE_SLOTS & (HS_SIG_CACHE_SLOTS - 1)) == 0, "power of two");

hs_sig_cache *hs_sig_cache_new(void) {
    return calloc(1, sizeof(hs_sig_cache));
}

void hs_sig_cache_free(hs_sig_cache *c) {
    free(c);
}

/* BLAKE2b-256 of key || u64le(len) || msg || sig: the length keeps (msg, sig) splits apart. */
static void digest_of(const hs_key *key, const uint8_t *msg, size_t len, const hs_sig *sig,
                      uint8_t out[DIGEST_LEN]) {
    crypto_generichash_state s;
    uint8_t n[8];
    for (int i = 0; i < 8; i++) n[i] = (uint8_t)((uint64_t)len >> (8 * i));
    crypto_generichash_init(&s, NULL, 0, DIGEST_LEN);
    crypto_generichash_update(&s, key->b, HS_KEY_LEN);
    crypto_generichash_update(&s, n, sizeof n);
    crypto_generichash_update(&s, msg, len);
    crypto_generichash_update(&s, sig->b, HS_SIG_LEN);
    crypto_generichash_final(&s, out, DIGEST_LEN);
}

static uint32_t slot_of(const uint8_t d[DIGEST_LEN]) {
    uint32_t idx;
    memcpy(&idx, d, sizeof idx);
    return idx & (HS_SIG_CACHE_SLOTS - 1);
}

bool hs_sig_cache_verify(hs_sig_cache *c, const hs_key *key, const uint8_t *msg, size_t len,
                         const hs_sig *sig) {
    if (!c) return hs_verify(key, msg, len, sig);
    uint8_t d[DIGEST_LEN];
    digest_of(key, msg, len, sig, d);
    uint32_t idx = slot_of(d);
    if (c->used[idx] && sodium_memcmp(c->digest[idx], d, DIGEST_LEN) == 0) {
        c->stats.hits++;
        return true;
    }
    c->stats.misses++;
    if (!hs_verify(key, msg, len, sig)) {
        c->stats.rejected++;
        return false;
    }
    memcpy(c->digest[idx], d, DIGEST_LEN);
    c->used[idx] = true;
    return true;
}

void hs_sig_cache_remember(hs_sig_cache *c, const hs_key *key, const uint8_t *msg, size_t len,
                           const hs_sig *sig) {
    if (!c) return;
    uint8_t d[DIGEST_LEN];
    digest_of(key, msg, len, sig, d);
    uint32_t idx = slot_of(d);
    memcpy(c->digest[idx], d, DIGEST_LEN);
    c->used[idx] = true;
}

hs_sig_cache_stats hs_sig_cache_get_stats(const hs_sig_cache *c) {
    hs_sig_cache_stats none = {0};
    return c ? c->stats : none;
}
