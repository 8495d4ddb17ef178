/* tests/common/e2e.h - the harness of the multi-process tests (tests/e2e): hotstuffd children
 * of one `hotstuffctl testnet` directory, subprocesses with captured output, free ports, logs.
 *
 *   static void test_up(void) {
 *       e2e_require_programs();
 *       e2e_prepare("/tmp/hs-x-XXXXXX", &(e2e_ports){20000, 13, 200, NODES, 0});
 *       const char *argv[] = {e2e_ctl(), "testnet", "--dir", e2e_dir(), ..., NULL};
 *       CU_ASSERT_EQUAL_FATAL(e2e_run(argv, out, sizeof out, 30000), 0);
 *       for (int i = 0; i < NODES; i++) CU_ASSERT_FATAL(e2e_start_node(i) > 0);
 *   }
 *   int main(void) { return e2e_run_suite("cluster", "cluster", tests); }
 *
 * The harness owns one test directory, the paths of hotstuffd and hotstuffctl, and the table of
 * running hotstuffd children (node 0 .. E2E_MAX_NODES-1). No child outlives the test: every
 * child runs with PR_SET_PDEATHSIG (SIGKILL when the test process dies), an atexit hook kills
 * the nodes left, and so does a SIGTERM/SIGINT handler before the signal takes its course.
 * Single-threaded use only.
 */
#ifndef HS_TEST_E2E_H
#define HS_TEST_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cu.h"

#define E2E_MAX_NODES 16

/* How to look for free loopback ports (see e2e_pick_base_port). */
typedef struct e2e_ports {
    int low;      /* lowest base; the search starts at low + pid * spread % (60000 - low) */
    int spread;
    int attempts; /* bases tried, `count` apart, wrapping back to low before passing 60000 */
    int count;    /* ports base .. base+count-1 must all be free */
    int mirror;   /* when > 0, ports base+mirror .. base+mirror+count-1 must be free too */
} e2e_ports;

/* Runs a suite as an e2e main: installs the cleanup (e2e_install_cleanup), quiets the library
 * log, runs `tests` with cu_run, kills the nodes left, prints "e2e <label>: N s" and then
 * removes the test directory on success or names it ("logs kept in ...") on failure. Returns
 * cu_run's result. The caller owns `tests`; the harness owns the children and the directory. */
int e2e_run_suite(const char *suite, const char *label, const cu_test *tests);

/* Registers e2e_kill_all with atexit and a SIGTERM/SIGINT handler that SIGKILLs every node
 * child, then re-raises the signal with its default action. Call once; e2e_run_suite does. */
void e2e_install_cleanup(void);

/* SIGKILLs and reaps every node child the harness still owns; the table ends empty. Safe to
 * call repeatedly. */
void e2e_kill_all(void);

/* Looks for an executable $HS_BIN_DIR/server/<name>, then $HS_BIN_DIR/<name>; the path goes
 * into the caller's out[cap] (set even on failure). False when none is executable. */
bool e2e_find_binary(const char *name, char *out, size_t cap);

/* Finds hotstuffd and hotstuffctl (CU_ASSERT_FATAL on each, in that order) into paths the
 * harness owns: e2e_hotstuffd(), e2e_ctl(). */
void e2e_require_programs(void);

/* Path of hotstuffd, owned by the harness (empty before e2e_require_programs). */
const char *e2e_hotstuffd(void);

/* Path of hotstuffctl, owned by the harness (empty before e2e_require_programs). */
const char *e2e_ctl(void);

/* Creates the test directory from a mkdtemp template (CU_ASSERT_PTR_NOT_NULL_FATAL), then picks
 * the base port with e2e_pick_base_port(ports) (CU_ASSERT_FATAL that it is > 0). The harness
 * owns the directory (e2e_dir) and the port (e2e_base_port); `ports` stays the caller's. */
void e2e_prepare(const char *dir_template, const e2e_ports *ports);

/* The test directory, owned by the harness; "" before e2e_prepare. */
const char *e2e_dir(void);

/* The base port chosen by e2e_prepare (0 before). */
int e2e_base_port(void);

/* Whether a TCP socket can bind 127.0.0.1:port now. Owns nothing past the call. */
bool e2e_port_free(int port);

/* A base port meeting `ports` (caller-owned), derived from the PID so parallel runs rarely
 * collide; -1 when every attempt found a port taken. */
int e2e_pick_base_port(const e2e_ports *ports);

/* <test dir>/node<node>/<file> into the caller's out[cap]. */
void e2e_path(int node, const char *file, char *out, size_t cap);

/* Forks hotstuffd --config <dir>/node<i>/config.json, stdout and stderr appended to
 * <dir>/node<i>/log, with PR_SET_PDEATHSIG. The harness owns the child (killed at exit) until
 * e2e_reap_node or e2e_stop_node. Returns its pid (<= 0 on failure). */
pid_t e2e_start_node(int i);

/* Whether node i has a child the harness owns. */
bool e2e_node_running(int i);

/* kill(2) of node i's child with sig; -1 when the harness owns none. The child stays owned. */
int e2e_signal_node(int i, int sig);

/* Waits for node i's child (e2e_wait_exit) and gives it up: its exit code, or -1 (also when
 * none is owned). */
int e2e_reap_node(int i, int timeout_ms);

/* e2e_signal_node then e2e_reap_node: the exit code, or -1 (signal death, timeout, no child). */
int e2e_stop_node(int i, int sig, int timeout_ms);

/* Waits up to timeout_ms for the caller-owned child pid; its exit code, or -1 (killed by a
 * signal, or still running - then SIGKILLed). Either way the child is reaped. */
int e2e_wait_exit(pid_t pid, int timeout_ms);

/* Runs argv (NULL-terminated, caller-owned; argv[0] a path) with PR_SET_PDEATHSIG for at most
 * timeout_ms, stdout and stderr both captured into the caller's out[cap] (NUL-terminated,
 * truncated to fit). The child is reaped before returning: its exit code, or -1. */
int e2e_run(const char *const *argv, char *out, size_t cap, int timeout_ms);

/* Removes a directory tree (depth first, symlinks not followed). */
void e2e_remove_dir(const char *path);

/* Node's log, whole and NUL-terminated, in a malloc'd buffer the caller frees; NULL when it
 * cannot be opened. */
char *e2e_read_log(int node);

/* Whether node's log contains needle. Owns nothing past the call. */
bool e2e_log_has(int node, const char *needle);

/* Highest committed height in node's log (hotstuffd's "committed height=H" lines); -1 if none
 * yet. */
int64_t e2e_log_height(int node);

/* Whether every one of nodes[0..n-1] logged a commit at `height` or above. */
bool e2e_all_reach(const int *nodes, int n, int64_t height);

/* No two of nodes 0..n-1 logged different blocks at one height (CU_FAIL naming the first
 * difference), and at least one height was compared. Returns the heights compared. */
int64_t e2e_check_agreement(int n);

/* Prints the last `bytes` bytes of node's log to stderr under a "---- nodeN log (tail) ----"
 * header; nothing when the log cannot be opened. */
void e2e_dump_log_tail(int node, size_t bytes);

#endif
