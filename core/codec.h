/* core/codec.h - Borsh 0.10 encoding (spec §2.1) of everything hashed, signed or stored.
 * Internal to libhotstuff.
 *
 * Writers append to an hs_buf; an allocation failure latches buf->oom and later puts are
 * no-ops, so callers check once at the end. Readers take bytes from an hs_rd; any overrun or
 * bound violation latches rd->err and later gets return zeros, so decoders check once too.
 */
#ifndef HS_CORE_CODEC_H
#define HS_CORE_CODEC_H

#include "hotstuff/block_tree.h"
#include "hotstuff/messages.h"
#include "hotstuff/types.h"

typedef struct hs_buf {
    uint8_t *p; /* owned */
    size_t len, cap;
    bool oom;
} hs_buf;

void hs_buf_init(hs_buf *b);
void hs_buf_free(hs_buf *b);
void hs_buf_reset(hs_buf *b); /* len = 0, keeps capacity */
void hs_put_u8(hs_buf *b, uint8_t v);
void hs_put_u32(hs_buf *b, uint32_t v);
void hs_put_u64(hs_buf *b, uint64_t v);
void hs_put_raw(hs_buf *b, const void *p, size_t n);
void hs_put_bytes(hs_buf *b, const hs_bytes *v); /* u32 len || bytes */

typedef struct hs_rd {
    const uint8_t *p;
    size_t len, off;
    bool err;
} hs_rd;

void hs_rd_init(hs_rd *r, const uint8_t *p, size_t len);
uint8_t hs_get_u8(hs_rd *r);
uint32_t hs_get_u32(hs_rd *r);
uint64_t hs_get_u64(hs_rd *r);
void hs_get_raw(hs_rd *r, void *out, size_t n);
bool hs_rd_done(const hs_rd *r); /* !err and every byte consumed */

/* Encoders (infallible apart from buf->oom). */
void hs_enc_sigset(hs_buf *b, const hs_sigset *s);
void hs_enc_pc(hs_buf *b, const hs_pc *pc);
void hs_enc_tc(hs_buf *b, const hs_tc *tc);
void hs_enc_data(hs_buf *b, const hs_data *d);
void hs_enc_block(hs_buf *b, const hs_block *blk);
void hs_enc_vs(hs_buf *b, const hs_validator_set *vs); /* ValidatorSetBytes (spec §6.2) */
void hs_enc_app_updates(hs_buf *b, const hs_app_updates *u);
void hs_enc_vs_updates(hs_buf *b, const hs_vs_updates *u);
void hs_enc_hashes(hs_buf *b, const hs_hash *h, uint32_t n); /* Vec<CryptoHash> */
void hs_enc_msg(hs_buf *b, const hs_msg *m);                 /* spec §2.8 tags */

/* Decoders: HS_OK with *out owned by the caller, or HS_ERR_INVALID (rd->err set, *out empty).
 * They consume exactly one value and do not require the reader to be exhausted. A NULL lim
 * means hs_limits_default(). Only canonical encodings are accepted: map keys and set members
 * must be strictly ascending, and an update set may not name a key in both lists. */
hs_status hs_dec_sigset(hs_rd *r, const hs_limits *lim, hs_sigset *out);
hs_status hs_dec_pc(hs_rd *r, const hs_limits *lim, hs_pc *out);
hs_status hs_dec_tc(hs_rd *r, const hs_limits *lim, hs_tc *out);
hs_status hs_dec_data(hs_rd *r, const hs_limits *lim, hs_data *out);
hs_status hs_dec_block(hs_rd *r, const hs_limits *lim, hs_block *out);
/* A validator set whose keys are not strictly ascending, or whose validators vector and
 * powers map list different keys, is rejected. */
hs_status hs_dec_vs(hs_rd *r, const hs_limits *lim, hs_validator_set *out);
hs_status hs_dec_app_updates(hs_rd *r, const hs_limits *lim, hs_app_updates *out);
hs_status hs_dec_vs_updates(hs_rd *r, const hs_limits *lim, hs_vs_updates *out);
hs_status hs_dec_hashes(hs_rd *r, uint32_t max, hs_hash **out, uint32_t *n);
hs_status hs_dec_msg(hs_rd *r, const hs_limits *lim, hs_msg *out);

/* Convenience: decode a whole buffer as one value (trailing bytes are an error). */
hs_status hs_decode_pc(const uint8_t *p, size_t len, const hs_limits *lim, hs_pc *out);
hs_status hs_decode_tc(const uint8_t *p, size_t len, const hs_limits *lim, hs_tc *out);
hs_status hs_decode_vs(const uint8_t *p, size_t len, const hs_limits *lim, hs_validator_set *out);

#endif
