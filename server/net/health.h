/* server/net/health.h - the state behind grpc.health.v1.Health, independent of any server
 * loop, so the admin service and the replica transport can both serve it.
 *
 * A table of service name -> status ("" = the whole server). Any thread may set a status; the
 * serving loop answers Check with hs_health_check_reply and keeps each Watch stream current by
 * comparing hs_health_version (bumped on every change) with what it last sent.
 *
 * Statuses are grpc.health.v1's ServingStatus numbers: SERVING 1, NOT_SERVING 2,
 * SERVICE_UNKNOWN 3 (Watch only).
 */
#ifndef HS_SERVER_GRPC_HEALTH_H
#define HS_SERVER_GRPC_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#define HS_HEALTH_CHECK_METHOD "/grpc.health.v1.Health/Check"
#define HS_HEALTH_WATCH_METHOD "/grpc.health.v1.Health/Watch"
#define HS_HEALTH_SERVICE "grpc.health.v1.Health"

enum { HS_HEALTH_SERVING = 1, HS_HEALTH_NOT_SERVING = 2, HS_HEALTH_SERVICE_UNKNOWN = 3 };

/* Longest service name accepted in a request (longer ones are simply unknown). */
#define HS_HEALTH_MAX_NAME 200
/* Entries a table holds; hs_health_set refuses more. */
#define HS_HEALTH_MAX_ENTRIES 32

typedef struct hs_health hs_health;

hs_health *hs_health_new(void); /* NULL when out of memory */
void hs_health_free(hs_health *h);

/* Creates or changes an entry. False when the table is full or the name too long. Ignored
 * (returns true) once hs_health_shutdown ran: a stopping server never reports SERVING again. */
bool hs_health_set(hs_health *h, const char *service, int status);
/* Every entry NOT_SERVING, for good. */
void hs_health_shutdown(hs_health *h);
/* The status of an entry; false when there is none. */
bool hs_health_get(hs_health *h, const char *service, int *status);
/* Bumped by every change; a watcher whose copy differs re-reads its entry. */
uint64_t hs_health_version(hs_health *h);

/* The service name of a serialized HealthCheckRequest, NUL-terminated into name. False when
 * the bytes do not parse or the name is too long (answer INVALID_ARGUMENT). */
bool hs_health_parse_request(grpc_byte_buffer *req, char name[HS_HEALTH_MAX_NAME + 1]);
/* A serialized HealthCheckResponse; NULL when out of memory. The caller destroys it. */
grpc_byte_buffer *hs_health_response(int status);

/* Everything Check needs: the reply (NULL) and status code to send for request bytes. */
grpc_status_code hs_health_check_reply(hs_health *h, grpc_byte_buffer *req,
                                       grpc_byte_buffer **reply, const char **details);

#endif
