/* server/config/json_read.c - see json_read.h. */
#include "config/json_read.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "config/node_config.h"

/* No file of ours is anywhere near this; it bounds what a bad path can make us read. */
#define MAX_FILE_BYTES (16u << 20)
/* Integers in JSON numbers are exact up to 2^53; larger ones must be given as strings. */
#define MAX_EXACT_DOUBLE 9007199254740992.0

/* ---- error reporting ---- */

static hs_status failv(const jctx *c, hs_status st, const char *field, const char *fmt,
                       va_list ap) {
    assert(st != HS_OK && c->file); /* an error names its file */
    if (!c->err || !c->errlen) return st;
    int n = snprintf(c->err, c->errlen, "%s: %s: ", c->file, field);
    if (n >= 0 && (size_t)n < c->errlen) vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    return st;
}

hs_status cfg_bad(const jctx *c, const char *field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    hs_status st = failv(c, HS_ERR_INVALID, field, fmt, ap);
    va_end(ap);
    return st;
}

hs_status cfg_io_fail(const jctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    hs_status st = failv(c, HS_ERR_IO, "(file)", fmt, ap);
    va_end(ap);
    return st;
}

/* path of a member: "parent.name", or "name" at the top. */
void cfg_member_path(char *out, size_t cap, const char *parent, const char *name) {
    assert(out && cap > 0 && name);
    if (parent && *parent) snprintf(out, cap, "%s.%s", parent, name);
    else snprintf(out, cap, "%s", name);
}

/* ---- files ---- */

/* Reads an opened file whole (NUL-terminated). */
static hs_status read_fd(const jctx *c, int fd, char **out, size_t *len) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return cfg_io_fail(c, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode)) return cfg_io_fail(c, "not a regular file");
    if (sb.st_size > MAX_FILE_BYTES)
        return cfg_io_fail(c, "is %lld bytes; the limit is %u", (long long)sb.st_size,
                           MAX_FILE_BYTES);
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) return cfg_io_fail(c, "out of memory");
    size_t k = 0;
    while (k < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + k, (size_t)sb.st_size - k);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            sodium_memzero(buf, k);
            free(buf);
            return cfg_io_fail(c, "cannot read: %s", strerror(e));
        }
        if (r == 0) break;
        k += (size_t)r;
    }
    buf[k] = '\0';
    *out = buf;
    *len = k;
    return HS_OK;
}

/* Line and column (from 1) of pos in text, for syntax errors. */
static void line_col(const char *text, const char *pos, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (const char *p = text; p < pos && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static hs_status parse_json(const jctx *c, const char *text, size_t len, cJSON **out) {
    const char *end = NULL;
    if (memchr(text, '\0', len))
        return cfg_bad(c, "(syntax)", "contains a NUL byte: not JSON text");
    /* len + 1: the terminating NUL is how cJSON knows nothing trails the document. */
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len + 1, &end, true);
    if (!doc) {
        int line, col;
        line_col(text, end ? end : text, &line, &col);
        return cfg_bad(c, "(syntax)", "not valid JSON at line %d, column %d", line, col);
    }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return cfg_bad(c, "(document)", "must be a JSON object");
    }
    *out = doc;
    return HS_OK;
}

/* Opens, reads and parses a JSON file; *fd_mode receives the file's permission bits. */
hs_status cfg_load_json(const jctx *c, const char *path, cJSON **out, mode_t *fd_mode) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cfg_io_fail(c, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fd_mode && fstat(fd, &sb) == 0) *fd_mode = sb.st_mode & 07777;
    char *text = NULL;
    size_t len = 0;
    hs_status st = read_fd(c, fd, &text, &len);
    close(fd);
    if (st != HS_OK) return st;
    st = parse_json(c, text, len, out);
    sodium_memzero(text, len); /* it may have held a secret key */
    free(text);
    return st;
}

/* ---- typed getters ---- */

/* Unknown or repeated members of obj are errors. allowed is NULL-terminated. */
hs_status cfg_check_members(const jctx *c, const cJSON *obj, const char *path,
                            const char *const *allowed) {
    assert(cJSON_IsObject(obj) && allowed); /* callers check the type first */
    char field[256];
    for (const cJSON *m = obj->child; m; m = m->next) {
        cfg_member_path(field, sizeof field, path, m->string);
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++) known = strcmp(allowed[i], m->string) == 0;
        if (!known) return cfg_bad(c, field, "unknown field");
        for (const cJSON *e = obj->child; e != m; e = e->next) {
            if (strcmp(e->string, m->string) == 0) return cfg_bad(c, field, "appears twice");
        }
    }
    return HS_OK;
}

/* An object member, or NULL when absent (a JSON null counts as absent). */
const cJSON *cfg_member(const cJSON *obj, const char *name) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    return m && !cJSON_IsNull(m) ? m : NULL;
}

hs_status cfg_need(const jctx *c, const cJSON *m, const char *field) {
    return m ? HS_OK : cfg_bad(c, field, "is required");
}

/* A non-negative integer in [min, max]: a JSON number (exact up to 2^53) or a string of
 * decimal digits (any u64). */
hs_status cfg_as_u64(const jctx *c, const cJSON *m, const char *field, uint64_t min,
                     uint64_t max, uint64_t *out) {
    const char *want = min >= 1 ? "a positive integer" : "a non-negative integer";
    uint64_t v;
    if (cJSON_IsNumber(m)) {
        double d = m->valuedouble;
        if (!isfinite(d) || d < 0 || d != floor(d)) return cfg_bad(c, field, "must be %s", want);
        if (d > MAX_EXACT_DOUBLE)
            return cfg_bad(c, field, "is too large for a JSON number; write it as a string");
        v = (uint64_t)d;
    } else if (cJSON_IsString(m)) {
        const char *s = m->valuestring;
        char *end;
        if (!*s || strspn(s, "0123456789") != strlen(s))
            return cfg_bad(c, field, "must be %s", want);
        errno = 0;
        unsigned long long u = strtoull(s, &end, 10);
        if (errno) return cfg_bad(c, field, "does not fit in 64 bits");
        v = u;
    } else {
        return cfg_bad(c, field, "must be %s", want);
    }
    if (v < min && min == 1) return cfg_bad(c, field, "must be a positive integer");
    if (v < min || v > max)
        return cfg_bad(c, field, "must be between %llu and %llu", (unsigned long long)min,
                       (unsigned long long)max);
    *out = v;
    return HS_OK;
}

/* Optional u64 member `name` of obj (under path), default kept when absent. */
hs_status cfg_opt_u64(const jctx *c, const cJSON *obj, const char *path, const char *name,
                      uint64_t min, uint64_t max, uint64_t *out) {
    const cJSON *m = cfg_member(obj, name);
    if (!m) return HS_OK;
    char field[256];
    cfg_member_path(field, sizeof field, path, name);
    return cfg_as_u64(c, m, field, min, max, out);
}

hs_status cfg_opt_u32(const jctx *c, const cJSON *obj, const char *path, const char *name,
                      uint32_t min, uint32_t max, uint32_t *out) {
    uint64_t v = *out;
    hs_status st = cfg_opt_u64(c, obj, path, name, min, max, &v);
    if (st == HS_OK) *out = (uint32_t)v;
    return st;
}

hs_status cfg_opt_bool(const jctx *c, const cJSON *obj, const char *path, const char *name,
                       bool *out) {
    const cJSON *m = cfg_member(obj, name);
    if (!m) return HS_OK;
    char field[256];
    cfg_member_path(field, sizeof field, path, name);
    if (!cJSON_IsBool(m)) return cfg_bad(c, field, "must be true or false");
    *out = cJSON_IsTrue(m);
    return HS_OK;
}

/* A string member: required or optional (then *out is left alone when absent). */
hs_status cfg_get_string(const jctx *c, const cJSON *obj, const char *path, const char *name,
                         bool required, const char **out) {
    const cJSON *m = cfg_member(obj, name);
    char field[256];
    cfg_member_path(field, sizeof field, path, name);
    if (!m) return required ? cfg_bad(c, field, "is required") : HS_OK;
    if (!cJSON_IsString(m)) return cfg_bad(c, field, "must be a string");
    if (!*m->valuestring) return cfg_bad(c, field, "must not be empty");
    *out = m->valuestring;
    return HS_OK;
}

/* An optional string member naming one of `names` (NULL-terminated); *out = its index. */
hs_status cfg_opt_choice(const jctx *c, const cJSON *obj, const char *path, const char *name,
                         const char *const *names, int *out) {
    const char *v = NULL;
    hs_status st = cfg_get_string(c, obj, path, name, false, &v);
    if (st != HS_OK || !v) return st;
    char allowed[256] = "";
    for (int i = 0; names[i]; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return HS_OK;
        }
        size_t l = strlen(allowed);
        snprintf(allowed + l, sizeof allowed - l, "%s\"%s\"", i ? " or " : "", names[i]);
    }
    char field[256];
    cfg_member_path(field, sizeof field, path, name);
    return cfg_bad(c, field, "is \"%s\" but must be %s", v, allowed);
}

hs_status cfg_opt_object(const jctx *c, const cJSON *obj, const char *name,
                         const cJSON **out) {
    const cJSON *m = cfg_member(obj, name);
    *out = NULL;
    if (!m) return HS_OK;
    if (!cJSON_IsObject(m)) return cfg_bad(c, name, "must be an object");
    *out = m;
    return HS_OK;
}

/* ---- keys and addresses ---- */

/* Decodes hex or Base64 (standard or URL-safe, padded or not) text of exactly `want` bytes. */
bool cfg_decode_bytes(const char *text, uint8_t *out, size_t want) {
    size_t len = strlen(text), bin = 0;
    const char *end = NULL;
    if (len == want * 2 &&
        sodium_hex2bin(out, want, text, len, NULL, &bin, &end) == 0 && bin == want &&
        end == text + len)
        return true;
    static const int variants[] = {sodium_base64_VARIANT_ORIGINAL,
                                   sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                   sodium_base64_VARIANT_URLSAFE,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        uint8_t tmp[128];
        if (want > sizeof tmp) return false;
        if (sodium_base642bin(tmp, sizeof tmp, text, len, NULL, &bin, &end, variants[i]) == 0 &&
            bin == want && end == text + len) {
            memcpy(out, tmp, want);
            sodium_memzero(tmp, sizeof tmp);
            return true;
        }
        sodium_memzero(tmp, sizeof tmp);
    }
    return false;
}

bool node_parse_key(const char *text, hs_key *out) {
    return cfg_decode_bytes(text, out->b, HS_KEY_LEN);
}

bool node_parse_address(const char *text, bool allow_port0) {
    size_t len = strlen(text);
    if (len == 0 || len >= HS_TRANSPORT_MAX_ADDR) return false;
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text) return false;
    /* An IPv6 host must be bracketed, so its colons are not taken for the port's. */
    if (text[0] == '[' && colon[-1] != ']') return false;
    if (text[0] != '[' && memchr(text, ':', (size_t)(colon - text))) return false;
    const char *port = colon + 1;
    if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port)) return false;
    long p = strtol(port, NULL, 10);
    if (p > 65535 || (p == 0 && !allow_port0)) return false;
    for (const char *s = text; s < colon; s++) {
        if ((unsigned char)*s <= ' ' || *s == '/') return false;
    }
    return true;
}

hs_status cfg_get_key(const jctx *c, const cJSON *obj, const char *path, const char *name,
                      hs_key *out) {
    char field[256];
    cfg_member_path(field, sizeof field, path, name);
    const char *s = NULL;
    hs_status st = cfg_get_string(c, obj, path, name, true, &s);
    if (st != HS_OK) return st;
    if (!node_parse_key(s, out))
        return cfg_bad(c, field,
                       "must be a 32-byte Ed25519 public key in hex (64 digits) or Base64");
    if (!crypto_core_ed25519_is_valid_point(out->b))
        return cfg_bad(c, field, "is not a valid Ed25519 public key");
    return HS_OK;
}
