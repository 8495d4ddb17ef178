/* server/net/reflection.c - see reflection.h.
 *
 * Two passes over the descriptor set at start-up: a wire walk that keeps the exact bytes of
 * each FileDescriptorProto (responses point at them, nothing is re-serialized), and an unpack
 * of each file with the protoc-c binding of descriptor.proto to index its name, dependencies
 * and every symbol it defines. Lookups are linear: a few hundred symbols, a handful of
 * requests per grpcurl invocation.
 */
#include "net/reflection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "net/pb.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

typedef struct rfile {
    char *name;
    const uint8_t *bytes; /* into the borrowed set */
    size_t len;
    int *deps; /* file indexes; -1 for a dependency missing from the set */
    size_t n_deps;
} rfile;

typedef struct rsym {
    char *name;
    int file;
} rsym;

struct hs_reflection {
    rfile *files;
    size_t n_files;
    rsym *syms;
    size_t n_syms, cap_syms;
    char **services;
    size_t n_services;
};

struct hs_reflection_stream {
    size_t n;
    bool sent[]; /* one per file */
};

/* ---- the wire walk ---- */

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* FileDescriptorSet is `repeated FileDescriptorProto file = 1`: tag 0x0A, length, bytes. */
static bool split_files(hs_reflection *r, const uint8_t *p, size_t len) {
    const uint8_t *end = p + len;
    size_t cap = 0;
    while (p < end) {
        uint64_t tag, n;
        if (!read_varint(&p, end, &tag) || tag != 0x0A) return false;
        if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p)) return false;
        if (r->n_files == cap) {
            cap = cap ? cap * 2 : 16;
            rfile *f = realloc(r->files, cap * sizeof *f);
            if (!f) return false;
            r->files = f;
        }
        memset(&r->files[r->n_files], 0, sizeof(rfile));
        r->files[r->n_files].bytes = p;
        r->files[r->n_files].len = (size_t)n;
        r->n_files++;
        p += n;
    }
    return true;
}

/* ---- the symbol index ---- */

static bool add_sym(hs_reflection *r, const char *scope, const char *name, int file) {
    if (r->n_syms == r->cap_syms) {
        size_t cap = r->cap_syms ? r->cap_syms * 2 : 128;
        rsym *s = realloc(r->syms, cap * sizeof *s);
        if (!s) return false;
        r->syms = s;
        r->cap_syms = cap;
    }
    size_t n = strlen(scope) + strlen(name) + 2;
    char *full = malloc(n);
    if (!full) return false;
    snprintf(full, n, "%s%s%s", scope, *scope ? "." : "", name);
    r->syms[r->n_syms].name = full;
    r->syms[r->n_syms].file = file;
    r->n_syms++;
    return true;
}

/* Enum values live in the scope that encloses the enum, as in protobuf's own resolution. */
static bool index_enum(hs_reflection *r, const char *scope,
                       const Google__Protobuf__EnumDescriptorProto *e, int file) {
    if (!add_sym(r, scope, e->name, file)) return false;
    for (size_t i = 0; i < e->n_value; i++)
        if (!add_sym(r, scope, e->value[i]->name, file)) return false;
    return true;
}

static bool index_message(hs_reflection *r, const char *scope,
                          const Google__Protobuf__DescriptorProto *m, int file) {
    if (!add_sym(r, scope, m->name, file)) return false;
    const char *self = r->syms[r->n_syms - 1].name;
    char *me = strdup(self); /* the array may move while we recurse */
    if (!me) return false;
    bool ok = true;
    for (size_t i = 0; ok && i < m->n_field; i++) ok = add_sym(r, me, m->field[i]->name, file);
    for (size_t i = 0; ok && i < m->n_oneof_decl; i++)
        ok = add_sym(r, me, m->oneof_decl[i]->name, file);
    for (size_t i = 0; ok && i < m->n_extension; i++)
        ok = add_sym(r, me, m->extension[i]->name, file);
    for (size_t i = 0; ok && i < m->n_nested_type; i++)
        ok = index_message(r, me, m->nested_type[i], file);
    for (size_t i = 0; ok && i < m->n_enum_type; i++)
        ok = index_enum(r, me, m->enum_type[i], file);
    free(me);
    return ok;
}

static bool index_file(hs_reflection *r, const Google__Protobuf__FileDescriptorProto *f,
                       int file) {
    const char *pkg = f->package ? f->package : "";
    bool ok = true;
    for (size_t i = 0; ok && i < f->n_message_type; i++)
        ok = index_message(r, pkg, f->message_type[i], file);
    for (size_t i = 0; ok && i < f->n_enum_type; i++) ok = index_enum(r, pkg, f->enum_type[i], file);
    for (size_t i = 0; ok && i < f->n_extension; i++)
        ok = add_sym(r, pkg, f->extension[i]->name, file);
    for (size_t i = 0; ok && i < f->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = f->service[i];
        ok = add_sym(r, pkg, s->name, file);
        if (!ok) break;
        char *svc = strdup(r->syms[r->n_syms - 1].name);
        if (!svc) return false;
        for (size_t j = 0; ok && j < s->n_method; j++) ok = add_sym(r, svc, s->method[j]->name, file);
        free(svc);
    }
    return ok;
}

static int find_file(const hs_reflection *r, const char *name) {
    for (size_t i = 0; i < r->n_files; i++)
        if (!strcmp(r->files[i].name, name)) return (int)i;
    return -1;
}

int hs_reflection_find_symbol(const hs_reflection *r, const char *symbol) {
    if (symbol[0] == '.') symbol++; /* tolerate a leading dot */
    for (size_t i = 0; i < r->n_syms; i++)
        if (!strcmp(r->syms[i].name, symbol)) return r->syms[i].file;
    return -1;
}

/* Unpacks each file once to read its name, dependencies and symbols. */
static bool index_all(hs_reflection *r) {
    Google__Protobuf__FileDescriptorProto **fd = calloc(r->n_files ? r->n_files : 1, sizeof *fd);
    if (!fd) return false;
    bool ok = true;
    for (size_t i = 0; ok && i < r->n_files; i++) {
        fd[i] = google__protobuf__file_descriptor_proto__unpack(NULL, r->files[i].len,
                                                                 r->files[i].bytes);
        ok = fd[i] && fd[i]->name && (r->files[i].name = strdup(fd[i]->name)) != NULL &&
             index_file(r, fd[i], (int)i);
    }
    /* Dependencies by index, once every name is known. */
    for (size_t i = 0; ok && i < r->n_files; i++) {
        r->files[i].n_deps = fd[i]->n_dependency;
        r->files[i].deps = calloc(fd[i]->n_dependency + 1, sizeof(int));
        ok = r->files[i].deps != NULL;
        for (size_t j = 0; ok && j < fd[i]->n_dependency; j++)
            r->files[i].deps[j] = find_file(r, fd[i]->dependency[j]);
    }
    for (size_t i = 0; i < r->n_files; i++)
        if (fd[i]) google__protobuf__file_descriptor_proto__free_unpacked(fd[i], NULL);
    free(fd);
    return ok;
}

hs_reflection *hs_reflection_new(const uint8_t *fds, size_t len, const char *const *services,
                                 size_t n_services) {
    hs_reflection *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->services = calloc(n_services + 1, sizeof(char *));
    bool ok = r->services && split_files(r, fds, len) && index_all(r);
    for (size_t i = 0; ok && i < n_services; i++) {
        ok = (r->services[i] = strdup(services[i])) != NULL;
        r->n_services = i + 1;
    }
    if (!ok) {
        hs_reflection_free(r);
        return NULL;
    }
    return r;
}

void hs_reflection_free(hs_reflection *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].name);
        free(r->files[i].deps);
    }
    free(r->files);
    for (size_t i = 0; i < r->n_syms; i++) free(r->syms[i].name);
    free(r->syms);
    if (r->services)
        for (size_t i = 0; i < r->n_services; i++) free(r->services[i]);
    free(r->services);
    free(r);
}

hs_reflection_stream *hs_reflection_stream_new(const hs_reflection *r) {
    hs_reflection_stream *s = calloc(1, sizeof *s + r->n_files * sizeof(bool));
    if (s) s->n = r->n_files;
    return s;
}

void hs_reflection_stream_free(hs_reflection_stream *s) {
    free(s);
}

/* ---- answering ---- */

/* Appends file f (if not yet sent, or if it is the answer itself) and then its unsent
 * transitive dependencies, depth first. out has room for every file plus one. */
static void collect(const hs_reflection *r, hs_reflection_stream *s, int f, bool force,
                    ProtobufCBinaryData *out, size_t *n) {
    if (f < 0 || (s->sent[f] && !force)) return;
    s->sent[f] = true;
    out[*n].data = (uint8_t *)r->files[f].bytes;
    out[(*n)++].len = r->files[f].len;
    for (size_t i = 0; i < r->files[f].n_deps; i++) collect(r, s, r->files[f].deps[i], false, out, n);
}

grpc_byte_buffer *hs_reflection_answer(const hs_reflection *r, hs_reflection_stream *s,
                                       grpc_byte_buffer *req) {
    Grpc__Reflection__V1alpha__ServerReflectionRequest *q =
        (Grpc__Reflection__V1alpha__ServerReflectionRequest *)hs_pb_unpack(
            &grpc__reflection__v1alpha__server_reflection_request__descriptor, req);
    if (!q) return NULL;
    Grpc__Reflection__V1alpha__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__FileDescriptorResponse fdr =
        GRPC__REFLECTION__V1ALPHA__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ListServiceResponse lsr =
        GRPC__REFLECTION__V1ALPHA__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ErrorResponse err = GRPC__REFLECTION__V1ALPHA__ERROR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ServiceResponse *svc = NULL, **svcp = NULL;
    ProtobufCBinaryData *files = calloc(r->n_files + 1, sizeof *files);
    char msg[300];
    grpc_byte_buffer *out = NULL;
    if (!files) goto done;
    resp.valid_host = q->host ? q->host : "";
    resp.original_request = q;
    int f = -1;
    switch (q->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        svc = calloc(r->n_services + 1, sizeof *svc);
        svcp = calloc(r->n_services + 1, sizeof *svcp);
        if (!svc || !svcp) goto done;
        for (size_t i = 0; i < r->n_services; i++) {
            Grpc__Reflection__V1alpha__ServiceResponse init =
                GRPC__REFLECTION__V1ALPHA__SERVICE_RESPONSE__INIT;
            svc[i] = init;
            svc[i].name = r->services[i];
            svcp[i] = &svc[i];
        }
        lsr.n_service = r->n_services;
        lsr.service = svcp;
        resp.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &lsr;
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        f = find_file(r, q->file_by_filename);
        snprintf(msg, sizeof msg, "file not found: %.250s", q->file_by_filename);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        f = hs_reflection_find_symbol(r, q->file_containing_symbol);
        snprintf(msg, sizeof msg, "symbol not found: %.250s", q->file_containing_symbol);
        break;
    default: /* extensions: this server's protos define none */
        snprintf(msg, sizeof msg, "not found (no extensions are served)");
        break;
    }
    if (resp.message_response_case ==
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET) {
        if (f >= 0) {
            size_t n = 0;
            collect(r, s, f, true, files, &n);
            fdr.n_file_descriptor_proto = n;
            fdr.file_descriptor_proto = files;
            resp.message_response_case =
                GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
            resp.file_descriptor_response = &fdr;
        } else {
            err.error_code = GRPC_STATUS_NOT_FOUND;
            err.error_message = msg;
            resp.message_response_case =
                GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
            resp.error_response = &err;
        }
    }
    out = hs_pb_pack(&resp.base);
done:
    free(files);
    free(svc);
    free(svcp);
    grpc__reflection__v1alpha__server_reflection_request__free_unpacked(q, NULL);
    return out;
}
