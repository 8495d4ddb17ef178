/* server/config/key_file.c - key.json: a node's Ed25519 key pair, read (checking that the
 * secret key signs for the public key, and warning when the file is readable by others) and
 * written (mode 0600, created exclusively). See node_config.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "config/json_read.h"
#include "config/node_config.h"
#include "hotstuff/crypto.h"

/* ---- key.json ---- */

static const char *const key_fields[] = {"type", "public_key", "secret_key", NULL};

static hs_status key_from_json(const jctx *c, const cJSON *doc, hs_keypair *out) {
    hs_status st = cfg_check_members(c, doc, "", key_fields);
    const char *type = NULL, *pub = NULL, *sec = NULL;
    if (st == HS_OK) st = cfg_get_string(c, doc, "", "type", false, &type);
    if (st == HS_OK && type && strcmp(type, "ed25519") != 0)
        st = cfg_bad(c, "type", "must be \"ed25519\"");
    if (st == HS_OK) st = cfg_get_string(c, doc, "", "public_key", true, &pub);
    if (st == HS_OK) st = cfg_get_string(c, doc, "", "secret_key", true, &sec);
    if (st != HS_OK) return st;
    hs_key pk;
    if (!node_parse_key(pub, &pk))
        return cfg_bad(c, "public_key", "must be 32 bytes in hex (64 digits) or Base64");
    /* The secret: a 32-byte seed, or libsodium's 64-byte seed || public key. */
    uint8_t secret[64];
    hs_keypair kp;
    bool ok = cfg_decode_bytes(sec, secret, 64) || cfg_decode_bytes(sec, secret, 32);
    if (!ok)
        return cfg_bad(c, "secret_key", "must be a 32-byte seed or 64-byte secret key in hex or "
                                    "Base64 (value not shown)");
    st = hs_keypair_from_seed(secret, &kp);
    sodium_memzero(secret, sizeof secret);
    if (st != HS_OK) return cfg_bad(c, "secret_key", "cannot derive a key pair");
    if (memcmp(kp.public_key.b, pk.b, HS_KEY_LEN) != 0) {
        sodium_memzero(&kp, sizeof kp);
        return cfg_bad(c, "public_key", "does not match secret_key");
    }
    *out = kp;
    sodium_memzero(&kp, sizeof kp);
    return HS_OK;
}

hs_status node_key_load(const char *path, hs_keypair *out, char *err, size_t errlen) {
    jctx c = {path, err, errlen};
    memset(out, 0, sizeof *out);
    if (hs_crypto_init() != HS_OK) return cfg_io_fail(&c, "cannot initialise libsodium");
    cJSON *doc = NULL;
    mode_t mode = 0;
    hs_status st = cfg_load_json(&c, path, &doc, &mode);
    if (st != HS_OK) return st;
    /* Checked after parsing on purpose: a file that is not even JSON gets that message. But
     * before looking at the key: a readable secret is refused whatever it holds. */
    if (mode & 0177)
        st = cfg_bad(&c, "(file mode)",
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
        st = errno == EEXIST ? cfg_io_fail(&c, "already exists; refusing to overwrite a key")
                             : cfg_io_fail(&c, "cannot create: %s", strerror(errno));
    } else {
        size_t k = 0;
        while (st == HS_OK && k < (size_t)n) {
            ssize_t w = write(fd, text + k, (size_t)n - k);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) st = cfg_io_fail(&c, "cannot write: %s", strerror(errno));
            else k += (size_t)w;
        }
        if (st == HS_OK && fsync(fd) != 0) st = cfg_io_fail(&c, "cannot sync: %s", strerror(errno));
        close(fd);
        if (st != HS_OK) unlink(path);
    }
    sodium_memzero(text, sizeof text);
    return st;
}

