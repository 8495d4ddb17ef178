/* tests/sim/sim.c - the simulated world: replicas, network, faults, the event loop, and the
 * `sim` command line. See sim.h for the overall design.
 *
 * A seed runs in two phases. The fault phase lasts --steps events: messages are delayed,
 * dropped, duplicated and reordered, partitions form and heal, honest replicas crash (also
 * right after a KV write, before the messages that depend on it leave) and restart, writes
 * fail, and Byzantine replicas attack. Then every fault heals at once, crashed replicas
 * restart, and every honest replica must commit a block above the highest committed height
 * of that moment within --liveness-ms of virtual time. Safety is checked after every step.
 * Longer than 800 lines on purpose: the world's event loop and its faults are one state
 * machine; the apps, Byzantine strategies and checks are in files of their own.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotstuff/crypto.h"
#include "hotstuff/log.h"
#include "hotstuff/replica.h"
#include "sim.h"

/* ---- randomness ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(sim_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(sim_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t rng_below(sim_rng *r, uint64_t n) { return n ? rng_next(r) % n : 0; }
bool rng_chance(sim_rng *r, uint32_t per_mille) { return rng_below(r, 1000) < per_mille; }
uint64_t rng_range(sim_rng *r, uint64_t lo, uint64_t hi) {
    return lo + rng_below(r, hi - lo + 1);
}

/* ---- buffers ---- */

sim_buf *buf_new(const uint8_t *p, size_t len) {
    sim_buf *b = malloc(sizeof *b + len);
    if (!b) abort();
    b->refs = 1;
    b->len = (uint32_t)len;
    memcpy(b->data, p, len);
    return b;
}

void buf_unref(sim_buf *b) {
    if (b && --b->refs == 0) free(b);
}

/* ---- the event heap: min by (t, seq), so equal times run in push order ---- */

static bool ev_less(const sim_ev *a, const sim_ev *b) {
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void sim_push(sim_world *w, uint64_t t, ev_kind kind, int to, int from, uint32_t gen,
              sim_buf *buf) {
    if (w->heap_n == w->heap_cap) {
        w->heap_cap = w->heap_cap ? w->heap_cap * 2 : 1024;
        w->heap = realloc(w->heap, w->heap_cap * sizeof *w->heap);
        if (!w->heap) abort();
    }
    sim_ev e = {.t = t, .seq = w->seq++, .kind = (uint8_t)kind, .to = (uint8_t)to,
                .from = (uint8_t)from, .gen = gen, .buf = buf};
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&e, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
}

static sim_ev heap_pop(sim_world *w) {
    sim_ev top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ev_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!ev_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* ---- failure reporting ---- */

void sim_fail(sim_world *w, const char *fmt, ...) {
    if (w->failed) return; /* the first violation is the one to replay */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof w->why, fmt, ap);
    va_end(ap);
    w->failed = true;
}

int sim_node_by_key(const sim_world *w, const hs_key *k) {
    for (uint32_t i = 0; i < w->n; i++)
        if (memcmp(w->nodes[i].kp.public_key.b, k->b, HS_KEY_LEN) == 0) return (int)i;
    return -1;
}

/* ---- network ---- */

/* Exponentially distributed extra latency; deterministic for a given binary. */
static uint64_t draw_latency(sim_world *w) {
    const sim_netcfg *c = &w->net;
    double u = ((double)(rng_next(&w->rng) >> 11) + 0.5) / 9007199254740992.0;
    uint64_t d = c->lat_min + (uint64_t)(-log(u) * (double)c->lat_mean);
    if (c->spike_pm && rng_chance(&w->rng, c->spike_pm)) d += rng_range(&w->rng, 0, c->spike_max);
    return d;
}

/* Sends one reference of b from `from` to `to` through the current faults. */
static void route(sim_world *w, int from, int to, sim_buf *b) {
    if (from == to) { /* local delivery: never lost; the protocol relies on it */
        b->refs++;
        sim_push(w, w->now + rng_below(&w->rng, 2), EV_DELIVER, to, from, 0, b);
        return;
    }
    if (w->net.blocked[from][to] || rng_chance(&w->rng, w->net.drop_pm)) {
        w->drops++;
        return;
    }
    int copies = rng_chance(&w->rng, w->net.dup_pm) ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        b->refs++;
        sim_push(w, w->now + draw_latency(w), EV_DELIVER, to, from, 0, b);
    }
}

static sim_buf *encode(sim_world *w, int from, const hs_msg *m) {
    uint8_t *p = NULL;
    size_t len = 0;
    if (hs_msg_encode(m, &p, &len) != HS_OK) {
        sim_fail(w, "replica %d handed the network a message that does not encode (%s)", from,
                 hs_msg_type_name(m->type));
        return NULL;
    }
    sim_buf *b = buf_new(p, len);
    free(p);
    return b;
}

void sim_net_send(sim_world *w, int from, int to, const hs_msg *m) {
    sim_buf *b = encode(w, from, m);
    if (!b) return;
    route(w, from, to, b);
    buf_unref(b);
}

static void sim_net_broadcast(sim_world *w, int from, const hs_msg *m) {
    sim_buf *b = encode(w, from, m);
    if (!b) return;
    for (uint32_t j = 0; j < w->n; j++) route(w, from, (int)j, b);
    buf_unref(b);
}

void sim_net_send_bytes(sim_world *w, int from, int to, const uint8_t *p, size_t len) {
    hs_msg m = {0};
    hs_limits lim = hs_limits_default();
    if (hs_msg_decode(p, len, &lim, &m) != HS_OK) { /* only what decodes is delivered */
        w->undecodable++;
        return;
    }
    hs_msg_free(&m);
    sim_buf *b = buf_new(p, len);
    route(w, from, to, b);
    buf_unref(b);
}

/* The hs_network of a replica. A dying replica (crashed inside this step) sends nothing; an
 * honest replica's PhaseVotes are checked before that, so a vote lost to a crash still counts
 * as signed. */
static void net_broadcast(void *self, const hs_msg *m) {
    sim_node *n = self;
    /* PhaseVotes are broadcast under HS_VOTES_TO_ALL. */
    if (!n->byz && m->type == HS_MSG_PHASE_VOTE) check_outgoing_vote(n->w, n, &m->u.phase_vote);
    if (n->dying || n->silent) return;
    if (n->byz) byz_broadcast(n, m);
    else sim_net_broadcast(n->w, n->id, m);
}

static void net_send(void *self, const hs_key *to, const hs_msg *m) {
    sim_node *n = self;
    if (!n->byz && m->type == HS_MSG_PHASE_VOTE) check_outgoing_vote(n->w, n, &m->u.phase_vote);
    if (n->dying || n->silent) return;
    if (n->byz) {
        byz_send(n, to, m);
        return;
    }
    int j = sim_node_by_key(n->w, to);
    if (j >= 0) sim_net_send(n->w, n->id, j, m);
}

void sim_net_broadcast_from(sim_world *w, int from, const hs_msg *m) {
    sim_net_broadcast(w, from, m);
}

/* ---- the KV wrapper: crash right after a write, or fail a write ---- */

static hs_status kv_get(void *self, const uint8_t *key, size_t klen, uint8_t **val,
                        size_t *vlen) {
    sim_node *n = self;
    return n->inner.get(n->inner.self, key, klen, val, vlen);
}

static hs_status kv_write(void *self, const hs_write_batch *b) {
    sim_node *n = self;
    if (n->dying) return HS_ERR_IO; /* the process is gone: nothing more reaches the disk */
    if (n->fail_next_write) {
        n->fail_next_write = false;
        n->io_failed = true;
        return HS_ERR_IO;
    }
    hs_status st = n->inner.write(n->inner.self, b);
    if (st == HS_OK && n->crash_after_writes > 0 && --n->crash_after_writes == 0) n->dying = true;
    return st;
}

static hs_status kv_snapshot(void *self, hs_kv_reader *out) {
    sim_node *n = self;
    return n->inner.snapshot(n->inner.self, out);
}

static void kv_release(void *self, hs_kv_reader *snap) {
    sim_node *n = self;
    n->inner.release_snapshot(n->inner.self, snap);
}

/* ---- events from the cores ---- */

static void on_event(void *ctx, const hs_event *e) {
    sim_node *n = ctx;
    sim_world *w = n->w;
    if (w->o->verbose) { /* the spec's log line of every event, under the step that caused it */
        char line[256];
        hs_event_format(e, line, sizeof line);
        printf("                               n%d%s: %s\n", n->id, n->byz ? "*" : "", line);
    }
    if (e->type == HS_EV_COMMIT_BLOCK) {
        if (n->n_step_commits < sizeof n->step_commits / sizeof n->step_commits[0])
            n->step_commits[n->n_step_commits++] = e->u.commit_block.block;
        else n->step_commit_overflow = true;
        /* Heights are tracked for honest replicas only (check.c). */
        trace_add(w, TR_COMMIT, n->id, 0, 0, n->n_committed + n->n_step_commits - 1, 0,
                  n->byz ? "height untracked" : NULL);
    } else if (e->type == HS_EV_UPDATE_VALIDATOR_SET) {
        n->step_vs_update = true;
        if (!n->byz) w->vs_updates++;
        trace_add(w, TR_VS_UPDATE, n->id, 0, 0, 0, 0, NULL);
    }
}

static uint64_t virtual_wall(void *ctx) {
    const sim_world *w = ctx;
    return 1700000000000ull + w->now;
}

static void sim_log(void *ctx, hs_log_level level, const char *module, const char *msg) {
    sim_world *w = ctx;
    char note[40];
    snprintf(note, sizeof note, "%s: %s", module, msg);
    trace_add(w, TR_LOG, w->cur_node < 0 ? 255 : w->cur_node, 0, (int)level, 0, 0, note);
}

/* ---- replicas: start, step, crash ---- */

static void reschedule(sim_world *w, sim_node *n) {
    uint64_t d = hs_core_deadline(n->core);
    if (d < w->now) d = w->now; /* overdue: step again right away */
    if (d != n->wake_at) {
        n->wake_at = d;
        n->wake_gen++;
        if (d != UINT64_MAX) sim_push(w, d, EV_WAKE, n->id, n->id, n->wake_gen, NULL);
    }
    d = hs_sync_server_deadline(n->srv);
    if (d < w->now) d = w->now;
    if (d != n->srv_wake_at) {
        n->srv_wake_at = d;
        n->srv_gen++;
        if (d != UINT64_MAX) sim_push(w, d, EV_SRV_WAKE, n->id, n->id, n->srv_gen, NULL);
    }
}

static void start_node(sim_world *w, sim_node *n) {
    n->dying = n->io_failed = n->fail_next_write = false;
    n->crash_after_writes = 0;
    w->cur_node = n->id;
    hs_status st = hs_core_new(&n->cfg, &n->env, w->now, &n->core);
    if (st == HS_OK) st = hs_sync_server_new(&n->cfg, &n->env, w->now, &n->srv);
    w->cur_node = -1;
    if (st != HS_OK) {
        sim_fail(w, "replica %d cannot start from its store: %s", n->id, hs_status_str(st));
        hs_core_free(n->core);
        n->core = NULL;
        return;
    }
    n->up = true;
    n->wake_at = n->srv_wake_at = UINT64_MAX;
    reschedule(w, n);
    if (!n->byz) check_after_step(w, n);
}

static void crash_node(sim_world *w, sim_node *n, tr_kind why) {
    trace_add(w, why, n->id, 0, 0, n->crashes + 1, 0, NULL);
    hs_core_free(n->core);
    hs_sync_server_free(n->srv);
    n->core = NULL;
    n->srv = NULL;
    n->up = false;
    n->dying = n->io_failed = n->fail_next_write = false;
    n->crash_after_writes = 0;
    n->crashes++;
    n->wake_at = n->srv_wake_at = UINT64_MAX;
    n->wake_gen++;
    n->srv_gen++;
    w->crashes++;
    if (n->never_restart) return;
    uint64_t down = w->faults_on ? rng_range(&w->rng, 100, 8000) : 1;
    sim_push(w, w->now + down, EV_RESTART, n->id, n->id, n->crashes, NULL);
}

void sim_crash(sim_world *w, sim_node *n) { crash_node(w, n, TR_CRASH); }

/* After any step of a replica's core: act on a crash or write failure injected during it,
 * otherwise schedule its next wake-up; then check the invariants on its store. */
static void after_step(sim_world *w, sim_node *n, hs_status st) {
    if (n->dying) crash_node(w, n, TR_CRASH_AFTER_WRITE);
    else if (n->io_failed) crash_node(w, n, TR_IO_FAIL);
    else if (st != HS_OK) {
        if (!n->byz)
            sim_fail(w, "honest replica %d halted without an injected fault: %s", n->id,
                     hs_status_str(st));
        crash_node(w, n, TR_CRASH);
    } else reschedule(w, n);
    if (!n->byz) check_after_step(w, n);
}

static void step_core(sim_world *w, sim_node *n, const hs_key *origin, hs_msg *m) {
    n->n_step_commits = 0;
    n->step_commit_overflow = n->step_vs_update = false;
    w->cur_node = n->id;
    hs_status st = hs_core_step(n->core, w->now, origin, m);
    w->cur_node = -1;
    after_step(w, n, st);
}

static void deliver(sim_world *w, sim_ev *e) {
    sim_node *n = &w->nodes[e->to];
    const sim_node *from = &w->nodes[e->from];
    hs_msg m = {0};
    hs_limits lim = hs_limits_default();
    if (hs_msg_decode(e->buf->data, e->buf->len, &lim, &m) != HS_OK) {
        /* Honest bytes always decode (they were encoded by hs_msg_encode). */
        if (!from->byz) sim_fail(w, "a message from honest replica %d does not decode", e->from);
        trace_add(w, TR_DROP_UNDECODABLE, e->from, e->to, 0, 0, 0, NULL);
        w->undecodable++;
        return;
    }
    uint64_t view = 0;
    hs_msg_view(&m, &view);
    trace_add(w, TR_DELIVER, e->from, e->to, m.type, view,
              m.type == HS_MSG_PROPOSAL ? m.u.proposal.block.height : 0, n->up ? NULL : "down");
    if (!n->up) {
        hs_msg_free(&m);
        return;
    }
    w->deliveries++;
    if (m.type == HS_MSG_SYNC_REQUEST) {
        w->cur_node = n->id;
        hs_status st = hs_sync_server_handle(n->srv, w->now, &from->kp.public_key,
                                             &m.u.sync_request);
        w->cur_node = -1;
        hs_msg_free(&m);
        if (st != HS_OK && !n->byz)
            sim_fail(w, "sync server of replica %d failed: %s", n->id, hs_status_str(st));
        return;
    }
    step_core(w, n, &from->kp.public_key, &m);
}

/* ---- the fault injector ---- */

static int random_node(sim_world *w, bool honest_only, bool up_only) {
    int cand[SIM_MAX_NODES], k = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        const sim_node *n = &w->nodes[i];
        if ((honest_only && n->byz) || (up_only && !n->up)) continue;
        cand[k++] = (int)i;
    }
    return k ? cand[rng_below(&w->rng, (uint64_t)k)] : -1;
}

static void clear_blocked(sim_world *w) { memset(w->net.blocked, 0, sizeof w->net.blocked); }

static void new_partition(sim_world *w, tr_kind kind) {
    clear_blocked(w);
    bool side[SIM_MAX_NODES];
    int iso = kind == TR_ISOLATE ? random_node(w, false, false) : -1;
    for (uint32_t i = 0; i < w->n; i++) side[i] = iso >= 0 ? (int)i == iso : rng_chance(&w->rng, 500);
    for (uint32_t i = 0; i < w->n; i++)
        for (uint32_t j = 0; j < w->n; j++) {
            if (side[i] == side[j]) continue;
            /* one-way: only side A -> side B is cut */
            if (kind == TR_ONEWAY && !side[i]) continue;
            w->net.blocked[i][j] = true;
        }
    w->net.partition_gen++;
    w->partitions++;
    uint64_t dur = rng_range(&w->rng, 300, 10000);
    uint64_t mask = 0;
    for (uint32_t i = 0; i < w->n; i++) mask |= (uint64_t)side[i] << i;
    trace_add(w, kind, iso < 0 ? 0 : iso, 0, 0, mask, dur, NULL);
    sim_push(w, w->now + dur, EV_HEAL, 0, 0, w->net.partition_gen, NULL);
}

static void new_net_profile(sim_world *w) {
    sim_netcfg *c = &w->net;
    c->drop_pm = rng_chance(&w->rng, 300) ? 0 : (uint32_t)rng_range(&w->rng, 0, 150);
    c->dup_pm = (uint32_t)rng_range(&w->rng, 0, 60);
    c->lat_min = rng_range(&w->rng, 1, 30);
    c->lat_mean = rng_range(&w->rng, 2, 120);
    c->spike_pm = (uint32_t)rng_range(&w->rng, 0, 40);
    c->spike_max = rng_range(&w->rng, 100, 3 * w->max_view_time);
    trace_add(w, TR_NETPROFILE, 0, 0, 0, c->drop_pm, c->lat_mean, NULL);
}

static void chaos(sim_world *w) {
    uint64_t r = rng_below(&w->rng, 100);
    if (r < 6) { /* crash now */
        int i = random_node(w, true, true);
        if (i >= 0) crash_node(w, &w->nodes[i], TR_CRASH);
    } else if (r < 14) { /* crash right after one of its next writes */
        int i = random_node(w, true, true);
        if (i >= 0 && !w->nodes[i].crash_after_writes && !w->nodes[i].fail_next_write) {
            w->nodes[i].crash_after_writes = (int)rng_range(&w->rng, 1, 4);
            trace_add(w, TR_CRASH_AFTER_WRITE, i, 0, 0, (uint64_t)w->nodes[i].crash_after_writes,
                      0, "armed");
        }
    } else if (r < 17) { /* a failing write: the core must halt, and restart cleanly */
        int i = random_node(w, true, true);
        if (i >= 0 && !w->nodes[i].crash_after_writes) {
            w->nodes[i].fail_next_write = true;
            trace_add(w, TR_IO_FAIL, i, 0, 0, 0, 0, "armed");
        }
    } else if (r < 40) {
        new_partition(w, TR_PARTITION);
    } else if (r < 48) {
        new_partition(w, TR_ONEWAY);
    } else if (r < 56) {
        new_partition(w, TR_ISOLATE);
    } else if (r < 72) {
        new_net_profile(w);
    } else if (r < 78) {
        clear_blocked(w);
        w->net.partition_gen++;
        trace_add(w, TR_HEAL, 0, 0, 0, 0, 0, "early");
    }
    sim_push(w, w->now + rng_range(&w->rng, 100, 2000), EV_CHAOS, 0, 0, 0, NULL);
}

/* The last fault heals: from here on, every honest replica must make progress. */
static void end_faults(sim_world *w) {
    w->faults_on = false;
    clear_blocked(w);
    w->net.partition_gen++;
    w->net.drop_pm = w->net.dup_pm = w->net.spike_pm = 0;
    w->net.lat_min = 1;
    w->net.lat_mean = 20;
    w->heal_time = w->now;
    uint64_t target = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        sim_node *n = &w->nodes[i];
        n->crash_after_writes = 0;
        n->fail_next_write = false;
        if (!n->byz && n->n_committed > target) target = n->n_committed;
    }
    w->live_target = target;
    trace_add(w, TR_PHASE_END, 0, 0, 0, target, 0, NULL);
    for (uint32_t i = 0; i < w->n; i++)
        if (!w->nodes[i].up && !w->failed) start_node(w, &w->nodes[i]);
}

/* ---- one event ---- */

static void run_event(sim_world *w, sim_ev *e) {
    sim_node *n = &w->nodes[e->to];
    switch ((ev_kind)e->kind) {
    case EV_DELIVER:
        deliver(w, e);
        break;
    case EV_WAKE:
        if (!n->up || e->gen != n->wake_gen) break;
        n->wake_at = UINT64_MAX;
        trace_add(w, TR_WAKE, n->id, 0, 0, hs_core_view(n->core), 0, NULL);
        step_core(w, n, NULL, NULL);
        break;
    case EV_SRV_WAKE: {
        if (!n->up || e->gen != n->srv_gen) break;
        n->srv_wake_at = UINT64_MAX;
        trace_add(w, TR_SRV, n->id, 0, 0, 0, 0, NULL);
        w->cur_node = n->id;
        hs_status st = hs_sync_server_tick(n->srv, w->now);
        w->cur_node = -1;
        if (st != HS_OK && !n->byz)
            sim_fail(w, "sync server of replica %d failed: %s", n->id, hs_status_str(st));
        reschedule(w, n);
        break;
    }
    case EV_CHAOS:
        if (w->o->scenario != SCEN_CHAOS) { /* live.c's scheduled crash of `to` */
            if (n->up) sim_crash(w, n);
        } else if (w->faults_on && !w->o->calm) {
            chaos(w);
        }
        break;
    case EV_RESTART:
        if (n->up || e->gen != n->crashes) break;
        trace_add(w, TR_RESTART, n->id, 0, 0, n->crashes, 0, NULL);
        w->restarts++;
        start_node(w, n);
        break;
    case EV_HEAL:
        if (e->gen != w->net.partition_gen) break;
        clear_blocked(w);
        trace_add(w, TR_HEAL, 0, 0, 0, 0, 0, NULL);
        break;
    case EV_BYZ:
        if (n->up) byz_attack(n);
        sim_push(w, w->now + rng_range(&w->rng, 100, 700), EV_BYZ, n->id, n->id, 0, NULL);
        break;
    case EV_KIND_COUNT:
        break;
    }
}

/* ---- one seed ---- */

static void setup(sim_world *w) {
    const sim_opts *o = w->o;
    rng_seed(&w->rng, w->seed);
    w->n = o->n;
    w->faults_on = true;
    w->cur_node = -1;
    w->epoch_length = (uint32_t)rng_range(&w->rng, 2, 10);
    w->max_view_time = 1000;
    w->vs_change_pm = (uint32_t)rng_range(&w->rng, 0, 80);
    if (o->vs_pm >= 0) w->vs_change_pm = (uint32_t)o->vs_pm;
    new_net_profile(w);
    if (o->calm || o->scenario != SCEN_CHAOS) w->net.drop_pm = w->net.dup_pm = w->net.spike_pm = 0;

    /* Which replicas are Byzantine: F of them, chosen by the seed. */
    uint32_t byz = 0;
    while (byz < o->f) {
        uint32_t i = (uint32_t)rng_below(&w->rng, w->n);
        if (!w->nodes[i].byz) {
            w->nodes[i].byz = true;
            byz++;
        }
    }
    for (uint32_t i = 0; i < w->n; i++) {
        sim_node *n = &w->nodes[i];
        n->w = w;
        n->id = (int)i;
        uint8_t seed[32] = {0};
        uint64_t s = rng_next(&w->rng);
        memcpy(seed, &s, sizeof s);
        seed[8] = (uint8_t)i;
        if (hs_keypair_from_seed(seed, &n->kp) != HS_OK) abort();
    }
    if (o->scenario == SCEN_CHAOS) sim_make_configs(w);
    else live_setup(w);

    /* Small timeouts, so that epoch changes, timeout certificates and sync all happen. */
    uint64_t buffer_caps[] = {1024, 4096, 65536};
    uint64_t bufcap = buffer_caps[rng_below(&w->rng, 3)];
    uint32_t req_limit = (uint32_t)rng_range(&w->rng, 1, 10);
    for (uint32_t i = 0; i < w->n; i++) {
        sim_node *n = &w->nodes[i];
        n->cfg = hs_config_test_values(&n->kp); /* the reference's liveness choices */
        if (!o->reference) hs_config_default_liveness(&n->cfg);
        n->cfg.chain_id = 7;
        n->cfg.epoch_length = w->epoch_length;
        n->cfg.max_view_time_ms = w->max_view_time;
        n->cfg.block_sync_server_advertise_time_ms = 2000;
        n->cfg.block_sync_trigger_timeout_ms = 5000;
        n->cfg.block_sync_response_timeout_ms = 1000;
        n->cfg.block_sync_blacklist_expiry_time_ms = 5000;
        n->cfg.block_sync_request_limit = req_limit;
        n->cfg.progress_msg_buffer_capacity = bufcap;

        n->store = hs_mem_store_new();
        if (!n->store) abort();
        n->inner = hs_mem_store_kv(n->store);
        n->kv = (hs_kv_store){.self = n, .get = kv_get, .write = kv_write,
                              .snapshot = kv_snapshot, .release_snapshot = kv_release};
        n->net = (hs_network){.self = n, .broadcast = net_broadcast, .send = net_send};
        n->app_ctx = (sim_app_ctx){.w = w, .id = (int)i};
        n->env = (hs_core_env){.app = sim_app(&n->app_ctx), .net = n->net, .kv = n->kv,
                               .emit = on_event, .emit_ctx = n,
                               .wall_clock_ms = virtual_wall, .clock_ctx = w,
                               .rng_seed = rng_next(&w->rng) | 1};

        hs_vss vss = {0};
        if (hs_vs_copy(&vss.committed, &w->configs[0]) != HS_OK ||
            hs_vs_copy(&vss.previous, &w->configs[0]) != HS_OK)
            abort();
        vss.update_decided = true;
        hs_app_updates init = {0};
        hs_status st = hs_replica_initialize(&n->inner, &init, &vss);
        hs_vss_free(&vss);
        if (st != HS_OK) {
            sim_fail(w, "initialize replica %u: %s", i, hs_status_str(st));
            return;
        }
    }
    for (uint32_t i = 0; i < w->n && !w->failed; i++) {
        start_node(w, &w->nodes[i]);
        if (w->nodes[i].byz && !w->nodes[i].silent && !o->calm)
            sim_push(w, rng_range(&w->rng, 100, 700), EV_BYZ, (int)i, (int)i, 0, NULL);
    }
    if (o->scenario == SCEN_CHAOS)
        sim_push(w, rng_range(&w->rng, 50, 1500), EV_CHAOS, 0, 0, 0, NULL);
}

static void teardown(sim_world *w) {
    for (uint32_t i = 0; i < w->n; i++) {
        sim_node *n = &w->nodes[i];
        hs_core_free(n->core);
        hs_sync_server_free(n->srv);
        hs_mem_store_free(n->store);
    }
    for (size_t i = 0; i < w->heap_n; i++) buf_unref(w->heap[i].buf);
    free(w->heap);
    for (uint32_t k = 0; k < w->n_configs; k++) hs_vs_free(&w->configs[k]);
    free(w->canon);
}

/* The command line that replays `seed` exactly. */
static void replay_line(const sim_opts *o, uint64_t seed, char *buf, size_t cap) {
    snprintf(buf, cap, "sim --replicas %u --byzantine %u --steps %llu --liveness-ms %llu%s%s%s",
             o->n, o->f, (unsigned long long)o->steps, (unsigned long long)o->liveness_ms,
             o->calm ? " --calm" : "", o->tolerate_known ? " --tolerate-known" : "",
             o->vs_pm >= 0 ? " --vs-rate" : "");
    size_t l = strlen(buf);
    if (o->vs_pm >= 0) snprintf(buf + l, cap - l, " %d", o->vs_pm);
    l = strlen(buf);
    if (o->reference) snprintf(buf + l, cap - l, " --reference");
    l = strlen(buf);
    if (o->scenario != SCEN_CHAOS)
        snprintf(buf + l, cap - l, " --scenario %s --powers %s --duration-ms %llu --max-gap-ms %llu",
                 o->scenario == SCEN_CRASH ? "crash" : "silent", o->unequal ? "unequal" : "equal",
                 (unsigned long long)o->duration_ms, (unsigned long long)o->max_gap_ms);
    l = strlen(buf);
    snprintf(buf + l, cap - l, " --seed %llu", (unsigned long long)seed);
}

/* The replicas' state, for a failure report. */
static void print_states(const sim_world *w) {
    printf("  replicas (epoch length %u, buffer %llu B):\n", w->epoch_length,
           (unsigned long long)w->nodes[0].cfg.progress_msg_buffer_capacity);
    for (uint32_t i = 0; i < w->n; i++) {
        const sim_node *n = &w->nodes[i];
        hs_kv_reader rd = hs_kv_store_reader(&n->inner);
        hs_pc hpc = {0}, lock = {0};
        hs_tc tc = {0};
        uint64_t hve = 0, hvv = 0;
        hs_bt_highest_pc(&rd, &hpc);
        hs_bt_locked_pc(&rd, &lock);
        bool has_tc = hs_bt_highest_tc(&rd, &tc) == HS_OK;
        hs_bt_highest_view_entered(&rd, &hve);
        hs_bt_highest_view_phase_voted(&rd, &hvv);
        hs_vss vss = {0};
        hs_bt_vss(&rd, &vss);
        char key[8], members[128] = "";
        hs_b64_short(n->kp.public_key.b, HS_KEY_LEN, key);
        for (uint32_t k = 0; k < vss.committed.n; k++) {
            size_t l = strlen(members);
            snprintf(members + l, sizeof members - l, "%sn%d:%llu", k ? "," : "",
                     sim_node_by_key(w, &vss.committed.v[k].key),
                     (unsigned long long)vss.committed.v[k].power);
        }
        printf("    n%u%s [%s] %s view %llu%s, entered %llu, voted %llu, highest PC %s@%llu, lock "
               "%s@%llu, highest TC %lld, committed %llu, CVS {%s}%s%s\n",
               i, n->byz ? "*" : "", key,
               n->up ? "up" : "DOWN",
               (unsigned long long)(n->core ? hs_core_view(n->core) : 0),
               n->core && hs_core_is_syncing(n->core) ? " (syncing)" : "",
               (unsigned long long)hve, (unsigned long long)hvv, hs_phase_name(hpc.phase),
               (unsigned long long)hpc.view, hs_phase_name(lock.phase),
               (unsigned long long)lock.view, has_tc ? (long long)tc.view : -1LL,
               (unsigned long long)n->n_committed, members,
               hs_vs_contains(&vss.committed, &n->kp.public_key) ? " (member)" : "",
               vss.update_decided ? "" : " undecided");
        hs_pc_free(&hpc);
        hs_pc_free(&lock);
        hs_tc_free(&tc);
        hs_vss_free(&vss);
    }
}

/* Runs one seed; returns true if no violation. */
static bool run_seed(const sim_opts *o, uint64_t seed, uint64_t *steps_out, sim_world *stats) {
    sim_world *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->o = o;
    w->seed = seed;
    hs_log_set_handler(sim_log, w);
    setup(w);
    uint64_t same_time = 0, last_t = 0;
    bool done = false;
    while (!w->failed && !done) {
        if (w->heap_n == 0) {
            sim_fail(w, "nothing left to happen (event queue empty)");
            break;
        }
        sim_ev e = heap_pop(w);
        if (e.t < w->now) sim_fail(w, "simulator bug: time went backwards");
        w->now = e.t;
        same_time = e.t == last_t ? same_time + 1 : 0;
        last_t = e.t;
        if (same_time > 200000) {
            sim_fail(w, "virtual time stalls at %llu ms: a replica keeps asking to be stepped now",
                     (unsigned long long)w->now);
            buf_unref(e.buf);
            break;
        }
        w->step++;
        if (o->scenario != SCEN_CHAOS) { /* steady faults: run for the duration, then check */
            if (w->now >= o->duration_ms) {
                buf_unref(e.buf);
                live_check(w);
                break;
            }
            run_event(w, &e);
            buf_unref(e.buf);
            continue;
        }
        if (w->faults_on && w->step >= o->steps) end_faults(w);
        run_event(w, &e);
        buf_unref(e.buf);
        if (!w->faults_on && !w->failed) {
            check_liveness(w);
            if (w->known && o->tolerate_known) break;
            done = true;
            for (uint32_t i = 0; i < w->n; i++)
                if (!w->nodes[i].byz && !w->nodes[i].live_target_met) done = false;
        }
    }
    if (!w->failed) check_final(w);

    bool ok = !w->failed;
    if (!ok) {
        printf("VIOLATION seed=%llu step=%llu t=%llums: %s\n", (unsigned long long)seed,
               (unsigned long long)w->step, (unsigned long long)w->now, w->why);
        char line[256];
        replay_line(o, seed, line, sizeof line);
        printf("  replay: %s [--verbose]\n", line);
        printf("  last events:\n");
        trace_print(w, 50);
        print_states(w);
        fflush(stdout);
    } else if (o->verbose) {
        printf("seed %llu ok: %llu steps, %llu ms virtual, chain %llu blocks\n",
               (unsigned long long)seed, (unsigned long long)w->step,
               (unsigned long long)w->now, (unsigned long long)w->n_canon);
    }
    if (ok && w->known) {
        stats->known++;
        char line[256];
        replay_line(o, seed, line, sizeof line);
        if (!o->quiet) printf("known stall K%d (tolerated) seed=%llu: %s\n", w->known,
                              (unsigned long long)seed, line);
    }
    *steps_out = w->step;
    if (o->scenario != SCEN_CHAOS) {
        uint64_t gap, commits, first;
        live_report(w, &gap, &commits, &first);
        if (gap > stats->live_max_gap) stats->live_max_gap = gap;
        if (commits < stats->live_min_commits) stats->live_min_commits = commits;
        if (first > stats->live_first_commit) stats->live_first_commit = first;
        if (o->verbose || !o->quiet)
            printf("seed %llu: longest time without a commit %llu ms, fewest commits after the "
                   "faults %llu, first commit by %llu ms\n", (unsigned long long)seed,
                   (unsigned long long)gap, (unsigned long long)commits,
                   (unsigned long long)first);
    }
    stats->deliveries += w->deliveries;
    stats->drops += w->drops;
    stats->undecodable += w->undecodable;
    stats->crashes += w->crashes;
    stats->restarts += w->restarts;
    stats->byz_attacks += w->byz_attacks;
    stats->vs_updates += w->vs_updates;
    stats->partitions += w->partitions;
    stats->max_commit += w->n_canon;
    stats->now += w->now;
    hs_log_set_handler(NULL, NULL);
    teardown(w);
    free(w);
    return ok;
}

/* ---- command line ---- */

static void usage(void) {
    fprintf(stderr,
            "usage: sim [--replicas N] [--byzantine F] [--seeds K] [--first-seed B] [--steps M]\n"
            "           [--seed S] [--liveness-ms L] [--verbose] [--quiet] [--reference]\n"
            "           [--scenario chaos|crash|silent] [--powers equal|unequal]\n"
            "           [--duration-ms D] [--max-gap-ms G]\n"
            "  Runs seeds B..B+K-1 (or only S) of N replicas. chaos (the default): F of them\n"
            "  Byzantine, M fault-phase steps, then every fault heals and recovery is checked.\n"
            "  crash / silent: up to a third of the power crashes for good / never speaks, for D\n"
            "  ms of virtual time, and no honest replica may go G ms without a commit.\n"
            "  --reference: HotStuff-rs v0.4's leader selection, vote routing and deadlines.\n"
            "  Exit 0 only if no seed shows a violation.\n");
}

static bool parse_u64(const char *s, uint64_t *out) {
    char *end = NULL;
    if (!s || !*s) return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) return false;
    *out = v;
    return true;
}

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    sim_opts o = {.n = 4, .f = 1, .steps = 3000, .liveness_ms = 60000, .vs_pm = -1,
                  .duration_ms = 60000, .max_gap_ms = 0};
    uint64_t seeds = 10, first = 1, one = 0, v;
    bool replay = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--verbose")) o.verbose = true;
        else if (!strcmp(a, "--quiet")) o.quiet = true;
        else if (!strcmp(a, "--calm")) o.calm = true;
        else if (!strcmp(a, "--tolerate-known")) o.tolerate_known = true;
        else if (!strcmp(a, "--reference")) o.reference = true;
        else if (!strcmp(a, "--scenario") && arg && !strcmp(arg, "chaos")) o.scenario = SCEN_CHAOS, i++;
        else if (!strcmp(a, "--scenario") && arg && !strcmp(arg, "crash")) o.scenario = SCEN_CRASH, i++;
        else if (!strcmp(a, "--scenario") && arg && !strcmp(arg, "silent")) o.scenario = SCEN_SILENT, i++;
        else if (!strcmp(a, "--powers") && arg && !strcmp(arg, "equal")) o.unequal = false, i++;
        else if (!strcmp(a, "--powers") && arg && !strcmp(arg, "unequal")) o.unequal = true, i++;
        else if (!strcmp(a, "--duration-ms") && parse_u64(arg, &v)) o.duration_ms = v, i++;
        else if (!strcmp(a, "--max-gap-ms") && parse_u64(arg, &v)) o.max_gap_ms = v, i++;
        else if (!strcmp(a, "--vs-rate") && parse_u64(arg, &v)) o.vs_pm = (int)v, i++;
        else if (!strcmp(a, "--replicas") && parse_u64(arg, &v)) o.n = (uint32_t)v, i++;
        else if (!strcmp(a, "--byzantine") && parse_u64(arg, &v)) o.f = (uint32_t)v, i++;
        else if (!strcmp(a, "--seeds") && parse_u64(arg, &v)) seeds = v, i++;
        else if (!strcmp(a, "--first-seed") && parse_u64(arg, &v)) first = v, i++;
        else if (!strcmp(a, "--steps") && parse_u64(arg, &v)) o.steps = v, i++;
        else if (!strcmp(a, "--liveness-ms") && parse_u64(arg, &v)) o.liveness_ms = v, i++;
        else if (!strcmp(a, "--seed") && parse_u64(arg, &v)) one = v, replay = true, i++;
        else {
            usage();
            return 2;
        }
    }
    if (o.n < 1 || o.n > SIM_MAX_NODES || o.f >= o.n) {
        fprintf(stderr, "sim: need 1 <= replicas <= %d and byzantine < replicas\n", SIM_MAX_NODES);
        return 2;
    }
    if (o.scenario != SCEN_CHAOS) {
        o.f = 0; /* the faulty set is drawn by live.c */
        /* Default bound: 5 x max_view_time (the simulator's is 1000 ms), see docs/liveness.md
         * ("What the simulator checks"). */
        if (o.max_gap_ms == 0) o.max_gap_ms = 5000;
    }
    if (hs_crypto_init() != HS_OK) return 2;
    hs_log_set_level(HS_LOG_WARN);
    if (replay) {
        first = one;
        seeds = 1;
    }

    double t0 = mono_seconds();
    uint64_t total_steps = 0, failed = 0, run = 0;
    sim_world stats;
    memset(&stats, 0, sizeof stats);
    stats.live_min_commits = UINT64_MAX;
    for (uint64_t s = first; s < first + seeds; s++) {
        uint64_t steps = 0;
        if (!run_seed(&o, s, &steps, &stats)) failed++;
        total_steps += steps;
        run++;
        if (!o.quiet && !o.verbose && run % 100 == 0) {
            printf("... %llu seeds, %llu violations\n", (unsigned long long)run,
                   (unsigned long long)failed);
            fflush(stdout);
        }
    }
    double dt = mono_seconds() - t0;
    printf("sim: replicas %u, byzantine %u: seeds run %llu (from %llu), steps %llu, "
           "violations %llu, known stalls tolerated %llu, %.2f s, %.2f seeds/s\n",
           o.n, o.f, (unsigned long long)run, (unsigned long long)first,
           (unsigned long long)total_steps, (unsigned long long)failed,
           (unsigned long long)stats.known, dt,
           dt > 0 ? (double)run / dt : 0.0);
    printf("     virtual time %.1f s, deliveries %llu, drops %llu, undecodable %llu, crashes %llu, "
           "restarts %llu, partitions %llu, byzantine attacks %llu, VS updates committed %llu, "
           "blocks committed %llu\n",
           (double)stats.now / 1000.0, (unsigned long long)stats.deliveries,
           (unsigned long long)stats.drops, (unsigned long long)stats.undecodable,
           (unsigned long long)stats.crashes, (unsigned long long)stats.restarts,
           (unsigned long long)stats.partitions, (unsigned long long)stats.byz_attacks,
           (unsigned long long)stats.vs_updates, (unsigned long long)stats.max_commit);
    if (o.scenario != SCEN_CHAOS)
        printf("     %s, %s powers, %llu ms each: longest time without a commit %llu ms (bound "
               "%llu), fewest commits by an honest replica after the faults %llu, every first "
               "commit by %llu ms\n",
               o.scenario == SCEN_CRASH ? "crashed for good" : "silent Byzantine",
               o.unequal ? "unequal" : "equal", (unsigned long long)o.duration_ms,
               (unsigned long long)stats.live_max_gap, (unsigned long long)o.max_gap_ms,
               (unsigned long long)stats.live_min_commits,
               (unsigned long long)stats.live_first_commit);
    return failed ? 1 : 0;
}
