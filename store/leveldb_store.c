/* leveldb_store.c - the durable KV store on LevelDB's C API.
 *
 * LevelDB already provides what spec §8.2 asks: a WriteBatch is applied atomically with its ops
 * in order (so the last op on a key wins), and a snapshot is a consistent read-only view. What
 * this file adds is the error mapping: a LevelDB failure never aborts the process, it becomes
 * HS_ERR_CORRUPT when LevelDB reports corruption and HS_ERR_IO otherwise, with LevelDB's message
 * copied to the caller (open) or logged under module "leveldb" (get, write).
 *
 * Every read verifies block checksums, and the database is opened with paranoid checks, so a
 * damaged file is reported rather than silently read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leveldb/c.h>

#include "hotstuff/log.h"
#include "hotstuff/store.h"

struct hs_leveldb_store {
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;          /* NULL: LevelDB's default */
    leveldb_filterpolicy_t *filter;  /* bloom filter: cheap misses for absent keys */
    leveldb_readoptions_t *ropts;    /* live reads; only read by LevelDB, shareable by threads */
    leveldb_writeoptions_t *wopts;
};

/* One open snapshot: its own read options point at it. */
typedef struct ldb_snapshot {
    hs_leveldb_store *s;
    const leveldb_snapshot_t *snap;
    leveldb_readoptions_t *ropts;
} ldb_snapshot;

/* LevelDB's Status::ToString() starts with the code's name: "Corruption: ...", "IO error: ...",
 * "Not implemented: ...", "Invalid argument: ...". Only corruption means the data is damaged. */
static hs_status status_of(const char *msg) {
    return strncmp(msg, "Corruption", 10) == 0 ? HS_ERR_CORRUPT : HS_ERR_IO;
}

/* Maps and logs a LevelDB error string, then frees it. */
static hs_status take_error(char *msg, const char *what) {
    hs_status st = status_of(msg);
    hs_log(HS_LOG_ERROR, "leveldb", "%s failed: %s", what, msg);
    leveldb_free(msg);
    return st;
}

hs_leveldb_options hs_leveldb_options_default(void) {
    hs_leveldb_options o = {.create_if_missing = true, .sync_writes = true,
                            .cache_bytes = 8u << 20, .write_buffer_bytes = 16u << 20};
    return o;
}

static void store_destroy(hs_leveldb_store *s) {
    if (!s) return;
    if (s->db) leveldb_close(s->db); /* first: the db uses the cache, filter and options */
    if (s->ropts) leveldb_readoptions_destroy(s->ropts);
    if (s->wopts) leveldb_writeoptions_destroy(s->wopts);
    if (s->opts) leveldb_options_destroy(s->opts);
    if (s->filter) leveldb_filterpolicy_destroy(s->filter);
    if (s->cache) leveldb_cache_destroy(s->cache);
    free(s);
}

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

hs_status hs_leveldb_store_open(const char *path, const hs_leveldb_options *opt,
                                hs_leveldb_store **out, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!out) return HS_ERR_INVALID;
    *out = NULL;
    if (!path || !*path) {
        set_err(err, errlen, "Invalid argument: empty path");
        return HS_ERR_INVALID;
    }
    hs_leveldb_options o = opt ? *opt : hs_leveldb_options_default();

    hs_leveldb_store *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->opts = leveldb_options_create();
    s->ropts = leveldb_readoptions_create();
    s->wopts = leveldb_writeoptions_create();
    s->filter = leveldb_filterpolicy_create_bloom(10);
    if (o.cache_bytes) s->cache = leveldb_cache_create_lru(o.cache_bytes);
    if (!s->opts || !s->ropts || !s->wopts || !s->filter || (o.cache_bytes && !s->cache))
        goto nomem;

    leveldb_options_set_create_if_missing(s->opts, o.create_if_missing);
    leveldb_options_set_paranoid_checks(s->opts, 1);
    leveldb_options_set_filter_policy(s->opts, s->filter);
    if (s->cache) leveldb_options_set_cache(s->opts, s->cache);
    /* Most of what is stored is hashes, signatures and transaction markers, which snappy
     * cannot shrink: compressing them cost ~8% of a busy replica's CPU for nothing. */
    leveldb_options_set_compression(s->opts, leveldb_no_compression);
    /* A larger memtable means fewer level-0 files, so fewer compactions of the short-lived
     * per-block records (bench/README.md). */
    if (o.write_buffer_bytes) leveldb_options_set_write_buffer_size(s->opts, o.write_buffer_bytes);
    leveldb_readoptions_set_verify_checksums(s->ropts, 1);
    /* The protocol sends messages right after a write that they depend on, so a write must be
     * on stable storage before it returns. */
    leveldb_writeoptions_set_sync(s->wopts, o.sync_writes);

    char *lerr = NULL;
    s->db = leveldb_open(s->opts, path, &lerr);
    if (!s->db || lerr) {
        /* e.g. "IO error: lock <path>/LOCK: already held by process" or "Corruption: ..." */
        hs_status st = lerr ? status_of(lerr) : HS_ERR_IO;
        set_err(err, errlen, lerr ? lerr : "IO error: leveldb_open failed");
        leveldb_free(lerr);
        store_destroy(s);
        return st;
    }
    *out = s;
    return HS_OK;

nomem:
    store_destroy(s);
    set_err(err, errlen, "out of memory");
    return HS_ERR_NOMEM;
}

void hs_leveldb_store_close(hs_leveldb_store *s) { store_destroy(s); }

/* The value LevelDB returns is a malloc'd buffer (leveldb_get copies it with malloc, as
 * leveldb_free is plain free), so it is handed to the caller as is, to be freed with free().
 * A found empty value comes back as malloc(0), which glibc makes non-NULL: NULL without an
 * error is "not found". */
static hs_status ldb_read(const leveldb_readoptions_t *ro, leveldb_t *db, const uint8_t *key,
                          size_t klen, uint8_t **val, size_t *vlen) {
    if ((!key && klen) || !val || !vlen) return HS_ERR_INVALID;
    char *lerr = NULL;
    size_t n = 0;
    char *v = leveldb_get(db, ro, (const char *)key, klen, &n, &lerr);
    if (lerr) {
        free(v);
        return take_error(lerr, "get");
    }
    if (!v) return HS_NOT_FOUND;
    *val = (uint8_t *)v;
    *vlen = n;
    return HS_OK;
}

static hs_status ldb_get(void *self, const uint8_t *key, size_t klen, uint8_t **val,
                         size_t *vlen) {
    hs_leveldb_store *s = self;
    if (!s) return HS_ERR_INVALID;
    return ldb_read(s->ropts, s->db, key, klen, val, vlen);
}

static hs_status add_op(void *ctx, hs_kv_op op, const uint8_t *key, size_t klen,
                        const uint8_t *val, size_t vlen) {
    leveldb_writebatch_t *wb = ctx;
    if (op == HS_KV_PUT)
        leveldb_writebatch_put(wb, (const char *)key, klen, (const char *)val, vlen);
    else
        leveldb_writebatch_delete(wb, (const char *)key, klen);
    return HS_OK;
}

static hs_status ldb_write(void *self, const hs_write_batch *b) {
    hs_leveldb_store *s = self;
    if (!s || !b) return HS_ERR_INVALID;
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    if (!wb) return HS_ERR_NOMEM;
    hs_status st = hs_batch_iterate(b, add_op, wb);
    if (st == HS_OK) {
        char *lerr = NULL;
        leveldb_write(s->db, s->wopts, wb, &lerr);
        if (lerr) st = take_error(lerr, "write");
    }
    leveldb_writebatch_destroy(wb);
    return st;
}

static hs_status snap_get(void *self, const uint8_t *key, size_t klen, uint8_t **val,
                          size_t *vlen) {
    ldb_snapshot *snap = self;
    if (!snap) return HS_ERR_INVALID;
    return ldb_read(snap->ropts, snap->s->db, key, klen, val, vlen);
}

static hs_status ldb_snapshot_open(void *self, hs_kv_reader *out) {
    hs_leveldb_store *s = self;
    if (!s || !out) return HS_ERR_INVALID;
    ldb_snapshot *snap = malloc(sizeof *snap);
    if (!snap) return HS_ERR_NOMEM;
    snap->ropts = leveldb_readoptions_create();
    if (!snap->ropts) {
        free(snap);
        return HS_ERR_NOMEM;
    }
    snap->s = s;
    snap->snap = leveldb_create_snapshot(s->db);
    leveldb_readoptions_set_verify_checksums(snap->ropts, 1);
    leveldb_readoptions_set_snapshot(snap->ropts, snap->snap);
    out->self = snap;
    out->get = snap_get;
    return HS_OK;
}

static void ldb_snapshot_release(void *self, hs_kv_reader *r) {
    if (!r || !r->self) return;
    ldb_snapshot *snap = r->self;
    leveldb_release_snapshot(snap->s->db, snap->snap);
    leveldb_readoptions_destroy(snap->ropts);
    free(snap);
    r->self = NULL;
    r->get = NULL;
}

hs_kv_store hs_leveldb_store_kv(hs_leveldb_store *s) {
    hs_kv_store kv = {s, ldb_get, ldb_write, ldb_snapshot_open, ldb_snapshot_release};
    return kv;
}
