/* server/net/health.c - see health.h. One mutex guards the table; it is touched a few
 * times per second at most, so nothing finer is worth it. */
#include "net/health.h"
#include "net/pb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "grpc/health/v1/health.pb-c.h"

typedef struct entry {
    char name[HS_HEALTH_MAX_NAME + 1];
    int status;
} entry;

struct hs_health {
    pthread_mutex_t mu;
    entry e[HS_HEALTH_MAX_ENTRIES];
    size_t n;
    uint64_t version;
    bool shut;
};

hs_health *hs_health_new(void) {
    hs_health *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    pthread_mutex_init(&h->mu, NULL);
    return h;
}

void hs_health_free(hs_health *h) {
    if (!h) return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static entry *find_locked(hs_health *h, const char *service) {
    for (size_t i = 0; i < h->n; i++)
        if (!strcmp(h->e[i].name, service)) return &h->e[i];
    return NULL;
}

bool hs_health_set(hs_health *h, const char *service, int status) {
    if (strlen(service) > HS_HEALTH_MAX_NAME) return false;
    bool ok = true;
    pthread_mutex_lock(&h->mu);
    if (!h->shut) {
        entry *e = find_locked(h, service);
        if (!e && h->n < HS_HEALTH_MAX_ENTRIES) {
            e = &h->e[h->n++];
            strcpy(e->name, service);
            e->status = 0;
        }
        if (!e) ok = false;
        else if (e->status != status) {
            e->status = status;
            h->version++;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return ok;
}

void hs_health_shutdown(hs_health *h) {
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n; i++) h->e[i].status = HS_HEALTH_NOT_SERVING;
    h->shut = true;
    h->version++;
    pthread_mutex_unlock(&h->mu);
}

bool hs_health_get(hs_health *h, const char *service, int *status) {
    pthread_mutex_lock(&h->mu);
    entry *e = find_locked(h, service);
    if (e) *status = e->status;
    pthread_mutex_unlock(&h->mu);
    return e != NULL;
}

uint64_t hs_health_version(hs_health *h) {
    pthread_mutex_lock(&h->mu);
    uint64_t v = h->version;
    pthread_mutex_unlock(&h->mu);
    return v;
}

bool hs_health_parse_request(grpc_byte_buffer *req, char name[HS_HEALTH_MAX_NAME + 1]) {
    name[0] = 0;
    if (!req) return true; /* an empty message is service "" */
    Grpc__Health__V1__HealthCheckRequest *m =
        (Grpc__Health__V1__HealthCheckRequest *)hs_pb_unpack(
            &grpc__health__v1__health_check_request__descriptor, req);
    if (!m) return false;
    bool ok = !m->service || strlen(m->service) <= HS_HEALTH_MAX_NAME;
    if (ok && m->service) strcpy(name, m->service);
    grpc__health__v1__health_check_request__free_unpacked(m, NULL);
    return ok;
}

grpc_byte_buffer *hs_health_response(int status) {
    Grpc__Health__V1__HealthCheckResponse m = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    m.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    return hs_pb_pack(&m.base);
}

grpc_status_code hs_health_check_reply(hs_health *h, grpc_byte_buffer *req,
                                       grpc_byte_buffer **reply, const char **details) {
    char name[HS_HEALTH_MAX_NAME + 1];
    int st;
    *reply = NULL;
    if (!hs_health_parse_request(req, name)) {
        *details = "malformed HealthCheckRequest";
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    if (!hs_health_get(h, name, &st)) {
        *details = "unknown service";
        return GRPC_STATUS_NOT_FOUND;
    }
    *reply = hs_health_response(st);
    *details = "";
    return *reply ? GRPC_STATUS_OK : GRPC_STATUS_RESOURCE_EXHAUSTED;
}
