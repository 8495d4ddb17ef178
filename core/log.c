/* log.c - the library's diagnostic log: a process-wide sink and level filter.
 *
 * The sink (fn, ctx) is swapped under a mutex and called outside it, so a slow handler never
 * blocks a handler swap; the level is an atomic read on every call. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "hotstuff/log.h"

static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static hs_log_fn sink_fn;   /* NULL = default stderr sink */
static void *sink_ctx;
static atomic_int min_level = HS_LOG_INFO;

static const char *level_name(hs_log_level l) {
    switch (l) {
    case HS_LOG_DEBUG: return "debug";
    case HS_LOG_INFO: return "info";
    case HS_LOG_WARN: return "warn";
    case HS_LOG_ERROR: return "error";
    }
    return "?";
}

/* Copies msg into out with '"', '\\' and control characters escaped, so a line stays one
 * parseable line whatever the message holds. Truncates to fit. */
static void escape(const char *msg, char *out, size_t cap) {
    size_t k = 0;
    for (const char *s = msg; *s && k + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else if (c < 0x20) {
            k += (size_t)snprintf(out + k, cap - k, "\\x%02x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k] = '\0';
}

/* One line per call; stdio locks the stream for the whole fprintf, so lines never mix. */
static void default_sink(hs_log_level level, const char *module, const char *msg) {
    struct timespec ts;
    struct tm tm;
    char when[32], text[2048];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    escape(msg, text, sizeof text);
    fprintf(stderr, "ts=%s.%03ldZ level=%s module=%s msg=\"%s\"\n", when,
            ts.tv_nsec / 1000000L, level_name(level), module ? module : "-", text);
}

void hs_log_set_handler(hs_log_fn fn, void *ctx) {
    pthread_mutex_lock(&sink_mu);
    sink_fn = fn;
    sink_ctx = fn ? ctx : NULL;
    pthread_mutex_unlock(&sink_mu);
}

void hs_log_set_level(hs_log_level min) {
    atomic_store(&min_level, (int)min);
}

void hs_log(hs_log_level level, const char *module, const char *fmt, ...) {
    if ((int)level < atomic_load(&min_level)) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&sink_mu);
    hs_log_fn fn = sink_fn;
    void *ctx = sink_ctx;
    pthread_mutex_unlock(&sink_mu);
    if (fn) fn(ctx, level, module, msg);
    else default_sink(level, module, msg);
}
