/* test_crypto.c - SHA-256, Ed25519 and the short Base64 of the log lines. */
#include <string.h>

#include "cu.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"

static void test_init(void) {
    CU_ASSERT_EQUAL(hs_crypto_init(), HS_OK);
    CU_ASSERT_EQUAL(hs_crypto_init(), HS_OK); /* idempotent */
}

/* FIPS 180-2 test vector. */
static void test_sha256(void) {
    static const uint8_t want[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    hs_hash h;
    hs_sha256((const uint8_t *)"abc", 3, &h);
    CU_ASSERT(memcmp(h.b, want, 32) == 0);
}

static void test_sign_verify(void) {
    hs_keypair kp, other;
    CU_ASSERT_EQUAL_FATAL(hs_keypair_generate(&kp), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_keypair_generate(&other), HS_OK);
    CU_ASSERT(memcmp(kp.public_key.b, other.public_key.b, HS_KEY_LEN) != 0);
    uint8_t msg[49];
    for (int i = 0; i < 49; i++) msg[i] = (uint8_t)i;
    hs_sig sig;
    hs_sign(&kp, msg, sizeof msg, &sig);
    CU_ASSERT(hs_verify(&kp.public_key, msg, sizeof msg, &sig));
    CU_ASSERT(!hs_verify(&other.public_key, msg, sizeof msg, &sig)); /* wrong key */
    CU_ASSERT(!hs_verify(&kp.public_key, msg, sizeof msg - 1, &sig)); /* shorter message */

    msg[20] ^= 1; /* tampered message */
    CU_ASSERT(!hs_verify(&kp.public_key, msg, sizeof msg, &sig));
    msg[20] ^= 1;
    hs_sig bad = sig; /* tampered signature, in R and in S */
    bad.b[0] ^= 0x80;
    CU_ASSERT(!hs_verify(&kp.public_key, msg, sizeof msg, &bad));
    bad = sig;
    bad.b[40] ^= 1;
    CU_ASSERT(!hs_verify(&kp.public_key, msg, sizeof msg, &bad));
    CU_ASSERT(hs_verify(&kp.public_key, msg, sizeof msg, &sig));

    hs_sign(&kp, NULL, 0, &sig); /* empty message */
    CU_ASSERT(hs_verify(&kp.public_key, NULL, 0, &sig));
}

/* Seed keys are deterministic; RFC 8032 §7.1 TEST 1 pins the whole construction. */
static void test_seed_keypair(void) {
    static const uint8_t seed[32] = {
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
        0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
    static const uint8_t pub[32] = {
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
        0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    static const uint8_t sig0[8] = {0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72};
    hs_keypair a, b;
    CU_ASSERT_EQUAL(hs_keypair_from_seed(seed, &a), HS_OK);
    CU_ASSERT_EQUAL(hs_keypair_from_seed(seed, &b), HS_OK);
    CU_ASSERT(memcmp(&a, &b, sizeof a) == 0);
    CU_ASSERT(memcmp(a.public_key.b, pub, 32) == 0);
    CU_ASSERT(memcmp(a.secret, seed, 32) == 0); /* libsodium layout: seed || public key */
    CU_ASSERT(memcmp(a.secret + 32, pub, 32) == 0);
    hs_sig s1, s2;
    hs_sign(&a, NULL, 0, &s1);
    hs_sign(&b, NULL, 0, &s2);
    CU_ASSERT(memcmp(s1.b, s2.b, 64) == 0); /* Ed25519 signing is deterministic */
    CU_ASSERT(memcmp(s1.b, sig0, sizeof sig0) == 0);

    uint8_t seed2[32];
    memcpy(seed2, seed, 32);
    seed2[0] ^= 1;
    CU_ASSERT_EQUAL(hs_keypair_from_seed(seed2, &b), HS_OK);
    CU_ASSERT(memcmp(a.public_key.b, b.public_key.b, 32) != 0);
}

/* Expected strings worked out by hand from RFC 4648's alphabet. */
static void test_b64_short(void) {
    char out[8];
    hs_b64_short((const uint8_t *)"hello", 5, out); /* aGVsbG8= */
    CU_ASSERT_STRING_EQUAL(out, "aGVsbG8");
    hs_b64_short((const uint8_t *)"hello world", 11, out); /* aGVsbG8gd29ybGQ= */
    CU_ASSERT_STRING_EQUAL(out, "aGVsbG8");
    hs_b64_short((const uint8_t *)"Man", 3, out); /* TWFu */
    CU_ASSERT_STRING_EQUAL(out, "TWFu");
    hs_b64_short((const uint8_t *)"Ma", 2, out); /* TWE= */
    CU_ASSERT_STRING_EQUAL(out, "TWE");
    hs_b64_short((const uint8_t *)"M", 1, out); /* TQ== */
    CU_ASSERT_STRING_EQUAL(out, "TQ");
    hs_b64_short((const uint8_t *)"", 0, out);
    CU_ASSERT_STRING_EQUAL(out, "");
    hs_b64_short((const uint8_t *)"foobar", 6, out); /* Zm9vYmFy */
    CU_ASSERT_STRING_EQUAL(out, "Zm9vYmF");
    uint8_t zero[32] = {0}, ff[32];
    memset(ff, 0xff, sizeof ff);
    hs_b64_short(zero, 32, out);
    CU_ASSERT_STRING_EQUAL(out, "AAAAAAA");
    hs_b64_short(ff, 32, out); /* 0xff bytes: all sextets 63 = '/' */
    CU_ASSERT_STRING_EQUAL(out, "///////");
    uint8_t mix[6] = {0xfb, 0xef, 0xbe, 0x00, 0x10, 0x83}; /* sextets 62 x4, 0, 1, 2, 3 */
    hs_b64_short(mix, 6, out);
    CU_ASSERT_STRING_EQUAL(out, "++++ABC");
}

typedef struct captured {
    int calls;
    hs_log_level level;
    char module[32], msg[64];
} captured;

static void capture(void *ctx, hs_log_level level, const char *module, const char *msg) {
    captured *c = ctx;
    c->calls++;
    c->level = level;
    snprintf(c->module, sizeof c->module, "%s", module);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
}

static void test_log_handler_and_level(void) {
    captured c = {0};
    hs_log_set_handler(capture, &c);
    hs_log_set_level(HS_LOG_INFO);
    hs_log(HS_LOG_DEBUG, "crypto", "dropped %d", 1);
    CU_ASSERT_EQUAL(c.calls, 0);
    hs_log(HS_LOG_WARN, "crypto", "kept %d %s", 2, "x");
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT_EQUAL(c.level, HS_LOG_WARN);
    CU_ASSERT_STRING_EQUAL(c.module, "crypto");
    CU_ASSERT_STRING_EQUAL(c.msg, "kept 2 x");
    hs_log_set_level(HS_LOG_DEBUG);
    hs_log(HS_LOG_DEBUG, "m", "now kept");
    CU_ASSERT_EQUAL(c.calls, 2);
    hs_log_set_handler(NULL, NULL); /* back to stderr */
    hs_log(HS_LOG_INFO, "test", "default sink \"quoted\"\nline");
    CU_ASSERT_EQUAL(c.calls, 2);
    hs_log_set_level(HS_LOG_INFO);
}

static const cu_test tests[] = {
    {"init", test_init},
    {"sha256", test_sha256},
    {"sign and verify", test_sign_verify},
    {"seed key pairs", test_seed_keypair},
    {"b64_short", test_b64_short},
    {"log handler and level", test_log_handler_and_level},
    {NULL, NULL},
};

int main(void) {
    return cu_run("crypto", tests);
}
