/* server/config/node_config.c - see node_config.h.
 *
 * Parsing is table-free and explicit: each object is checked for unknown and repeated fields
 * first, then each field is read by a typed getter that reports "<file>: <field>: <problem>".
 * The field path (e.g. "validators[2].power") is built as we descend.
 */
#include "config/node_config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "hotstuff/block_tree.h"
#include "hotstuff/crypto.h"
#include "hotstuff/replica.h"

/* No file of ours is anywhere near this; it bounds what a bad path can make us read. */
#define MAX_FILE_BYTES (16u << 20)
/* Integers in JSON numbers are exact up to 2^53; larger ones must be given as strings. */
#define MAX_EXACT_DOUBLE 9007199254740992.0

/* ---- defaults (documented in server/README.md) ---- */
#define DEF_LISTEN "0.0.0.0:26600"
#define DEF_KEY_FILE "key.json"
#define DEF_GENESIS_FILE "genesis.json"
#define DEF_DATA_DIR "data"
#define DEF_REQUEST_LIMIT 10
#define DEF_ADVERTISE_MS 5000
#define DEF_RESPONSE_TIMEOUT_MS 3000
#define DEF_BLACKLIST_MS 10000
#define DEF_TRIGGER_VIEW_DIFF 2
#define DEF_TRIGGER_TIMEOUT_MS 30000
#define DEF_BUFFER_BYTES (1u << 20)
#define DEF_EPOCH_LENGTH 50
#define DEF_MAX_VIEW_MS 2000
#define DEF_TRANSPORT_INBOX 8192
#define DEF_TRANSPORT_OUTBOX 1024
#define DEF_REPLICA_INBOX 8192
#define DEF_EVENT_QUEUE 65536
#define DEF_SYNC_QUEUE 256
/* The admin service: the same numbers as hs_admin_config_defaults (server/admin/admin.c). */
#define DEF_ADMIN_RECV (1u << 20)
#define DEF_ADMIN_SEND (64u << 20)
#define DEF_ADMIN_CALLS 256
#define DEF_ADMIN_STREAMS 100
#define DEF_ADMIN_SUBSCRIBERS 64
#define DEF_ADMIN_SUBSCRIBER_QUEUE 1024
#define DEF_ADMIN_READY_MS 10000
#define ONE_DAY_MS (24ull * 60 * 60 * 1000)

hs_log_level node_log_level_default(void) { return HS_LOG_INFO; }

/* ---- error reporting ---- */

typedef struct jctx {
    const char *file; /* as errors name it */
    char *err;
    size_t errlen;
} jctx;

static hs_status failv(const jctx *c, hs_status st, const char *field, const char *fmt,
                       va_list ap) {
    if (!c->err || !c->errlen) return st;
    int n = snprintf(c->err, c->errlen, "%s: %s: ", c->file, field);
    if (n >= 0 && (size_t)n < c->errlen) vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    return st;
}

static hs_status bad(const jctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hs_status bad(const jctx *c, const char *field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    hs_status st = failv(c, HS_ERR_INVALID, field, fmt, ap);
    va_end(ap);
    return st;
}

static hs_status io_fail(const jctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static hs_status io_fail(const jctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    hs_status st = failv(c, HS_ERR_IO, "(file)", fmt, ap);
    va_end(ap);
    return st;
}

/* path of a member: "parent.name", or "name" at the top. */
static void member_path(char *out, size_t cap, const char *parent, const char *name) {
    if (parent && *parent) snprintf(out, cap, "%s.%s", parent, name);
    else snprintf(out, cap, "%s", name);
}

/* ---- files ---- */

/* Reads an opened file whole (NUL-terminated). */
static hs_status read_fd(const jctx *c, int fd, char **out, size_t *len) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return io_fail(c, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode)) return io_fail(c, "not a regular file");
    if (sb.st_size > MAX_FILE_BYTES)
        return io_fail(c, "is %lld bytes; the limit is %u", (long long)sb.st_size,
                       MAX_FILE_BYTES);
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) return io_fail(c, "out of memory");
    size_t k = 0;
    while (k < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + k, (size_t)sb.st_size - k);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            sodium_memzero(buf, k);
            free(buf);
            return io_fail(c, "cannot read: %s", strerror(e));
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
    if (memchr(text, '\0', len)) return bad(c, "(syntax)", "contains a NUL byte: not JSON text");
    /* len + 1: the terminating NUL is how cJSON knows nothing trails the document. */
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len + 1, &end, true);
    if (!doc) {
        int line, col;
        line_col(text, end ? end : text, &line, &col);
        return bad(c, "(syntax)", "not valid JSON at line %d, column %d", line, col);
    }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return bad(c, "(document)", "must be a JSON object");
    }
    *out = doc;
    return HS_OK;
}

/* Opens, reads and parses a JSON file; *fd_mode receives the file's permission bits. */
static hs_status load_json(const jctx *c, const char *path, cJSON **out, mode_t *fd_mode) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_fail(c, "cannot open: %s", strerror(errno));
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
static hs_status check_members(const jctx *c, const cJSON *obj, const char *path,
                               const char *const *allowed) {
    char field[256];
    for (const cJSON *m = obj->child; m; m = m->next) {
        member_path(field, sizeof field, path, m->string);
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++) known = strcmp(allowed[i], m->string) == 0;
        if (!known) return bad(c, field, "unknown field");
        for (const cJSON *e = obj->child; e != m; e = e->next) {
            if (strcmp(e->string, m->string) == 0) return bad(c, field, "appears twice");
        }
    }
    return HS_OK;
}

/* An object member, or NULL when absent (a JSON null counts as absent). */
static const cJSON *member(const cJSON *obj, const char *name) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    return m && !cJSON_IsNull(m) ? m : NULL;
}

static hs_status need(const jctx *c, const cJSON *m, const char *field) {
    return m ? HS_OK : bad(c, field, "is required");
}

/* A non-negative integer in [min, max]: a JSON number (exact up to 2^53) or a string of
 * decimal digits (any u64). */
static hs_status as_u64(const jctx *c, const cJSON *m, const char *field, uint64_t min,
                        uint64_t max, uint64_t *out) {
    const char *want = min >= 1 ? "a positive integer" : "a non-negative integer";
    uint64_t v;
    if (cJSON_IsNumber(m)) {
        double d = m->valuedouble;
        if (!isfinite(d) || d < 0 || d != floor(d)) return bad(c, field, "must be %s", want);
        if (d > MAX_EXACT_DOUBLE)
            return bad(c, field, "is too large for a JSON number; write it as a string");
        v = (uint64_t)d;
    } else if (cJSON_IsString(m)) {
        const char *s = m->valuestring;
        char *end;
        if (!*s || strspn(s, "0123456789") != strlen(s)) return bad(c, field, "must be %s", want);
        errno = 0;
        unsigned long long u = strtoull(s, &end, 10);
        if (errno) return bad(c, field, "does not fit in 64 bits");
        v = u;
    } else {
        return bad(c, field, "must be %s", want);
    }
    if (v < min && min == 1) return bad(c, field, "must be a positive integer");
    if (v < min || v > max)
        return bad(c, field, "must be between %llu and %llu", (unsigned long long)min,
                   (unsigned long long)max);
    *out = v;
    return HS_OK;
}

/* Optional u64 member `name` of obj (under path), default kept when absent. */
static hs_status opt_u64(const jctx *c, const cJSON *obj, const char *path, const char *name,
                         uint64_t min, uint64_t max, uint64_t *out) {
    const cJSON *m = member(obj, name);
    if (!m) return HS_OK;
    char field[256];
    member_path(field, sizeof field, path, name);
    return as_u64(c, m, field, min, max, out);
}

static hs_status opt_u32(const jctx *c, const cJSON *obj, const char *path, const char *name,
                         uint32_t min, uint32_t max, uint32_t *out) {
    uint64_t v = *out;
    hs_status st = opt_u64(c, obj, path, name, min, max, &v);
    if (st == HS_OK) *out = (uint32_t)v;
    return st;
}

static hs_status opt_bool(const jctx *c, const cJSON *obj, const char *path, const char *name,
                          bool *out) {
    const cJSON *m = member(obj, name);
    if (!m) return HS_OK;
    char field[256];
    member_path(field, sizeof field, path, name);
    if (!cJSON_IsBool(m)) return bad(c, field, "must be true or false");
    *out = cJSON_IsTrue(m);
    return HS_OK;
}

/* A string member: required or optional (then *out is left alone when absent). */
static hs_status get_string(const jctx *c, const cJSON *obj, const char *path, const char *name,
                            bool required, const char **out) {
    const cJSON *m = member(obj, name);
    char field[256];
    member_path(field, sizeof field, path, name);
    if (!m) return required ? bad(c, field, "is required") : HS_OK;
    if (!cJSON_IsString(m)) return bad(c, field, "must be a string");
    if (!*m->valuestring) return bad(c, field, "must not be empty");
    *out = m->valuestring;
    return HS_OK;
}

/* An optional string member naming one of `names` (NULL-terminated); *out = its index. */
static hs_status opt_choice(const jctx *c, const cJSON *obj, const char *path, const char *name,
                            const char *const *names, int *out) {
    const char *v = NULL;
    hs_status st = get_string(c, obj, path, name, false, &v);
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
    member_path(field, sizeof field, path, name);
    return bad(c, field, "is \"%s\" but must be %s", v, allowed);
}

static hs_status opt_object(const jctx *c, const cJSON *obj, const char *name,
                            const cJSON **out) {
    const cJSON *m = member(obj, name);
    *out = NULL;
    if (!m) return HS_OK;
    if (!cJSON_IsObject(m)) return bad(c, name, "must be an object");
    *out = m;
    return HS_OK;
}

/* ---- keys and addresses ---- */

/* Decodes hex or Base64 (standard or URL-safe, padded or not) text of exactly `want` bytes. */
static bool decode_bytes(const char *text, uint8_t *out, size_t want) {
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
    return decode_bytes(text, out->b, HS_KEY_LEN);
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

static hs_status get_key(const jctx *c, const cJSON *obj, const char *path, const char *name,
                         hs_key *out) {
    char field[256];
    member_path(field, sizeof field, path, name);
    const char *s = NULL;
    hs_status st = get_string(c, obj, path, name, true, &s);
    if (st != HS_OK) return st;
    if (!node_parse_key(s, out))
        return bad(c, field, "must be a 32-byte Ed25519 public key in hex (64 digits) or Base64");
    if (!crypto_core_ed25519_is_valid_point(out->b))
        return bad(c, field, "is not a valid Ed25519 public key");
    return HS_OK;
}

/* ---- key.json ---- */

static const char *const key_fields[] = {"type", "public_key", "secret_key", NULL};

static hs_status key_from_json(const jctx *c, const cJSON *doc, hs_keypair *out) {
    hs_status st = check_members(c, doc, "", key_fields);
    const char *type = NULL, *pub = NULL, *sec = NULL;
    if (st == HS_OK) st = get_string(c, doc, "", "type", false, &type);
    if (st == HS_OK && type && strcmp(type, "ed25519") != 0)
        st = bad(c, "type", "must be \"ed25519\"");
    if (st == HS_OK) st = get_string(c, doc, "", "public_key", true, &pub);
    if (st == HS_OK) st = get_string(c, doc, "", "secret_key", true, &sec);
    if (st != HS_OK) return st;
    hs_key pk;
    if (!node_parse_key(pub, &pk))
        return bad(c, "public_key", "must be 32 bytes in hex (64 digits) or Base64");
    /* The secret: a 32-byte seed, or libsodium's 64-byte seed || public key. */
    uint8_t secret[64];
    hs_keypair kp;
    bool ok = decode_bytes(sec, secret, 64) || decode_bytes(sec, secret, 32);
    if (!ok)
        return bad(c, "secret_key", "must be a 32-byte seed or 64-byte secret key in hex or "
                                    "Base64 (value not shown)");
    st = hs_keypair_from_seed(secret, &kp);
    sodium_memzero(secret, sizeof secret);
    if (st != HS_OK) return bad(c, "secret_key", "cannot derive a key pair");
    if (memcmp(kp.public_key.b, pk.b, HS_KEY_LEN) != 0) {
        sodium_memzero(&kp, sizeof kp);
        return bad(c, "public_key", "does not match secret_key");
    }
    *out = kp;
    sodium_memzero(&kp, sizeof kp);
    return HS_OK;
}

hs_status node_key_load(const char *path, hs_keypair *out, char *err, size_t errlen) {
    jctx c = {path, err, errlen};
    memset(out, 0, sizeof *out);
    if (hs_crypto_init() != HS_OK) return io_fail(&c, "cannot initialise libsodium");
    cJSON *doc = NULL;
    mode_t mode = 0;
    hs_status st = load_json(&c, path, &doc, &mode);
    if (st != HS_OK) return st;
    /* Checked after parsing on purpose: a file that is not even JSON gets that message. But
     * before looking at the key: a readable secret is refused whatever it holds. */
    if (mode & 0177)
        st = bad(&c, "(file mode)",
                 "is %04o; a key file must be 0600 or stricter (run: chmod 600 %s)",
                 (unsigned)mode, path);
    else
        st = key_from_json(&c, doc, out);
    /* cJSON copied the secret's text into the tree: wipe it before freeing. */
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "secret_key");
    if (cJSON_IsString(s)) sodium_memzero(s->valuestring, strlen(s->valuestring));
    cJSON_Delete(doc);
    return st;
}

hs_status node_key_write(const char *path, const hs_keypair *kp, char *err, size_t errlen) {
    jctx c = {path, err, errlen};
    char pub[2 * HS_KEY_LEN + 1], sec[2 * HS_SECRET_LEN + 1], text[512];
    sodium_bin2hex(pub, sizeof pub, kp->public_key.b, HS_KEY_LEN);
    sodium_bin2hex(sec, sizeof sec, kp->secret, HS_SECRET_LEN);
    int n = snprintf(text, sizeof text,
                     "{\n  \"type\": \"ed25519\",\n  \"public_key\": \"%s\",\n"
                     "  \"secret_key\": \"%s\"\n}\n",
                     pub, sec);
    sodium_memzero(sec, sizeof sec);
    hs_status st = HS_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = errno == EEXIST ? io_fail(&c, "already exists; refusing to overwrite a key")
                             : io_fail(&c, "cannot create: %s", strerror(errno));
    } else {
        size_t k = 0;
        while (st == HS_OK && k < (size_t)n) {
            ssize_t w = write(fd, text + k, (size_t)n - k);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) st = io_fail(&c, "cannot write: %s", strerror(errno));
            else k += (size_t)w;
        }
        if (st == HS_OK && fsync(fd) != 0) st = io_fail(&c, "cannot sync: %s", strerror(errno));
        close(fd);
        if (st != HS_OK) unlink(path);
    }
    sodium_memzero(text, sizeof text);
    return st;
}

/* ---- genesis.json ---- */

static const char *const genesis_fields[] = {"chain_id", "validators", "admin_key", "app_state",
                                             NULL};
static const char *const validator_fields[] = {"key", "power", NULL};

void node_genesis_free(node_genesis *g) {
    hs_vs_free(&g->validators);
    hs_app_updates_free(&g->app_state);
    memset(g, 0, sizeof *g);
}

static hs_status genesis_validators(const jctx *c, const cJSON *doc, node_genesis *g) {
    const cJSON *vs = member(doc, "validators");
    hs_status st = need(c, vs, "validators");
    if (st != HS_OK) return st;
    if (!cJSON_IsArray(vs)) return bad(c, "validators", "must be an array");
    int n = cJSON_GetArraySize(vs);
    uint32_t max = hs_limits_default().max_validators;
    if (n < 1) return bad(c, "validators", "must list at least one validator");
    if ((uint32_t)n > max) return bad(c, "validators", "lists %d; the limit is %u", n, max);
    hs_u128 total = 0;
    int i = 0;
    for (const cJSON *v = vs->child; v; v = v->next, i++) {
        char path[64], field[96];
        snprintf(path, sizeof path, "validators[%d]", i);
        if (!cJSON_IsObject(v)) return bad(c, path, "must be an object {\"key\", \"power\"}");
        st = check_members(c, v, path, validator_fields);
        hs_key key;
        uint64_t power = 0;
        if (st == HS_OK) st = get_key(c, v, path, "key", &key);
        member_path(field, sizeof field, path, "power");
        if (st == HS_OK) st = need(c, member(v, "power"), field);
        if (st == HS_OK) st = as_u64(c, member(v, "power"), field, 1, UINT64_MAX, &power);
        if (st != HS_OK) return st;
        if (hs_vs_contains(&g->validators, &key)) {
            member_path(field, sizeof field, path, "key");
            return bad(c, field, "appears twice in validators");
        }
        if (hs_vs_put(&g->validators, &key, power) != HS_OK) return bad(c, path, "out of memory");
        total += power;
    }
    /* Leader selection takes the total as a u64 (spec §4.3). */
    if (total >= (hs_u128)1 << 63) return bad(c, "validators", "total power must be below 2^63");
    return HS_OK;
}

static hs_status genesis_app_state(const jctx *c, const cJSON *doc, node_genesis *g) {
    const cJSON *as = member(doc, "app_state");
    if (!as) return HS_OK;
    if (!cJSON_IsObject(as))
        return bad(c, "app_state", "must be an object of string keys to string values");
    for (const cJSON *m = as->child; m; m = m->next) {
        char field[300];
        snprintf(field, sizeof field, "app_state[\"%.200s\"]", m->string);
        if (!*m->string) return bad(c, "app_state", "a key must not be empty");
        if (!cJSON_IsString(m)) return bad(c, field, "must be a string");
        for (const cJSON *e = as->child; e != m; e = e->next) {
            if (strcmp(e->string, m->string) == 0) return bad(c, field, "appears twice");
        }
        if (hs_app_updates_insert(&g->app_state, (const uint8_t *)m->string, strlen(m->string),
                                  (const uint8_t *)m->valuestring,
                                  strlen(m->valuestring)) != HS_OK)
            return bad(c, field, "out of memory");
    }
    return HS_OK;
}

static hs_status genesis_from_json(const jctx *c, const cJSON *doc, node_genesis *g) {
    hs_status st = check_members(c, doc, "", genesis_fields);
    const cJSON *m = member(doc, "chain_id");
    if (st == HS_OK) st = need(c, m, "chain_id");
    if (st == HS_OK) st = as_u64(c, m, "chain_id", 0, UINT64_MAX, &g->chain_id);
    if (st == HS_OK) st = genesis_validators(c, doc, g);
    if (st != HS_OK) return st;
    /* admin_key is required, but may be null: no one can change the validator set. */
    if (!cJSON_GetObjectItemCaseSensitive(doc, "admin_key"))
        return bad(c, "admin_key", "is required (use null to disable validator-set updates)");
    if (member(doc, "admin_key")) {
        st = get_key(c, doc, "", "admin_key", &g->admin_key);
        g->has_admin = st == HS_OK;
    }
    if (st == HS_OK) st = genesis_app_state(c, doc, g);
    return st;
}

static void hash_u64(crypto_hash_sha256_state *s, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    crypto_hash_sha256_update(s, b, sizeof b);
}

static void hash_bytes(crypto_hash_sha256_state *s, const hs_bytes *b) {
    hash_u64(s, b->len);
    crypto_hash_sha256_update(s, b->p, b->len);
}

void node_genesis_hash(const node_genesis *g, hs_hash *out) {
    static const char domain[] = "hotstuffd genesis v1";
    crypto_hash_sha256_state s;
    crypto_hash_sha256_init(&s);
    crypto_hash_sha256_update(&s, (const uint8_t *)domain, sizeof domain);
    hash_u64(&s, g->chain_id);
    hash_u64(&s, g->validators.n); /* sorted by key: one encoding per set */
    for (uint32_t i = 0; i < g->validators.n; i++) {
        crypto_hash_sha256_update(&s, g->validators.v[i].key.b, HS_KEY_LEN);
        hash_u64(&s, g->validators.v[i].power);
    }
    uint8_t admin = g->has_admin;
    crypto_hash_sha256_update(&s, &admin, 1);
    if (g->has_admin) crypto_hash_sha256_update(&s, g->admin_key.b, HS_KEY_LEN);
    hash_u64(&s, g->app_state.n_inserts); /* sorted by key */
    for (uint32_t i = 0; i < g->app_state.n_inserts; i++) {
        hash_bytes(&s, &g->app_state.insert_keys[i]);
        hash_bytes(&s, &g->app_state.insert_values[i]);
    }
    crypto_hash_sha256_final(&s, out->b);
}

hs_status node_genesis_load(const char *path, node_genesis *out, char *err, size_t errlen) {
    jctx c = {path, err, errlen};
    memset(out, 0, sizeof *out);
    if (hs_crypto_init() != HS_OK) return io_fail(&c, "cannot initialise libsodium");
    cJSON *doc = NULL;
    hs_status st = load_json(&c, path, &doc, NULL);
    if (st != HS_OK) return st;
    st = genesis_from_json(&c, doc, out);
    cJSON_Delete(doc);
    if (st != HS_OK) {
        node_genesis_free(out);
        return st;
    }
    node_genesis_hash(out, &out->hash);
    return HS_OK;
}

/* ---- config.json ---- */

static const char *const config_fields[] = {
    "listen", "key_file", "genesis_file", "data_dir", "log_level", "sync_writes", "peers",
    "consensus", "limits", "network", "app", "admin", NULL};
static const char *const listen_fields[] = {"replica", "admin", NULL};
static const char *const peer_fields[] = {"key", "address", NULL};
static const char *const consensus_fields[] = {
    "block_sync_request_limit", "block_sync_server_advertise_time_ms",
    "block_sync_response_timeout_ms", "block_sync_blacklist_expiry_time_ms",
    "block_sync_trigger_min_view_difference", "block_sync_trigger_timeout_ms",
    "progress_msg_buffer_capacity", "epoch_length", "max_view_time_ms", "log_events",
    "leader_selection", "vote_routing", "view_deadlines", NULL};
/* The liveness choices (docs/liveness.md), indexed by their hs_config enum values. */
const char *const node_leader_selection_names[] = {"round_robin", "active", NULL};
const char *const node_vote_routing_names[] = {"next_leader", "all", NULL};
const char *const node_view_deadlines_names[] = {"epoch", "entry", NULL};
static const char *const limits_fields[] = {
    "max_message_bytes", "transport_inbox_capacity", "transport_outbox_capacity",
    "replica_inbox_capacity", "event_queue_capacity", "sync_request_queue_capacity",
    "mempool_max_txs", "mempool_max_bytes", "max_tx_bytes", "max_key_bytes", "max_block_txs",
    "max_block_bytes", "max_validators", NULL};
static const char *const app_fields[] = {"empty_block_wait_ms", NULL};
static const char *const admin_fields[] = {
    "max_recv_message_bytes", "max_send_message_bytes", "max_calls", "max_concurrent_streams",
    "max_subscribers", "subscriber_queue", "ready_max_commit_age_ms", NULL};
static const char *const network_fields[] = {"reconnect_initial_ms", "reconnect_max_ms",
                                             "keepalive_time_ms", "handshake_timeout_ms", NULL};

/* base_dir/rel, or rel itself when absolute. malloc'd. */
static char *resolve(const char *base_dir, const char *rel) {
    size_t need = strlen(base_dir) + strlen(rel) + 2;
    char *p = malloc(need);
    if (!p) return NULL;
    if (rel[0] == '/') snprintf(p, need, "%s", rel);
    else snprintf(p, need, "%s/%s", base_dir, rel);
    return p;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

void node_config_defaults(node_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->listen_replica, sizeof c->listen_replica, "%s", DEF_LISTEN);
    c->log_level = node_log_level_default();
    c->sync_writes = true;
    hs_config *k = &c->consensus;
    k->block_sync_request_limit = DEF_REQUEST_LIMIT;
    k->block_sync_server_advertise_time_ms = DEF_ADVERTISE_MS;
    k->block_sync_response_timeout_ms = DEF_RESPONSE_TIMEOUT_MS;
    k->block_sync_blacklist_expiry_time_ms = DEF_BLACKLIST_MS;
    k->block_sync_trigger_min_view_difference = DEF_TRIGGER_VIEW_DIFF;
    k->block_sync_trigger_timeout_ms = DEF_TRIGGER_TIMEOUT_MS;
    k->progress_msg_buffer_capacity = DEF_BUFFER_BYTES;
    k->epoch_length = DEF_EPOCH_LENGTH;
    k->max_view_time_ms = DEF_MAX_VIEW_MS;
    k->log_events = false;
    hs_config_default_liveness(k);
    k->inbox_capacity = DEF_REPLICA_INBOX;
    k->event_queue_capacity = DEF_EVENT_QUEUE;
    k->sync_request_queue_capacity = DEF_SYNC_QUEUE;
    c->app = kvapp_config_default();
    c->transport_inbox_capacity = DEF_TRANSPORT_INBOX;
    c->transport_outbox_capacity = DEF_TRANSPORT_OUTBOX;
    c->admin.max_recv_message_bytes = DEF_ADMIN_RECV;
    c->admin.max_send_message_bytes = DEF_ADMIN_SEND;
    c->admin.max_calls = DEF_ADMIN_CALLS;
    c->admin.max_concurrent_streams = DEF_ADMIN_STREAMS;
    c->admin.max_subscribers = DEF_ADMIN_SUBSCRIBERS;
    c->admin.subscriber_queue = DEF_ADMIN_SUBSCRIBER_QUEUE;
    c->admin.ready_max_commit_age_ms = DEF_ADMIN_READY_MS;
}

static hs_status config_listen(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *l;
    hs_status st = opt_object(c, doc, "listen", &l);
    if (st != HS_OK || !l) return st;
    st = check_members(c, l, "listen", listen_fields);
    const char *s = NULL;
    if (st == HS_OK) st = get_string(c, l, "listen", "replica", false, &s);
    if (st == HS_OK && s) {
        if (!node_parse_address(s, true))
            return bad(c, "listen.replica", "must be \"host:port\" (e.g. \"0.0.0.0:26600\")");
        snprintf(out->listen_replica, sizeof out->listen_replica, "%s", s);
    }
    s = NULL;
    if (st == HS_OK) st = get_string(c, l, "listen", "admin", false, &s);
    if (st == HS_OK && s) {
        if (!node_parse_address(s, true))
            return bad(c, "listen.admin", "must be \"host:port\" (e.g. \"127.0.0.1:26700\")");
        snprintf(out->listen_admin, sizeof out->listen_admin, "%s", s);
    }
    return st;
}

static hs_status config_peers(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *ps = member(doc, "peers");
    if (!ps) return HS_OK;
    if (!cJSON_IsArray(ps)) return bad(c, "peers", "must be an array of {\"key\", \"address\"}");
    int n = cJSON_GetArraySize(ps);
    if (n == 0) return HS_OK;
    out->peers = calloc((size_t)n, sizeof *out->peers);
    if (!out->peers) return bad(c, "peers", "out of memory");
    int i = 0;
    for (const cJSON *p = ps->child; p; p = p->next, i++) {
        char path[64], field[96];
        snprintf(path, sizeof path, "peers[%d]", i);
        if (!cJSON_IsObject(p)) return bad(c, path, "must be an object {\"key\", \"address\"}");
        hs_transport_peer *peer = &out->peers[i];
        const char *addr = NULL;
        hs_status st = check_members(c, p, path, peer_fields);
        if (st == HS_OK) st = get_key(c, p, path, "key", &peer->key);
        if (st == HS_OK) st = get_string(c, p, path, "address", true, &addr);
        if (st != HS_OK) return st;
        member_path(field, sizeof field, path, "address");
        if (!node_parse_address(addr, false))
            return bad(c, field, "must be \"host:port\" with a port from 1 to 65535");
        snprintf(peer->address, sizeof peer->address, "%s", addr);
        for (int j = 0; j < i; j++) {
            if (memcmp(out->peers[j].key.b, peer->key.b, HS_KEY_LEN) == 0) {
                member_path(field, sizeof field, path, "key");
                return bad(c, field, "is also the key of peers[%d]", j);
            }
        }
        out->n_peers++;
    }
    return HS_OK;
}

static hs_status config_consensus(const jctx *c, const cJSON *doc, hs_config *k) {
    const cJSON *o;
    const char *p = "consensus";
    hs_status st = opt_object(c, doc, p, &o);
    if (st != HS_OK || !o) return st;
    st = check_members(c, o, p, consensus_fields);
    if (st == HS_OK)
        st = opt_u32(c, o, p, "block_sync_request_limit", 1, 1024, &k->block_sync_request_limit);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "block_sync_server_advertise_time_ms", 1, ONE_DAY_MS,
                     &k->block_sync_server_advertise_time_ms);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "block_sync_response_timeout_ms", 1, ONE_DAY_MS,
                     &k->block_sync_response_timeout_ms);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "block_sync_blacklist_expiry_time_ms", 0, ONE_DAY_MS,
                     &k->block_sync_blacklist_expiry_time_ms);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "block_sync_trigger_min_view_difference", 0, UINT64_MAX,
                     &k->block_sync_trigger_min_view_difference);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "block_sync_trigger_timeout_ms", 1, ONE_DAY_MS,
                     &k->block_sync_trigger_timeout_ms);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "progress_msg_buffer_capacity", 0, 1ull << 34,
                     &k->progress_msg_buffer_capacity);
    if (st == HS_OK) st = opt_u32(c, o, p, "epoch_length", 1, UINT32_MAX, &k->epoch_length);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "max_view_time_ms", 1, ONE_DAY_MS, &k->max_view_time_ms);
    if (st == HS_OK) st = opt_bool(c, o, p, "log_events", &k->log_events);
    int v = (int)k->leader_selection;
    if (st == HS_OK) st = opt_choice(c, o, p, "leader_selection", node_leader_selection_names, &v);
    k->leader_selection = (hs_leader_selection)v;
    v = (int)k->vote_routing;
    if (st == HS_OK) st = opt_choice(c, o, p, "vote_routing", node_vote_routing_names, &v);
    k->vote_routing = (hs_vote_routing)v;
    v = (int)k->view_deadlines;
    if (st == HS_OK) st = opt_choice(c, o, p, "view_deadlines", node_view_deadlines_names, &v);
    k->view_deadlines = (hs_view_deadlines)v;
    return st;
}

static hs_status config_limits(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *o;
    const char *p = "limits";
    hs_status st = opt_object(c, doc, p, &o);
    if (st != HS_OK || !o) return st;
    kvapp_config *a = &out->app;
    hs_config *k = &out->consensus;
    st = check_members(c, o, p, limits_fields);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "max_message_bytes", 1, 1ull << 31, &out->max_message_bytes);
    if (st == HS_OK)
        st = opt_u32(c, o, p, "transport_inbox_capacity", 1, 1u << 24,
                     &out->transport_inbox_capacity);
    if (st == HS_OK)
        st = opt_u32(c, o, p, "transport_outbox_capacity", 1, 1u << 24,
                     &out->transport_outbox_capacity);
    if (st == HS_OK)
        st = opt_u32(c, o, p, "replica_inbox_capacity", 1, 1u << 24, &k->inbox_capacity);
    if (st == HS_OK)
        st = opt_u32(c, o, p, "event_queue_capacity", 1, 1u << 24, &k->event_queue_capacity);
    if (st == HS_OK)
        st = opt_u32(c, o, p, "sync_request_queue_capacity", 1, 1u << 24,
                     &k->sync_request_queue_capacity);
    if (st == HS_OK) st = opt_u32(c, o, p, "mempool_max_txs", 1, 1u << 24, &a->mempool_max_txs);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "mempool_max_bytes", 1, 1ull << 36, &a->mempool_max_bytes);
    if (st == HS_OK) st = opt_u32(c, o, p, "max_tx_bytes", 16, 16u << 20, &a->max_tx_bytes);
    if (st == HS_OK) st = opt_u32(c, o, p, "max_key_bytes", 1, 16u << 20, &a->max_key_bytes);
    if (st == HS_OK) st = opt_u32(c, o, p, "max_block_txs", 1, 1u << 20, &a->max_block_txs);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "max_block_bytes", 16, 256u << 20, &a->max_block_bytes);
    if (st == HS_OK) st = opt_u32(c, o, p, "max_validators", 1, 65536, &a->max_validators);
    if (st != HS_OK) return st;
    char why[200];
    if (kvapp_config_check(a, why, sizeof why) != HS_OK) {
        char field[64];
        const char *colon = strchr(why, ':');
        snprintf(field, sizeof field, "limits.%.*s", (int)(colon ? colon - why : 0), why);
        return bad(c, field, "%s", colon ? colon + 2 : why);
    }
    return HS_OK;
}

static hs_status config_network(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *o;
    const char *p = "network";
    hs_status st = opt_object(c, doc, p, &o);
    if (st != HS_OK || !o) return st;
    st = check_members(c, o, p, network_fields);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "reconnect_initial_ms", 1, ONE_DAY_MS, &out->reconnect_initial_ms);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "reconnect_max_ms", 1, ONE_DAY_MS, &out->reconnect_max_ms);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "keepalive_time_ms", 1, ONE_DAY_MS, &out->keepalive_time_ms);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "handshake_timeout_ms", 1, ONE_DAY_MS,
                     &out->handshake_timeout_ms);
    if (st == HS_OK && out->reconnect_initial_ms && out->reconnect_max_ms &&
        out->reconnect_max_ms < out->reconnect_initial_ms)
        st = bad(c, "network.reconnect_max_ms", "must be at least reconnect_initial_ms");
    return st;
}

static hs_status config_app(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *o;
    hs_status st = opt_object(c, doc, "app", &o);
    if (st != HS_OK || !o) return st;
    st = check_members(c, o, "app", app_fields);
    if (st == HS_OK)
        st = opt_u64(c, o, "app", "empty_block_wait_ms", 0, ONE_DAY_MS,
                     &out->app.empty_block_wait_ms);
    return st;
}

/* Bounds: gRPC takes message sizes as int; the rest keep one misconfigured node from holding
 * unbounded memory for operators' calls. */
static hs_status config_admin(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *o;
    const char *p = "admin";
    hs_status st = opt_object(c, doc, p, &o);
    if (st != HS_OK || !o) return st;
    st = check_members(c, o, p, admin_fields);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "max_recv_message_bytes", 1024, 1ull << 30,
                     &out->admin.max_recv_message_bytes);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "max_send_message_bytes", 1024, 1ull << 30,
                     &out->admin.max_send_message_bytes);
    if (st == HS_OK) st = opt_u32(c, o, p, "max_calls", 1, 65536, &out->admin.max_calls);
    if (st == HS_OK)
        st = opt_u32(c, o, p, "max_concurrent_streams", 1, 65536,
                     &out->admin.max_concurrent_streams);
    if (st == HS_OK)
        st = opt_u32(c, o, p, "max_subscribers", 1, 65536, &out->admin.max_subscribers);
    if (st == HS_OK)
        st = opt_u32(c, o, p, "subscriber_queue", 1, 1u << 20, &out->admin.subscriber_queue);
    if (st == HS_OK)
        st = opt_u64(c, o, p, "ready_max_commit_age_ms", 1, ONE_DAY_MS,
                     &out->admin.ready_max_commit_age_ms);
    return st;
}

static hs_status config_log_level(const jctx *c, const cJSON *doc, node_config *out) {
    const char *s = NULL;
    hs_status st = get_string(c, doc, "", "log_level", false, &s);
    if (st != HS_OK || !s) return st;
    static const struct { const char *name; hs_log_level level; } levels[] = {
        {"debug", HS_LOG_DEBUG}, {"info", HS_LOG_INFO}, {"warn", HS_LOG_WARN},
        {"error", HS_LOG_ERROR}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcmp(s, levels[i].name) == 0) {
            out->log_level = levels[i].level;
            return HS_OK;
        }
    }
    return bad(c, "log_level", "must be one of \"debug\", \"info\", \"warn\", \"error\"");
}

/* The paths config.json names, resolved against its directory. */
static hs_status config_paths(const jctx *c, const cJSON *doc, node_config *out) {
    const char *key = DEF_KEY_FILE, *genesis = DEF_GENESIS_FILE, *data = DEF_DATA_DIR;
    hs_status st = get_string(c, doc, "", "key_file", false, &key);
    if (st == HS_OK) st = get_string(c, doc, "", "genesis_file", false, &genesis);
    if (st == HS_OK) st = get_string(c, doc, "", "data_dir", false, &data);
    if (st != HS_OK) return st;
    char *dir = dir_of(out->config_path);
    if (dir) {
        out->key_path = resolve(dir, key);
        out->genesis_path = resolve(dir, genesis);
        out->data_dir = resolve(dir, data);
    }
    free(dir);
    if (!out->key_path || !out->genesis_path || !out->data_dir)
        return bad(c, "(paths)", "out of memory");
    return HS_OK;
}

static hs_status config_from_json(const jctx *c, const cJSON *doc, node_config *out) {
    hs_status st = check_members(c, doc, "", config_fields);
    if (st == HS_OK) st = config_paths(c, doc, out);
    if (st == HS_OK) st = config_listen(c, doc, out);
    if (st == HS_OK) st = config_log_level(c, doc, out);
    if (st == HS_OK) st = opt_bool(c, doc, "", "sync_writes", &out->sync_writes);
    if (st == HS_OK) st = config_peers(c, doc, out);
    if (st == HS_OK) st = config_consensus(c, doc, &out->consensus);
    if (st == HS_OK) st = config_limits(c, doc, out);
    if (st == HS_OK) st = config_network(c, doc, out);
    if (st == HS_OK) st = config_app(c, doc, out);
    if (st == HS_OK) st = config_admin(c, doc, out);
    return st;
}

uint64_t node_config_min_message_bytes(const node_config *c) {
    /* Per block: its transactions with their length prefixes and field tags, a phase
     * certificate with one 64-byte signature (plus framing) per validator, and fixed fields. */
    uint64_t pc = 256 + 80ull * c->app.max_validators;
    uint64_t block = c->app.max_block_bytes + 16ull * c->app.max_block_txs + pc + 256;
    return (uint64_t)c->consensus.block_sync_request_limit * block + pc + 4096;
}

/* Cross-file checks and the derived settings. */
static hs_status config_finish(const jctx *c, node_config *out) {
    for (size_t i = 0; i < out->n_peers; i++) {
        if (memcmp(out->peers[i].key.b, out->key.public_key.b, HS_KEY_LEN) == 0) {
            char field[64];
            snprintf(field, sizeof field, "peers[%zu].key", i);
            return bad(c, field, "is this node's own key (from %s)", out->key_path);
        }
    }
    /* Two servers cannot bind one port; say so here rather than as a bind failure later. A
     * port of 0 (kernel-chosen) may appear in both. */
    const char *ac = strrchr(out->listen_admin, ':');
    if (out->listen_admin[0] && strcmp(out->listen_admin, out->listen_replica) == 0 && ac &&
        strcmp(ac, ":0") != 0)
        return bad(c, "listen.admin", "is the same address as listen.replica");
    const node_genesis *g = &out->genesis;
    if (g->validators.n > out->app.max_validators)
        return bad(c, "limits.max_validators", "is %u but %s lists %u validators",
                   out->app.max_validators, out->genesis_path, g->validators.n);
    /* spec §7: 4 x network latency + produce + validate must fit in a view. */
    if (out->app.empty_block_wait_ms * 2 >= out->consensus.max_view_time_ms)
        return bad(c, "app.empty_block_wait_ms",
                   "is %llu but must be below half of consensus.max_view_time_ms (%llu)",
                   (unsigned long long)out->app.empty_block_wait_ms,
                   (unsigned long long)out->consensus.max_view_time_ms);
    out->app.chain_id = g->chain_id;
    out->app.has_admin = g->has_admin;
    out->app.admin_key = g->admin_key;

    hs_config *k = &out->consensus;
    k->me = out->key;
    k->chain_id = g->chain_id;
    k->limits = hs_limits_default();
    k->limits.max_validators = out->app.max_validators;
    k->limits.max_datums = out->app.max_block_txs;
    k->limits.max_datum_bytes = out->app.max_tx_bytes;
    k->limits.max_block_bytes = out->app.max_block_bytes;
    k->limits.max_sync_blocks = k->block_sync_request_limit;

    uint64_t min = node_config_min_message_bytes(out);
    if (out->max_message_bytes == 0) {
        out->max_message_bytes = (min + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
    } else if (out->max_message_bytes < min) {
        return bad(c, "limits.max_message_bytes",
                   "is %llu but must be at least %llu to carry a block sync response of "
                   "block_sync_request_limit full blocks (lower the block limits or the "
                   "request limit, or raise this)",
                   (unsigned long long)out->max_message_bytes, (unsigned long long)min);
    }
    char why[256];
    if (hs_config_validate(k, why, sizeof why) != HS_OK) return bad(c, "consensus", "%s", why);
    return HS_OK;
}

void node_config_free(node_config *c) {
    if (!c) return;
    free(c->config_path);
    free(c->key_path);
    free(c->genesis_path);
    free(c->data_dir);
    free(c->peers);
    node_genesis_free(&c->genesis);
    sodium_memzero(&c->key, sizeof c->key);
    sodium_memzero(&c->consensus.me, sizeof c->consensus.me);
    memset(c, 0, sizeof *c);
}

hs_status node_config_load(const char *path, node_config *out, char *err, size_t errlen) {
    jctx c = {path, err, errlen};
    if (err && errlen) err[0] = '\0';
    node_config_defaults(out);
    out->config_path = strdup(path);
    if (!out->config_path) return io_fail(&c, "out of memory");
    cJSON *doc = NULL;
    hs_status st = load_json(&c, path, &doc, NULL);
    if (st == HS_OK) st = config_from_json(&c, doc, out);
    cJSON_Delete(doc);
    if (st == HS_OK) st = node_key_load(out->key_path, &out->key, err, errlen);
    if (st == HS_OK) st = node_genesis_load(out->genesis_path, &out->genesis, err, errlen);
    if (st == HS_OK) st = config_finish(&c, out);
    if (st != HS_OK) node_config_free(out);
    return st;
}

/* ---- the store's genesis ---- */

static hs_status write_genesis_hash(const hs_kv_store *kv, const hs_hash *h) {
    hs_write_batch *b = hs_batch_new();
    if (!b) return HS_ERR_NOMEM;
    hs_status st = hs_batch_put(b, (const uint8_t *)NODE_GENESIS_KEY,
                                sizeof NODE_GENESIS_KEY - 1, h->b, HS_HASH_LEN);
    if (st == HS_OK) st = kv->write(kv->self, b);
    hs_batch_free(b);
    return st;
}

static hs_status initialize(const hs_kv_store *kv, const node_genesis *g) {
    hs_app_updates state;
    hs_status st = kvapp_genesis_state(&g->app_state, &state);
    if (st != HS_OK) return st;
    hs_vss vss;
    memset(&vss, 0, sizeof vss);
    vss.committed = g->validators; /* borrowed: initialize copies nothing it keeps */
    vss.previous = g->validators;
    vss.update_decided = true;
    st = hs_replica_initialize(kv, &state, &vss);
    hs_app_updates_free(&state);
    return st;
}

hs_status node_store_bind_genesis(const hs_kv_store *kv, const node_genesis *g,
                                  const char *data_dir, bool *fresh, char *err, size_t errlen) {
    jctx c = {data_dir, err, errlen};
    *fresh = false;
    bool init = false;
    uint8_t *val = NULL;
    size_t vlen = 0;
    hs_status st = hs_replica_is_initialized(kv, &init);
    if (st != HS_OK) return io_fail(&c, "cannot read the store: %s", hs_status_str(st));
    st = kv->get(kv->self, (const uint8_t *)NODE_GENESIS_KEY, sizeof NODE_GENESIS_KEY - 1, &val,
                 &vlen);
    if (st != HS_OK && st != HS_NOT_FOUND) {
        free(val);
        return io_fail(&c, "cannot read the store: %s", hs_status_str(st));
    }
    bool recorded = st == HS_OK;
    bool match = recorded && vlen == HS_HASH_LEN && memcmp(val, g->hash.b, HS_HASH_LEN) == 0;
    char have[65] = "", want[65];
    if (recorded && vlen == HS_HASH_LEN) sodium_bin2hex(have, sizeof have, val, vlen);
    sodium_bin2hex(want, sizeof want, g->hash.b, HS_HASH_LEN);
    free(val);

    if (recorded && !match) {
        bad(&c, "(genesis)",
            "belongs to a different genesis: it records genesis hash %.16s... but the "
            "configured genesis.json hashes to %.16s...; use the genesis.json this data "
            "directory was created with, or point data_dir at an empty directory",
            have[0] ? have : "(malformed)", want);
        return HS_ERR_STATE;
    }
    if (init && !recorded) {
        bad(&c, "(genesis)", "holds a block tree with no recorded genesis hash: it was not "
                             "created by hotstuffd from a genesis.json; refusing to use it");
        return HS_ERR_STATE;
    }
    if (init) return HS_OK;
    /* Fresh (or initialisation interrupted after the hash was recorded): hash first, so a
     * crash in between leaves a store that the next start finishes initialising. */
    if (!recorded && (st = write_genesis_hash(kv, &g->hash)) != HS_OK)
        return io_fail(&c, "cannot write the store: %s", hs_status_str(st));
    st = initialize(kv, g);
    if (st != HS_OK) return io_fail(&c, "cannot initialise the store: %s", hs_status_str(st));
    *fresh = true;
    return HS_OK;
}

int node_make_dirs(const char *path, unsigned mode) {
    char *p = strdup(path);
    if (!p) return -1;
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) rc = -1;
        *s = c;
        if (c == '\0') break;
    }
    free(p);
    return rc;
}
