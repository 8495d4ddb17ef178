/* ctl.h - what hotstuffctl's files share: the program name, exit codes, argument parsing and
 * JSON numbers (defined in main_hotstuffctl.c), the calls and output helpers of the admin
 * commands (calls.c), and the commands that live in the other files.
 * Internal to client/: nothing here is part of a library. */
#ifndef HS_CLIENT_CTL_H
#define HS_CLIENT_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

#include "admin_client.h"

#define EXIT_FAIL 1  /* the operation failed: a file, the server, an error status */
#define EXIT_USAGE 2 /* bad arguments */

extern const char *ctl_prog; /* "hotstuffctl", the prefix of every message */

/* ---- main_hotstuffctl.c ---- */

/* Prints "<prog>: <fmt with arg>" and the --help hint to stderr; returns EXIT_USAGE. */
int ctl_usage_error(const char *fmt, const char *arg);
/* A decimal u64 with nothing else around it; false on anything else or overflow. */
bool ctl_parse_u64(const char *s, uint64_t *out);
/* Adds v to o as a JSON number when a double holds it exactly, else as a decimal string. */
void ctl_add_u64(cJSON *o, const char *name, uint64_t v);
/* "5", "5s", "500ms", "2m": milliseconds, or -1. */
int64_t ctl_parse_duration_ms(const char *s);

/* Options every command that talks to a server accepts (before or after the command name).
 * main fills them; a command may only raise the default deadline (submit --wait). */
typedef struct ctl_conn_opts {
    const char *addr;
    int64_t timeout_ms;
    bool have_timeout; /* --timeout given: a command must not replace it with its default */
    bool json;
} ctl_conn_opts;

/* ---- calls.c: talking to the admin port, and what the commands print alike ---- */

/* A client for o->addr, or NULL (reported) when out of memory. */
hsc_client *ctl_connect(const ctl_conn_opts *o);
/* Reports a failed call: "hotstuffctl: WHAT: CODE: message" or the unreachable line; returns
 * EXIT_FAIL. */
int ctl_call_failed(const hsc_client *c, const char *what, const hsc_status *st);
/* Connects and makes one unary call with o's deadline. 0 with the answer in *resp and the
 * client in *cp (the caller frees both); else EXIT_FAIL, reported as `what`, nothing held. */
int ctl_unary(const ctl_conn_opts *o, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
              const char *what, hsc_client **cp);
/* Hex of p, cut to what fits in cap (with its NUL). */
void ctl_hex_of(const uint8_t *p, size_t len, char *out, size_t cap);
/* Bytes for a human: as text when printable ASCII, else 0x-prefixed hex. */
void ctl_print_bytes(FILE *f, const uint8_t *p, size_t len);
/* The same as a JSON string member. */
void ctl_json_bytes(cJSON *o, const char *name, const uint8_t *p, size_t len);
void ctl_json_hex(cJSON *o, const char *name, const uint8_t *p, size_t len);
/* Prints o (and deletes it) on one line, or indented when pretty; EXIT_FAIL when out of
 * memory. */
int ctl_print_json(cJSON *o, bool pretty);
/* The protobuf name of enum value v of d, or "?". */
const char *ctl_enum_name(const ProtobufCEnumDescriptor *d, int v);

/* ---- the commands. argv/pos holds the arguments after the command's name ---- */

/* testnet.c: key and testnet files. */
int ctl_cmd_keygen(int argc, char **argv);
int ctl_cmd_testnet(int argc, char **argv);
/* queries.c: reads of a node's state. */
int ctl_cmd_status(ctl_conn_opts *o, char **pos, int npos);
int ctl_cmd_block(ctl_conn_opts *o, char **pos, int npos);
int ctl_cmd_blocks(ctl_conn_opts *o, char **pos, int npos);
int ctl_cmd_validators(ctl_conn_opts *o, char **pos, int npos);
int ctl_cmd_get(ctl_conn_opts *o, char **pos, int npos);
int ctl_cmd_health(ctl_conn_opts *o, char **pos, int npos);
/* submit.c */
int ctl_cmd_submit(ctl_conn_opts *o, char **pos, int npos);
/* watch.c */
int ctl_cmd_watch(ctl_conn_opts *o, char **pos, int npos);

#endif
