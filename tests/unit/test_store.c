/* test_store.c - the write batch and both KV backends (spec §8.2).
 *
 * One behavioural suite runs against the in-memory store and against LevelDB; LevelDB alone is
 * then checked for durability and for failing cleanly on locked, corrupt or unreachable
 * directories. Every LevelDB database lives in a fresh mkdtemp directory, removed afterwards.
 * Longer than 800 lines on purpose: the one behavioural suite serves both backends; splitting
 * it by backend would copy it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cu.h"
#include "hotstuff/kv.h"
#include "hotstuff/log.h"
#include "hotstuff/store.h"

/* ---- helpers ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void make_tmpdir(char *buf, size_t len) {
    snprintf(buf, len, "/tmp/hs_store_test_XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(buf) != NULL);
}

/* Overwrites len bytes at off of path with a garbage pattern (extending it if needed). */
static void scribble(const char *path, long off, size_t len) {
    int fd = open(path, O_WRONLY);
    CU_ASSERT_FATAL(fd >= 0);
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(0xA5 ^ (i * 131));
    while (len) {
        size_t n = len < sizeof junk ? len : sizeof junk;
        CU_ASSERT_FATAL(pwrite(fd, junk, n, off) == (ssize_t)n);
        off += (long)n;
        len -= n;
    }
    close(fd);
}

/* Finds the first file in dir whose name ends with suffix (or starts with it, when prefix). */
static int find_file(const char *dir, const char *affix, int prefix, char *out, size_t outlen) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int found = 0;
    while (!found && (de = readdir(d))) {
        size_t n = strlen(de->d_name), a = strlen(affix);
        if (n < a) continue;
        if (prefix ? strncmp(de->d_name, affix, a) == 0 : strcmp(de->d_name + n - a, affix) == 0) {
            found = snprintf(out, outlen, "%s/%s", dir, de->d_name) < (int)outlen;
        }
    }
    closedir(d);
    return found;
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* ---- backend fixture ---- */

typedef enum backend { MEM, LDB } backend;

typedef struct fx {
    backend kind;
    hs_mem_store *mem;
    hs_leveldb_store *ldb;
    char dir[64];
    hs_kv_store kv;
} fx;

/* Tests don't need fsync for behaviour; durability has its own test with sync on. */
static hs_leveldb_options test_ldb_options(void) {
    hs_leveldb_options o = hs_leveldb_options_default();
    o.sync_writes = false;
    return o;
}

static void fx_open(fx *f, backend kind) {
    memset(f, 0, sizeof *f);
    f->kind = kind;
    if (kind == MEM) {
        f->mem = hs_mem_store_new();
        CU_ASSERT_FATAL(f->mem != NULL);
        f->kv = hs_mem_store_kv(f->mem);
    } else {
        make_tmpdir(f->dir, sizeof f->dir);
        hs_leveldb_options o = test_ldb_options();
        char err[256];
        hs_status st = hs_leveldb_store_open(f->dir, &o, &f->ldb, err, sizeof err);
        if (st != HS_OK) fprintf(stderr, "open %s: %s\n", f->dir, err);
        CU_ASSERT_FATAL(st == HS_OK);
        f->kv = hs_leveldb_store_kv(f->ldb);
    }
}

static void fx_close(fx *f) {
    if (f->mem) hs_mem_store_free(f->mem);
    if (f->ldb) hs_leveldb_store_close(f->ldb);
    if (f->dir[0]) rm_rf(f->dir);
    memset(f, 0, sizeof *f);
}

#define K(s) (const uint8_t *)(s), (sizeof(s) - 1) /* a string literal as key bytes */

static hs_status put1(const hs_kv_store *kv, const void *k, size_t kl, const void *v, size_t vl) {
    hs_write_batch *b = hs_batch_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(hs_batch_put(b, k, kl, v, vl) == HS_OK);
    hs_status st = kv->write(kv->self, b);
    hs_batch_free(b);
    return st;
}

static hs_status del1(const hs_kv_store *kv, const void *k, size_t kl) {
    hs_write_batch *b = hs_batch_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(hs_batch_delete(b, k, kl) == HS_OK);
    hs_status st = kv->write(kv->self, b);
    hs_batch_free(b);
    return st;
}

/* Whether r maps key to exactly (v, vl); v == NULL means "absent". */
static int has(hs_kv_reader r, const void *k, size_t kl, const void *v, size_t vl) {
    uint8_t *got = NULL;
    size_t gl = 12345;
    hs_status st = r.get(r.self, k, kl, &got, &gl);
    if (!v) return st == HS_NOT_FOUND;
    int ok = st == HS_OK && got != NULL && gl == vl && (vl == 0 || memcmp(got, v, vl) == 0);
    free(got);
    return ok;
}

#define HAS(r, k, v) has((r), K(k), (v), sizeof(v) - 1)
#define ABSENT(r, k) has((r), K(k), NULL, 0)

/* ---- write batch ---- */

typedef struct visit_log {
    int n;
    hs_kv_op ops[8];
    char keys[8][8];
    char vals[8][8];
    int stop_at; /* visit index that returns an error, or -1 */
} visit_log;

static hs_status visit(void *ctx, hs_kv_op op, const uint8_t *key, size_t klen,
                       const uint8_t *val, size_t vlen) {
    visit_log *l = ctx;
    if (l->n == l->stop_at) return HS_ERR_IO;
    l->ops[l->n] = op;
    snprintf(l->keys[l->n], 8, "%.*s", (int)klen, (const char *)key);
    snprintf(l->vals[l->n], 8, "%.*s", (int)vlen, val ? (const char *)val : "");
    if (op == HS_KV_DELETE) CU_ASSERT(val == NULL && vlen == 0);
    l->n++;
    return HS_OK;
}

static void test_batch_order_and_lookup(void) {
    hs_write_batch *b = hs_batch_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_EQUAL(hs_batch_count(b), 0);
    hs_kv_op op;
    const uint8_t *v;
    size_t vl;
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("a"), &op, &v, &vl), HS_NOT_FOUND);

    CU_ASSERT_EQUAL(hs_batch_put(b, K("a"), K("1")), HS_OK);
    CU_ASSERT_EQUAL(hs_batch_put(b, K("b"), K("2")), HS_OK);
    CU_ASSERT_EQUAL(hs_batch_delete(b, K("a")), HS_OK);
    CU_ASSERT_EQUAL(hs_batch_put(b, K("c"), K("3")), HS_OK);
    CU_ASSERT_EQUAL(hs_batch_put(b, K("b"), K("22")), HS_OK);
    CU_ASSERT_EQUAL(hs_batch_count(b), 5);

    visit_log l = {.stop_at = -1};
    CU_ASSERT_EQUAL(hs_batch_iterate(b, visit, &l), HS_OK);
    CU_ASSERT_EQUAL(l.n, 5);
    const char *keys[] = {"a", "b", "a", "c", "b"}, *vals[] = {"1", "2", "", "3", "22"};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_STRING_EQUAL(l.keys[i], keys[i]);
        CU_ASSERT_STRING_EQUAL(l.vals[i], vals[i]);
        CU_ASSERT_EQUAL(l.ops[i], i == 2 ? HS_KV_DELETE : HS_KV_PUT);
    }

    /* The last op on each key is the effective one. */
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("a"), &op, &v, &vl), HS_OK);
    CU_ASSERT_EQUAL(op, HS_KV_DELETE);
    CU_ASSERT(v == NULL && vl == 0);
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("b"), &op, &v, &vl), HS_OK);
    CU_ASSERT_EQUAL(op, HS_KV_PUT);
    CU_ASSERT(vl == 2 && memcmp(v, "22", 2) == 0);
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("c"), &op, NULL, NULL), HS_OK);
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("d"), &op, &v, &vl), HS_NOT_FOUND);
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("ab"), &op, &v, &vl), HS_NOT_FOUND);

    /* iterate stops at, and returns, the visitor's first error. */
    visit_log l2 = {.stop_at = 2};
    CU_ASSERT_EQUAL(hs_batch_iterate(b, visit, &l2), HS_ERR_IO);
    CU_ASSERT_EQUAL(l2.n, 2);

    hs_batch_clear(b);
    CU_ASSERT_EQUAL(hs_batch_count(b), 0);
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("b"), &op, &v, &vl), HS_NOT_FOUND);
    visit_log l3 = {.stop_at = -1};
    CU_ASSERT_EQUAL(hs_batch_iterate(b, visit, &l3), HS_OK);
    CU_ASSERT_EQUAL(l3.n, 0);
    /* Reusable after clear. */
    CU_ASSERT_EQUAL(hs_batch_delete(b, K("x")), HS_OK);
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("x"), &op, &v, &vl), HS_OK);
    CU_ASSERT_EQUAL(op, HS_KV_DELETE);
    hs_batch_free(b);
    hs_batch_free(NULL);
}

static void test_batch_binary_and_invalid(void) {
    hs_write_batch *b = hs_batch_new();
    CU_ASSERT_FATAL(b != NULL);
    /* Empty key, empty value, keys that differ only after a NUL. */
    CU_ASSERT_EQUAL(hs_batch_put(b, NULL, 0, NULL, 0), HS_OK);
    CU_ASSERT_EQUAL(hs_batch_put(b, K("k\0a"), K("\0\1")), HS_OK);
    CU_ASSERT_EQUAL(hs_batch_put(b, K("k\0b"), K("x")), HS_OK);
    hs_kv_op op;
    const uint8_t *v;
    size_t vl;
    CU_ASSERT_EQUAL(hs_batch_lookup(b, (const uint8_t *)"", 0, &op, &v, &vl), HS_OK);
    CU_ASSERT(op == HS_KV_PUT && vl == 0);
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("k\0a"), &op, &v, &vl), HS_OK);
    CU_ASSERT(vl == 2 && v[0] == 0 && v[1] == 1);
    CU_ASSERT_EQUAL(hs_batch_lookup(b, K("k"), &op, &v, &vl), HS_NOT_FOUND);

    CU_ASSERT_EQUAL(hs_batch_put(NULL, K("a"), K("b")), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_batch_put(b, NULL, 3, K("b")), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_batch_put(b, K("a"), NULL, 3), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_batch_delete(b, NULL, 1), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_batch_count(b), 3); /* failed calls changed nothing */
    CU_ASSERT_EQUAL(hs_batch_iterate(b, NULL, NULL), HS_ERR_INVALID);
    hs_batch_free(b);
}

/* Many ops on many keys: lookups stay correct across index growth (and fast: this would be
 * quadratic with a linear scan). */
static void test_batch_large(void) {
    enum { N = 60000, KEYS = 20000 };
    hs_write_batch *b = hs_batch_new();
    CU_ASSERT_FATAL(b != NULL);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t k = (i * 7919u) % KEYS;
        uint8_t key[5] = {'k', (uint8_t)(k >> 16), (uint8_t)(k >> 8), (uint8_t)k, 0};
        if (i % 5 == 4) {
            CU_ASSERT_FATAL(hs_batch_delete(b, key, sizeof key) == HS_OK);
        } else {
            CU_ASSERT_FATAL(hs_batch_put(b, key, sizeof key, (const uint8_t *)&i, sizeof i) ==
                            HS_OK);
        }
        /* Interleave lookups of the key just written, as the block tree does. */
        hs_kv_op op;
        const uint8_t *v;
        size_t vl;
        CU_ASSERT_FATAL(hs_batch_lookup(b, key, sizeof key, &op, &v, &vl) == HS_OK);
        CU_ASSERT_FATAL(op == (i % 5 == 4 ? HS_KV_DELETE : HS_KV_PUT));
    }
    CU_ASSERT_EQUAL(hs_batch_count(b), N);
    /* Each key's effective op is its last one: the largest i with i*7919 % KEYS == k. */
    int bad = 0;
    for (uint32_t i = N - KEYS; i < N; i++) {
        uint32_t k = (i * 7919u) % KEYS;
        uint8_t key[5] = {'k', (uint8_t)(k >> 16), (uint8_t)(k >> 8), (uint8_t)k, 0};
        hs_kv_op op;
        const uint8_t *v;
        size_t vl;
        if (hs_batch_lookup(b, key, sizeof key, &op, &v, &vl) != HS_OK) bad++;
        else if (i % 5 == 4) bad += op != HS_KV_DELETE;
        else bad += op != HS_KV_PUT || vl != sizeof i || memcmp(v, &i, sizeof i) != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    hs_batch_free(b);
}

/* ---- the behavioural suite, run on both backends ---- */

static void suite_basic(backend kind) {
    fx f;
    fx_open(&f, kind);
    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    CU_ASSERT(ABSENT(r, "a"));
    CU_ASSERT_EQUAL(put1(&f.kv, K("a"), K("1")), HS_OK);
    CU_ASSERT(HAS(r, "a", "1"));
    CU_ASSERT_EQUAL(put1(&f.kv, K("a"), K("one")), HS_OK);
    CU_ASSERT(HAS(r, "a", "one"));
    CU_ASSERT_EQUAL(put1(&f.kv, K("b"), K("2")), HS_OK);
    CU_ASSERT_EQUAL(del1(&f.kv, K("a")), HS_OK);
    CU_ASSERT(ABSENT(r, "a"));
    CU_ASSERT(HAS(r, "b", "2"));
    CU_ASSERT_EQUAL(del1(&f.kv, K("nothing")), HS_OK); /* deleting an absent key is fine */
    /* An empty batch is a no-op. */
    hs_write_batch *b = hs_batch_new();
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_OK);
    hs_batch_free(b);
    CU_ASSERT(HAS(r, "b", "2"));
    if (kind == MEM) CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), 1);
    /* Bad arguments are refused, not crashed on. */
    uint8_t *v = NULL;
    size_t vl = 0;
    CU_ASSERT_EQUAL(r.get(r.self, NULL, 1, &v, &vl), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, NULL), HS_ERR_INVALID);
    fx_close(&f);
}

static void suite_last_op_wins(backend kind) {
    fx f;
    fx_open(&f, kind);
    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    CU_ASSERT_EQUAL(put1(&f.kv, K("d"), K("old")), HS_OK);
    hs_write_batch *b = hs_batch_new();
    hs_batch_put(b, K("a"), K("1")); /* put then delete: absent */
    hs_batch_delete(b, K("a"));
    hs_batch_delete(b, K("b")); /* delete then put: present */
    hs_batch_put(b, K("b"), K("2"));
    hs_batch_put(b, K("c"), K("x")); /* several puts: the last value */
    hs_batch_put(b, K("c"), K("y"));
    hs_batch_put(b, K("c"), K("z"));
    hs_batch_delete(b, K("d")); /* delete, put, delete of an existing key: absent */
    hs_batch_put(b, K("d"), K("new"));
    hs_batch_delete(b, K("d"));
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_OK);
    CU_ASSERT(ABSENT(r, "a"));
    CU_ASSERT(HAS(r, "b", "2"));
    CU_ASSERT(HAS(r, "c", "z"));
    CU_ASSERT(ABSENT(r, "d"));
    if (kind == MEM) CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), 2);

    hs_batch_clear(b); /* existing key: delete then put back */
    hs_batch_delete(b, K("b"));
    hs_batch_put(b, K("b"), K("3"));
    hs_batch_put(b, K("c"), K("w"));
    hs_batch_delete(b, K("c"));
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_OK);
    CU_ASSERT(HAS(r, "b", "3"));
    CU_ASSERT(ABSENT(r, "c"));
    if (kind == MEM) CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), 1);
    hs_batch_free(b);
    fx_close(&f);
}

static void suite_snapshots(backend kind) {
    fx f;
    fx_open(&f, kind);
    hs_kv_reader live = hs_kv_store_reader(&f.kv);
    CU_ASSERT_EQUAL(put1(&f.kv, K("k"), K("v1")), HS_OK);
    hs_kv_reader s1, s2;
    CU_ASSERT_FATAL(f.kv.snapshot(f.kv.self, &s1) == HS_OK);
    hs_write_batch *b = hs_batch_new();
    hs_batch_put(b, K("k"), K("v2"));
    hs_batch_put(b, K("n"), K("new"));
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_OK);
    CU_ASSERT(HAS(s1, "k", "v1")); /* taken before the write: does not see it */
    CU_ASSERT(ABSENT(s1, "n"));
    CU_ASSERT(HAS(live, "k", "v2"));
    CU_ASSERT_FATAL(f.kv.snapshot(f.kv.self, &s2) == HS_OK);
    CU_ASSERT(HAS(s2, "k", "v2")); /* taken after: sees it */
    CU_ASSERT(HAS(s2, "n", "new"));
    CU_ASSERT_EQUAL(del1(&f.kv, K("k")), HS_OK);
    CU_ASSERT(ABSENT(live, "k"));
    CU_ASSERT(HAS(s2, "k", "v2"));
    CU_ASSERT(HAS(s1, "k", "v1"));
    f.kv.release_snapshot(f.kv.self, &s1);
    CU_ASSERT(s1.self == NULL);
    CU_ASSERT(HAS(s2, "k", "v2")); /* releasing one leaves the others intact */
    f.kv.release_snapshot(f.kv.self, &s2);

    /* Many snapshots, one per version, released out of order. */
    enum { N = 64 };
    hs_kv_reader snaps[N];
    for (int i = 0; i < N; i++) {
        char v[16];
        int vl = snprintf(v, sizeof v, "%d", i);
        hs_batch_clear(b);
        hs_batch_put(b, K("ver"), (const uint8_t *)v, (size_t)vl);
        hs_batch_put(b, (const uint8_t *)v, (size_t)vl, K("x")); /* one new key per version */
        CU_ASSERT_FATAL(f.kv.write(f.kv.self, b) == HS_OK);
        CU_ASSERT_FATAL(f.kv.snapshot(f.kv.self, &snaps[i]) == HS_OK);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = pass; i < N; i += 2) {
            char v[16];
            int vl = snprintf(v, sizeof v, "%d", i);
            CU_ASSERT(has(snaps[i], K("ver"), v, (size_t)vl));
            char nx[16];
            int nl = snprintf(nx, sizeof nx, "%d", i + 1);
            CU_ASSERT(has(snaps[i], nx, (size_t)nl, NULL, 0)); /* the next version's key */
            CU_ASSERT(has(snaps[i], v, (size_t)vl, "x", 1));
            f.kv.release_snapshot(f.kv.self, &snaps[i]);
        }
    }
    hs_batch_free(b);
    fx_close(&f);
}

/* Keys that are prefixes of one another, NULs and 0xff bytes, the empty key: all distinct. */
static void suite_prefix_and_binary(backend kind) {
    static const struct {
        const char *k;
        size_t kl;
    } keys[] = {{"", 0},        {"a", 1},       {"a\0", 2},   {"a\0\0", 3},   {"ab", 2},
                {"abc", 3},     {"b", 1},       {"\0", 1},    {"\0\0", 2},    {"\0a", 2},
                {"a\0b", 3},    {"a\0c", 3},    {"\xff", 1},  {"\xff\xff", 2}, {"\x7f", 1},
                {"\x80", 1},    {"ab\xff", 3},  {"ab\0", 3}};
    enum { N = sizeof keys / sizeof keys[0] };
    fx f;
    fx_open(&f, kind);
    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    hs_write_batch *b = hs_batch_new();
    for (size_t i = 0; i < N; i++) {
        uint8_t v[3] = {(uint8_t)i, 0, (uint8_t)(0xf0 | i)}; /* values with NULs too */
        CU_ASSERT(hs_batch_put(b, (const uint8_t *)keys[i].k, keys[i].kl, v, 3) == HS_OK);
    }
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_OK);
    if (kind == MEM) CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), N);
    for (size_t i = 0; i < N; i++) {
        uint8_t v[3] = {(uint8_t)i, 0, (uint8_t)(0xf0 | i)};
        CU_ASSERT(has(r, keys[i].k, keys[i].kl, v, 3));
    }
    /* Deleting a key leaves its prefixes and extensions alone. */
    hs_batch_clear(b);
    hs_batch_delete(b, K("a"));
    hs_batch_delete(b, K("a\0"));
    hs_batch_delete(b, K("\xff"));
    hs_batch_delete(b, NULL, 0);
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_OK);
    for (size_t i = 0; i < N; i++) {
        int gone = i == 0 || i == 1 || i == 2 || i == 12;
        uint8_t v[3] = {(uint8_t)i, 0, (uint8_t)(0xf0 | i)};
        CU_ASSERT(has(r, keys[i].k, keys[i].kl, gone ? NULL : v, 3));
    }
    CU_ASSERT(has(r, K("a\0\0\0"), NULL, 0));
    if (kind == MEM) CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), N - 4);
    hs_batch_free(b);
    fx_close(&f);
}

static void suite_empty_values(backend kind) {
    fx f;
    fx_open(&f, kind);
    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    CU_ASSERT_EQUAL(put1(&f.kv, K("e"), NULL, 0), HS_OK);
    CU_ASSERT_EQUAL(put1(&f.kv, NULL, 0, NULL, 0), HS_OK); /* empty key, empty value */
    uint8_t *v = NULL;
    size_t vl = 99;
    CU_ASSERT_EQUAL(r.get(r.self, K("e"), &v, &vl), HS_OK); /* present, not "not found" */
    CU_ASSERT_EQUAL(vl, 0);
    free(v);
    CU_ASSERT(has(r, NULL, 0, "", 0));
    CU_ASSERT(ABSENT(r, "f"));
    hs_kv_reader s;
    CU_ASSERT_FATAL(f.kv.snapshot(f.kv.self, &s) == HS_OK);
    CU_ASSERT(has(s, K("e"), "", 0));
    f.kv.release_snapshot(f.kv.self, &s);
    CU_ASSERT_EQUAL(del1(&f.kv, K("e")), HS_OK);
    CU_ASSERT(ABSENT(r, "e"));
    fx_close(&f);
}

/* Random batches against a reference model: exercises every rebalancing path of the AVL tree
 * (inserts and deletes, including of absent keys) and checks an old snapshot at the end. */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void suite_random_model(backend kind) {
    enum { KEYS = 300, BATCHES = 400 };
    int model[KEYS], old[KEYS]; /* value + 1, or 0 = absent */
    memset(model, 0, sizeof model);
    fx f;
    fx_open(&f, kind);
    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    hs_kv_reader snap = {0};
    hs_write_batch *b = hs_batch_new();
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    int bad = 0;
    for (int i = 0; i < BATCHES; i++) {
        hs_batch_clear(b);
        int ops = 1 + (int)(rng_next(&rng) % 40);
        for (int j = 0; j < ops; j++) {
            int k = (int)(rng_next(&rng) % KEYS);
            /* Keys of varying length so that many are prefixes of others. */
            char key[16];
            int kl = snprintf(key, sizeof key, "%d", k);
            if (rng_next(&rng) % 3 == 0) {
                hs_batch_delete(b, (const uint8_t *)key, (size_t)kl);
                model[k] = 0;
            } else {
                int v = i * 1000 + j;
                hs_batch_put(b, (const uint8_t *)key, (size_t)kl, (const uint8_t *)&v,
                             sizeof v);
                model[k] = v + 1;
            }
        }
        CU_ASSERT_FATAL(f.kv.write(f.kv.self, b) == HS_OK);
        if (i == BATCHES / 2) {
            CU_ASSERT_FATAL(f.kv.snapshot(f.kv.self, &snap) == HS_OK);
            memcpy(old, model, sizeof old);
        }
        if (i % 50 == 0 || i == BATCHES - 1) {
            size_t present = 0;
            for (int k = 0; k < KEYS; k++) {
                char key[16];
                int kl = snprintf(key, sizeof key, "%d", k);
                int v = model[k] - 1;
                bad += !has(r, key, (size_t)kl, model[k] ? &v : NULL, sizeof v);
                present += model[k] != 0;
            }
            if (kind == MEM) CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), present);
        }
    }
    for (int k = 0; k < KEYS; k++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "%d", k);
        int v = old[k] - 1;
        bad += !has(snap, key, (size_t)kl, old[k] ? &v : NULL, sizeof v);
    }
    CU_ASSERT_EQUAL(bad, 0);
    f.kv.release_snapshot(f.kv.self, &snap);
    hs_batch_free(b);
    fx_close(&f);
}

/* One writer, several snapshot readers. The writer always sets "a" and "b" to the same value
 * in one batch (and moves a third key around), so every snapshot must see a == b, and the
 * versions a reader sees never go backwards. */
typedef struct mt_ctx {
    hs_kv_store kv;
    atomic_int done;
    atomic_int errors;
    atomic_int snapshots;
} mt_ctx;

enum { MT_WRITES = 1500, MT_READERS = 3 };

static void *mt_writer(void *arg) {
    mt_ctx *c = arg;
    hs_write_batch *b = hs_batch_new();
    for (uint32_t i = 1; i <= MT_WRITES && b; i++) {
        hs_batch_clear(b);
        hs_batch_put(b, K("a"), (const uint8_t *)&i, sizeof i);
        uint32_t odd = i % 7;
        hs_batch_put(b, (const uint8_t *)&odd, sizeof odd, K("churn"));
        hs_batch_delete(b, (const uint8_t *)&(uint32_t){(i + 3) % 7}, sizeof odd);
        hs_batch_put(b, K("b"), (const uint8_t *)&i, sizeof i);
        if (c->kv.write(c->kv.self, b) != HS_OK) atomic_fetch_add(&c->errors, 1);
    }
    hs_batch_free(b);
    atomic_store(&c->done, 1);
    return NULL;
}

static void *mt_reader(void *arg) {
    mt_ctx *c = arg;
    uint32_t last = 0;
    /* Keep reading a little past the writer's end so every reader runs at least once. */
    for (int after = 0; after < 3;) {
        if (atomic_load(&c->done)) after++;
        hs_kv_reader s;
        if (c->kv.snapshot(c->kv.self, &s) != HS_OK) {
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        uint8_t *a = NULL, *bv = NULL;
        size_t al = 0, bl = 0;
        hs_status sa = s.get(s.self, K("a"), &a, &al);
        hs_status sb = s.get(s.self, K("b"), &bv, &bl);
        if (sa == HS_NOT_FOUND && sb == HS_NOT_FOUND) {
            if (last != 0) atomic_fetch_add(&c->errors, 1); /* went back to empty */
        } else if (sa != HS_OK || sb != HS_OK || al != 4 || bl != 4 || memcmp(a, bv, 4) != 0) {
            atomic_fetch_add(&c->errors, 1);
        } else {
            uint32_t v;
            memcpy(&v, a, 4);
            if (v < last) atomic_fetch_add(&c->errors, 1);
            last = v;
        }
        free(a);
        free(bv);
        c->kv.release_snapshot(c->kv.self, &s);
        atomic_fetch_add(&c->snapshots, 1);
    }
    return NULL;
}

static void suite_threads(backend kind) {
    fx f;
    fx_open(&f, kind);
    mt_ctx c = {.kv = f.kv};
    atomic_init(&c.done, 0);
    atomic_init(&c.errors, 0);
    atomic_init(&c.snapshots, 0);
    pthread_t w, rd[MT_READERS];
    for (int i = 0; i < MT_READERS; i++)
        CU_ASSERT_FATAL(pthread_create(&rd[i], NULL, mt_reader, &c) == 0);
    CU_ASSERT_FATAL(pthread_create(&w, NULL, mt_writer, &c) == 0);
    pthread_join(w, NULL);
    for (int i = 0; i < MT_READERS; i++) pthread_join(rd[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&c.errors), 0);
    CU_ASSERT(atomic_load(&c.snapshots) >= 3 * MT_READERS);
    uint32_t last = MT_WRITES;
    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    CU_ASSERT(has(r, K("a"), &last, sizeof last));
    CU_ASSERT(has(r, K("b"), &last, sizeof last));
    fx_close(&f);
}

#define BOTH(name)                                                                            \
    static void test_mem_##name(void) { suite_##name(MEM); }                                 \
    static void test_ldb_##name(void) { suite_##name(LDB); }

BOTH(basic)
BOTH(last_op_wins)
BOTH(snapshots)
BOTH(prefix_and_binary)
BOTH(empty_values)
BOTH(random_model)
BOTH(threads)

/* ---- in-memory store only ---- */

static void test_mem_failed_write_changes_nothing(void) {
    fx f;
    fx_open(&f, MEM);
    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    CU_ASSERT_EQUAL(put1(&f.kv, K("a"), K("1")), HS_OK);
    hs_kv_reader before;
    CU_ASSERT_FATAL(f.kv.snapshot(f.kv.self, &before) == HS_OK);
    hs_write_batch *b = hs_batch_new();
    hs_batch_put(b, K("a"), K("2"));
    hs_batch_put(b, K("b"), K("1"));
    hs_batch_delete(b, K("a"));
    hs_mem_store_fail_writes(f.mem, true);
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_ERR_IO);
    CU_ASSERT(HAS(r, "a", "1"));
    CU_ASSERT(ABSENT(r, "b"));
    CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), 1);
    CU_ASSERT(HAS(before, "a", "1"));
    hs_mem_store_fail_writes(f.mem, false);
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_OK); /* the same batch now applies whole */
    CU_ASSERT(ABSENT(r, "a"));
    CU_ASSERT(HAS(r, "b", "1"));
    CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), 1);
    CU_ASSERT(HAS(before, "a", "1"));
    f.kv.release_snapshot(f.kv.self, &before);
    hs_batch_free(b);
    fx_close(&f);
}

/* A big batch (as pruning produces) into a big tree, then deletes of every other key, with a
 * snapshot of the full tree outliving the store handle's later versions. */
static void test_mem_large(void) {
    enum { N = 20000 };
    fx f;
    fx_open(&f, MEM);
    hs_write_batch *b = hs_batch_new();
    for (uint32_t i = 0; i < N; i++) {
        uint32_t be = __builtin_bswap32(i); /* sorted insertion order: worst case for a BST */
        hs_batch_put(b, (const uint8_t *)&be, sizeof be, (const uint8_t *)&i, sizeof i);
    }
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_OK);
    CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), N);
    hs_kv_reader full;
    CU_ASSERT_FATAL(f.kv.snapshot(f.kv.self, &full) == HS_OK);
    hs_batch_clear(b);
    for (uint32_t i = 0; i < N; i += 2) {
        uint32_t be = __builtin_bswap32(i);
        hs_batch_delete(b, (const uint8_t *)&be, sizeof be);
    }
    CU_ASSERT_EQUAL(f.kv.write(f.kv.self, b), HS_OK);
    CU_ASSERT_EQUAL(hs_mem_store_count(f.mem), N / 2);
    hs_kv_reader r = hs_kv_store_reader(&f.kv);
    int bad = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint32_t be = __builtin_bswap32(i);
        bad += !has(r, &be, sizeof be, i % 2 ? &i : NULL, sizeof i);
        bad += !has(full, &be, sizeof be, &i, sizeof i);
    }
    CU_ASSERT_EQUAL(bad, 0);
    f.kv.release_snapshot(f.kv.self, &full);
    hs_batch_free(b);
    fx_close(&f);
}

/* ---- LevelDB only ---- */

static void test_ldb_survives_reopen(void) {
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    hs_leveldb_store *s = NULL;
    char err[256];
    CU_ASSERT_FATAL(hs_leveldb_store_open(dir, NULL, &s, err, sizeof err) == HS_OK); /* sync */
    hs_kv_store kv = hs_leveldb_store_kv(s);
    hs_write_batch *b = hs_batch_new();
    hs_batch_put(b, K("x"), K("1"));
    hs_batch_put(b, K("y"), K("2"));
    hs_batch_put(b, K("z"), K("3"));
    hs_batch_delete(b, K("y"));
    CU_ASSERT_EQUAL(kv.write(kv.self, b), HS_OK);
    hs_leveldb_store_close(s);

    s = NULL;
    CU_ASSERT_FATAL(hs_leveldb_store_open(dir, NULL, &s, err, sizeof err) == HS_OK);
    kv = hs_leveldb_store_kv(s);
    hs_kv_reader r = hs_kv_store_reader(&kv);
    CU_ASSERT(HAS(r, "x", "1"));
    CU_ASSERT(ABSENT(r, "y"));
    CU_ASSERT(HAS(r, "z", "3"));
    hs_leveldb_store_close(s);

    /* Without create_if_missing an absent database is an error, not a new one. */
    char missing[128];
    snprintf(missing, sizeof missing, "%s/absent", dir);
    hs_leveldb_options o = hs_leveldb_options_default();
    o.create_if_missing = false;
    s = (hs_leveldb_store *)1;
    CU_ASSERT_EQUAL(hs_leveldb_store_open(missing, &o, &s, err, sizeof err), HS_ERR_IO);
    CU_ASSERT(s == NULL);
    CU_ASSERT(strlen(err) > 0);
    hs_batch_free(b);
    rm_rf(dir);
}

static void test_ldb_locked(void) {
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    hs_leveldb_options o = test_ldb_options();
    hs_leveldb_store *s1 = NULL, *s2 = NULL;
    char err[256];
    CU_ASSERT_FATAL(hs_leveldb_store_open(dir, &o, &s1, err, sizeof err) == HS_OK);
    CU_ASSERT_EQUAL(hs_leveldb_store_open(dir, &o, &s2, err, sizeof err), HS_ERR_IO);
    CU_ASSERT(s2 == NULL);
    CU_ASSERT(strstr(err, "lock") != NULL);
    printf("\n    locked: %s\n", err);
    /* The first handle is unharmed. */
    hs_kv_store kv = hs_leveldb_store_kv(s1);
    CU_ASSERT_EQUAL(put1(&kv, K("k"), K("v")), HS_OK);
    CU_ASSERT(HAS(hs_kv_store_reader(&kv), "k", "v"));
    hs_leveldb_store_close(s1);
    /* Once closed, the lock is released. */
    CU_ASSERT_EQUAL(hs_leveldb_store_open(dir, &o, &s2, err, sizeof err), HS_OK);
    hs_leveldb_store_close(s2);
    /* A tiny err buffer is truncated, never overrun. */
    CU_ASSERT_FATAL(hs_leveldb_store_open(dir, &o, &s1, err, sizeof err) == HS_OK);
    char tiny[8];
    memset(tiny, 'X', sizeof tiny);
    CU_ASSERT_EQUAL(hs_leveldb_store_open(dir, &o, &s2, tiny, sizeof tiny), HS_ERR_IO);
    CU_ASSERT(memchr(tiny, '\0', sizeof tiny) != NULL);
    hs_leveldb_store_close(s1);
    rm_rf(dir);
}

/* Writes n keys, closes; with reopen, reopens and closes once more so the log becomes a
 * table file. */
static void fill_db(const char *dir, int n, int reopen) {
    hs_leveldb_options o = test_ldb_options();
    for (int pass = 0; pass < 1 + reopen; pass++) {
        hs_leveldb_store *s = NULL;
        char err[256];
        CU_ASSERT_FATAL(hs_leveldb_store_open(dir, &o, &s, err, sizeof err) == HS_OK);
        if (pass == 0) {
            hs_kv_store kv = hs_leveldb_store_kv(s);
            hs_write_batch *b = hs_batch_new();
            for (int i = 0; i < n; i++) {
                char key[16], val[100];
                int kl = snprintf(key, sizeof key, "key%06d", i);
                memset(val, 'a' + i % 26, sizeof val);
                hs_batch_put(b, (const uint8_t *)key, (size_t)kl, (const uint8_t *)val,
                             sizeof val);
            }
            CU_ASSERT_FATAL(kv.write(kv.self, b) == HS_OK);
            hs_batch_free(b);
        }
        hs_leveldb_store_close(s);
    }
}

/* Opens a damaged database: must fail with a message, or (when the damage is only found on
 * read) fail the read with HS_ERR_CORRUPT. Never crash. */
static int open_damaged(const char *dir, const char *what) {
    hs_leveldb_options o = test_ldb_options();
    hs_leveldb_store *s = NULL;
    char err[256];
    hs_status st = hs_leveldb_store_open(dir, &o, &s, err, sizeof err);
    if (st != HS_OK) {
        printf("\n    %s: %s (%s)\n", what, hs_status_str(st), err);
        CU_ASSERT(s == NULL);
        CU_ASSERT(strlen(err) > 0);
        CU_ASSERT(st == HS_ERR_CORRUPT || st == HS_ERR_IO);
        return (int)st;
    }
    hs_leveldb_store_close(s);
    return 0; /* it opened: the caller checks reads */
}

static void test_ldb_corrupt_current(void) {
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    fill_db(dir, 10, 0);
    snprintf(path, sizeof path, "%s/CURRENT", dir);
    scribble(path, 0, 64);
    CU_ASSERT(open_damaged(dir, "garbage CURRENT") != 0);
    rm_rf(dir);
}

static void test_ldb_corrupt_manifest(void) {
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    fill_db(dir, 10, 1);
    CU_ASSERT_FATAL(find_file(dir, "MANIFEST-", 1, path, sizeof path));
    scribble(path, 0, (size_t)file_size(path));
    CU_ASSERT(open_damaged(dir, "garbage MANIFEST") != 0);
    rm_rf(dir);
}

static void test_ldb_corrupt_log(void) {
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    fill_db(dir, 200, 0); /* the data is still only in the log */
    CU_ASSERT_FATAL(find_file(dir, ".log", 0, path, sizeof path));
    long size = file_size(path);
    CU_ASSERT_FATAL(size > 1000);
    scribble(path, 0, (size_t)size);
    CU_ASSERT_EQUAL(open_damaged(dir, "garbage log"), HS_ERR_CORRUPT); /* paranoid checks */
    rm_rf(dir);
}

static int logged_errors;
static char logged_module[32];

static void capture_log(void *ctx, hs_log_level level, const char *module, const char *msg) {
    if (level >= HS_LOG_ERROR) {
        logged_errors++;
        snprintf(logged_module, sizeof logged_module, "%s", module);
    }
}

static void test_ldb_corrupt_table(void) {
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    fill_db(dir, 2000, 1);
    CU_ASSERT_FATAL(find_file(dir, ".ldb", 0, path, sizeof path));
    long size = file_size(path);
    CU_ASSERT_FATAL(size > 8192);
    scribble(path, 100, (size_t)(size / 2)); /* data blocks; the footer stays readable */
    hs_status st = open_damaged(dir, "garbage table");
    if (st == HS_OK) {
        /* Opened: the damage shows on read, checksums are verified. */
        hs_leveldb_options o = test_ldb_options();
        hs_leveldb_store *s = NULL;
        char err[256];
        CU_ASSERT_FATAL(hs_leveldb_store_open(dir, &o, &s, err, sizeof err) == HS_OK);
        hs_kv_store kv = hs_leveldb_store_kv(s);
        hs_kv_reader r = hs_kv_store_reader(&kv);
        logged_errors = 0;
        hs_log_set_handler(capture_log, NULL);
        int corrupt = 0, other = 0;
        for (int i = 0; i < 2000; i += 50) {
            char key[16];
            int kl = snprintf(key, sizeof key, "key%06d", i);
            uint8_t *v = NULL;
            size_t vl = 0;
            hs_status gs = r.get(r.self, (const uint8_t *)key, (size_t)kl, &v, &vl);
            if (gs == HS_ERR_CORRUPT) corrupt++;
            else if (gs != HS_OK) other++;
            free(v);
        }
        hs_log_set_handler(NULL, NULL);
        printf("\n    garbage table: %d reads reported HS_ERR_CORRUPT\n", corrupt);
        CU_ASSERT(corrupt > 0);
        CU_ASSERT_EQUAL(other, 0);
        CU_ASSERT_EQUAL(logged_errors, corrupt);
        CU_ASSERT_STRING_EQUAL(logged_module, "leveldb");
        hs_leveldb_store_close(s);
    }
    rm_rf(dir);
}

static void test_ldb_bad_path(void) {
    char dir[64], path[160];
    make_tmpdir(dir, sizeof dir);
    /* A regular file where a directory should be: cannot be created, even as root. */
    snprintf(path, sizeof path, "%s/file", dir);
    FILE *fp = fopen(path, "w");
    CU_ASSERT_FATAL(fp != NULL);
    fclose(fp);
    snprintf(path, sizeof path, "%s/file/db", dir);
    hs_leveldb_store *s = (hs_leveldb_store *)1;
    char err[256];
    CU_ASSERT_EQUAL(hs_leveldb_store_open(path, NULL, &s, err, sizeof err), HS_ERR_IO);
    CU_ASSERT(s == NULL);
    CU_ASSERT(strlen(err) > 0);
    printf("\n    bad path: %s\n", err);
    /* The file itself as the database directory. */
    snprintf(path, sizeof path, "%s/file", dir);
    CU_ASSERT_EQUAL(hs_leveldb_store_open(path, NULL, &s, err, sizeof err), HS_ERR_IO);
    CU_ASSERT(strlen(err) > 0);
    /* Nonsense arguments. */
    CU_ASSERT_EQUAL(hs_leveldb_store_open("", NULL, &s, err, sizeof err), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_leveldb_store_open(NULL, NULL, &s, err, sizeof err), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_leveldb_store_open(dir, NULL, NULL, NULL, 0), HS_ERR_INVALID);
    rm_rf(dir);
}

static const cu_test tests[] = {
    {"batch: order, last op, clear", test_batch_order_and_lookup},
    {"batch: binary keys, bad arguments", test_batch_binary_and_invalid},
    {"batch: 60000 ops, lookups", test_batch_large},
    {"mem: get/put/delete", test_mem_basic},
    {"mem: last op in a batch wins", test_mem_last_op_wins},
    {"mem: snapshot isolation", test_mem_snapshots},
    {"mem: prefix and binary keys", test_mem_prefix_and_binary},
    {"mem: empty values", test_mem_empty_values},
    {"mem: random batches vs model", test_mem_random_model},
    {"mem: writer + snapshot readers", test_mem_threads},
    {"mem: failed write changes nothing", test_mem_failed_write_changes_nothing},
    {"mem: large batches", test_mem_large},
    {"leveldb: get/put/delete", test_ldb_basic},
    {"leveldb: last op in a batch wins", test_ldb_last_op_wins},
    {"leveldb: snapshot isolation", test_ldb_snapshots},
    {"leveldb: prefix and binary keys", test_ldb_prefix_and_binary},
    {"leveldb: empty values", test_ldb_empty_values},
    {"leveldb: random batches vs model", test_ldb_random_model},
    {"leveldb: writer + snapshot readers", test_ldb_threads},
    {"leveldb: data survives reopen", test_ldb_survives_reopen},
    {"leveldb: locked directory", test_ldb_locked},
    {"leveldb: garbage CURRENT", test_ldb_corrupt_current},
    {"leveldb: garbage MANIFEST", test_ldb_corrupt_manifest},
    {"leveldb: garbage log", test_ldb_corrupt_log},
    {"leveldb: garbage table", test_ldb_corrupt_table},
    {"leveldb: uncreatable path", test_ldb_bad_path},
    {NULL, NULL}};

int main(void) { return cu_run("store", tests); }
