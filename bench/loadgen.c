/* bench/loadgen.c - hs_loadgen: a load generator for a hotstuffd testnet, and its stopwatch.
 *
 *   hs_loadgen --targets H:P[,H:P...] [--watch I] [--size BYTES] [--keys K]
 *              (--rate TX_PER_S | --outstanding N) [--batch B]
 *              [--warmup-s S] [--duration-s S] [--pids P[,P...]]
 *              [--kill-at-s S --kill-pid P] [--lost-ms MS] [--label NAME]
 *
 * One sender thread per target streams KvTransaction puts of --size bytes through the admin
 * service's SubmitTransactions, up to --batch transactions per stream message: open loop at
 * --rate transactions per second in all, or closed loop keeping --outstanding transactions
 * submitted and not yet committed. The watcher thread follows COMMIT_BLOCK events of target
 * --watch (default 0) through Subscribe and stamps each commit as it arrives; the reader
 * thread fetches those blocks (ListBlocks), finds this run's transactions in them by their
 * nonce, and records submit-to-commit latency. A transaction not seen committed within
 * --lost-ms counts as lost (a rejection, or one sent to a replica that died).
 *
 * After --warmup-s, it measures for --duration-s: committed tx/s, blocks/s, latency
 * percentiles, and the CPU seconds and RSS of every --pids process (the replicas) and of
 * itself, read from /proc. With --kill-at-s it sends SIGKILL to --kill-pid that many seconds
 * into the measurement, and reports the longest commit gap after it and the rate afterwards.
 * The result goes to stdout as a table and then as one JSON line (the last line).
 *
 * A benchmark, not a test: nothing here asserts. Exit status: 0 when it ran, 1 when the
 * testnet could not be reached or nothing committed, 2 on bad arguments.
 *
 * Threads: senders, watcher, reader and main; they share the slot ring (atomics) and the
 * commit queue (a mutex). The transaction nonce is run_id << 40 | seq, so blocks from other
 * clients or earlier runs are ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <sodium.h>

#include "admin_client.h"
#include "net/call.h"
#include "net/rpc.h"
#include "hotstuff/v1/admin.pb-c.h"

#define MAX_TARGETS 16
#define MAX_PIDS 16
#define SEQ_BITS 40
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)
#define RING_BITS 22 /* 4 Mi slots: transactions in flight at once */
#define RING (UINT64_C(1) << RING_BITS)
#define MAX_BATCH 4096
#define TIMELINE_MAX 4096 /* seconds */

/* ---- options ---- */

static struct {
    char *targets[MAX_TARGETS];
    int n_targets;
    int watch;
    uint32_t size, keys, batch;
    double rate;
    uint32_t outstanding;
    double warmup_s, duration_s;
    int pids[MAX_PIDS];
    int n_pids;
    double kill_at_s;
    int kill_pid;
    uint32_t lost_ms;
    const char *label;
} opt = {.watch = 0, .size = 100, .keys = 100000, .batch = 256, .warmup_s = 3,
         .duration_s = 10, .kill_at_s = -1, .lost_ms = 10000, .label = "run"};

/* ---- clocks ---- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ---- shared state ---- */

/* One in-flight transaction: seq + 1 (0 = free) and its submit time. A sender writes t_ns,
 * then publishes seq1 (release); whoever claims it (commit or loss) swaps seq1 to 0. */
typedef struct slot {
    _Atomic uint64_t seq1;
    uint64_t t_ns;
} slot;

static slot *g_ring;
static uint64_t g_run_id;
static uint64_t g_t0;              /* start of the run */
static uint64_t g_m0, g_m1;        /* measurement window [g_m0, g_m1) */
static _Atomic uint64_t g_next_seq; /* next sequence number to hand out */
static _Atomic uint64_t g_low;      /* every seq below is claimed (committed or lost) */
static _Atomic int64_t g_outstanding;
static atomic_bool g_stop;
static _Atomic uint64_t g_sent, g_lost, g_send_errors, g_behind;

/* Latencies (us) of transactions committed in the window; the reader owns them. */
static uint32_t *g_lat;
static size_t g_n_lat, g_cap_lat;
static uint64_t g_win_txs, g_win_blocks, g_win_bytes; /* committed in the window */
static uint64_t g_tl[TIMELINE_MAX];                   /* committed txs per second of run */
static uint64_t g_kill_ns;                            /* when the kill was sent (0: none) */
static uint64_t g_last_commit_ns, g_gap_after_kill_ns, g_first_after_kill_ns;
static uint64_t g_after_kill_txs;

/* COMMIT_BLOCK events from the watcher to the reader. */
typedef struct commit_ev {
    uint64_t height, t_ns;
} commit_ev;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    commit_ev *q;
    size_t head, n, cap;
    bool ended;
} g_cq = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* ---- transactions ---- */

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

/* The canonical KvTransaction{nonce, put{key, value}} (kvapp.proto), padded with value bytes
 * so that the whole is `size` bytes where it can be. Returns the length written. */
static size_t encode_tx(uint8_t *buf, size_t cap, uint64_t nonce, uint64_t seq) {
    char key[24];
    size_t klen = (size_t)snprintf(key, sizeof key, "k%07" PRIu64, seq % opt.keys);
    size_t fixed = 1 + varint_len(nonce) + 1 + 1 + 1 + klen + 1; /* tags and lengths, guessed */
    size_t vlen = opt.size > fixed + 2 ? opt.size - fixed - 2 : 1;
    for (int i = 0; i < 4; i++) { /* the put's and value's length prefixes depend on vlen */
        size_t put_len = 1 + varint_len(klen) + klen + 1 + varint_len(vlen) + vlen;
        size_t total = 1 + varint_len(nonce) + 1 + varint_len(put_len) + put_len;
        if (total == opt.size || vlen <= 1) break;
        if (total > opt.size) vlen -= total - opt.size < vlen ? total - opt.size : vlen - 1;
        else vlen += opt.size - total;
    }
    size_t put_len = 1 + varint_len(klen) + klen + 1 + varint_len(vlen) + vlen;
    size_t total = 1 + varint_len(nonce) + 1 + varint_len(put_len) + put_len;
    if (total > cap) return 0;
    size_t n = 0;
    buf[n++] = 0x08; /* nonce, varint */
    n += put_varint(buf + n, nonce);
    buf[n++] = 0x12; /* put, length-delimited */
    n += put_varint(buf + n, put_len);
    buf[n++] = 0x0a; /* key */
    n += put_varint(buf + n, klen);
    memcpy(buf + n, key, klen);
    n += klen;
    buf[n++] = 0x12; /* value */
    n += put_varint(buf + n, vlen);
    memset(buf + n, 'v', vlen);
    n += vlen;
    return n;
}

/* The nonce of an encoded KvTransaction (its field 1 comes first); false if none. */
static bool tx_nonce(const uint8_t *p, size_t len, uint64_t *nonce) {
    if (len < 2 || p[0] != 0x08) return false;
    uint64_t v = 0;
    for (size_t i = 1, shift = 0; i < len && shift < 64; i++, shift += 7) {
        v |= (uint64_t)(p[i] & 0x7f) << shift;
        if (!(p[i] & 0x80)) {
            *nonce = v;
            return true;
        }
    }
    return false;
}

/* ---- senders ---- */

typedef struct sender {
    int idx;
    pthread_t th;
    char err[256];
    uint64_t accepted, rejected;
} sender;

static grpc_channel *open_channel(const char *target) {
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = 64 << 20}},
        {GRPC_ARG_INTEGER, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}},
    };
    grpc_channel_args ca = {sizeof args / sizeof args[0], args};
    return hs_rpc_channel(target, &ca);
}

/* How many transactions this sender may send now, and how long to sleep if none. */
static uint32_t quota(uint64_t start_ns, uint64_t *sent_here, uint64_t *sleep) {
    *sleep = 0;
    uint64_t room = RING - (atomic_load(&g_next_seq) - atomic_load(&g_low));
    if (room < opt.batch) {
        atomic_fetch_add(&g_behind, 1);
        *sleep = 1000000;
        return 0;
    }
    uint64_t n;
    if (opt.rate > 0) {
        double share = opt.rate / opt.n_targets;
        uint64_t due = (uint64_t)((double)(now_ns() - start_ns) / 1e9 * share);
        n = due > *sent_here ? due - *sent_here : 0;
        if (n == 0) *sleep = (uint64_t)(1e9 / share) + 1;
    } else {
        int64_t out = atomic_load(&g_outstanding);
        int64_t free_ = (int64_t)opt.outstanding - out;
        n = free_ > 0 ? (uint64_t)free_ : 0;
        if (n == 0) *sleep = 100000;
    }
    if (n > opt.batch) n = opt.batch;
    return (uint32_t)n;
}

static void *sender_main(void *arg) {
    sender *s = arg;
    grpc_channel *ch = open_channel(opt.targets[s->idx]);
    /* One client stream of batches per sender, for the whole run (net/call.h). */
    hs_rpc_call *call =
        hs_rpc_call_open(ch, "/hotstuff.v1.Admin/SubmitTransactions", NULL, false, -1);
    bool ok = call != NULL;

    uint8_t *txbuf = malloc((size_t)opt.batch * (opt.size + 64));
    ProtobufCBinaryData *items = calloc(opt.batch, sizeof *items);
    uint64_t start = now_ns(), sent_here = 0;
    while (ok && !atomic_load(&g_stop) && txbuf && items) {
        uint64_t nap;
        uint32_t n = quota(start, &sent_here, &nap);
        if (n == 0) {
            sleep_ns(nap > 2000000 ? 2000000 : nap);
            continue;
        }
        uint64_t first = atomic_fetch_add(&g_next_seq, n);
        atomic_fetch_add(&g_outstanding, (int64_t)n);
        size_t off = 0;
        uint64_t t = now_ns();
        for (uint32_t i = 0; i < n; i++) {
            uint64_t seq = first + i;
            size_t len = encode_tx(txbuf + off, opt.size + 64, g_run_id << SEQ_BITS | seq, seq);
            items[i].data = txbuf + off;
            items[i].len = len;
            off += len;
            slot *sl = &g_ring[seq & (RING - 1)];
            sl->t_ns = t;
            atomic_store_explicit(&sl->seq1, seq + 1, memory_order_release);
        }
        Hotstuff__V1__SubmitTransactionsRequest q = HOTSTUFF__V1__SUBMIT_TRANSACTIONS_REQUEST__INIT;
        q.n_transactions = n;
        q.transactions = items;
        ok = hs_rpc_call_send(call, &q.base);
        sent_here += n;
        if (ok) atomic_fetch_add(&g_sent, n);
        else atomic_fetch_add(&g_send_errors, 1); /* these n will be counted lost */
    }
    free(txbuf);
    free(items);
    if (call) {
        Hotstuff__V1__SubmitTransactionsResponse *m = NULL;
        if (ok && hs_rpc_call_close_send(call))
            m = (Hotstuff__V1__SubmitTransactionsResponse *)hs_rpc_call_recv(
                call, &hotstuff__v1__submit_transactions_response__descriptor);
        char msg[256];
        grpc_status_code code = hs_rpc_call_finish(call, !ok, msg, sizeof msg);
        if (code == GRPC_STATUS_OK && m) {
            s->accepted = m->accepted;
            s->rejected = m->rejected;
            if (m->first_error && m->first_error[0])
                snprintf(s->err, sizeof s->err, "first rejection: %s", m->first_error);
        } else if (code != GRPC_STATUS_OK) {
            snprintf(s->err, sizeof s->err, "stream ended: %s: %.200s", hsc_code_name(code), msg);
        }
        if (m) protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    grpc_channel_destroy(ch);
    return NULL;
}

/* ---- watcher: COMMIT_BLOCK events, stamped on arrival ---- */

/* The watcher's stream, so that main can cancel it; guarded by g_watch_mu. */
static pthread_mutex_t g_watch_mu = PTHREAD_MUTEX_INITIALIZER;
static hsc_stream *g_watch_stream;
static char g_watch_err[512];

static void cq_push(uint64_t height, uint64_t t) {
    pthread_mutex_lock(&g_cq.mu);
    if (g_cq.n == g_cq.cap) {
        size_t cap = g_cq.cap ? g_cq.cap * 2 : 1024;
        commit_ev *q = malloc(cap * sizeof *q);
        if (!q) {
            pthread_mutex_unlock(&g_cq.mu);
            return; /* the reader will miss this block's transactions: they count as lost */
        }
        for (size_t i = 0; i < g_cq.n; i++) q[i] = g_cq.q[(g_cq.head + i) % g_cq.cap];
        free(g_cq.q);
        g_cq.q = q;
        g_cq.head = 0;
        g_cq.cap = cap;
    }
    g_cq.q[(g_cq.head + g_cq.n++) % g_cq.cap] = (commit_ev){height, t};
    pthread_cond_signal(&g_cq.cv);
    pthread_mutex_unlock(&g_cq.mu);
}

static void *watcher_main(void *arg) {
    hsc_client *c = arg;
    Hotstuff__V1__SubscribeRequest q = HOTSTUFF__V1__SUBSCRIBE_REQUEST__INIT;
    Hotstuff__V1__EventType types[] = {HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK};
    q.n_types = 1;
    q.types = types;
    hsc_stream *s = hsc_stream_open(c, HSC_ADMIN("Subscribe"), &q.base, -1);
    if (!s) {
        snprintf(g_watch_err, sizeof g_watch_err, "out of memory");
    } else {
        pthread_mutex_lock(&g_watch_mu);
        g_watch_stream = s;
        pthread_mutex_unlock(&g_watch_mu);
        for (;;) {
            Hotstuff__V1__SubscribeResponse *m = (Hotstuff__V1__SubscribeResponse *)
                hsc_stream_next(s, &hotstuff__v1__subscribe_response__descriptor);
            if (!m) break;
            uint64_t t = now_ns();
            if (m->type == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK && !m->replayed)
                cq_push(m->height, t);
            protobuf_c_message_free_unpacked(&m->base, NULL);
        }
        pthread_mutex_lock(&g_watch_mu);
        g_watch_stream = NULL;
        pthread_mutex_unlock(&g_watch_mu);
        hsc_status st;
        hsc_stream_finish(s, true, &st);
        if (!atomic_load(&g_stop)) hsc_describe(c, &st, g_watch_err, sizeof g_watch_err);
    }
    pthread_mutex_lock(&g_cq.mu);
    g_cq.ended = true;
    pthread_cond_signal(&g_cq.cv);
    pthread_mutex_unlock(&g_cq.mu);
    return NULL;
}

/* ---- reader: blocks, transactions, latencies, losses ---- */

static void record_latency(uint64_t us) {
    if (g_n_lat == g_cap_lat) {
        size_t cap = g_cap_lat ? g_cap_lat * 2 : 1 << 16;
        uint32_t *l = realloc(g_lat, cap * sizeof *l);
        if (!l) return;
        g_lat = l;
        g_cap_lat = cap;
    }
    g_lat[g_n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* The transactions of one committed block that are ours: claimed, timed. */
static void on_block(const Hotstuff__V1__Block *b, uint64_t t) {
    bool in_window = t >= g_m0 && t < g_m1;
    uint64_t mine = 0;
    for (size_t i = 0; i < b->n_data; i++) {
        uint64_t nonce;
        if (!tx_nonce(b->data[i].data, b->data[i].len, &nonce) || nonce >> SEQ_BITS != g_run_id)
            continue;
        uint64_t seq = nonce & SEQ_MASK;
        slot *sl = &g_ring[seq & (RING - 1)];
        uint64_t want = seq + 1;
        if (!atomic_compare_exchange_strong(&sl->seq1, &want, 0)) continue; /* lost already */
        uint64_t t_sub = sl->t_ns;
        atomic_fetch_sub(&g_outstanding, 1);
        mine++;
        if (in_window) {
            record_latency(t > t_sub ? (t - t_sub) / 1000 : 0);
            g_win_bytes += b->data[i].len;
        }
    }
    if (in_window) {
        g_win_txs += mine;
        g_win_blocks++;
    }
    uint64_t sec = (t - g_t0) / 1000000000u;
    if (sec < TIMELINE_MAX) g_tl[sec] += mine;
    if (g_kill_ns && t > g_kill_ns) {
        if (!g_first_after_kill_ns) g_first_after_kill_ns = t;
        uint64_t from = g_last_commit_ns > g_kill_ns ? g_last_commit_ns : g_kill_ns;
        if (t - from > g_gap_after_kill_ns) g_gap_after_kill_ns = t - from;
        if (in_window) g_after_kill_txs += mine;
    }
    g_last_commit_ns = t;
}

/* Claims every transaction older than lost_ms that is still unclaimed, moving g_low up. */
static void sweep_lost(void) {
    uint64_t now = now_ns(), limit = (uint64_t)opt.lost_ms * 1000000u;
    uint64_t low = atomic_load(&g_low), next = atomic_load(&g_next_seq);
    while (low < next) {
        slot *sl = &g_ring[low & (RING - 1)];
        uint64_t s1 = atomic_load_explicit(&sl->seq1, memory_order_acquire);
        if (s1 == low + 1) {
            if (now - sl->t_ns < limit) break;
            uint64_t want = s1;
            if (atomic_compare_exchange_strong(&sl->seq1, &want, 0)) {
                atomic_fetch_sub(&g_outstanding, 1);
                atomic_fetch_add(&g_lost, 1);
            }
        } else if (s1 != 0) {
            break; /* handed out but not yet published by its sender */
        }
        low++;
    }
    atomic_store(&g_low, low);
}

static void *reader_main(void *arg) {
    hsc_client *c = arg;
    uint64_t last_sweep = now_ns();
    for (;;) {
        pthread_mutex_lock(&g_cq.mu);
        while (g_cq.n == 0 && !g_cq.ended) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&g_cq.cv, &g_cq.mu, &ts);
            if (now_ns() - last_sweep > 100000000) break;
        }
        size_t n = g_cq.n;
        commit_ev first = n ? g_cq.q[g_cq.head] : (commit_ev){0, 0};
        /* Take a run of consecutive heights: one ListBlocks call for all of them. */
        size_t take = 0;
        commit_ev evs[100];
        while (take < n && take < 100) {
            commit_ev e = g_cq.q[(g_cq.head + take) % g_cq.cap];
            if (e.height != first.height + take) break;
            evs[take++] = e;
        }
        g_cq.head = g_cq.cap ? (g_cq.head + take) % g_cq.cap : 0;
        g_cq.n -= take;
        bool ended = g_cq.ended && g_cq.n == 0;
        pthread_mutex_unlock(&g_cq.mu);
        if (take) {
            Hotstuff__V1__ListBlocksRequest q = HOTSTUFF__V1__LIST_BLOCKS_REQUEST__INIT;
            q.start_height = first.height;
            q.end_height = first.height + take - 1;
            hsc_stream *s = hsc_stream_open(c, HSC_ADMIN("ListBlocks"), &q.base, 10000);
            size_t got = 0;
            while (s && got < take) {
                Hotstuff__V1__ListBlocksResponse *m = (Hotstuff__V1__ListBlocksResponse *)
                    hsc_stream_next(s, &hotstuff__v1__list_blocks_response__descriptor);
                if (!m) break;
                if (m->block && m->block->height >= first.height &&
                    m->block->height < first.height + take)
                    on_block(m->block, evs[m->block->height - first.height].t_ns);
                got++;
                protobuf_c_message_free_unpacked(&m->base, NULL);
            }
            if (s) hsc_stream_finish(s, got < take, NULL);
        }
        if (now_ns() - last_sweep > 100000000) {
            sweep_lost();
            last_sweep = now_ns();
        }
        if (ended) break;
    }
    return NULL;
}

/* ---- process figures from /proc ---- */

typedef struct proc_fig {
    double cpu_s;         /* user + system */
    double rss_mb, hwm_mb; /* now, peak */
    double anon_mb;        /* RssAnon: the heap and stacks, without mapped files */
    bool ok;
} proc_fig;

static proc_fig read_proc(int pid) {
    proc_fig f = {0};
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *fp = fopen(path, "r");
    if (!fp) return f;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return f;
    long hz = sysconf(_SC_CLK_TCK);
    f.cpu_s = (double)(ut + st) / (double)(hz > 0 ? hz : 100);
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    fp = fopen(path, "r");
    if (!fp) return f;
    while (fgets(buf, sizeof buf, fp)) {
        unsigned long kb;
        if (sscanf(buf, "VmRSS: %lu", &kb) == 1) f.rss_mb = (double)kb / 1024.0;
        if (sscanf(buf, "VmHWM: %lu", &kb) == 1) f.hwm_mb = (double)kb / 1024.0;
        if (sscanf(buf, "RssAnon: %lu", &kb) == 1) f.anon_mb = (double)kb / 1024.0;
    }
    fclose(fp);
    f.ok = true;
    return f;
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- arguments ---- */

static int usage(void) {
    fprintf(stderr,
            "usage: hs_loadgen --targets H:P[,H:P...] (--rate TX_PER_S | --outstanding N)\n"
            "                  [--watch I] [--size BYTES] [--keys K] [--batch B]\n"
            "                  [--warmup-s S] [--duration-s S] [--pids P,...]\n"
            "                  [--kill-at-s S --kill-pid P] [--lost-ms MS] [--label NAME]\n");
    return 2;
}

static int split_list(char *s, char **out, int max) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) out[n++] = tok;
    return n;
}

static bool parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return false;
        char *end = NULL;
        if (!strcmp(a, "--targets")) opt.n_targets = split_list(v, opt.targets, MAX_TARGETS);
        else if (!strcmp(a, "--pids")) {
            char *p[MAX_PIDS];
            opt.n_pids = split_list(v, p, MAX_PIDS);
            for (int k = 0; k < opt.n_pids; k++) opt.pids[k] = atoi(p[k]);
        } else if (!strcmp(a, "--watch")) opt.watch = atoi(v);
        else if (!strcmp(a, "--size")) opt.size = (uint32_t)strtoul(v, &end, 10);
        else if (!strcmp(a, "--keys")) opt.keys = (uint32_t)strtoul(v, &end, 10);
        else if (!strcmp(a, "--batch")) opt.batch = (uint32_t)strtoul(v, &end, 10);
        else if (!strcmp(a, "--rate")) opt.rate = strtod(v, &end);
        else if (!strcmp(a, "--outstanding")) opt.outstanding = (uint32_t)strtoul(v, &end, 10);
        else if (!strcmp(a, "--warmup-s")) opt.warmup_s = strtod(v, &end);
        else if (!strcmp(a, "--duration-s")) opt.duration_s = strtod(v, &end);
        else if (!strcmp(a, "--kill-at-s")) opt.kill_at_s = strtod(v, &end);
        else if (!strcmp(a, "--kill-pid")) opt.kill_pid = atoi(v);
        else if (!strcmp(a, "--lost-ms")) opt.lost_ms = (uint32_t)strtoul(v, &end, 10);
        else if (!strcmp(a, "--label")) opt.label = v;
        else return false;
        if (end && *end) return false;
        i++;
    }
    if (opt.n_targets < 1 || opt.watch < 0 || opt.watch >= opt.n_targets) return false;
    if ((opt.rate > 0) == (opt.outstanding > 0)) return false;
    if (opt.size < 16 || opt.size > 65536 || opt.keys < 1) return false;
    if (opt.batch < 1 || opt.batch > MAX_BATCH || opt.duration_s <= 0 || opt.warmup_s < 0)
        return false;
    if (opt.outstanding > RING / 2) return false;
    if (opt.kill_at_s >= 0 && opt.kill_pid <= 0) return false;
    return opt.warmup_s + opt.duration_s < TIMELINE_MAX - 60;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(double p) {
    if (!g_n_lat) return 0;
    size_t i = (size_t)(p * (double)(g_n_lat - 1) + 0.5);
    return g_lat[i] / 1000.0;
}

int main(int argc, char **argv) {
    if (!parse_args(argc, argv)) return usage();
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) return 1;
    g_run_id = (randombytes_random() & 0xffffff) | 1;
    g_ring = calloc(RING, sizeof *g_ring);
    if (!g_ring) {
        fprintf(stderr, "hs_loadgen: out of memory\n");
        return 1;
    }
    grpc_init();
    hsc_client *wc = hsc_open(opt.targets[opt.watch]);
    hsc_client *rc = hsc_open(opt.targets[opt.watch]);
    if (!wc || !rc || !hsc_wait_connected(wc, 10000)) {
        fprintf(stderr, "hs_loadgen: cannot reach %s\n", opt.targets[opt.watch]);
        return 1;
    }
    g_t0 = now_ns();
    g_m0 = g_t0 + (uint64_t)(opt.warmup_s * 1e9);
    g_m1 = g_m0 + (uint64_t)(opt.duration_s * 1e9);
    pthread_t wt, rt;
    pthread_create(&wt, NULL, watcher_main, wc);
    pthread_create(&rt, NULL, reader_main, rc);
    sender snd[MAX_TARGETS];
    memset(snd, 0, sizeof snd);
    for (int i = 0; i < opt.n_targets; i++) {
        snd[i].idx = i;
        pthread_create(&snd[i].th, NULL, sender_main, &snd[i]);
    }

    proc_fig p0[MAX_PIDS], p1[MAX_PIDS];
    double self0 = 0, rss_first[MAX_PIDS] = {0};
    bool started = false, killed = false;
    uint64_t last_print = g_t0, next_rss = 0;
    /* Every RSS_EVERY_S of the window, the largest replica RSS and the largest anonymous part
     * of it: memory growth over a soak. (LevelDB maps its table files, so RSS also counts
     * file pages the kernel can drop; RssAnon is what the process itself allocated.) */
    enum { RSS_EVERY_S = 10, RSS_MAX = TIMELINE_MAX / RSS_EVERY_S + 1 };
    static double rss_tl[RSS_MAX], anon_tl[RSS_MAX];
    int n_rss = 0;
    for (;;) {
        uint64_t t = now_ns();
        if (!started && t >= g_m0) {
            for (int i = 0; i < opt.n_pids; i++) p0[i] = read_proc(opt.pids[i]);
            for (int i = 0; i < opt.n_pids; i++) rss_first[i] = p0[i].rss_mb;
            self0 = self_cpu_s();
            started = true;
        }
        if (started && !killed && opt.kill_at_s >= 0 && t >= g_m0 + (uint64_t)(opt.kill_at_s * 1e9)) {
            for (int i = 0; i < opt.n_pids; i++)
                if (opt.pids[i] == opt.kill_pid) p1[i] = read_proc(opt.pids[i]);
            kill(opt.kill_pid, SIGKILL);
            g_kill_ns = now_ns();
            killed = true;
        }
        if (t >= g_m1) break;
        if (started && t >= next_rss && n_rss < RSS_MAX) {
            double top = 0, top_anon = 0;
            for (int i = 0; i < opt.n_pids; i++) {
                if (killed && opt.pids[i] == opt.kill_pid) continue;
                proc_fig f = read_proc(opt.pids[i]);
                if (f.rss_mb > top) top = f.rss_mb;
                if (f.anon_mb > top_anon) top_anon = f.anon_mb;
            }
            anon_tl[n_rss] = top_anon;
            rss_tl[n_rss++] = top;
            next_rss = t + (uint64_t)RSS_EVERY_S * 1000000000u;
        }
        if (t - last_print >= 1000000000u) {
            uint64_t sec = (t - g_t0) / 1000000000u;
            fprintf(stderr, "[%s] t=%3" PRIu64 "s committed/s=%" PRIu64 " outstanding=%" PRId64
                            " lost=%" PRIu64 "\n",
                    opt.label, sec, sec ? g_tl[sec - 1] : 0, atomic_load(&g_outstanding),
                    atomic_load(&g_lost));
            last_print = t;
        }
        sleep_ns(20000000);
    }
    double self1 = self_cpu_s();
    for (int i = 0; i < opt.n_pids; i++)
        if (!(killed && opt.pids[i] == opt.kill_pid)) p1[i] = read_proc(opt.pids[i]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    /* Stop: senders first, then let the last commits arrive, then the watcher. */
    atomic_store(&g_stop, true);
    for (int i = 0; i < opt.n_targets; i++) pthread_join(snd[i].th, NULL);
    sleep_ns(300000000);
    pthread_mutex_lock(&g_watch_mu);
    if (g_watch_stream) hsc_stream_cancel(g_watch_stream);
    pthread_mutex_unlock(&g_watch_mu);
    pthread_join(wt, NULL);
    pthread_join(rt, NULL);
    hsc_close(wc);
    hsc_close(rc);

    qsort(g_lat, g_n_lat, sizeof *g_lat, cmp_u32);
    double dur = opt.duration_s;
    double tps = (double)g_win_txs / dur, bps = (double)g_win_blocks / dur;
    double self_cpu = self1 - self0;
    printf("%-22s %s\n", "scenario", opt.label);
    printf("%-22s %.1f s after %.1f s warm-up, %d targets, %s %.0f, %u-byte txs, batch %u\n",
           "load", dur, opt.warmup_s, opt.n_targets, opt.rate > 0 ? "rate" : "outstanding",
           opt.rate > 0 ? opt.rate : (double)opt.outstanding, opt.size, opt.batch);
    printf("%-22s %.0f tx/s (%.2f MB/s)\n", "committed", tps, (double)g_win_bytes / dur / 1e6);
    printf("%-22s %.1f blocks/s, %.1f tx/block\n", "blocks", bps,
           g_win_blocks ? (double)g_win_txs / (double)g_win_blocks : 0.0);
    printf("%-22s p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms (%zu samples)\n",
           "submit-to-commit", pct_ms(0.50), pct_ms(0.95), pct_ms(0.99), pct_ms(1.0), g_n_lat);
    printf("%-22s sent %" PRIu64 ", lost %" PRIu64 ", send errors %" PRIu64 "\n", "transactions",
           atomic_load(&g_sent), atomic_load(&g_lost), atomic_load(&g_send_errors));
    double cpu_total = 0;
    for (int i = 0; i < opt.n_pids; i++) {
        double c = p1[i].ok && p0[i].ok ? p1[i].cpu_s - p0[i].cpu_s : 0;
        cpu_total += c;
        printf("%-22s pid %d: cpu %.2f s (%.0f%%), rss %.1f -> %.1f MB, peak %.1f MB\n",
               i == 0 ? "replicas" : "", opt.pids[i], c, 100 * c / dur, rss_first[i],
               p1[i].rss_mb, p1[i].hwm_mb);
    }
    printf("%-22s cpu %.2f s (%.0f%%), peak rss %.1f MB\n", "load generator", self_cpu,
           100 * self_cpu / dur, (double)ru.ru_maxrss / 1024.0);
    if (g_win_txs)
        printf("%-22s %.1f us of replica CPU per committed tx\n", "cost",
               1e6 * cpu_total / (double)g_win_txs);
    if (killed)
        printf("%-22s pid %d at +%.1f s: longest commit gap after it %.0f ms, %.0f tx/s after\n",
               "kill", opt.kill_pid, opt.kill_at_s, (double)g_gap_after_kill_ns / 1e6,
               (double)g_after_kill_txs /
                   (dur - opt.kill_at_s > 0 ? dur - opt.kill_at_s : 1));
    for (int i = 0; i < opt.n_targets; i++)
        if (snd[i].err[0]) fprintf(stderr, "sender %s: %s\n", opt.targets[i], snd[i].err);
    if (g_watch_err[0]) fprintf(stderr, "watcher %s: %s\n", opt.targets[opt.watch], g_watch_err);

    /* The JSON line. */
    printf("{\"scenario\":\"%s\",\"duration_s\":%.1f,\"targets\":%d,\"tx_bytes\":%u,"
           "\"mode\":\"%s\",\"load\":%.0f,\"batch\":%u,"
           "\"committed_tx_per_s\":%.1f,\"blocks_per_s\":%.2f,\"tx_per_block\":%.1f,"
           "\"latency_ms\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"samples\":%zu},"
           "\"sent\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"replicas\":[",
           opt.label, dur, opt.n_targets, opt.size, opt.rate > 0 ? "open" : "closed",
           opt.rate > 0 ? opt.rate : (double)opt.outstanding, opt.batch, tps, bps,
           g_win_blocks ? (double)g_win_txs / (double)g_win_blocks : 0.0, pct_ms(0.50),
           pct_ms(0.95), pct_ms(0.99), pct_ms(1.0), g_n_lat, atomic_load(&g_sent),
           atomic_load(&g_lost));
    for (int i = 0; i < opt.n_pids; i++)
        printf("%s{\"pid\":%d,\"cpu_s\":%.3f,\"rss_start_mb\":%.1f,\"rss_end_mb\":%.1f,"
               "\"peak_rss_mb\":%.1f}",
               i ? "," : "", opt.pids[i], p1[i].ok && p0[i].ok ? p1[i].cpu_s - p0[i].cpu_s : 0,
               rss_first[i], p1[i].rss_mb, p1[i].hwm_mb);
    printf("],\"replica_cpu_us_per_tx\":%.2f,\"loadgen\":{\"cpu_s\":%.3f,\"peak_rss_mb\":%.1f}",
           g_win_txs ? 1e6 * cpu_total / (double)g_win_txs : 0.0, self_cpu,
           (double)ru.ru_maxrss / 1024.0);
    if (killed)
        printf(",\"kill\":{\"at_s\":%.1f,\"max_gap_ms\":%.1f,\"tx_per_s_after\":%.1f}",
               opt.kill_at_s, (double)g_gap_after_kill_ns / 1e6,
               (double)g_after_kill_txs / (dur - opt.kill_at_s > 0 ? dur - opt.kill_at_s : 1));
    printf(",\"rss_timeline_mb\":[");
    for (int i = 0; i < n_rss; i++) printf("%s%.1f", i ? "," : "", rss_tl[i]);
    printf("],\"anon_timeline_mb\":[");
    for (int i = 0; i < n_rss; i++) printf("%s%.1f", i ? "," : "", anon_tl[i]);
    printf("],\"rss_every_s\":%d", RSS_EVERY_S);
    printf(",\"timeline_tx_per_s\":[");
    uint64_t last_sec = (g_m1 - g_t0) / 1000000000u;
    for (uint64_t i = 0; i < last_sec && i < TIMELINE_MAX; i++)
        printf("%s%" PRIu64, i ? "," : "", g_tl[i]);
    printf("]}\n");
    fflush(stdout);
    free(g_lat);
    free(g_ring);
    free(g_cq.q);
    grpc_shutdown();
    return g_win_blocks ? 0 : 1;
}
