/* hotstuff/log.h - the library's diagnostic log (not the event log lines, see events.h).
 * Default: "ts=<iso8601> level=<lvl> module=<m> msg=<text>" lines on stderr. */
#ifndef HOTSTUFF_LOG_H
#define HOTSTUFF_LOG_H

typedef enum hs_log_level {
    HS_LOG_DEBUG = 0,
    HS_LOG_INFO = 1,
    HS_LOG_WARN = 2,
    HS_LOG_ERROR = 3
} hs_log_level;

typedef void (*hs_log_fn)(void *ctx, hs_log_level level, const char *module, const char *msg);

/* Replaces the process-wide log sink (NULL restores the default) and minimum level. Call before
 * starting replicas. */
void hs_log_set_handler(hs_log_fn fn, void *ctx);
void hs_log_set_level(hs_log_level min);

void hs_log(hs_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
