/* server/config/json_read.h - what the readers of the node's JSON files share (internal to
 * server/config/): loading a file whole and parsing it, and typed getters that report every
 * problem as "<file>: <field>: <problem>" into the caller's buffer.
 *
 * Parsing is table-free and explicit: each object is checked for unknown and repeated fields
 * first (cfg_check_members), then each field is read by a typed getter. The field path (e.g.
 * "validators[2].power") is built as the reader descends (cfg_member_path). A JSON null counts
 * as absent. Optional getters leave *out alone when the member is absent, so the caller sets
 * the default first.
 *
 *   json_read.c    these helpers        key_file.c  key.json
 *   genesis.c      genesis.json         node_config.c  config.json
 *   store_bind.c   binding a store to its genesis, and making directories
 */
#ifndef HS_CONFIG_JSON_READ_H
#define HS_CONFIG_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "hotstuff/types.h"

/* Where errors go: the file as errors name it, and the caller's buffer (may be NULL). */
typedef struct jctx {
    const char *file;
    char *err;
    size_t errlen;
} jctx;

/* Error reporting: each returns its status (HS_ERR_INVALID, HS_ERR_IO) after writing the line. */
hs_status cfg_bad(const jctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
hs_status cfg_io_fail(const jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "parent.name", or "name" at the top. */
void cfg_member_path(char *out, size_t cap, const char *parent, const char *name);

/* Opens, reads (a regular file of at most 16 MiB) and parses a JSON object; *fd_mode (if not
 * NULL) receives the file's permission bits. The text read is wiped: it may hold a secret. */
hs_status cfg_load_json(const jctx *c, const char *path, cJSON **out, mode_t *fd_mode);

/* Unknown or repeated members of obj are errors; allowed is NULL-terminated. */
hs_status cfg_check_members(const jctx *c, const cJSON *obj, const char *path,
                            const char *const *allowed);
/* A member, or NULL when absent or null. */
const cJSON *cfg_member(const cJSON *obj, const char *name);
/* "is required" unless m. */
hs_status cfg_need(const jctx *c, const cJSON *m, const char *field);
/* An integer in [min, max]: a JSON number (exact up to 2^53) or a string of decimal digits. */
hs_status cfg_as_u64(const jctx *c, const cJSON *m, const char *field, uint64_t min,
                     uint64_t max, uint64_t *out);
hs_status cfg_opt_u64(const jctx *c, const cJSON *obj, const char *path, const char *name,
                      uint64_t min, uint64_t max, uint64_t *out);
hs_status cfg_opt_u32(const jctx *c, const cJSON *obj, const char *path, const char *name,
                      uint32_t min, uint32_t max, uint32_t *out);
hs_status cfg_opt_bool(const jctx *c, const cJSON *obj, const char *path, const char *name,
                       bool *out);
/* A non-empty string, required or optional. *out points into obj. */
hs_status cfg_get_string(const jctx *c, const cJSON *obj, const char *path, const char *name,
                         bool required, const char **out);
/* An optional string naming one of names (NULL-terminated); *out = its index. */
hs_status cfg_opt_choice(const jctx *c, const cJSON *obj, const char *path, const char *name,
                         const char *const *names, int *out);
hs_status cfg_opt_object(const jctx *c, const cJSON *obj, const char *name, const cJSON **out);
/* Hex or Base64 (standard or URL-safe, padded or not) text of exactly want bytes. */
bool cfg_decode_bytes(const char *text, uint8_t *out, size_t want);
/* A required Ed25519 public key (hex or Base64) that is a valid curve point. */
hs_status cfg_get_key(const jctx *c, const cJSON *obj, const char *path, const char *name,
                      hs_key *out);

#endif
