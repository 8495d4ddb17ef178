/* server/admin/subscribe.c - event subscriptions: publish_event (any thread) fills each
 * subscriber's bounded ring; the CQ thread sends events, and commits from the store in height
 * order. */
#include "admin/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Subscribe.                                                                                 */

static void ev_fill(sub_ev *s, const hs_event *e) {
    memset(s, 0, sizeof *s);
    s->type = (uint8_t)e->type;
    s->ts = e->timestamp_ms;
    (void)hs_event_format(e, s->text, sizeof s->text);
    const hs_hash *h = NULL;
    switch (e->type) {
    case HS_EV_INSERT_BLOCK: h = &e->u.insert_block.block.hash; break;
    case HS_EV_COMMIT_BLOCK: h = &e->u.commit_block.block; break;
    case HS_EV_PRUNE_BLOCK: h = &e->u.prune_block.block; break;
    case HS_EV_UPDATE_HIGHEST_PC:
        h = &e->u.update_highest_pc.highest_pc.block;
        s->view = e->u.update_highest_pc.highest_pc.view;
        break;
    case HS_EV_UPDATE_LOCKED_PC:
        h = &e->u.update_locked_pc.locked_pc.block;
        s->view = e->u.update_locked_pc.locked_pc.view;
        break;
    case HS_EV_UPDATE_HIGHEST_TC: s->view = e->u.update_highest_tc.highest_tc.view; break;
    case HS_EV_UPDATE_VALIDATOR_SET: h = &e->u.update_validator_set.cause_block; break;
    case HS_EV_START_VIEW: s->view = e->u.start_view.view; break;
    case HS_EV_VIEW_TIMEOUT: s->view = e->u.view_timeout.view; break;
    case HS_EV_COLLECT_PC:
        h = &e->u.collect_pc.pc.block;
        s->view = e->u.collect_pc.pc.view;
        break;
    case HS_EV_COLLECT_TC: s->view = e->u.collect_tc.tc.view; break;
    default: break;
    }
    if (h) {
        s->has_hash = true;
        s->hash = *h;
    }
}

void hs_admin_publish_event(hs_admin *a, const hs_event *e) {
    if ((unsigned)e->type >= HS_EV_COUNT) return;
    bool wake = false, formatted = false;
    sub_ev ev;
    pthread_mutex_lock(&a->sub_mu);
    for (subscriber *s = a->subs; s; s = s->next) {
        if (!(s->mask & (1u << e->type)) || s->overflow) continue;
        if (s->count == s->cap) {
            /* Full: the subscriber is cut off (by the CQ thread), never skipped silently. */
            s->overflow = true;
            wake = true;
            continue;
        }
        if (!formatted) {
            ev_fill(&ev, e);
            formatted = true;
        }
        s->ring[(s->head + s->count++) % s->cap] = ev;
        wake = true;
    }
    pthread_mutex_unlock(&a->sub_mu);
    if (wake) hs_rpc_loop_wake(&a->loop);
}

static bool sub_pop(hs_admin *a, subscriber *s, sub_ev *out) {
    bool got = false;
    pthread_mutex_lock(&a->sub_mu);
    if (s->count) {
        *out = s->ring[s->head];
        s->head = (s->head + 1) % s->cap;
        s->count--;
        got = true;
    }
    pthread_mutex_unlock(&a->sub_mu);
    return got;
}

bool ad_sub_overflowed(hs_admin *a, subscriber *s) {
    pthread_mutex_lock(&a->sub_mu);
    bool o = s->overflow;
    pthread_mutex_unlock(&a->sub_mu);
    return o;
}

static void send_event(acall *c, const sub_ev *ev, uint64_t height, bool replayed) {
    Hotstuff__V1__SubscribeResponse m = HOTSTUFF__V1__SUBSCRIBE_RESPONSE__INIT;
    m.type = (Hotstuff__V1__EventType)(ev->type + 1);
    m.timestamp_ms = ev->ts;
    m.text = (char *)ev->text;
    if (ev->has_hash) {
        m.block_hash.data = (uint8_t *)ev->hash.b;
        m.block_hash.len = HS_HASH_LEN;
    }
    m.height = height;
    m.replayed = replayed;
    m.view = ev->view;
    ad_send_msg(c, hs_pb_pack(&m.base), false);
}

/* Sends the committed block at c->next_commit, read from the store. */
static void send_stored_commit(acall *c) {
    hs_admin *a = c->a;
    hs_kv_reader r;
    hs_hash h;
    if (!ad_snap(a, &r)) {
        ad_cut(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    hs_status s = hs_bt_block_at_height(&r, c->next_commit, &h);
    ad_snap_done(a, &r);
    if (s != HS_OK) {
        ad_cut(c, GRPC_STATUS_INTERNAL, "reading a committed block failed");
        return;
    }
    hs_event e;
    memset(&e, 0, sizeof e);
    e.type = HS_EV_COMMIT_BLOCK;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e.timestamp_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    e.u.commit_block.block = h;
    sub_ev ev;
    ev_fill(&ev, &e);
    c->sending_commit = true;
    c->sending_height = c->next_commit;
    bool replayed = c->next_commit < c->replay_end;
    c->next_commit++;
    send_event(c, &ev, c->sending_height, replayed);
}

void ad_cut_slow(acall *c) {
    char msg[256];
    if (c->has_delivered)
        snprintf(msg, sizeof msg,
                 "subscriber queue full (%u events): last committed height delivered %llu; "
                 "resume with from_height %llu",
                 c->a->cfg.subscriber_queue, (unsigned long long)c->delivered,
                 (unsigned long long)c->delivered + 1);
    else
        snprintf(msg, sizeof msg,
                 "subscriber queue full (%u events): no committed height delivered",
                 c->a->cfg.subscriber_queue);
    ad_stat_add(c->a, &c->a->stats.subscribers_cut);
    ad_cut(c, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
}

void ad_sub_pump(acall *c) {
    hs_admin *a = c->a;
    if (c->sc.finished || c->sc.closed) return;
    if (ad_sub_overflowed(a, c->sub)) {
        ad_cut_slow(c);
        return;
    }
    while (!c->sc.send_busy && !c->sc.finished) {
        /* Committed blocks owed from the store come before newer queued events. */
        if (c->want_commit && c->has_target && c->has_next_commit &&
            c->next_commit <= c->commit_target) {
            send_stored_commit(c);
            return;
        }
        sub_ev ev;
        if (!sub_pop(a, c->sub, &ev)) return;
        if (ev.type != HS_EV_COMMIT_BLOCK) {
            send_event(c, &ev, 0, false);
            return;
        }
        /* A live commit only raises the target; its block goes out in height order. */
        hs_kv_reader r;
        uint64_t h;
        if (!ad_snap(a, &r)) continue;
        hs_status s = hs_bt_block_height(&r, &ev.hash, &h);
        ad_snap_done(a, &r);
        if (s != HS_OK) continue;
        if (!c->has_next_commit) {
            c->has_next_commit = true;
            c->next_commit = h;
        }
        if (!c->has_target || h > c->commit_target) {
            c->has_target = true;
            c->commit_target = h;
        }
    }
}

void ad_do_subscribe(acall *c) {
    hs_admin *a = c->a;
    Hotstuff__V1__SubscribeRequest *q = (Hotstuff__V1__SubscribeRequest *)hs_pb_unpack(
        &hotstuff__v1__subscribe_request__descriptor, c->payload);
    if (!q) {
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed SubscribeRequest");
        return;
    }
    uint32_t mask = 0;
    bool bad = false;
    for (size_t i = 0; i < q->n_types; i++) {
        int t = (int)q->types[i];
        if (t < 1 || t > HS_EV_COUNT) bad = true;
        else mask |= 1u << (t - 1);
    }
    if (q->n_types == 0) mask = (1u << HS_EV_COUNT) - 1;
    bool from = q->has_from_height;
    uint64_t from_h = q->from_height;
    protobuf_c_message_free_unpacked(&q->base, NULL);
    if (bad) {
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "unknown or UNSPECIFIED event type");
        return;
    }
    if (from && !(mask & (1u << HS_EV_COMMIT_BLOCK))) {
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
                  "from_height needs EVENT_TYPE_COMMIT_BLOCK among the types");
        return;
    }
    if (a->n_subscribers >= a->cfg.max_subscribers) {
        ad_stat_add(a, &a->stats.refused_busy);
        ad_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many subscribers (limit %u)",
                  a->cfg.max_subscribers);
        return;
    }
    subscriber *s = calloc(1, sizeof *s);
    if (s) s->ring = calloc(a->cfg.subscriber_queue, sizeof(sub_ev));
    if (!s || !s->ring) {
        if (s) free(s);
        ad_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    s->mask = mask;
    s->cap = a->cfg.subscriber_queue;
    c->sub = s;
    c->want_commit = (mask & (1u << HS_EV_COMMIT_BLOCK)) != 0;
    a->n_subscribers++;
    pthread_mutex_lock(&a->stats_mu);
    a->stats.subscribers = a->n_subscribers;
    pthread_mutex_unlock(&a->stats_mu);
    /* Register first, then read the tip: every commit after the read is in the queue, every
     * one before it is replayed from the store, and heights below next_commit are skipped. */
    pthread_mutex_lock(&a->sub_mu);
    s->next = a->subs;
    a->subs = s;
    pthread_mutex_unlock(&a->sub_mu);
    if (from) {
        c->has_next_commit = true;
        c->next_commit = from_h;
        hs_kv_reader r;
        uint64_t tip;
        if (ad_snap(a, &r)) {
            if (ad_tip_of(&r, &tip) && tip >= from_h) {
                c->has_target = true;
                c->commit_target = tip;
                c->replay_end = tip + 1;
            }
            ad_snap_done(a, &r);
        }
    }
    ad_sub_pump(c);
}
