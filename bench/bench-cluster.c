/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-cluster: a cluster group's done on one wgd node to a waiter's return on another, against
 * the floor under it (one etcd write, measured here) and against what users run today on the
 * same machine: a Redisson-style Redis latch and an etcd barrier driven by etcdctl. And how many
 * dones per second one cluster group takes from one node and from three.
 *
 * It starts nothing but its own helpers: bench/run-cluster.sh starts etcd, the wgd nodes and
 * redis-server on free ports of 127.0.0.1 and passes them here (--etcd, --node, --redis).
 *
 * Latency, one sample of each of these per round, in an order that rotates from round to round:
 *
 *  put      The floor: kv/put of one key through etcd's v3 JSON gateway, with libcurl on a
 *           kept-alive HTTP/1.1 connection, as wgd's client talks to etcd. Timed around
 *           curl_easy_perform().
 *  txn      For information: a transaction shaped as wgd's for an add or a done (compare the
 *           state key's mod_revision, put the state and an op key; else read the state).
 *  wg       A waiter (a process of ours with WGD_SOCKET on node B) sleeps in wg_wait() on the
 *           group's mirror on B; we, with WGD_SOCKET on node A, call wg_done() on our handle
 *           from A: a request to wgd A, which makes it an etcd transaction; B's watch brings
 *           the change, B writes its mirror and wakes the waiter. Timed from before wg_done()
 *           to the waiter's return (its CLOCK_MONOTONIC, in shared memory). Each round re-arms
 *           the group with wg_add(+1) through A and waits until B's mirror shows count 1, then
 *           lets the waiter wait, and fires only once /proc says it sleeps in futex().
 *  redis    Redisson's RCountDownLatch: the waiter SUBSCRIBEs the latch's channel (once, on a
 *           connection of its own), then GETs the count on a second connection and, since it is
 *           above 0, reads the subscribed connection until the message; we run Redisson's
 *           countDown() script (EVAL: DECR, and at 0 DEL and PUBLISH), one round trip. Re-armed
 *           with SET 1; fired once the waiter sleeps in read() on the subscription.
 *  etcdctl  An etcd barrier from the shell: `etcdctl watch KEY` runs all along, its output a
 *           pipe to us; each round the key is put (its PUT event read and dropped), and after
 *           20 ms of quiet we spawn `etcdctl del KEY`. Timed from before posix_spawnp() to the
 *           moment the watcher's DELETE line can be read from the pipe. Also the doer's own
 *           run, spawn to exit.
 *
 * Throughput, after each run's rounds: a second cluster group with a count of 10^9, and for a
 * fixed time, processes that each open it through one node and call wg_done() in a loop: one
 * process on node A; three processes on node A; one process on each of three nodes. Dones per
 * second = all their dones over the time from the start to the last one's return. After each
 * measurement the count must come down by exactly the dones counted (checked on A's mirror).
 *
 * etcd's own counters (/metrics) are read around the rounds and around each throughput
 * measurement: the writes it committed, its WAL's fsyncs and their mean duration, and the
 * transactions it answered per done, which show what the figures are made of.
 *
 * Every latency figure is the median of the run medians, with the 99th percentile of all the
 * samples; throughput is the median over the runs. A report, not a test: a missed target is
 * printed, never an exit status. The method and the figures are in docs/benchmarks.md.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench-util.h"
#include "client.h"
#include "macro.h"
#include "wg.h"

/* From the issue: the median within 2x of the floor, and ahead of both alternatives. */
#define TARGET_VS_FLOOR 2.0

/* Nothing here takes this long unless something hangs. */
#define PATIENCE_MSEC 20000

/* The etcdctl watcher's quiet time before each del: it should be waiting, not printing. */
#define ETCDCTL_SETTLE_USEC 20000

#define NODES_MAX 3
#define TPUT_COUNT UINT64_C(1000000000)

extern char **environ;

enum mech { M_PUT, M_TXN, M_WG, M_REDIS, M_ETCDCTL, _M_MAX };
static const char *const mech_name[_M_MAX] = {
        [M_PUT] = "floor: etcd kv/put (libcurl, keep-alive)",
        [M_TXN] = "etcd txn shaped as wgd's (compare, 2 puts)",
        [M_WG] = "wg: wg_done() on A -> wg_wait() returns on B",
        [M_REDIS] = "redis latch: EVAL DECR+PUBLISH -> message",
        [M_ETCDCTL] = "etcdctl: spawn `etcdctl del` -> watch prints",
};

/* For information: the doers' own view. */
enum extra { X_WG_DONE, X_WG_AFTER, X_ETCDCTL_EXIT, _X_MAX };
static const char *const extra_name[_X_MAX] = {
        [X_WG_DONE] = "wg: wg_done() returns on A",
        [X_WG_AFTER] = "wg: wg_done() returned -> waiter returns on B",
        [X_ETCDCTL_EXIT] = "etcdctl: spawn -> `etcdctl del` exits",
};

enum tput { T_ONE, T_ONE_X3, T_THREE, _T_MAX };
static const char *const tput_name[_T_MAX] = {
        [T_ONE] = "1 node, 1 process",
        [T_ONE_X3] = "1 node (A), 3 processes",
        [T_THREE] = "3 nodes, 1 process on each",
};
static const unsigned tput_procs[_T_MAX] = { [T_ONE] = 1, [T_ONE_X3] = 3, [T_THREE] = 3 };

struct config {
        unsigned runs;
        unsigned rounds; /* per run */
        unsigned warmup; /* rounds, before the first run */
        double seconds;  /* per throughput measurement */
};

static const struct config config_full = { .runs = 5, .rounds = 60, .warmup = 5, .seconds = 2.0 };
static const struct config config_quick = { .runs = 3, .rounds = 20, .warmup = 3, .seconds = 1.0 };

/* Every sample of a latency, ms, and the median of each run. */
struct samples {
        double *v;
        size_t n, cap;
        struct series run_median;
};

/* What the helpers write and we read: memory shared across fork(). */
struct waiter_stamp {
        uint32_t armed;       /* set by the waiter just before it goes to sleep */
        uint64_t returned_ns; /* CLOCK_MONOTONIC at its wake-up */
        int64_t result;
};

struct worker_stamp {
        uint64_t dones;
        uint64_t last_ns; /* when its last wg_done() returned */
};

struct shared {
        struct waiter_stamp wg, redis;
        struct worker_stamp workers[NODES_MAX];
        uint64_t start_ns, deadline_ns;
};

/* ---- configuration and the processes we started ---- */

static const char *etcd_url;
static const char *nodes[NODES_MAX];
static size_t n_nodes;
static const char *redis_host = "127.0.0.1";
static unsigned redis_port;
static const char *etcdctl = "etcdctl";
static bool use_redis, use_etcdctl = true;

static char group[64], tput_group[64];
static struct shared *sh;

static volatile pid_t wg_waiter_pid = -1, redis_waiter_pid = -1, watcher_pid = -1;

static void cleanup(void) {
        pid_t pids[] = { wg_waiter_pid, redis_waiter_pid, watcher_pid };

        for (size_t i = 0; i < ELEMENTSOF(pids); i++)
                if (pids[i] > 0) {
                        (void) kill(pids[i], SIGKILL);
                        (void) waitpid(pids[i], NULL, 0);
                }
        wg_waiter_pid = redis_waiter_pid = watcher_pid = -1;
}

static void on_signal(int sig) {
        cleanup();
        _exit(128 + sig);
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / 1000000),
                               .tv_nsec = (long) (usec % 1000000) * 1000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static uint64_t deadline_in(unsigned msec) {
        return now_ns() + (uint64_t) msec * 1000000;
}

static void samples_add(struct samples *s, double v) {
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 256;
                s->v = realloc(s->v, s->cap * sizeof(double));
                if (!s->v)
                        die("realloc", ENOMEM);
        }
        s->v[s->n++] = v;
}

/* The median of the samples from @from on: one run's. */
static void samples_close_run(struct samples *s, size_t from) {
        double *copy;

        if (s->n == from)
                return;
        copy = malloc((s->n - from) * sizeof(double));
        if (!copy)
                die("malloc", ENOMEM);
        memcpy(copy, s->v + from, (s->n - from) * sizeof(double));
        series_add(&s->run_median, median_of(copy, s->n - from));
        free(copy);
}

/* The nearest-rank percentile @p of all the samples (sorts a copy). */
static double samples_percentile(const struct samples *s, double p) {
        double *copy, v;
        size_t rank;

        if (s->n == 0)
                return 0;
        copy = malloc(s->n * sizeof(double));
        if (!copy)
                die("malloc", ENOMEM);
        memcpy(copy, s->v, s->n * sizeof(double));
        (void) median_of(copy, s->n); /* sorts */
        rank = (size_t) (p / 100.0 * (double) s->n + 0.999999);
        v = copy[rank == 0 ? 0 : rank - 1];
        free(copy);
        return v;
}

/* ---- /proc: is a helper asleep where it should be? ---- */

/*
 * Until @pid, which said it is about to sleep (@armed), sleeps in system call @nr: state S and
 * /proc/PID/syscall naming it. A helper still on its way to bed when the clock starts would be
 * timed for its bedtime, not its wake-up. Where /proc hides the system call, state S and 20 ms.
 */
static void wait_asleep(pid_t pid, const uint32_t *armed, long nr) {
        uint64_t deadline = deadline_in(PATIENCE_MSEC);
        char buf[512], *p;

        while (!__atomic_load_n(armed, __ATOMIC_ACQUIRE)) {
                if (now_ns() > deadline)
                        die("a waiter never got ready", ETIMEDOUT);
                sleep_usec(100);
        }
        for (;;) {
                int r = proc_read(pid, "stat", buf, sizeof(buf));

                if (r < 0)
                        die("/proc/PID/stat of a waiter", -r);
                /* "pid (comm) S ...": comm may hold anything, so look after its last ')'. */
                p = strrchr(buf, ')');
                if (p && p[1] == ' ' && p[2] == 'Z')
                        die("a waiter died", ECHILD);
                if (p && p[1] == ' ' && p[2] == 'S') {
                        if (proc_read(pid, "syscall", buf, sizeof(buf)) < 0) {
                                sleep_usec(20000);
                                return;
                        }
                        if (strtol(buf, NULL, 10) == nr && buf[0] != 'r')
                                return;
                }
                if (now_ns() > deadline)
                        die("a waiter does not fall asleep", ETIMEDOUT);
                sleep_usec(100);
        }
}

/* ---- a helper's orders and reports: one byte each way ---- */

struct helper {
        int order_fd;  /* ours, to write */
        int report_fd; /* ours, to read */
};

/* In the child: its ends of the pipes, @ret_order to read and @ret_report to write. */
static pid_t helper_fork(struct helper *h, int *ret_order, int *ret_report) {
        int order[2], report[2];
        pid_t pid;

        if (pipe2(order, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0)
                die("pipe2", errno);
        pid = fork_child();
        if (pid < 0)
                die("fork", -pid);
        if (pid == 0) {
                (void) close(order[1]);
                (void) close(report[0]);
                *ret_order = order[0];
                *ret_report = report[1];
                return 0;
        }
        (void) close(order[0]);
        (void) close(report[1]);
        h->order_fd = order[1];
        h->report_fd = report[0];
        return pid;
}

static void send_byte(int fd, char c) {
        if (write(fd, &c, 1) != 1)
                die("write to a helper", errno ? errno : EPIPE);
}

/* The next byte from @fd, within PATIENCE_MSEC; 0 at end of file. */
static char recv_byte(int fd, const char *what) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;
        char c;
        int r;

        r = poll(&p, 1, PATIENCE_MSEC);
        if (r < 0)
                die("poll", errno);
        if (r == 0)
                die(what, ETIMEDOUT);
        n = read(fd, &c, 1);
        if (n < 0)
                die(what, errno);
        return n == 0 ? 0 : c;
}

/* ---- etcd over its JSON gateway, blocking: the floor ---- */

struct http {
        CURL *easy;
        long connects; /* connections it had to open, over its life */
        struct curl_slist *headers;
        char *answer;
        size_t len, cap;
};

static size_t http_collect(char *p, size_t size, size_t n, void *userdata) {
        struct http *h = userdata;
        size_t bytes = size * n;

        if (h->len + bytes + 1 > h->cap) {
                h->cap = (h->len + bytes + 1) * 2;
                h->answer = realloc(h->answer, h->cap);
                if (!h->answer)
                        return 0;
        }
        memcpy(h->answer + h->len, p, bytes);
        h->len += bytes;
        h->answer[h->len] = 0;
        return bytes;
}

static void http_init(struct http *h) {
        *h = (struct http) {};
        h->easy = curl_easy_init();
        if (!h->easy)
                die("curl_easy_init", ENOMEM);
        h->headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (!h->headers)
                die("curl_slist_append", ENOMEM);
        /* As wgd's client (wgd/etcd.c): HTTP/1.1, no proxy, Nagle off (libcurl's default). */
        if (curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1) != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_PROXY, "") != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long) PATIENCE_MSEC) != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers) != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, http_collect) != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h) != CURLE_OK)
                die("curl_easy_setopt", EINVAL);
}

static void http_done(struct http *h) {
        curl_easy_cleanup(h->easy);
        curl_slist_free_all(h->headers);
        free(h->answer);
        *h = (struct http) {};
}

/* POST @body to /v3/@method; dies unless etcd answers 200. The answer is in h->answer. */
static void http_post(struct http *h, const char *method, const char *body) {
        char url[512];
        long status = 0;
        CURLcode r;

        (void) snprintf(url, sizeof(url), "%s/v3/%s", etcd_url, method);
        h->len = 0;
        if (curl_easy_setopt(h->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, body) != CURLE_OK)
                die("curl_easy_setopt", EINVAL);
        r = curl_easy_perform(h->easy);
        if (r != CURLE_OK) {
                fprintf(stderr, "bench-cluster: %s: %s\n", url, curl_easy_strerror(r));
                die("etcd", EHOSTUNREACH);
        }
        (void) curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
        {
                long n = 0;

                (void) curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &n);
                h->connects += n;
        }
        if (status != 200) {
                fprintf(stderr,
                        "bench-cluster: %s: HTTP %ld: %s\n",
                        url,
                        status,
                        h->answer ? h->answer : "");
                die("etcd", EPROTO);
        }
}

/*
 * What etcd counts, from its /metrics: the transactions it answered, the writes it committed
 * (raft proposals), and its WAL's fsyncs, for what each done costs etcd and what a write waits
 * for. Counters only, read before and after a measurement.
 */
struct metrics {
        double txns;      /* grpc_server_handled_total, Txn, OK */
        double proposals; /* etcd_server_proposals_committed_total */
        double fsyncs;    /* etcd_disk_wal_fsync_duration_seconds_count */
        double fsync_sec; /* etcd_disk_wal_fsync_duration_seconds_sum */
};

static double metric_value(const char *text, const char *name, const char *labels) {
        for (const char *line = text; line && *line;) {
                const char *end = strchr(line, '\n');

                if (strncmp(line, name, strlen(name)) == 0 &&
                    (labels ? line[strlen(name)] == '{' &&
                                     (!end || memmem(line, (size_t) (end - line), labels, strlen(labels))) :
                              line[strlen(name)] == ' ')) {
                        const char *sp = memchr(line, ' ', end ? (size_t) (end - line) : strlen(line));

                        if (sp)
                                return strtod(sp + 1, NULL);
                }
                line = end ? end + 1 : NULL;
        }
        return 0;
}

static void metrics_read(struct http *h, struct metrics *ret) {
        char url[512];
        long status = 0;

        (void) snprintf(url, sizeof(url), "%s/metrics", etcd_url);
        h->len = 0;
        if (curl_easy_setopt(h->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(h->easy, CURLOPT_HTTPGET, 1L) != CURLE_OK)
                die("curl_easy_setopt", EINVAL);
        if (curl_easy_perform(h->easy) != CURLE_OK)
                die("etcd's /metrics", EHOSTUNREACH);
        (void) curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200 || !h->answer)
                die("etcd's /metrics", EPROTO);
        *ret = (struct metrics) {
                .txns = metric_value(
                        h->answer, "grpc_server_handled_total", "grpc_code=\"OK\",grpc_method=\"Txn\""),
                .proposals = metric_value(h->answer, "etcd_server_proposals_committed_total", NULL),
                .fsyncs = metric_value(h->answer, "etcd_disk_wal_fsync_duration_seconds_count", NULL),
                .fsync_sec = metric_value(h->answer, "etcd_disk_wal_fsync_duration_seconds_sum", NULL),
        };
}

static void base64(const char *in, char *out, size_t size) {
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t len = strlen(in), o = 0;

        if ((len + 2) / 3 * 4 + 1 > size)
                die("base64", ENAMETOOLONG);
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) (uint8_t) in[i] << 16;

                if (i + 1 < len)
                        v |= (uint32_t) (uint8_t) in[i + 1] << 8;
                if (i + 2 < len)
                        v |= (uint8_t) in[i + 2];
                out[o++] = tab[v >> 18 & 63];
                out[o++] = tab[v >> 12 & 63];
                out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
                out[o++] = i + 2 < len ? tab[v & 63] : '=';
        }
        out[o] = 0;
}

/* The revision in the header of an answer of etcd's. */
static int64_t answer_revision(const struct http *h) {
        const char *p = h->answer ? strstr(h->answer, "\"revision\":\"") : NULL;

        if (!p)
                die("no revision in etcd's answer", EBADMSG);
        return strtoll(p + strlen("\"revision\":\""), NULL, 10);
}

static void etcd_put(struct http *h, const char *key, const char *value) {
        char k[256], v[256], body[600];

        base64(key, k, sizeof(k));
        base64(value, v, sizeof(v));
        (void) snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
        http_post(h, "kv/put", body);
}

/*
 * A transaction as wgd sends for a change of a cluster group (wgd/cluster.c): if the state
 * key's mod_revision is still *@rev, put a new state and the node's op key, else read the
 * state. Nobody else writes these keys, so it must succeed; *@rev becomes the new one.
 */
static void etcd_txn(struct http *h, unsigned seq, int64_t *rev) {
        char state[64], op[64], value[128], v[256], s[32], sv[64], body[2048];

        base64("/bench-cluster/txn/state", state, sizeof(state));
        base64("/bench-cluster/txn/op/bench", op, sizeof(op));
        (void) snprintf(
                value, sizeof(value), "{\"count\":%u,\"generation\":%u,\"broken\":false}", seq % 2, seq);
        base64(value, v, sizeof(v));
        (void) snprintf(s, sizeof(s), "%u", seq);
        base64(s, sv, sizeof(sv));
        (void) snprintf(
                body,
                sizeof(body),
                "{\"compare\":[{\"key\":\"%s\",\"target\":\"MOD\",\"result\":\"EQUAL\","
                "\"mod_revision\":\"%" PRId64 "\"}],"
                "\"success\":[{\"requestPut\":{\"key\":\"%s\",\"value\":\"%s\"}},"
                "{\"requestPut\":{\"key\":\"%s\",\"value\":\"%s\"}}],"
                "\"failure\":[{\"requestRange\":{\"key\":\"%s\"}}]}",
                state,
                *rev,
                state,
                v,
                op,
                sv,
                state);
        http_post(h, "kv/txn", body);
        if (!strstr(h->answer, "\"succeeded\":true"))
                die("the bench's own transaction failed its compare", EBADMSG);
        *rev = answer_revision(h);
}

/* ---- Redis: just enough RESP ---- */

struct resp {
        int fd;
        char buf[8192];
        size_t len;
};

/* A reply: its type, its integer, its first strings (a bulk string, or an array's elements). */
struct reply {
        char type;
        long long integer;
        bool nil;
        size_t n_str;
        char str[3][128];
};

static void resp_connect(struct resp *c) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) redis_port) };
        int one = 1;

        if (inet_pton(AF_INET, redis_host, &sa.sin_addr) != 1)
                die("--redis wants an IPv4 address", EINVAL);
        c->len = 0;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                die("socket", errno);
        if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
                die("TCP_NODELAY", errno);
        if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                die("connect to redis-server", errno);
}

static void resp_send(struct resp *c, size_t argc, const char *const *argv) {
        char out[2048];
        size_t n = 0;

        n += (size_t) snprintf(out + n, sizeof(out) - n, "*%zu\r\n", argc);
        for (size_t i = 0; i < argc && n < sizeof(out); i++)
                n += (size_t) snprintf(out + n, sizeof(out) - n, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
        if (n >= sizeof(out))
                die("a command too long", EMSGSIZE);
        if (send(c->fd, out, n, MSG_NOSIGNAL) != (ssize_t) n)
                die("send to redis-server", errno);
}

static void str_store(struct reply *r, const char *p, size_t len) {
        if (r->n_str < ELEMENTSOF(r->str)) {
                if (len >= sizeof(r->str[0]))
                        len = sizeof(r->str[0]) - 1;
                memcpy(r->str[r->n_str], p, len);
                r->str[r->n_str][len] = 0;
                r->n_str++;
        }
}

/* Parse one value at *@pos: 1 and *@pos past it, or 0 if it is not all there yet. */
static int resp_parse(const char *b, size_t len, size_t *pos, struct reply *r, int depth) {
        const char *line = b + *pos, *end = memmem(line, len - *pos, "\r\n", 2);
        size_t after;
        long long n;

        if (!end)
                return 0;
        after = (size_t) (end - b) + 2;
        n = strtoll(line + 1, NULL, 10);
        if (depth == 0)
                r->type = line[0];
        switch (line[0]) {
        case '+':
        case '-':
                str_store(r, line + 1, (size_t) (end - line - 1));
                break;
        case ':':
                if (depth == 0)
                        r->integer = n;
                str_store(r, line + 1, (size_t) (end - line - 1));
                break;
        case '$':
                if (n < 0) {
                        r->nil = depth == 0;
                        break;
                }
                if (after + (size_t) n + 2 > len)
                        return 0;
                str_store(r, b + after, (size_t) n);
                after += (size_t) n + 2;
                break;
        case '*':
                *pos = after;
                for (long long i = 0; i < n; i++)
                        if (resp_parse(b, len, pos, r, depth + 1) == 0)
                                return 0;
                return 1;
        default:
                die("redis-server answered something that is not RESP", EPROTO);
        }
        *pos = after;
        return 1;
}

static void resp_recv(struct resp *c, struct reply *r) {
        for (;;) {
                size_t pos = 0;
                ssize_t n;

                *r = (struct reply) {};
                if (c->len > 0 && resp_parse(c->buf, c->len, &pos, r, 0)) {
                        memmove(c->buf, c->buf + pos, c->len - pos);
                        c->len -= pos;
                        if (r->type == '-') {
                                fprintf(stderr, "bench-cluster: redis-server: %s\n", r->str[0]);
                                die("redis-server", EPROTO);
                        }
                        return;
                }
                if (c->len == sizeof(c->buf))
                        die("a reply too long", EMSGSIZE);
                n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        die("read from redis-server", n < 0 ? errno : ECONNRESET);
                c->len += (size_t) n;
        }
}

static void resp_call(struct resp *c, struct reply *r, size_t argc, const char *const *argv) {
        resp_send(c, argc, argv);
        resp_recv(c, r);
}

/* Redisson's RedissonCountDownLatch.countDownAsync(): one script, one round trip. */
static const char countdown_script[] = "local v = redis.call('decr', KEYS[1]);"
                                       "if v <= 0 then redis.call('del', KEYS[1]) end;"
                                       "if v == 0 then redis.call('publish', KEYS[2], ARGV[1]) end;";

static char latch_key[64], latch_channel[128];

/* ---- the waiters ---- */

/*
 * The wg waiter: on node B's mirror, through libwg, as any program would. For each 'w': say it
 * is about to sleep, wg_wait() for ever, stamp the return, report.
 */
static pid_t wg_waiter_start(struct helper *h) {
        int order, report;
        pid_t pid = helper_fork(h, &order, &report);
        wg *g;
        int r;

        if (pid > 0)
                return pid;
        if (setenv("WGD_SOCKET", nodes[1], 1) < 0)
                die("setenv", errno);
        r = wg_open(group, 0, &g);
        if (r < 0)
                die("wg_open on node B", -r);
        send_byte(report, 'r');
        for (;;) {
                char c;

                if (read(order, &c, 1) != 1 || c == 'q')
                        _exit(EXIT_SUCCESS);
                __atomic_store_n(&sh->wg.armed, 1, __ATOMIC_RELEASE);
                r = wg_wait(g, WG_USEC_INFINITY);
                sh->wg.returned_ns = now_ns();
                sh->wg.result = r;
                send_byte(report, 'd');
        }
}

/*
 * The Redis waiter, as Redisson's await(): subscribed to the latch's channel on a connection of
 * its own (once: the subscription stays), for each 'w': GET the count on another connection and,
 * as it is above 0, read the subscription until the message comes.
 */
static pid_t redis_waiter_start(struct helper *h) {
        int order, report;
        pid_t pid = helper_fork(h, &order, &report);
        struct resp sub, cmd;
        struct reply rp;

        if (pid > 0)
                return pid;
        resp_connect(&sub);
        resp_connect(&cmd);
        resp_call(&sub, &rp, 2, (const char *[]) { "SUBSCRIBE", latch_channel });
        if (rp.type != '*' || strcmp(rp.str[0], "subscribe") != 0)
                die("SUBSCRIBE", EPROTO);
        send_byte(report, 'r');
        for (;;) {
                char c;

                if (read(order, &c, 1) != 1 || c == 'q')
                        _exit(EXIT_SUCCESS);
                resp_call(&cmd, &rp, 2, (const char *[]) { "GET", latch_key });
                if (rp.type != '$' || rp.nil || strtoll(rp.str[0], NULL, 10) <= 0)
                        die("the latch is not armed", EPROTO);
                __atomic_store_n(&sh->redis.armed, 1, __ATOMIC_RELEASE);
                resp_recv(&sub, &rp);
                sh->redis.returned_ns = now_ns();
                if (rp.type != '*' || strcmp(rp.str[0], "message") != 0)
                        die("the subscription brought no message", EPROTO);
                sh->redis.result = 0;
                send_byte(report, 'd');
        }
}

/* ---- the etcdctl watcher ---- */

static char barrier_key[64];
static int watcher_fd = -1;
static char watcher_buf[4096];
static size_t watcher_len;

static void watcher_start(void) {
        int out[2];
        pid_t pid;

        if (pipe2(out, O_CLOEXEC) < 0)
                die("pipe2", errno);
        pid = fork_child();
        if (pid < 0)
                die("fork", -pid);
        if (pid == 0) {
                char endpoints[512];

                (void) snprintf(endpoints, sizeof(endpoints), "--endpoints=%s", etcd_url);
                if (dup2(out[1], STDOUT_FILENO) < 0)
                        _exit(126);
                execlp(etcdctl, etcdctl, endpoints, "watch", barrier_key, (char *) NULL);
                fprintf(stderr, "bench-cluster: cannot run %s: %s\n", etcdctl, strerror(errno));
                _exit(127);
        }
        (void) close(out[1]);
        watcher_fd = out[0];
        watcher_pid = pid;
}

/*
 * Read the watcher's output until a whole event of @kind ("PUT" or "DELETE") for the barrier
 * key; returns when the chunk that began it could be read. etcdctl prints every event as three
 * lines: its type, the key and the value (empty for a DELETE).
 */
static uint64_t watcher_event(const char *kind) {
        uint64_t deadline = deadline_in(PATIENCE_MSEC), began = 0;

        for (;;) {
                /* Whole events at the front of the buffer: drop those of another kind. */
                for (;;) {
                        const char *p = watcher_buf, *end = watcher_buf + watcher_len;
                        size_t n_lines = 0;
                        bool mine;

                        if (watcher_len == 0)
                                break;
                        mine = watcher_len > strlen(kind) && strncmp(watcher_buf, kind, strlen(kind)) == 0 &&
                                watcher_buf[strlen(kind)] == '\n';
                        while (n_lines < 3 && p < end) {
                                const char *nl = memchr(p, '\n', (size_t) (end - p));

                                if (!nl)
                                        break;
                                p = nl + 1;
                                n_lines++;
                        }
                        if (n_lines < 3)
                                break;
                        memmove(watcher_buf, p, (size_t) (end - p));
                        watcher_len = (size_t) (end - p);
                        if (mine)
                                return began ? began : now_ns();
                }

                struct pollfd pfd = { .fd = watcher_fd, .events = POLLIN };
                int timeout = (int) ((deadline - now_ns()) / 1000000);
                ssize_t n;

                if (now_ns() >= deadline || poll(&pfd, 1, timeout > 0 ? timeout : 0) == 0)
                        die("etcdctl watch printed no event", ETIMEDOUT);
                if (watcher_len == sizeof(watcher_buf))
                        die("etcdctl watch printed too much", EMSGSIZE);
                n = read(watcher_fd, watcher_buf + watcher_len, sizeof(watcher_buf) - watcher_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        die("etcdctl watch ended", n < 0 ? errno : EPIPE);
                if (watcher_len == 0)
                        began = now_ns();
                watcher_len += (size_t) n;
        }
}

/* ---- wgd requests: the groups' creation and deletion ---- */

static void create_cluster_group(const char *name, uint64_t count) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Create m = WG__V1__CREATE__INIT;
        int r;

        m.name = (char *) name;
        m.has_count = true;
        m.count = count;
        m.has_cluster = m.cluster = true;
        req.op_case = WG__V1__REQUEST__OP_CREATE;
        req.create = &m;
        r = wg__call(&req, &resp, NULL);
        if (r < 0) {
                fprintf(stderr, "bench-cluster: cannot create cluster group %s on %s\n", name, nodes[0]);
                die("Create", -r);
        }
}

static void delete_group(const char *name) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Delete m = WG__V1__DELETE__INIT;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_DELETE;
        req.delete_ = &m;
        (void) wg__call(&req, &resp, NULL);
}

/* wg_open() @name through node @i, once its mirror is there (the watch brings it). */
static wg *open_on(size_t i, const char *name) {
        uint64_t deadline = deadline_in(PATIENCE_MSEC);
        wg *g;
        int r;

        if (setenv("WGD_SOCKET", nodes[i], 1) < 0)
                die("setenv", errno);
        while ((r = wg_open(name, 0, &g)) == -ENOENT && now_ns() < deadline)
                sleep_usec(1000);
        if (r < 0)
                die("wg_open", -r);
        /* We are the doer: our requests go to node A. */
        if (setenv("WGD_SOCKET", nodes[0], 1) < 0)
                die("setenv", errno);
        return g;
}

static void count_until(wg *g, uint64_t count, const char *what) {
        uint64_t deadline = deadline_in(PATIENCE_MSEC), c = UINT64_MAX;

        for (;;) {
                int r = wg_get_count(g, &c);

                if (r < 0)
                        die("wg_get_count", -r);
                if (c == count)
                        return;
                if (now_ns() > deadline) {
                        fprintf(stderr,
                                "bench-cluster: %s: count %" PRIu64 ", expected %" PRIu64 "\n",
                                what,
                                c,
                                count);
                        die(what, ETIMEDOUT);
                }
                sleep_usec(200);
        }
}

/* ---- one sample of each latency ---- */

struct rig {
        struct http http;  /* the floor's connection, and set-up */
        struct http mhttp; /* etcd's /metrics */
        int64_t txn_rev;
        unsigned seq;
        wg *g_a, *g_b; /* the group through A (ours, the doer's) and B (to watch its mirror) */
        wg *tput_a;    /* the throughput group through A, to check its count */
        struct helper wg_waiter, redis_waiter;
        struct resp redis;
};

static double ms_between(uint64_t from, uint64_t to) {
        return ((double) to - (double) from) / 1e6;
}

static void sample_put(struct rig *k, struct samples *out) {
        char value[32];
        uint64_t t0;

        (void) snprintf(value, sizeof(value), "%u", ++k->seq);
        t0 = now_ns();
        etcd_put(&k->http, "/bench-cluster/floor", value);
        if (out)
                samples_add(out, ms_between(t0, now_ns()));
}

static void sample_txn(struct rig *k, struct samples *out) {
        uint64_t t0 = now_ns();

        etcd_txn(&k->http, ++k->seq, &k->txn_rev);
        if (out)
                samples_add(out, ms_between(t0, now_ns()));
}

static void sample_wg(struct rig *k, struct samples *out, struct samples *extra) {
        uint64_t t0, t1;
        int r;

        r = wg_add(k->g_a, 1);
        if (r < 0)
                die("wg_add(+1) through node A", -r);
        count_until(k->g_b, 1, "B's mirror after the re-arm");
        __atomic_store_n(&sh->wg.armed, 0, __ATOMIC_RELEASE);
        send_byte(k->wg_waiter.order_fd, 'w');
        wait_asleep(wg_waiter_pid, &sh->wg.armed, SYS_futex);

        t0 = now_ns();
        r = wg_done(k->g_a);
        t1 = now_ns();
        if (r < 0)
                die("wg_done() through node A", -r);
        if (recv_byte(k->wg_waiter.report_fd, "the wg waiter's return") != 'd')
                die("the wg waiter", EPIPE);
        if (sh->wg.result != 0)
                die("wg_wait() on node B", sh->wg.result < 0 ? (int) -sh->wg.result : EPROTO);
        if (out) {
                samples_add(out, ms_between(t0, sh->wg.returned_ns));
                samples_add(&extra[X_WG_DONE], ms_between(t0, t1));
                samples_add(&extra[X_WG_AFTER], ms_between(t1, sh->wg.returned_ns));
        }
}

static void sample_redis(struct rig *k, struct samples *out) {
        struct reply rp;
        uint64_t t0;

        resp_call(&k->redis, &rp, 3, (const char *[]) { "SET", latch_key, "1" });
        __atomic_store_n(&sh->redis.armed, 0, __ATOMIC_RELEASE);
        send_byte(k->redis_waiter.order_fd, 'w');
        wait_asleep(redis_waiter_pid, &sh->redis.armed, SYS_read);

        t0 = now_ns();
        resp_call(
                &k->redis,
                &rp,
                6,
                (const char *[]) { "EVAL", countdown_script, "2", latch_key, latch_channel, "0" });
        if (recv_byte(k->redis_waiter.report_fd, "the redis waiter's message") != 'd')
                die("the redis waiter", EPIPE);
        if (out)
                samples_add(out, ms_between(t0, sh->redis.returned_ns));
}

static void sample_etcdctl(struct rig *k, struct samples *out, struct samples *extra) {
        char endpoints[512];
        const char *argv[] = { etcdctl, endpoints, "del", barrier_key, NULL };
        posix_spawn_file_actions_t fa;
        uint64_t t0, t_event, t_exit;
        int status;
        pid_t pid;
        int r;

        (void) snprintf(endpoints, sizeof(endpoints), "--endpoints=%s", etcd_url);
        etcd_put(&k->http, barrier_key, "armed");
        (void) watcher_event("PUT");
        sleep_usec(ETCDCTL_SETTLE_USEC);

        if (posix_spawn_file_actions_init(&fa) != 0 ||
            posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0) != 0)
                die("posix_spawn_file_actions", ENOMEM);
        t0 = now_ns();
        r = posix_spawnp(&pid, etcdctl, &fa, NULL, (char *const *) argv, environ);
        if (r != 0)
                die("posix_spawnp etcdctl", r);
        t_event = watcher_event("DELETE");
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        die("waitpid", errno);
        t_exit = now_ns();
        (void) posix_spawn_file_actions_destroy(&fa);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("etcdctl del failed", ECHILD);
        if (out) {
                samples_add(out, ms_between(t0, t_event));
                samples_add(&extra[X_ETCDCTL_EXIT], ms_between(t0, t_exit));
        }
}

static bool mech_on(enum mech m) {
        return (m != M_REDIS || use_redis) && (m != M_ETCDCTL || use_etcdctl);
}

static void round_once(struct rig *k, unsigned turn, struct samples *lat, struct samples *extra) {
        for (unsigned j = 0; j < _M_MAX; j++) {
                enum mech m = (turn + j) % _M_MAX;

                if (!mech_on(m))
                        continue;
                switch (m) {
                case M_PUT:
                        sample_put(k, lat ? &lat[m] : NULL);
                        break;
                case M_TXN:
                        sample_txn(k, lat ? &lat[m] : NULL);
                        break;
                case M_WG:
                        sample_wg(k, lat ? &lat[m] : NULL, extra);
                        break;
                case M_REDIS:
                        sample_redis(k, lat ? &lat[m] : NULL);
                        break;
                case M_ETCDCTL:
                        sample_etcdctl(k, lat ? &lat[m] : NULL, extra);
                        break;
                default:
                        break;
                }
        }
}

/* ---- dones per second ---- */

/*
 * @procs processes, process i on node @node_of[i], each wg_done() on the throughput group until
 * the deadline; returns dones per second, and checks on @g_a that the count came down by
 * exactly as many.
 */
static double
measure_tput(wg *g_a, unsigned procs, const size_t *node_of, double seconds, uint64_t *ret_dones) {
        struct helper h[NODES_MAX];
        pid_t pids[NODES_MAX];
        uint64_t before, total = 0, last = 0;
        int r;

        r = wg_get_count(g_a, &before);
        if (r < 0)
                die("wg_get_count", -r);
        for (unsigned i = 0; i < procs; i++) {
                int order, report;

                sh->workers[i] = (struct worker_stamp) {};
                pids[i] = helper_fork(&h[i], &order, &report);
                if (pids[i] == 0) {
                        struct worker_stamp *me = &sh->workers[i];
                        wg *g;
                        char c;

                        if (setenv("WGD_SOCKET", nodes[node_of[i]], 1) < 0)
                                die("setenv", errno);
                        r = wg_open(tput_group, 0, &g);
                        if (r < 0)
                                die("wg_open (throughput)", -r);
                        send_byte(report, 'r');
                        if (read(order, &c, 1) != 1)
                                _exit(EXIT_FAILURE);
                        while (now_ns() < sh->deadline_ns) {
                                r = wg_done(g);
                                if (r < 0)
                                        die("wg_done (throughput)", -r);
                                me->dones++;
                                me->last_ns = now_ns();
                        }
                        wg_unref(g);
                        _exit(EXIT_SUCCESS);
                }
        }
        for (unsigned i = 0; i < procs; i++)
                if (recv_byte(h[i].report_fd, "a throughput worker's start") != 'r')
                        die("a throughput worker", EPIPE);
        sh->start_ns = now_ns();
        sh->deadline_ns = sh->start_ns + (uint64_t) (seconds * 1e9);
        for (unsigned i = 0; i < procs; i++)
                send_byte(h[i].order_fd, 'g');
        for (unsigned i = 0; i < procs; i++) {
                reap(pids[i]);
                (void) close(h[i].order_fd);
                (void) close(h[i].report_fd);
                total += sh->workers[i].dones;
                if (sh->workers[i].last_ns > last)
                        last = sh->workers[i].last_ns;
        }
        /* Exactly once: the count comes down by the dones that returned 0, no more, no less. */
        count_until(g_a, before - total, "the throughput group's count after the dones");
        *ret_dones = total;
        return last > sh->start_ns ? (double) total / ((double) (last - sh->start_ns) / 1e9) : 0;
}

struct tput_result {
        struct series rate;          /* dones per second */
        struct series txns_per_done; /* etcd transactions answered, per done */
        struct series fsync_ms;      /* etcd's mean WAL fsync meanwhile */
};

static void tput_once(struct rig *k, enum tput t, double seconds, struct tput_result *out) {
        static const size_t one[NODES_MAX] = { 0, 0, 0 }, three[NODES_MAX] = { 0, 1, 2 };
        struct metrics m0, m1;
        uint64_t dones;
        double v;

        metrics_read(&k->mhttp, &m0);
        v = measure_tput(k->tput_a, tput_procs[t], t == T_THREE ? three : one, seconds, &dones);
        metrics_read(&k->mhttp, &m1);
        if (!out)
                return;
        series_add(&out->rate, v);
        if (dones > 0)
                series_add(&out->txns_per_done, (m1.txns - m0.txns) / (double) dones);
        if (m1.fsyncs > m0.fsyncs)
                series_add(&out->fsync_ms, (m1.fsync_sec - m0.fsync_sec) * 1e3 / (m1.fsyncs - m0.fsyncs));
}

/* ---- the report ---- */

static void print_latency(const char *name, const struct samples *s) {
        double v[BENCH_MAX_RUNS], median;
        unsigned n = s->run_median.n;

        if (n == 0)
                return;
        memcpy(v, s->run_median.v, n * sizeof(double));
        median = median_of(v, n); /* sorts v: before v[0] and v[n - 1] are read */
        printf("  %-46s %9.3f %9.3f   %8.3f to %8.3f %9.3f  %5zu\n",
               name,
               median,
               samples_percentile(s, 99),
               v[0],
               v[n - 1],
               samples_percentile(s, 100),
               s->n);
}

static void
report(struct samples *lat,
       struct samples *extra,
       const struct metrics *during,
       long floor_connects,
       struct tput_result *tput,
       bool have_tput) {
        double floor = series_median(&lat[M_PUT].run_median), w = series_median(&lat[M_WG].run_median);

        printf("\nLatency, ms: median of the run medians, 99th percentile and maximum of all samples,\n"
               "and the range of the run medians\n");
        printf("  %-46s %9s %9s   %20s %9s  %5s\n", "", "median", "p99", "run medians", "max", "n");
        for (unsigned m = 0; m < _M_MAX; m++)
                if (mech_on(m))
                        print_latency(mech_name[m], &lat[m]);
        printf("  for information:\n");
        for (unsigned x = 0; x < _X_MAX; x++)
                if (x != X_ETCDCTL_EXIT || use_etcdctl)
                        print_latency(extra_name[x], &extra[x]);
        printf("  the floor's connection to etcd was opened %ld time(s) over the whole run\n",
               floor_connects);
        if (during->fsyncs > 0)
                printf("  etcd over these rounds: %.0f writes committed, %.0f WAL fsyncs, %.3f ms per "
                       "fsync\n"
                       "  on average\n",
                       during->proposals,
                       during->fsyncs,
                       during->fsync_sec * 1e3 / during->fsyncs);

        printf("\nRatios of medians (wg = done on A -> waiter returns on B)\n");
        printf("  wg / floor (etcd kv/put)     %6.2fx   target <= %.1fx: %s\n",
               w / floor,
               TARGET_VS_FLOOR,
               w / floor <= TARGET_VS_FLOOR ? "met" : "NOT MET");
        printf("  wg / etcd txn as wgd's       %6.2fx\n", w / series_median(&lat[M_TXN].run_median));
        if (use_redis) {
                double r = series_median(&lat[M_REDIS].run_median);

                printf("  wg / redis latch             %6.2fx   target < 1 (ahead): %s\n",
                       w / r,
                       w < r ? "met" : "NOT MET");
        }
        if (use_etcdctl) {
                double e = series_median(&lat[M_ETCDCTL].run_median);

                printf("  wg / etcdctl barrier         %6.2fx   target < 1 (ahead): %s\n",
                       w / e,
                       w < e ? "met" : "NOT MET");
        }

        if (!have_tput)
                return;
        printf("\nDones per second on one cluster group (wg_done() on each node's mirror: a request to\n"
               "its wgd, which batches the dones of one group into one etcd transaction at a time),\n"
               "medians over the runs; etcd's transactions per done, and its mean WAL fsync meanwhile\n");
        printf("  %-30s %10s %10s %10s %12s %10s\n",
               "",
               "dones/s",
               "min",
               "max",
               "etcd txn/done",
               "fsync ms");
        for (unsigned t = 0; t < _T_MAX; t++) {
                double v[BENCH_MAX_RUNS], median;
                unsigned n = tput[t].rate.n;

                if (n == 0)
                        continue;
                memcpy(v, tput[t].rate.v, n * sizeof(double));
                median = median_of(v, n);
                printf("  %-30s %10.0f %10.0f %10.0f %12.3f %10.3f\n",
                       tput_name[t],
                       median,
                       v[0],
                       v[n - 1],
                       series_median(&tput[t].txns_per_done),
                       series_median(&tput[t].fsync_ms));
        }
}

static unsigned long long parse_number(const char *s, unsigned long long max, const char *option) {
        unsigned long long v;
        char *end;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || v == 0 || v > max) {
                fprintf(stderr,
                        "bench-cluster: %s needs a number from 1 to %llu, not '%s'\n",
                        option,
                        max,
                        s);
                exit(EXIT_FAILURE);
        }
        return v;
}

static void help(void) {
        printf("Usage: bench-cluster --etcd URL --node SOCKET --node SOCKET [--node SOCKET] [OPTIONS]\n"
               "\n"
               "Measure a cluster group's done on node A to a waiter's return on node B against one\n"
               "etcd write, a Redisson-style Redis latch and an etcdctl barrier, in the same run; and\n"
               "dones per second from one node and from three (see docs/benchmarks.md).\n"
               "bench/run-cluster.sh starts etcd, the nodes and redis-server, and runs it.\n"
               "\n"
               "  --etcd URL         etcd's client URL, which every node uses (http://127.0.0.1:PORT)\n"
               "  --node SOCKET      a wgd node's socket: A, B, then C (3 for the throughput)\n"
               "  --redis HOST:PORT  redis-server, for the latch (IPv4; default: no latch)\n"
               "  --etcdctl PATH     default: etcdctl from $PATH\n"
               "  --no-etcdctl       without the etcdctl barrier\n"
               "  --quick            fewer runs and rounds, shorter throughput runs\n"
               "  --runs N           runs (default 5, quick 3)\n"
               "  --rounds N         rounds per run (default 60, quick 20)\n"
               "  --help             this text\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "etcd", required_argument, NULL, 'e' },
                { "node", required_argument, NULL, 'n' },
                { "redis", required_argument, NULL, 'r' },
                { "etcdctl", required_argument, NULL, 'c' },
                { "no-etcdctl", no_argument, NULL, 'C' },
                { "quick", no_argument, NULL, 'q' },
                { "runs", required_argument, NULL, 'R' },
                { "rounds", required_argument, NULL, 'N' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static struct samples lat[_M_MAX], extra[_X_MAX];
        static struct tput_result tput[_T_MAX];
        struct metrics during = {};
        struct config cfg = config_full;
        unsigned runs = 0, rounds = 0, turn = 0;
        bool quick = false, have_tput;
        struct rig k = {};
        uint64_t t_start;
        int opt;

        bench_init(cleanup);
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 'e':
                        etcd_url = optarg;
                        break;
                case 'n':
                        if (n_nodes == NODES_MAX) {
                                fprintf(stderr, "bench-cluster: at most %d nodes\n", NODES_MAX);
                                return EXIT_FAILURE;
                        }
                        nodes[n_nodes++] = optarg;
                        break;
                case 'r': {
                        static char host[64];
                        const char *colon = strrchr(optarg, ':');

                        if (!colon || (size_t) (colon - optarg) >= sizeof(host)) {
                                fprintf(stderr,
                                        "bench-cluster: --redis wants HOST:PORT, not '%s'\n",
                                        optarg);
                                return EXIT_FAILURE;
                        }
                        memcpy(host, optarg, (size_t) (colon - optarg));
                        host[colon - optarg] = 0;
                        redis_host = host;
                        redis_port = (unsigned) parse_number(colon + 1, 65535, "--redis's port");
                        use_redis = true;
                        break;
                }
                case 'c':
                        etcdctl = optarg;
                        break;
                case 'C':
                        use_etcdctl = false;
                        break;
                case 'q':
                        cfg = config_quick;
                        quick = true;
                        break;
                case 'R':
                        runs = (unsigned) parse_number(optarg, BENCH_MAX_RUNS, "--runs");
                        break;
                case 'N':
                        rounds = (unsigned) parse_number(optarg, 100000, "--rounds");
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                default:
                        return EXIT_FAILURE;
                }
        if (optind < argc) {
                fprintf(stderr, "bench-cluster: unexpected argument '%s'\n", argv[optind]);
                return EXIT_FAILURE;
        }
        if (!etcd_url || n_nodes < 2) {
                fprintf(stderr, "bench-cluster: --etcd and at least two --node are needed (see --help)\n");
                return EXIT_FAILURE;
        }
        if (runs)
                cfg.runs = runs;
        if (rounds)
                cfg.rounds = rounds;
        have_tput = n_nodes == NODES_MAX;

        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        signal(SIGPIPE, SIG_IGN);
        if (setenv("ETCDCTL_API", "3", 1) < 0)
                die("setenv", errno);
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                die("curl_global_init", ENOMEM);
        sh = shared_memory(page_round(sizeof(*sh)));

        /* Names of our own, so that a run against an etcd in use touches nothing else. */
        (void) snprintf(group, sizeof(group), "bench-cluster-%d", (int) getpid());
        (void) snprintf(tput_group, sizeof(tput_group), "bench-cluster-tput-%d", (int) getpid());
        (void) snprintf(latch_key, sizeof(latch_key), "bench-cluster:latch:%d", (int) getpid());
        (void) snprintf(
                latch_channel, sizeof(latch_channel), "redisson_countdownlatch__channel__{%s}", latch_key);
        (void) snprintf(barrier_key, sizeof(barrier_key), "/bench-cluster/barrier/%d", (int) getpid());

        t_start = now_ns();
        http_init(&k.http);
        http_init(&k.mhttp);
        etcd_put(&k.http, "/bench-cluster/txn/state", "{}");
        k.txn_rev = answer_revision(&k.http);

        if (setenv("WGD_SOCKET", nodes[0], 1) < 0)
                die("setenv", errno);
        create_cluster_group(group, 0);
        k.g_a = open_on(0, group);
        k.g_b = open_on(1, group);
        wg_waiter_pid = wg_waiter_start(&k.wg_waiter);
        if (recv_byte(k.wg_waiter.report_fd, "the wg waiter's start") != 'r')
                die("the wg waiter", EPIPE);
        if (have_tput) {
                create_cluster_group(tput_group, TPUT_COUNT);
                for (size_t i = 1; i < n_nodes; i++) {
                        wg *g = open_on(i, tput_group);

                        count_until(g, TPUT_COUNT, "a node's mirror of the throughput group");
                        wg_unref(g);
                }
                k.tput_a = open_on(0, tput_group);
        }
        if (use_redis) {
                resp_connect(&k.redis);
                redis_waiter_pid = redis_waiter_start(&k.redis_waiter);
                if (recv_byte(k.redis_waiter.report_fd, "the redis waiter's start") != 'r')
                        die("the redis waiter", EPIPE);
        }
        if (use_etcdctl) {
                watcher_start();
                /* Until the watch is up: a put of the key shows in its output. */
                for (;;) {
                        struct pollfd pfd = { .fd = watcher_fd, .events = POLLIN };

                        etcd_put(&k.http, barrier_key, "hello");
                        if (poll(&pfd, 1, 200) > 0) {
                                (void) watcher_event("PUT");
                                break;
                        }
                        if (now_ns() - t_start > (uint64_t) PATIENCE_MSEC * 1000000)
                                die("etcdctl watch never showed a put", ETIMEDOUT);
                }
        }

        printf("bench-cluster: %s run; %u runs of %u rounds, every mechanism once per round, in an\n"
               "order that rotates; %u rounds to warm up\n",
               quick ? "quick" : "full",
               cfg.runs,
               cfg.rounds,
               cfg.warmup);
        printf("  etcd %s; node A %s, node B %s", etcd_url, nodes[0], nodes[1]);
        if (n_nodes > 2)
                printf(", node C %s", nodes[2]);
        printf("\n  cluster group '%s' (latency), '%s' (throughput, count %" PRIu64 ")\n",
               group,
               have_tput ? tput_group : "-",
               TPUT_COUNT);
        if (use_redis)
                printf("  redis-server %s:%u, latch key '%s'\n", redis_host, redis_port, latch_key);
        else
                printf("  no redis-server: no latch\n");
        if (use_etcdctl)
                printf("  %s watch %s (pid %d); a new `%s del` per round\n",
                       etcdctl,
                       barrier_key,
                       (int) watcher_pid,
                       etcdctl);
        if (have_tput)
                printf("  throughput: %.1f s per measurement, after each run's rounds\n", cfg.seconds);
        else
                printf("  two nodes only: no throughput figures (they need three)\n");
        (void) fflush(stdout);

        for (unsigned i = 0; i < cfg.warmup; i++)
                round_once(&k, turn++, NULL, NULL);
        if (have_tput)
                for (unsigned t = 0; t < _T_MAX; t++)
                        tput_once(&k, t, cfg.seconds / 4, NULL);

        for (unsigned run = 0; run < cfg.runs; run++) {
                size_t from[_M_MAX], xfrom[_X_MAX];
                struct metrics m0, m1;

                for (unsigned m = 0; m < _M_MAX; m++)
                        from[m] = lat[m].n;
                for (unsigned x = 0; x < _X_MAX; x++)
                        xfrom[x] = extra[x].n;
                metrics_read(&k.mhttp, &m0);
                for (unsigned i = 0; i < cfg.rounds; i++)
                        round_once(&k, turn++, lat, extra);
                metrics_read(&k.mhttp, &m1);
                during.proposals += m1.proposals - m0.proposals;
                during.fsyncs += m1.fsyncs - m0.fsyncs;
                during.fsync_sec += m1.fsync_sec - m0.fsync_sec;
                for (unsigned m = 0; m < _M_MAX; m++)
                        samples_close_run(&lat[m], from[m]);
                for (unsigned x = 0; x < _X_MAX; x++)
                        samples_close_run(&extra[x], xfrom[x]);
                if (have_tput)
                        for (unsigned j = 0; j < _T_MAX; j++)
                                tput_once(&k, (run + j) % _T_MAX, cfg.seconds, &tput[(run + j) % _T_MAX]);
                fprintf(stderr, "bench-cluster: run %u of %u done\n", run + 1, cfg.runs);
        }

        report(lat, extra, &during, k.http.connects, tput, have_tput);

        send_byte(k.wg_waiter.order_fd, 'q');
        reap(wg_waiter_pid);
        wg_waiter_pid = -1;
        if (use_redis) {
                send_byte(k.redis_waiter.order_fd, 'q');
                reap(redis_waiter_pid);
                redis_waiter_pid = -1;
                safe_close(k.redis.fd);
        }
        wg_unref(k.g_a);
        wg_unref(k.g_b);
        wg_unref(k.tput_a);
        delete_group(group);
        if (have_tput)
                delete_group(tput_group);
        cleanup();
        http_done(&k.http);
        http_done(&k.mhttp);
        curl_global_cleanup();
        for (unsigned m = 0; m < _M_MAX; m++)
                free(lat[m].v);
        for (unsigned x = 0; x < _X_MAX; x++)
                free(extra[x].v);
        printf("\nbench-cluster: done in %.1f s\n", (double) (now_ns() - t_start) / 1e9);
        return EXIT_SUCCESS;
}
