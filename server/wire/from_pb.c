/* server/wire/from_pb.c - protobuf-c structs -> core types: the boundary where bytes from
 * peers and clients become values the core trusts, so every length, count and enum is checked
 * against hs_limits here. See mapping.h for the contract.
 *
 * Shape of the code: one from_pb function per type, a straight walk over the fields. Each
 * writes into a zeroed *out and, on any failure, frees what it built and zeroes it again, so
 * callers have one exit path. Nested failures prepend the field path to the reason on the way
 * out ("Proposal.block: Block.justify: ...").
 */
#include "wire/mapping.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- protobuf -> core: reasons ---- */

__attribute__((format(printf, 2, 3))) static hs_status invalid(char *reason, const char *fmt,
                                                               ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, HS_MAP_REASON_MAX, fmt, ap);
    va_end(ap);
    return HS_ERR_INVALID;
}

/* reason := "ctx: " reason, truncated to fit. Only for HS_ERR_INVALID results. */
static hs_status within(hs_status st, char *reason, const char *ctx) {
    if (st != HS_ERR_INVALID) return st;
    size_t cl = strlen(ctx), rl = strnlen(reason, HS_MAP_REASON_MAX - 1);
    if (cl + 3 > HS_MAP_REASON_MAX) return st; /* no room: keep the inner reason */
    size_t keep = HS_MAP_REASON_MAX - 1 - cl - 2;
    if (rl < keep) keep = rl;
    memmove(reason + cl + 2, reason, keep);
    memcpy(reason, ctx, cl);
    reason[cl] = ':';
    reason[cl + 1] = ' ';
    reason[cl + 2 + keep] = '\0';
    return st;
}

static const hs_limits *limits_or_default(const hs_limits *lim, hs_limits *tmp) {
    if (lim) return lim;
    *tmp = hs_limits_default();
    return tmp;
}

/* Copies a fixed-size byte field (hash, key, signature) after checking its length. */
static hs_status fixed(const ProtobufCBinaryData *d, size_t want, uint8_t *out,
                       const char *field, char *reason) {
    if (d->len != want)
        return invalid(reason, "%s: want %zu bytes, got %zu", field, want, d->len);
    memcpy(out, d->data, want);
    return HS_OK;
}

static hs_status phase_field(int v, hs_phase *out, const char *field, char *reason) {
    if (hs_map_phase_from_pb(v, out) != HS_OK)
        return invalid(reason, "%s: phase %d is not GENERIC..DECIDE", field, v);
    return HS_OK;
}

/* ---- protobuf -> core: certificates and blocks ---- */

static hs_status sigset_from_pb(Hotstuff__V1__SignatureSlot *const *slots, size_t n,
                                const hs_limits *lim, hs_sigset *out, char *reason) {
    if (n > lim->max_validators)
        return invalid(reason, "signatures: %zu slots, limit %u", n, lim->max_validators);
    if (hs_sigset_init(out, (uint32_t)n) != HS_OK) return HS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const Hotstuff__V1__SignatureSlot *s = slots[i];
        if (!s || s->signature.len == 0) continue; /* absent */
        if (s->signature.len != HS_SIG_LEN) {
            hs_sigset_free(out);
            return invalid(reason, "signatures[%zu]: want 0 or %d bytes, got %zu", i,
                           HS_SIG_LEN, s->signature.len);
        }
        out->slots[i].present = true;
        memcpy(out->slots[i].sig.b, s->signature.data, HS_SIG_LEN);
    }
    return HS_OK;
}

hs_status hs_map_pc_from_pb(const Hotstuff__V1__PhaseCertificate *pb, const hs_limits *lim,
                            hs_pc *out, char reason[HS_MAP_REASON_MAX]) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    if (!pb) return invalid(reason, "PhaseCertificate: missing");
    out->chain_id = pb->chain_id;
    out->view = pb->view;
    hs_status st = fixed(&pb->block, HS_HASH_LEN, out->block.b, "block", reason);
    if (st == HS_OK) st = phase_field(pb->phase, &out->phase, "phase", reason);
    if (st == HS_OK) st = sigset_from_pb(pb->signatures, pb->n_signatures, lim, &out->sigs, reason);
    if (st != HS_OK) memset(out, 0, sizeof *out);
    return within(st, reason, "PhaseCertificate");
}

hs_status hs_map_tc_from_pb(const Hotstuff__V1__TimeoutCertificate *pb, const hs_limits *lim,
                            hs_tc *out, char reason[HS_MAP_REASON_MAX]) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    if (!pb) return invalid(reason, "TimeoutCertificate: missing");
    out->chain_id = pb->chain_id;
    out->view = pb->view;
    hs_status st = sigset_from_pb(pb->signatures, pb->n_signatures, lim, &out->sigs, reason);
    if (st != HS_OK) memset(out, 0, sizeof *out);
    return within(st, reason, "TimeoutCertificate");
}

static hs_status data_from_pb(const ProtobufCBinaryData *items, size_t n, const hs_limits *lim,
                              hs_data *out, char *reason) {
    if (n > lim->max_datums)
        return invalid(reason, "data: %zu datums, limit %u", n, lim->max_datums);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].len > lim->max_datum_bytes)
            return invalid(reason, "data[%zu]: %zu bytes, limit %u", i, items[i].len,
                           lim->max_datum_bytes);
        total += items[i].len;
        if (total > lim->max_block_bytes)
            return invalid(reason, "data: over %llu bytes in all",
                           (unsigned long long)lim->max_block_bytes);
    }
    if (n == 0) return HS_OK;
    out->items = calloc(n, sizeof *out->items);
    if (!out->items) return HS_ERR_NOMEM;
    out->n = (uint32_t)n; /* calloc'd items are empty, so freeing all n is safe */
    for (size_t i = 0; i < n; i++) {
        if (hs_bytes_set(&out->items[i], items[i].data, items[i].len) != HS_OK) {
            hs_data_free(out);
            return HS_ERR_NOMEM;
        }
    }
    return HS_OK;
}

hs_status hs_map_block_from_pb(const Hotstuff__V1__Block *pb, const hs_limits *lim,
                               hs_block *out, char reason[HS_MAP_REASON_MAX]) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    if (!pb) return invalid(reason, "Block: missing");
    out->height = pb->height;
    hs_status st = fixed(&pb->hash, HS_HASH_LEN, out->hash.b, "hash", reason);
    if (st == HS_OK) st = fixed(&pb->data_hash, HS_HASH_LEN, out->data_hash.b, "data_hash", reason);
    if (st == HS_OK)
        st = within(hs_map_pc_from_pb(pb->justify, lim, &out->justify, reason), reason,
                    "justify");
    if (st == HS_OK) st = data_from_pb(pb->data, pb->n_data, lim, &out->data, reason);
    if (st != HS_OK) hs_block_free(out);
    return within(st, reason, "Block");
}

/* ---- protobuf -> core: validator sets and update sets ---- */

static int key_cmp(const hs_key *a, const hs_key *b) {
    return memcmp(a->b, b->b, HS_KEY_LEN);
}

/* Reads n validators into v (caller-allocated), requiring keys strictly ascending. */
static hs_status validators_from_pb(Hotstuff__V1__Validator *const *pb, size_t n,
                                    hs_validator *v, const char *field, char *reason) {
    for (size_t i = 0; i < n; i++) {
        if (!pb[i]) return invalid(reason, "%s[%zu]: missing", field, i);
        char name[48];
        snprintf(name, sizeof name, "%s[%zu].key", field, i);
        hs_status st = fixed(&pb[i]->key, HS_KEY_LEN, v[i].key.b, name, reason);
        if (st != HS_OK) return st;
        v[i].power = pb[i]->power;
        if (i && key_cmp(&v[i - 1].key, &v[i].key) >= 0)
            return invalid(reason, "%s: keys not strictly ascending at %zu", field, i);
    }
    return HS_OK;
}

hs_status hs_map_vs_from_pb(const Hotstuff__V1__ValidatorSet *pb, const hs_limits *lim,
                            hs_validator_set *out, char reason[HS_MAP_REASON_MAX]) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    if (!pb) return invalid(reason, "ValidatorSet: missing");
    size_t n = pb->n_validators;
    if (n > lim->max_validators)
        return invalid(reason, "ValidatorSet: %zu validators, limit %u", n, lim->max_validators);
    if (n == 0) return HS_OK;
    out->v = calloc(n, sizeof *out->v);
    if (!out->v) return HS_ERR_NOMEM;
    out->n = (uint32_t)n;
    hs_status st = validators_from_pb(pb->validators, n, out->v, "validators", reason);
    if (st != HS_OK) hs_vs_free(out);
    return within(st, reason, "ValidatorSet");
}

static bool validators_contain(const hs_validator *v, size_t n, const hs_key *key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(&v[mid].key, key);
        if (c == 0) return true;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

static hs_status vs_updates_fill(const Hotstuff__V1__ValidatorSetUpdates *pb,
                                 hs_vs_updates *out, char *reason) {
    size_t n = pb->n_inserts, m = pb->n_deletes;
    if (n) {
        out->inserts = calloc(n, sizeof *out->inserts);
        if (!out->inserts) return HS_ERR_NOMEM;
        out->n_inserts = (uint32_t)n;
    }
    hs_status st = validators_from_pb(pb->inserts, n, out->inserts, "inserts", reason);
    if (st != HS_OK || m == 0) return st;
    out->deletes = calloc(m, sizeof *out->deletes);
    if (!out->deletes) return HS_ERR_NOMEM;
    out->n_deletes = (uint32_t)m;
    for (size_t i = 0; i < m; i++) {
        char name[32];
        snprintf(name, sizeof name, "deletes[%zu]", i);
        st = fixed(&pb->deletes[i], HS_KEY_LEN, out->deletes[i].b, name, reason);
        if (st != HS_OK) return st;
        if (i && key_cmp(&out->deletes[i - 1], &out->deletes[i]) >= 0)
            return invalid(reason, "deletes: keys not strictly ascending at %zu", i);
        if (validators_contain(out->inserts, n, &out->deletes[i]))
            return invalid(reason, "deletes[%zu]: key is also inserted", i);
    }
    return HS_OK;
}

hs_status hs_map_vs_updates_from_pb(const Hotstuff__V1__ValidatorSetUpdates *pb,
                                    const hs_limits *lim, hs_vs_updates *out,
                                    char reason[HS_MAP_REASON_MAX]) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    if (!pb) return invalid(reason, "ValidatorSetUpdates: missing");
    if (pb->n_inserts > lim->max_update_entries ||
        pb->n_deletes > lim->max_update_entries - pb->n_inserts)
        return invalid(reason, "ValidatorSetUpdates: %zu entries, limit %u",
                       pb->n_inserts + pb->n_deletes, lim->max_update_entries);
    hs_status st = vs_updates_fill(pb, out, reason);
    if (st != HS_OK) hs_vs_updates_free(out);
    return within(st, reason, "ValidatorSetUpdates");
}

static bool bytes_sorted_contain(const hs_bytes *a, size_t n, const hs_bytes *key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = hs_bytes_cmp(a[mid].p, a[mid].len, key->p, key->len);
        if (c == 0) return true;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

/* Copies one app key or value after checking its size. */
static hs_status app_bytes(const ProtobufCBinaryData *d, uint32_t max, hs_bytes *out,
                           const char *field, size_t i, char *reason) {
    if (d->len > max) return invalid(reason, "%s[%zu]: %zu bytes, limit %u", field, i, d->len, max);
    return hs_bytes_set(out, d->data, d->len) == HS_OK ? HS_OK : HS_ERR_NOMEM;
}

static hs_status app_updates_fill(const Hotstuff__V1__AppStateUpdates *pb, const hs_limits *lim,
                                  hs_app_updates *out, char *reason) {
    size_t n = pb->n_inserts, m = pb->n_deletes;
    if (n) {
        out->insert_keys = calloc(n, sizeof(hs_bytes));
        out->insert_values = calloc(n, sizeof(hs_bytes));
        if (!out->insert_keys || !out->insert_values) return HS_ERR_NOMEM;
        out->n_inserts = (uint32_t)n; /* calloc'd entries are empty: freeing all n is safe */
    }
    for (size_t i = 0; i < n; i++) {
        const Hotstuff__V1__KeyValue *kv = pb->inserts[i];
        if (!kv) return invalid(reason, "inserts[%zu]: missing", i);
        hs_status st = app_bytes(&kv->key, lim->max_app_key_bytes, &out->insert_keys[i],
                                 "inserts.key", i, reason);
        if (st == HS_OK)
            st = app_bytes(&kv->value, lim->max_app_value_bytes, &out->insert_values[i],
                           "inserts.value", i, reason);
        if (st != HS_OK) return st;
        const hs_bytes *prev = &out->insert_keys[i - (i > 0)], *cur = &out->insert_keys[i];
        if (i && hs_bytes_cmp(prev->p, prev->len, cur->p, cur->len) >= 0)
            return invalid(reason, "inserts: keys not strictly ascending at %zu", i);
    }
    if (m == 0) return HS_OK;
    out->delete_keys = calloc(m, sizeof(hs_bytes));
    if (!out->delete_keys) return HS_ERR_NOMEM;
    out->n_deletes = (uint32_t)m;
    for (size_t i = 0; i < m; i++) {
        hs_status st = app_bytes(&pb->deletes[i], lim->max_app_key_bytes, &out->delete_keys[i],
                                 "deletes", i, reason);
        if (st != HS_OK) return st;
        const hs_bytes *prev = &out->delete_keys[i - (i > 0)], *cur = &out->delete_keys[i];
        if (i && hs_bytes_cmp(prev->p, prev->len, cur->p, cur->len) >= 0)
            return invalid(reason, "deletes: keys not strictly ascending at %zu", i);
        if (bytes_sorted_contain(out->insert_keys, n, cur))
            return invalid(reason, "deletes[%zu]: key is also inserted", i);
    }
    return HS_OK;
}

hs_status hs_map_app_updates_from_pb(const Hotstuff__V1__AppStateUpdates *pb,
                                     const hs_limits *lim, hs_app_updates *out,
                                     char reason[HS_MAP_REASON_MAX]) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    if (!pb) return invalid(reason, "AppStateUpdates: missing");
    if (pb->n_inserts > lim->max_update_entries ||
        pb->n_deletes > lim->max_update_entries - pb->n_inserts)
        return invalid(reason, "AppStateUpdates: %zu entries, limit %u",
                       pb->n_inserts + pb->n_deletes, lim->max_update_entries);
    hs_status st = app_updates_fill(pb, lim, out, reason);
    if (st != HS_OK) hs_app_updates_free(out);
    return within(st, reason, "AppStateUpdates");
}

/* ---- protobuf -> core: messages ---- */

/* Each fills the matching member of out->u; on failure the caller frees out. */

static hs_status proposal_from_pb(const Hotstuff__V1__Proposal *pb, const hs_limits *lim,
                                  hs_proposal *out, char *reason) {
    out->chain_id = pb->chain_id;
    out->view = pb->view;
    return within(hs_map_block_from_pb(pb->block, lim, &out->block, reason), reason, "block");
}

static hs_status nudge_from_pb(const Hotstuff__V1__Nudge *pb, const hs_limits *lim,
                               hs_nudge *out, char *reason) {
    out->chain_id = pb->chain_id;
    out->view = pb->view;
    return within(hs_map_pc_from_pb(pb->justify, lim, &out->justify, reason), reason,
                  "justify");
}

static hs_status phase_vote_from_pb(const Hotstuff__V1__PhaseVote *pb, hs_phase_vote *out,
                                    char *reason) {
    out->chain_id = pb->chain_id;
    out->view = pb->view;
    hs_status st = fixed(&pb->block, HS_HASH_LEN, out->block.b, "block", reason);
    if (st == HS_OK) st = phase_field(pb->phase, &out->phase, "phase", reason);
    if (st == HS_OK) st = fixed(&pb->signature, HS_SIG_LEN, out->sig.b, "signature", reason);
    return st;
}

static hs_status new_view_from_pb(const Hotstuff__V1__NewView *pb, const hs_limits *lim,
                                  hs_new_view *out, char *reason) {
    out->chain_id = pb->chain_id;
    out->view = pb->view;
    return within(hs_map_pc_from_pb(pb->highest_pc, lim, &out->highest_pc, reason), reason,
                  "highest_pc");
}

static hs_status timeout_vote_from_pb(const Hotstuff__V1__TimeoutVote *pb, const hs_limits *lim,
                                      hs_timeout_vote *out, char *reason) {
    out->chain_id = pb->chain_id;
    out->view = pb->view;
    hs_status st = fixed(&pb->signature, HS_SIG_LEN, out->sig.b, "signature", reason);
    if (st != HS_OK || !pb->highest_tc) return st; /* no highest_tc: None */
    st = hs_map_tc_from_pb(pb->highest_tc, lim, &out->highest_tc, reason);
    out->has_highest_tc = st == HS_OK;
    return within(st, reason, "highest_tc");
}

static hs_status advance_view_from_pb(const Hotstuff__V1__AdvanceView *pb, const hs_limits *lim,
                                      hs_advance_view *out, char *reason) {
    switch (pb->progress_certificate_case) {
    case HOTSTUFF__V1__ADVANCE_VIEW__PROGRESS_CERTIFICATE_TIMEOUT_CERTIFICATE:
        out->is_tc = true;
        return within(hs_map_tc_from_pb(pb->timeout_certificate, lim, &out->tc, reason), reason,
                      "timeout_certificate");
    case HOTSTUFF__V1__ADVANCE_VIEW__PROGRESS_CERTIFICATE_PHASE_CERTIFICATE:
        return within(hs_map_pc_from_pb(pb->phase_certificate, lim, &out->pc, reason), reason,
                      "phase_certificate");
    default:
        return invalid(reason, "progress_certificate: not set");
    }
}

static hs_status advertise_block_from_pb(const Hotstuff__V1__AdvertiseBlock *pb,
                                         hs_advertise_block *out, char *reason) {
    out->chain_id = pb->chain_id;
    out->height = pb->highest_committed_block_height;
    return fixed(&pb->signature, HS_SIG_LEN, out->sig.b, "signature", reason);
}

static hs_status sync_response_from_pb(const Hotstuff__V1__BlockSyncResponse *pb,
                                       const hs_limits *lim, hs_sync_response *out,
                                       char *reason) {
    size_t n = pb->n_blocks;
    if (n > lim->max_sync_blocks)
        return invalid(reason, "blocks: %zu blocks, limit %u", n, lim->max_sync_blocks);
    if (n) {
        out->blocks = calloc(n, sizeof *out->blocks);
        if (!out->blocks) return HS_ERR_NOMEM;
        out->n_blocks = (uint32_t)n; /* calloc'd blocks are empty; the caller frees all n */
    }
    for (size_t i = 0; i < n; i++) {
        hs_status st = hs_map_block_from_pb(pb->blocks[i], lim, &out->blocks[i], reason);
        if (st != HS_OK) {
            char ctx[32];
            snprintf(ctx, sizeof ctx, "blocks[%zu]", i);
            return within(st, reason, ctx);
        }
    }
    return within(hs_map_pc_from_pb(pb->highest_pc, lim, &out->highest_pc, reason), reason,
                  "highest_pc");
}

/* Checks that the oneof member of the given case is present (protobuf-c sets it whenever the
 * case is set, but a hand-built struct might not). */
#define REQUIRE(ptr, name)                                                                    \
    do {                                                                                      \
        if (!(ptr)) return invalid(reason, "Message.%s: missing", name);                      \
    } while (0)

static hs_status msg_fill(const Hotstuff__V1__Message *pb, const hs_limits *lim, hs_msg *out,
                          char *reason) {
    hs_status st;
    switch (pb->message_case) {
    case HOTSTUFF__V1__MESSAGE__MESSAGE_PROPOSAL:
        REQUIRE(pb->proposal, "proposal");
        out->type = HS_MSG_PROPOSAL;
        st = proposal_from_pb(pb->proposal, lim, &out->u.proposal, reason);
        return within(st, reason, "Proposal");
    case HOTSTUFF__V1__MESSAGE__MESSAGE_NUDGE:
        REQUIRE(pb->nudge, "nudge");
        out->type = HS_MSG_NUDGE;
        return within(nudge_from_pb(pb->nudge, lim, &out->u.nudge, reason), reason, "Nudge");
    case HOTSTUFF__V1__MESSAGE__MESSAGE_PHASE_VOTE:
        REQUIRE(pb->phase_vote, "phase_vote");
        out->type = HS_MSG_PHASE_VOTE;
        st = phase_vote_from_pb(pb->phase_vote, &out->u.phase_vote, reason);
        return within(st, reason, "PhaseVote");
    case HOTSTUFF__V1__MESSAGE__MESSAGE_NEW_VIEW:
        REQUIRE(pb->new_view, "new_view");
        out->type = HS_MSG_NEW_VIEW;
        st = new_view_from_pb(pb->new_view, lim, &out->u.new_view, reason);
        return within(st, reason, "NewView");
    case HOTSTUFF__V1__MESSAGE__MESSAGE_TIMEOUT_VOTE:
        REQUIRE(pb->timeout_vote, "timeout_vote");
        out->type = HS_MSG_TIMEOUT_VOTE;
        st = timeout_vote_from_pb(pb->timeout_vote, lim, &out->u.timeout_vote, reason);
        return within(st, reason, "TimeoutVote");
    case HOTSTUFF__V1__MESSAGE__MESSAGE_ADVANCE_VIEW:
        REQUIRE(pb->advance_view, "advance_view");
        out->type = HS_MSG_ADVANCE_VIEW;
        st = advance_view_from_pb(pb->advance_view, lim, &out->u.advance_view, reason);
        return within(st, reason, "AdvanceView");
    case HOTSTUFF__V1__MESSAGE__MESSAGE_ADVERTISE_BLOCK:
        REQUIRE(pb->advertise_block, "advertise_block");
        out->type = HS_MSG_ADVERTISE_BLOCK;
        st = advertise_block_from_pb(pb->advertise_block, &out->u.advertise_block, reason);
        return within(st, reason, "AdvertiseBlock");
    case HOTSTUFF__V1__MESSAGE__MESSAGE_ADVERTISE_PC:
        REQUIRE(pb->advertise_pc, "advertise_pc");
        out->type = HS_MSG_ADVERTISE_PC;
        st = hs_map_pc_from_pb(pb->advertise_pc->highest_pc, lim,
                               &out->u.advertise_pc.highest_pc, reason);
        return within(within(st, reason, "highest_pc"), reason, "AdvertisePC");
    case HOTSTUFF__V1__MESSAGE__MESSAGE_BLOCK_SYNC_REQUEST:
        REQUIRE(pb->block_sync_request, "block_sync_request");
        out->type = HS_MSG_SYNC_REQUEST;
        out->u.sync_request.chain_id = pb->block_sync_request->chain_id;
        out->u.sync_request.start_height = pb->block_sync_request->start_height;
        out->u.sync_request.limit = pb->block_sync_request->limit;
        return HS_OK;
    case HOTSTUFF__V1__MESSAGE__MESSAGE_BLOCK_SYNC_RESPONSE:
        REQUIRE(pb->block_sync_response, "block_sync_response");
        out->type = HS_MSG_SYNC_RESPONSE;
        st = sync_response_from_pb(pb->block_sync_response, lim, &out->u.sync_response, reason);
        return within(st, reason, "BlockSyncResponse");
    default:
        return invalid(reason, "Message: no message set (case %d)", (int)pb->message_case);
    }
}

hs_status hs_map_msg_from_pb(const Hotstuff__V1__Message *pb, const hs_limits *lim,
                             hs_msg *out, char reason[HS_MAP_REASON_MAX]) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    if (!pb) return invalid(reason, "Message: missing");
    hs_status st = msg_fill(pb, lim, out, reason);
    if (st != HS_OK) hs_msg_free(out); /* every member is empty or fully owned */
    return st;
}

/* ---- whole messages from bytes ---- */

hs_status hs_map_msg_unpack(const uint8_t *p, size_t len, const hs_limits *lim, hs_msg *out,
                            char reason[HS_MAP_REASON_MAX]) {
    memset(out, 0, sizeof *out);
    Hotstuff__V1__Message *pb = hotstuff__v1__message__unpack(NULL, len, p);
    if (!pb) return invalid(reason, "not a hotstuff.v1.Message encoding");
    hs_status st = hs_map_msg_from_pb(pb, lim, out, reason);
    hotstuff__v1__message__free_unpacked(pb, NULL);
    return st;
}
