/* ctl.h - what hotstuffctl's rooms share: the program name, exit codes, argument parsing and
 * JSON numbers (defined in main_hotstuffctl.c), and the commands that live in other files.
 * Internal to client/: nothing here is part of a library. */
#ifndef HS_CLIENT_CTL_H
#define HS_CLIENT_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define EXIT_FAIL 1  /* the operation failed: a file, the server, an error status */
#define EXIT_USAGE 2 /* bad arguments */

extern const char *ctl_prog; /* "hotstuffctl", the prefix of every message */

/* Prints "<prog>: <fmt with arg>" and the --help hint to stderr; returns EXIT_USAGE. */
int ctl_usage_error(const char *fmt, const char *arg);
/* A decimal u64 with nothing else around it; false on anything else or overflow. */
bool ctl_parse_u64(const char *s, uint64_t *out);
/* Adds v to o as a JSON number when a double holds it exactly, else as a decimal string. */
void ctl_add_u64(cJSON *o, const char *name, uint64_t v);

/* testnet.c: key and testnet files. argv holds the arguments after the command's name. */
int ctl_cmd_keygen(int argc, char **argv);
int ctl_cmd_testnet(int argc, char **argv);

#endif
