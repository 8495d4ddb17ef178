/* server/config/store_bind.c - binding a store to its genesis (initialize an empty store,
 * or check that a used one was made from the same genesis) and making the data directories.
 * See node_config.h. */
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
#include "hotstuff/block_tree.h"
#include "hotstuff/replica.h"

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
    if (st != HS_OK) return cfg_io_fail(&c, "cannot read the store: %s", hs_status_str(st));
    st = kv->get(kv->self, (const uint8_t *)NODE_GENESIS_KEY, sizeof NODE_GENESIS_KEY - 1, &val,
                 &vlen);
    if (st != HS_OK && st != HS_NOT_FOUND) {
        free(val);
        return cfg_io_fail(&c, "cannot read the store: %s", hs_status_str(st));
    }
    bool recorded = st == HS_OK;
    bool match = recorded && vlen == HS_HASH_LEN && memcmp(val, g->hash.b, HS_HASH_LEN) == 0;
    char have[65] = "", want[65];
    if (recorded && vlen == HS_HASH_LEN) sodium_bin2hex(have, sizeof have, val, vlen);
    sodium_bin2hex(want, sizeof want, g->hash.b, HS_HASH_LEN);
    free(val);

    if (recorded && !match) {
        cfg_bad(&c, "(genesis)",
                "belongs to a different genesis: it records genesis hash %.16s... but the "
            "configured genesis.json hashes to %.16s...; use the genesis.json this data "
            "directory was created with, or point data_dir at an empty directory",
            have[0] ? have : "(malformed)", want);
        return HS_ERR_STATE;
    }
    if (init && !recorded) {
        cfg_bad(&c, "(genesis)", "holds a block tree with no recorded genesis hash: it was not "
                             "created by hotstuffd from a genesis.json; refusing to use it");
        return HS_ERR_STATE;
    }
    if (init) return HS_OK;
    /* Fresh (or initialisation interrupted after the hash was recorded): hash first, so a
     * crash in between leaves a store that the next start finishes initialising. */
    if (!recorded && (st = write_genesis_hash(kv, &g->hash)) != HS_OK)
        return cfg_io_fail(&c, "cannot write the store: %s", hs_status_str(st));
    st = initialize(kv, g);
    if (st != HS_OK) return cfg_io_fail(&c, "cannot initialise the store: %s", hs_status_str(st));
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

