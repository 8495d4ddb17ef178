/* client/calls.c - what hotstuffctl's admin commands share: connecting to the admin port,
 * making one unary call and reporting its failure, and printing bytes, hashes and JSON the
 * same way in every command. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "admin_client.h"
#include "ctl.h"

hsc_client *ctl_connect(const ctl_conn_opts *o) {
    hsc_client *c = hsc_open(o->addr);
    if (!c) fprintf(stderr, "%s: out of memory\n", ctl_prog);
    return c;
}

/* Reports a failed call: "hotstuffctl: WHAT: CODE: message" or the unreachable line. */
int ctl_call_failed(const hsc_client *c, const char *what, const hsc_status *st) {
    char line[1024];
    hsc_describe(c, st, line, sizeof line);
    if (hsc_unreachable(st)) fprintf(stderr, "%s: %s\n", ctl_prog, line);
    else fprintf(stderr, "%s: %s: %s\n", ctl_prog, what, line);
    return EXIT_FAIL;
}

int ctl_unary(const ctl_conn_opts *o, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
              const char *what, hsc_client **cp) {
    assert(o && method && req && resp_desc && resp && what && cp);
    *resp = NULL;
    *cp = ctl_connect(o);
    if (!*cp) return EXIT_FAIL;
    hsc_status st;
    if (hsc_unary(*cp, method, req, resp_desc, resp, o->timeout_ms, &st) == GRPC_STATUS_OK) {
        /* hsc_unary answers OK only with a decoded message: the commands rely on it. */
        assert(*resp);
        return 0;
    }
    ctl_call_failed(*cp, what, &st);
    if (*resp) protobuf_c_message_free_unpacked(*resp, NULL);
    *resp = NULL;
    hsc_close(*cp);
    *cp = NULL;
    return EXIT_FAIL;
}

void ctl_hex_of(const uint8_t *p, size_t len, char *out, size_t cap) {
    assert(cap >= 1); /* callers size out for what they print: never empty */
    if (cap < 2 * len + 1) len = (cap - 1) / 2;
    sodium_bin2hex(out, 2 * len + 1, p, len);
}

/* Bytes for a human: as text when printable UTF-8-ish ASCII, else 0x-prefixed hex. */
void ctl_print_bytes(FILE *f, const uint8_t *p, size_t len) {
    bool text = true;
    for (size_t i = 0; i < len && text; i++) text = p[i] >= 0x20 && p[i] < 0x7f;
    if (text) {
        fwrite(p, 1, len, f);
        return;
    }
    fputs("0x", f);
    for (size_t i = 0; i < len; i++) fprintf(f, "%02x", p[i]);
}

/* The same for JSON: a string, text or "0x..." hex. */
void ctl_json_bytes(cJSON *o, const char *name, const uint8_t *p, size_t len) {
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f) return;
    ctl_print_bytes(f, p, len);
    fclose(f);
    cJSON_AddStringToObject(o, name, s ? s : "");
    free(s);
}

void ctl_json_hex(cJSON *o, const char *name, const uint8_t *p, size_t len) {
    char *h = malloc(2 * len + 1);
    if (!h) return;
    sodium_bin2hex(h, 2 * len + 1, p, len);
    cJSON_AddStringToObject(o, name, h);
    free(h);
}

int ctl_print_json(cJSON *o, bool pretty) {
    char *t = o ? (pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o)) : NULL;
    cJSON_Delete(o);
    if (!t) {
        fprintf(stderr, "%s: out of memory\n", ctl_prog);
        return EXIT_FAIL;
    }
    printf("%s\n", t);
    fflush(stdout);
    cJSON_free(t);
    return 0;
}

/* "PHASE_GENERIC" -> "generic"; "EVENT_TYPE_COMMIT_BLOCK" -> "CommitBlock". */
const char *ctl_enum_name(const ProtobufCEnumDescriptor *d, int v) {
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
    return e ? e->name : "?";
}
