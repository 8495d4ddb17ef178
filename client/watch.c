/* client/watch.c - `hotstuffctl watch`: a live subscription to a node's events (optionally
 * replaying committed blocks first), one line or one JSON object per event, until --count
 * events, --duration or the server ends it. Also the event types' names on the command line. */
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "admin_client.h"
#include "ctl.h"
#include "hotstuff/v1/admin.pb-c.h"

/* EVENT_TYPE_* values run 1..N_EVENT_TYPES (0 is unspecified); --types holds each once. */
#define N_EVENT_TYPES 27

static void event_name(int type, char *out, size_t cap) {
    const char *n = ctl_enum_name(&hotstuff__v1__event_type__descriptor, type);
    if (!strncmp(n, "EVENT_TYPE_", 11)) n += 11;
    size_t k = 0;
    bool upper = true;
    for (; *n && k + 1 < cap; n++) {
        if (*n == '_') {
            upper = true;
            continue;
        }
        out[k++] = upper ? *n : (char)tolower((unsigned char)*n);
        upper = false;
    }
    out[k] = '\0';
}

/* "CommitBlock", "commit_block", "COMMIT_BLOCK", "EVENT_TYPE_COMMIT_BLOCK": its number, or 0. */
static int event_parse(const char *s) {
    char want[64], have[64];
    size_t k = 0;
    if (!strncasecmp(s, "EVENT_TYPE_", 11)) s += 11;
    for (; *s && k + 1 < sizeof want; s++)
        if (*s != '_' && *s != '-') want[k++] = (char)tolower((unsigned char)*s);
    want[k] = '\0';
    for (int t = 1; t <= N_EVENT_TYPES; t++) {
        event_name(t, have, sizeof have);
        for (char *p = have; *p; p++) *p = (char)tolower((unsigned char)*p);
        if (!strcmp(want, have)) return t;
    }
    return 0;
}

static void watch_line(const Hotstuff__V1__SubscribeResponse *m, bool json) {
    char name[48];
    event_name(m->type, name, sizeof name);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "type", name);
        ctl_add_u64(j, "timestamp_ms", m->timestamp_ms);
        if (m->type == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK) {
            ctl_add_u64(j, "height", m->height);
            cJSON_AddBoolToObject(j, "replayed", m->replayed);
        }
        if (m->block_hash.len) ctl_json_hex(j, "block_hash", m->block_hash.data, m->block_hash.len);
        if (m->view) ctl_add_u64(j, "view", m->view);
        cJSON_AddStringToObject(j, "text", m->text ? m->text : "");
        ctl_print_json(j, false);
        return;
    }
    time_t secs = (time_t)(m->timestamp_ms / 1000);
    struct tm tm;
    char ts[32] = "?";
    if (localtime_r(&secs, &tm)) strftime(ts, sizeof ts, "%H:%M:%S", &tm);
    printf("%s.%03u  %-18s", ts, (unsigned)(m->timestamp_ms % 1000), name);
    if (m->type == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK) {
        char h[17];
        ctl_hex_of(m->block_hash.data, m->block_hash.len < 8 ? m->block_hash.len : 8, h, sizeof h);
        printf(" height %-7" PRIu64 " block %s%s", m->height, h, m->replayed ? "  (replayed)" : "");
    } else if (m->text && m->text[0]) {
        /* The spec §9 line is "Name, unix seconds, fields...": keep the fields. */
        const char *t = m->text, *comma = strchr(t, ',');
        if (comma && (comma = strchr(comma + 1, ','))) t = comma + 1;
        while (*t == ' ') t++;
        printf(" %s", t);
    } else if (m->view) {
        printf(" view %" PRIu64, m->view);
    }
    putchar('\n');
    fflush(stdout);
}

int ctl_cmd_watch(ctl_conn_opts *o, char **pos, int npos) {
    Hotstuff__V1__SubscribeRequest q = HOTSTUFF__V1__SUBSCRIBE_REQUEST__INIT;
    Hotstuff__V1__EventType types[N_EVENT_TYPES];
    uint64_t count = 0;
    int64_t duration_ms = -1;
    for (int i = 0; i < npos; i++) {
        const char *a = pos[i], *v = i + 1 < npos ? pos[i + 1] : NULL;
        if (!strcmp(a, "--types") && v) {
            char *copy = strdup(v), *save = NULL;
            if (!copy) return EXIT_FAIL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int e = event_parse(t);
                if (!e) {
                    ctl_usage_error("watch: unknown event type '%s' (e.g. CommitBlock, "
                                    "Propose, ViewTimeout)",
                                    t);
                    free(copy);
                    return EXIT_USAGE;
                }
                bool dup = false;
                for (size_t k = 0; k < q.n_types; k++) dup = dup || (int)types[k] == e;
                if (!dup && q.n_types < N_EVENT_TYPES)
                    types[q.n_types++] = (Hotstuff__V1__EventType)e;
            }
            free(copy);
        } else if (!strcmp(a, "--from") && v && ctl_parse_u64(v, &q.from_height)) {
            q.has_from_height = true;
        } else if (!strcmp(a, "--count") && v && ctl_parse_u64(v, &count) && count > 0) {
        } else if (!strcmp(a, "--duration") && v && (duration_ms = ctl_parse_duration_ms(v)) > 0) {
        } else {
            return ctl_usage_error("watch: bad argument '%s'", a);
        }
        i++;
    }
    /* event_parse returns distinct values in 1..N_EVENT_TYPES, each stored once. */
    assert(q.n_types <= N_EVENT_TYPES);
    q.types = q.n_types ? types : NULL;
    if (q.has_from_height && q.n_types) {
        bool commit = false;
        for (size_t k = 0; k < q.n_types; k++)
            commit = commit || types[k] == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK;
        if (!commit) return ctl_usage_error("watch: %s", "--from needs CommitBlock among --types");
    }
    hsc_client *c = ctl_connect(o);
    if (!c) return EXIT_FAIL;
    /* The subscription itself may last forever; connecting may not. Without a connection the
     * call below gets the --timeout deadline too, so it fails with the reason. */
    bool up = hsc_wait_connected(c, o->timeout_ms);
    hsc_stream *s = hsc_stream_open(c, HSC_ADMIN("Subscribe"), &q.base,
                                    up ? duration_ms : o->timeout_ms);
    if (!s) {
        hsc_close(c);
        return EXIT_FAIL;
    }
    uint64_t seen = 0;
    Hotstuff__V1__SubscribeResponse *m;
    while ((!count || seen < count) &&
           (m = (Hotstuff__V1__SubscribeResponse *)hsc_stream_next(
                s, &hotstuff__v1__subscribe_response__descriptor))) {
        watch_line(m, o->json);
        seen++;
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    bool enough = count && seen >= count;
    hsc_status st;
    grpc_status_code code = hsc_stream_finish(s, enough, &st);
    int rc = 0;
    /* Ended by --count (we cancelled) or by --duration (the deadline we chose): success. */
    if (!enough && !(up && duration_ms > 0 && code == GRPC_STATUS_DEADLINE_EXCEEDED)) {
        if (code == GRPC_STATUS_OK) {
            fprintf(stderr, "%s: watch: the server ended the subscription\n", ctl_prog);
            rc = EXIT_FAIL;
        } else {
            rc = ctl_call_failed(c, "watch", &st);
        }
    }
    hsc_close(c);
    return rc;
}
