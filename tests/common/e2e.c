/* tests/common/e2e.c - the multi-process test harness (see e2e.h). */
#define _GNU_SOURCE
#include "e2e.h"

#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hotstuff/hotstuff.h"

static char bin_hotstuffd[512], bin_ctl[512];
static char dir[256];
static int base_port;
static pid_t pids[E2E_MAX_NODES];

/* ---- children ---- */

void e2e_kill_all(void) {
    for (int i = 0; i < E2E_MAX_NODES; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
    }
}

static void on_fatal_signal(int sig) {
    for (int i = 0; i < E2E_MAX_NODES; i++)
        if (pids[i] > 0) kill(pids[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

void e2e_install_cleanup(void) {
    atexit(e2e_kill_all);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGINT, on_fatal_signal);
}

int e2e_run_suite(const char *suite, const char *label, const cu_test *tests) {
    e2e_install_cleanup();
    hs_log_set_level(HS_LOG_ERROR);
    uint64_t t0 = cu_now_ms();
    int rc = cu_run(suite, tests);
    e2e_kill_all();
    fprintf(stderr, "e2e %s: %.1f s\n", label, (double)(cu_now_ms() - t0) / 1000.0);
    if (rc == 0 && dir[0]) e2e_remove_dir(dir);
    else if (dir[0]) fprintf(stderr, "logs kept in %s\n", dir);
    return rc;
}

bool e2e_find_binary(const char *name, char *out, size_t cap) {
    const char *b = getenv("HS_BIN_DIR");
    const char *const dirs[] = {"%s/server/%s", "%s/%s"};
    for (size_t i = 0; b && i < 2; i++) {
        snprintf(out, cap, dirs[i], b, name);
        if (access(out, X_OK) == 0) return true;
    }
    return false;
}

void e2e_require_programs(void) {
    CU_ASSERT_FATAL(e2e_find_binary("hotstuffd", bin_hotstuffd, sizeof bin_hotstuffd));
    CU_ASSERT_FATAL(e2e_find_binary("hotstuffctl", bin_ctl, sizeof bin_ctl));
}

const char *e2e_hotstuffd(void) {
    return bin_hotstuffd;
}

const char *e2e_ctl(void) {
    return bin_ctl;
}

void e2e_prepare(const char *dir_template, const e2e_ports *ports) {
    snprintf(dir, sizeof dir, "%s", dir_template);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    base_port = e2e_pick_base_port(ports);
    CU_ASSERT_FATAL(base_port > 0);
}

const char *e2e_dir(void) {
    return dir;
}

int e2e_base_port(void) {
    return base_port;
}

void e2e_path(int node, const char *file, char *out, size_t cap) {
    snprintf(out, cap, "%s/node%d/%s", dir, node, file);
}

pid_t e2e_start_node(int i) {
    if (i < 0 || i >= E2E_MAX_NODES) return -1;
    char config[512], log[512];
    e2e_path(i, "config.json", config, sizeof config);
    e2e_path(i, "log", log, sizeof log);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0) _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execl(bin_hotstuffd, "hotstuffd", "--config", config, (char *)NULL);
        _exit(127);
    }
    pids[i] = pid;
    return pid;
}

bool e2e_node_running(int i) {
    return i >= 0 && i < E2E_MAX_NODES && pids[i] > 0;
}

int e2e_signal_node(int i, int sig) {
    if (!e2e_node_running(i)) return -1;
    return kill(pids[i], sig);
}

int e2e_reap_node(int i, int timeout_ms) {
    if (!e2e_node_running(i)) return -1;
    int rc = e2e_wait_exit(pids[i], timeout_ms);
    pids[i] = 0;
    return rc;
}

int e2e_stop_node(int i, int sig, int timeout_ms) {
    if (!e2e_node_running(i)) return -1;
    e2e_signal_node(i, sig);
    return e2e_reap_node(i, timeout_ms);
}

int e2e_wait_exit(pid_t pid, int timeout_ms) {
    uint64_t end = cu_now_ms() + (uint64_t)timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (r < 0 || cu_now_ms() >= end) break;
        cu_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int e2e_run(const char *const *argv, char *out, size_t cap, int timeout_ms) {
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t k = 0;
    uint64_t end = cu_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        uint64_t now = cu_now_ms();
        if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0) break;
        char buf[4096];
        ssize_t r = read(p[0], buf, sizeof buf);
        if (r <= 0) break;
        for (ssize_t j = 0; j < r && k + 1 < cap; j++) out[k++] = buf[j];
    }
    out[cap ? k : 0] = '\0';
    close(p[0]);
    uint64_t now = cu_now_ms();
    return e2e_wait_exit(pid, now < end ? (int)(end - now) : 1);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void e2e_remove_dir(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- ports ---- */

bool e2e_port_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

int e2e_pick_base_port(const e2e_ports *ports) {
    const int low = ports->low, count = ports->count, mirror = ports->mirror;
    int base = low + (int)(getpid() * ports->spread % (60000 - low));
    for (int attempt = 0; attempt < ports->attempts; attempt++, base += count) {
        if (base + mirror + count > 60000) base = low;
        bool all = true;
        for (int i = 0; i < count && all; i++)
            all = e2e_port_free(base + i) && (mirror <= 0 || e2e_port_free(base + mirror + i));
        if (all) return base;
    }
    return -1;
}

/* ---- logs ---- */

char *e2e_read_log(int node) {
    char path[512];
    e2e_path(node, "log", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, k = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (k + 4096 > cap) buf = realloc(buf, cap *= 2);
        size_t r = fread(buf + k, 1, cap - k - 1, f);
        if (r == 0) break;
        k += r;
    }
    buf[k] = '\0';
    fclose(f);
    return buf;
}

bool e2e_log_has(int node, const char *needle) {
    char *log = e2e_read_log(node);
    bool found = log && strstr(log, needle);
    free(log);
    return found;
}

void e2e_dump_log_tail(int node, size_t bytes) {
    char path[512];
    e2e_path(node, "log", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char *buf = malloc(bytes + 1);
    if (!buf) {
        fclose(f);
        return;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, len > (long)bytes ? len - (long)bytes : 0, SEEK_SET);
    size_t n = fread(buf, 1, bytes, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "\n---- node%d log (tail) ----\n%s\n", node, buf);
    free(buf);
}

/* ---- what the logs say of the chain ---- */

#define COMMIT_TAG "msg=\"committed height="

int64_t e2e_log_height(int node) {
    char *log = e2e_read_log(node);
    int64_t best = -1;
    for (char *p = log; p && (p = strstr(p, COMMIT_TAG)); p++) {
        int64_t h = strtoll(p + strlen(COMMIT_TAG), NULL, 10);
        if (h > best) best = h;
    }
    free(log);
    return best;
}

bool e2e_all_reach(const int *nodes, int n, int64_t height) {
    for (int i = 0; i < n; i++)
        if (e2e_log_height(nodes[i]) < height) return false;
    return true;
}

/* The committed chain of node i as logged: hash (hex) per height, NULL where not logged.
 * malloc'd, *n entries; free with free_chain. */
static char **logged_chain(int node, int64_t *n) {
    char *log = e2e_read_log(node);
    int64_t cap = 1024;
    char **chain = calloc((size_t)cap, sizeof *chain);
    *n = 0;
    for (char *p = log; chain && p && (p = strstr(p, COMMIT_TAG)); p++) {
        char *end;
        int64_t h = strtoll(p + strlen(COMMIT_TAG), &end, 10);
        char *hh = strstr(end, "hash=");
        if (h < 0 || !hh) continue;
        while (h >= cap) {
            chain = realloc(chain, (size_t)cap * 2 * sizeof *chain);
            if (!chain) break;
            memset(chain + cap, 0, (size_t)cap * sizeof *chain);
            cap *= 2;
        }
        if (!chain) break;
        free(chain[h]);
        chain[h] = strndup(hh + 5, 64);
        if (h + 1 > *n) *n = h + 1;
    }
    free(log);
    return chain;
}

static void free_chain(char **c, int64_t n) {
    for (int64_t i = 0; c && i < n; i++) free(c[i]);
    free(c);
}

int64_t e2e_check_agreement(int n) {
    char **c[E2E_MAX_NODES];
    int64_t len[E2E_MAX_NODES];
    int64_t compared = 0;
    for (int i = 0; i < n; i++) {
        c[i] = logged_chain(i, &len[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c[i]);
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            for (int64_t h = 0; h < len[i] && h < len[j]; h++) {
                if (!c[i][h] || !c[j][h]) continue;
                compared++;
                if (strcmp(c[i][h], c[j][h]) != 0) {
                    fprintf(stderr, "\n  node%d and node%d differ at height %lld\n", i, j,
                            (long long)h);
                    CU_FAIL("two nodes committed different blocks at one height");
                    h = len[i];
                }
            }
    CU_ASSERT(compared > 0);
    for (int i = 0; i < n; i++) free_chain(c[i], len[i]);
    return compared;
}
