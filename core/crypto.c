/* crypto.c - SHA-256 and Ed25519 over libsodium (spec §2.2), and the short Base64 of the
 * event log lines (spec §9). */
#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "hotstuff/crypto.h"

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_rc = -1;

static void sodium_init_once(void) {
    sodium_rc = sodium_init(); /* 0 = initialised now, 1 = already, -1 = failed */
}

hs_status hs_crypto_init(void) {
    pthread_once(&sodium_once, sodium_init_once);
    return sodium_rc >= 0 ? HS_OK : HS_ERR_STATE;
}

void hs_sha256(const uint8_t *data, size_t len, hs_hash *out) {
    hs_crypto_init();
    crypto_hash_sha256(out->b, data, len);
}

hs_status hs_keypair_generate(hs_keypair *out) {
    _Static_assert(HS_SECRET_LEN == crypto_sign_SECRETKEYBYTES, "secret key layout");
    _Static_assert(HS_KEY_LEN == crypto_sign_PUBLICKEYBYTES, "public key layout");
    hs_status st = hs_crypto_init();
    if (st != HS_OK) return st;
    return crypto_sign_keypair(out->public_key.b, out->secret) == 0 ? HS_OK : HS_ERR_STATE;
}

hs_status hs_keypair_from_seed(const uint8_t seed[32], hs_keypair *out) {
    _Static_assert(crypto_sign_SEEDBYTES == 32, "seed size");
    hs_status st = hs_crypto_init();
    if (st != HS_OK) return st;
    return crypto_sign_seed_keypair(out->public_key.b, out->secret, seed) == 0 ? HS_OK
                                                                               : HS_ERR_STATE;
}

void hs_sign(const hs_keypair *kp, const uint8_t *msg, size_t len, hs_sig *out) {
    _Static_assert(HS_SIG_LEN == crypto_sign_BYTES, "signature size");
    hs_crypto_init();
    int rc = crypto_sign_detached(out->b, NULL, msg, len, kp->secret);
    assert(rc == 0);
    (void)rc;
}

bool hs_verify(const hs_key *key, const uint8_t *msg, size_t len, const hs_sig *sig) {
    hs_crypto_init();
    return crypto_sign_verify_detached(sig->b, msg, len, key->b) == 0;
}

/* Standard alphabet, no padding; 6 input bytes give 8 characters, enough for 7. */
void hs_b64_short(const uint8_t *data, size_t len, char out[8]) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = len < 6 ? len : 6, k = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t take = n - i < 3 ? n - i : 3;
        uint32_t w = (uint32_t)data[i] << 16;
        if (take > 1) w |= (uint32_t)data[i + 1] << 8;
        if (take > 2) w |= data[i + 2];
        /* take bytes yield take + 1 characters without padding */
        for (size_t c = 0; c <= take && k < 7; c++) out[k++] = alphabet[(w >> (18 - 6 * c)) & 63];
    }
    out[k] = '\0';
}
