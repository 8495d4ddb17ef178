/* hotstuffctl - the operator CLI of hotstuffd.
 *
 *   hotstuffctl keygen --out FILE
 *   hotstuffctl testnet --validators N [--listeners M] --dir DIR --base-port P
 *                       [--host H] [--chain-id C] [--max-view-time-ms T] [--log-level L]
 *                       [--powers P0,P1,...] [--compose]
 *   hotstuffctl [--addr HOST:PORT] [--timeout D] [--json] COMMAND ...   (admin port)
 *       status | block HEIGHT|HASH | blocks FROM [TO] | validators | get KEY
 *       submit [--wait] [--nonce N] put KEY VALUE | delete KEY | update-validators ...
 *       watch [--types T,...] [--from HEIGHT] [--count N] [--duration D]
 *       health [SERVICE]
 *
 * This file holds the usage, the connection options and main, which picks the command. The
 * commands live by group: keygen and testnet in testnet.c (and compose.c); status, block,
 * blocks, validators, get and health in queries.c; submit in submit.c; watch in watch.c; what
 * the admin commands share in calls.c. The admin commands talk to hotstuff.v1.Admin and
 * grpc.health.v1.Health on hotstuffd's admin port (config listen.admin; default address 127.0.0.1:26700, or
 * $HOTSTUFFCTL_ADDR). Every call has a deadline (--timeout, default 5 s; 30 s for submit
 * --wait); a watch has one only for connecting, unless --duration. submit also works against
 * a replica port (through hotstuff.v1.Replica, without --wait), as it did before the admin
 * service existed.
 *
 * Exit status: 0 on success (health: only when SERVING), 1 when the operation failed (a file
 * could not be written, the server was unreachable or answered with an error status), 2 for
 * a usage error.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctl.h"
#include "hotstuff/crypto.h"
#include "config/node_config.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_ADDR "127.0.0.1:26700"
const char *ctl_prog = "hotstuffctl";

static void usage(FILE *f) {
    fprintf(f,
            "usage:\n"
            "  hotstuffctl keygen --out FILE\n"
            "      write a new Ed25519 key pair (mode 0600) and print its public key\n"
            "  hotstuffctl testnet --validators N [--listeners M] --dir DIR --base-port P\n"
            "                      [--host H] [--chain-id C] [--max-view-time-ms T]\n"
            "                      [--log-level L] [--powers P0,P1,...] [--compose]\n"
            "      write DIR/node<i>/{key,config,genesis}.json for N validators (power 1\n"
            "      each unless --powers) and M listeners (node i listens on H:P+i, its admin\n"
            "      port on H:P+100+i; default H 127.0.0.1) and DIR/admin_key.json, the key\n"
            "      allowed to change the validator set; --compose: also\n"
            "      DIR/docker-compose.yml, one container per node, peers by service name,\n"
            "      admin ports published on 127.0.0.1:P+100+i\n"
            "\n"
            "commands against a node's admin port; options anywhere on the line:\n"
            "  --addr HOST:PORT   default $HOTSTUFFCTL_ADDR or " DEFAULT_ADDR "\n"
            "  --timeout D        deadline of each call, e.g. 5s, 500ms (default 5s;\n"
            "                     30s for submit --wait); --timeout-ms N also works\n"
            "  --json             machine-readable output\n"
            "  hotstuffctl status                  identity, view, committed tip, certificates\n"
            "  hotstuffctl block HEIGHT|HASH       one block with its transactions\n"
            "  hotstuffctl blocks FROM [TO|tip]    committed blocks of a range, one per line\n"
            "  hotstuffctl validators              committed and previous validator sets\n"
            "  hotstuffctl get KEY                 a committed value of the key-value app\n"
            "  hotstuffctl submit [--wait] [--nonce N] OP\n"
            "      submit one transaction (--wait: until it commits); OP is one of\n"
            "        put KEY VALUE\n"
            "        delete KEY\n"
            "        update-validators --admin-key FILE (--chain-id C | --genesis FILE)\n"
            "                          KEY:POWER...   (hex or Base64 key; power 0 removes)\n"
            "      (against a replica port it submits through hotstuff.v1.Replica, no --wait)\n"
            "  hotstuffctl watch [--types T,...] [--from HEIGHT] [--count N] [--duration D]\n"
            "      live events, one per line (--json: one JSON object per line); types such\n"
            "      as CommitBlock,Propose,ViewTimeout (default all); --from replays committed\n"
            "      blocks from HEIGHT first; stops after N events or D\n"
            "  hotstuffctl health [SERVICE]        grpc.health.v1 Check; exit 0 only if SERVING\n"
            "      (SERVICE: \"\" = the server, hotstuff.v1.Admin, ready, ...)\n"
            "\n"
            "exit status: 0 success, 1 failure (unreachable, error status), 2 usage error\n");
}

int ctl_usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", ctl_prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run '%s --help' for usage)\n", ctl_prog);
    return EXIT_USAGE;
}

bool ctl_parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || strspn(s, "0123456789") != strlen(s)) return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno) return false;
    *out = v;
    return true;
}

/* Adds a u64 as a JSON number when exact, else as a decimal string (both are accepted). */
void ctl_add_u64(cJSON *o, const char *name, uint64_t v) {
    if (v <= (1ull << 53)) {
        cJSON_AddNumberToObject(o, name, (double)v);
    } else {
        char s[24];
        snprintf(s, sizeof s, "%" PRIu64, v);
        cJSON_AddStringToObject(o, name, s);
    }
}

/* See ctl.h. strtod takes "1.5s" too; below a millisecond or absurdly long is refused. */
int64_t ctl_parse_duration_ms(const char *s) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return -1;
    double scale = 1000;
    if (!strcmp(end, "ms")) scale = 1;
    else if (!strcmp(end, "m")) scale = 60000;
    else if (*end && strcmp(end, "s")) return -1;
    double ms = v * scale;
    return ms >= 1 && ms < 1e12 ? (int64_t)ms : -1;
}

/* Consumes argv[*i] (and its value) when it is a connection option. Returns 1 when consumed,
 * 0 when not one, -1 (usage error printed) when its value is bad. */
static int take_conn_opt(int argc, char **argv, int *i, ctl_conn_opts *o) {
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "--json")) {
        o->json = true;
        return 1;
    }
    if (strcmp(a, "--addr") && strcmp(a, "--timeout") && strcmp(a, "--timeout-ms")) return 0;
    if (!v) {
        ctl_usage_error("%s needs a value", a);
        return -1;
    }
    (*i)++;
    if (!strcmp(a, "--addr")) {
        if (!node_parse_address(v, false)) {
            ctl_usage_error("--addr '%s' is not HOST:PORT", v);
            return -1;
        }
        o->addr = v;
        return 1;
    }
    uint64_t ms = 0;
    int64_t t = !strcmp(a, "--timeout-ms") ? (ctl_parse_u64(v, &ms) && ms && ms < (1ull << 40)
                                                  ? (int64_t)ms
                                                  : -1)
                                           : ctl_parse_duration_ms(v);
    if (t <= 0) {
        ctl_usage_error("bad %s value (e.g. 5s, 500ms)", a);
        return -1;
    }
    o->timeout_ms = t;
    o->have_timeout = true;
    return 1;
}

/* Splits a command's arguments into connection options and the rest (kept in order in
 * pos/npos; an argument after "--" is always positional). Command-specific options are left
 * in pos for the command. Returns 0 or EXIT_USAGE. */
static int split_args(int argc, char **argv, ctl_conn_opts *o, char **pos, int *npos) {
    *npos = 0;
    bool dashdash = false;
    for (int i = 0; i < argc; i++) {
        if (!dashdash && !strcmp(argv[i], "--")) {
            dashdash = true;
            continue;
        }
        int r = dashdash ? 0 : take_conn_opt(argc, argv, &i, o);
        if (r < 0) return EXIT_USAGE;
        if (r == 0) pos[(*npos)++] = argv[i];
    }
    /* pos was sized by the caller for argc entries; only consuming can shrink the count. */
    assert(*npos <= argc);
    return 0;
}

/* ---- main ---- */

typedef int (*conn_cmd)(ctl_conn_opts *o, char **pos, int npos);

static const struct {
    const char *name;
    conn_cmd fn;
} conn_cmds[] = {{"status", ctl_cmd_status},         {"block", ctl_cmd_block},
                 {"blocks", ctl_cmd_blocks},         {"validators", ctl_cmd_validators},
                 {"get", ctl_cmd_get},               {"submit", ctl_cmd_submit},
                 {"watch", ctl_cmd_watch},           {"health", ctl_cmd_health}};

int main(int argc, char **argv) {
    ctl_conn_opts o = {.addr = DEFAULT_ADDR, .timeout_ms = DEFAULT_TIMEOUT_MS};
    const char *env = getenv("HOTSTUFFCTL_ADDR");
    if (env && *env) o.addr = env;
    /* Connection options may come before the command. */
    int k = 1;
    while (k < argc && argv[k][0] == '-' && strcmp(argv[k], "-h") && strcmp(argv[k], "--help")) {
        int r = take_conn_opt(argc, argv, &k, &o);
        if (r < 0) return EXIT_USAGE;
        if (r == 0) return ctl_usage_error("unknown option '%s'", argv[k]);
        k++;
    }
    if (k >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[k];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (hs_crypto_init() != HS_OK) {
        fprintf(stderr, "%s: cannot initialise libsodium\n", ctl_prog);
        return EXIT_FAIL;
    }
    if (!strcmp(cmd, "keygen")) return ctl_cmd_keygen(argc - k - 1, argv + k + 1);
    if (!strcmp(cmd, "testnet")) return ctl_cmd_testnet(argc - k - 1, argv + k + 1);
    for (size_t i = 0; i < sizeof conn_cmds / sizeof conn_cmds[0]; i++) {
        if (strcmp(cmd, conn_cmds[i].name)) continue;
        int n = argc - k - 1;
        char **pos = calloc((size_t)n + 1, sizeof *pos);
        if (!pos) return EXIT_FAIL;
        int npos = 0;
        int rc = split_args(n, argv + k + 1, &o, pos, &npos);
        if (rc == 0) rc = conn_cmds[i].fn(&o, pos, npos);
        free(pos);
        return rc;
    }
    return ctl_usage_error("unknown command '%s'", cmd);
}
