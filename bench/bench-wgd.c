/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-wgd: what wgd, the daemon, serves per second over its protocol, against Redis INCR on a
 * unix socket measured in the same run, and what wgd holds in memory per group.
 *
 *  1. Requests per second. The program starts its own wgd and its own redis-server on sockets
 *     in a fresh temporary directory, creates one group through the protocol, and sends Stat
 *     and Add requests to it as real wg.v1 records (protobuf-c, the code wgd itself is built
 *     with); every response is unpacked and checked. In the same shapes it drives Redis INCR,
 *     twice: with redis-benchmark, and with its own client (the very loop that loads wgd,
 *     speaking RESP), so that the client's share of each round trip is the same on both sides.
 *     And it loads a stub server of its own that answers every wg.v1 record with a canned
 *     response: the floor of any server on this transport. The shapes: 1 or 2 connections,
 *     1 request in flight per connection (request/response, redis-benchmark -P 1) or batches
 *     of 16 (-P 16); the client is one thread for all its connections, as redis-benchmark is,
 *     and with -P a connection sends a whole batch at once and waits for all its answers. The
 *     servers are pinned to one CPU, the client to the same CPU or another.
 *  2. Memory per group. A second wgd, allowed many groups, gets 1000 and then 10000 groups
 *     created through the protocol; its RSS (by kind), PSS, descriptors and mappings are read
 *     from /proc before and after.
 *
 * The machine is shared and noisy, so every throughput figure is the median of several runs,
 * and within each run the mechanisms take turns in an order that rotates. It is a report, not a
 * test: a missed target is printed, never an exit status. bench/run-wgd.sh builds and runs it;
 * the method and the figures measured are in docs/benchmarks.md.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "macro.h"
#include "wg.pb-c.h"

/* From the issue: wgd should serve at least twice what Redis does, shape for shape. */
#define TARGET_VS_REDIS 2.0

/* Nothing here takes this long unless something hangs. */
#define PATIENCE_MSEC 20000

/* Most requests one connection has in flight; a response to Stat or Add is under 200 bytes. */
#define DEPTH_MAX 64
#define REQUEST_MAX 256
#define RESPONSE_MAX 1024

/* The counter the Add runs start from: far from both ends, so that +1/-1 never fails. */
#define ADD_BASE UINT64_C(1000000000)

#define GROUP "bench"

#ifndef BENCH_WGD
#define BENCH_WGD "wgd"
#endif

/*
 * Where the client runs, the server being on the first CPU we may use. Left to the scheduler,
 * a client and its server on a two-CPU machine share a CPU in some runs and not in others, and
 * the two cases are several times apart (a wakeup across CPUs costs tens of µs on a virtual
 * machine), so every measurement pins both, and both placements are reported.
 */
enum place { PLACE_SAME_CPU, PLACE_TWO_CPUS, _PLACE_MAX };
static const char *const place_name[_PLACE_MAX] = {
        [PLACE_SAME_CPU] = "same CPU",
        [PLACE_TWO_CPUS] = "two CPUs",
};

struct config {
        unsigned runs;
        uint64_t requests[_PLACE_MAX][2]; /* per run: request/response, pipelined */
        unsigned groups[2];               /* the two memory samples */
};

/*
 * A quarter to half a second per measurement, 40 measurements per run: a full run takes one
 * and a half to two minutes on two CPUs, a quick one about fifteen seconds. Across CPUs every
 * wakeup is slow, so fewer requests fill the same time.
 */
static const struct config config_full = {
        .runs = 7,
        .requests = { { 15000, 80000 }, { 4000, 30000 } },
        .groups = { 1000, 10000 },
};

static const struct config config_quick = {
        .runs = 3,
        .requests = { { 5000, 25000 }, { 1500, 10000 } },
        .groups = { 1000, 10000 },
};

struct shape {
        unsigned conns;
        unsigned depth; /* requests in flight per connection: 1 is request/response */
};

static const struct shape shapes[] = {
        { 1, 1 },
        { 2, 1 },
        { 1, 16 },
        { 2, 16 },
};
#define N_SHAPES ELEMENTSOF(shapes)

/*
 * Redis last: without it, the others are the first three. Redis twice: through redis-benchmark,
 * the tool everybody quotes, and through our own client, so that the client's work is the same
 * as for wgd (redis-benchmark makes about nine system calls per request at -P 1, ours two).
 */
enum mech { MECH_WG_STAT, MECH_WG_ADD, MECH_STUB, MECH_REDIS_INCR, MECH_REDIS_OWN, _MECH_MAX };
#define MECH_REDIS_FIRST MECH_REDIS_INCR
static const char *const mech_name[_MECH_MAX] = {
        [MECH_WG_STAT] = "wgd Stat",
        [MECH_WG_ADD] = "wgd Add +1/-1",
        [MECH_STUB] = "stub server",
        [MECH_REDIS_INCR] = "redis INCR",
        [MECH_REDIS_OWN] = "redis INCR, our client",
};

struct result {
        struct series rps;
        struct series cpu_us; /* the server's CPU time per request, µs; empty without schedstat */
};

/* ---- processes and the temporary directory, cleaned up however we end ---- */

static char tmp_dir[PATH_MAX];
static char wgd_socket[PATH_MAX], mem_socket[PATH_MAX], stub_socket[PATH_MAX], redis_socket[PATH_MAX],
        redis_log[PATH_MAX];
/* wgd leaves SOCKET.lock behind on purpose (see server_listen_path()); it is ours to remove. */
static char wgd_lock[PATH_MAX + 8], mem_lock[PATH_MAX + 8];
static volatile pid_t wgd_pid = -1, mem_wgd_pid = -1, stub_pid = -1, redis_pid = -1;

/* The servers run on cpus[0]; the client on cpus[0] or cpus[1]. n_cpus 1: one placement only. */
static int cpus[2];
static unsigned n_cpus;

static void find_cpus(void) {
        cpu_set_t set;

        if (sched_getaffinity(0, sizeof(set), &set) < 0)
                die("sched_getaffinity", errno);
        for (int cpu = 0; cpu < CPU_SETSIZE && n_cpus < ELEMENTSOF(cpus); cpu++)
                if (CPU_ISSET(cpu, &set))
                        cpus[n_cpus++] = cpu;
}

/* Pin @pid (0: us) to one CPU; what it forks and execs from then on stays there too. */
static void pin(pid_t pid, int cpu) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(pid, sizeof(set), &set) < 0)
                die("sched_setaffinity", errno);
}

/* Async-signal-safe: it runs from die() and from the handler of SIGINT and SIGTERM. */
static void cleanup(void) {
        pid_t pids[4] = { wgd_pid, mem_wgd_pid, stub_pid, redis_pid };

        for (size_t i = 0; i < ELEMENTSOF(pids); i++)
                if (pids[i] > 0) {
                        (void) kill(pids[i], SIGKILL);
                        (void) waitpid(pids[i], NULL, 0);
                }
        wgd_pid = mem_wgd_pid = stub_pid = redis_pid = -1;
        if (!tmp_dir[0])
                return;
        (void) unlink(wgd_socket);
        (void) unlink(mem_socket);
        (void) unlink(wgd_lock);
        (void) unlink(mem_lock);
        (void) unlink(stub_socket);
        (void) unlink(redis_socket);
        (void) unlink(redis_log);
        (void) rmdir(tmp_dir);
}

static void on_signal(int sig) {
        cleanup();
        _exit(128 + sig);
}

static void path_in_tmp(char *buf, const char *name) {
        if ((size_t) snprintf(buf, PATH_MAX, "%s/%s", tmp_dir, name) >=
            sizeof(((struct sockaddr_un *) 0)->sun_path))
                die("socket path (set TMPDIR to a shorter directory)", ENAMETOOLONG);
}

/* Poll for @pid's end without waiting; dies if it is gone, since it had no reason to go. */
static void check_alive(pid_t pid, const char *what) {
        int status;

        if (waitpid(pid, &status, WNOHANG) == pid) {
                fprintf(stderr, "bench-wgd: %s exited early (wait status 0x%x)\n", what, (unsigned) status);
                if (pid == wgd_pid)
                        wgd_pid = -1;
                else if (pid == mem_wgd_pid)
                        mem_wgd_pid = -1;
                else if (pid == stub_pid)
                        stub_pid = -1;
                else if (pid == redis_pid)
                        redis_pid = -1;
                die(what, ECHILD);
        }
}

/* SIGTERM, then the exit status: a server that does not stop cleanly is worth a word. */
static void stop(volatile pid_t *pid, const char *what) {
        int status;

        if (*pid <= 0)
                return;
        if (kill(*pid, SIGTERM) < 0)
                die("kill", errno);
        while (waitpid(*pid, &status, 0) < 0)
                if (errno != EINTR)
                        die("waitpid", errno);
        *pid = -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr,
                        "bench-wgd: warning: %s stopped with wait status 0x%x\n",
                        what,
                        (unsigned) status);
}

static int connect_unix(int type, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket", errno);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                safe_close(fd);
                return -errno;
        }
        return fd;
}

/* Connect once the server listens, as long as it lives. */
static int connect_when_up(int type, const char *path, pid_t pid, const char *what) {
        for (unsigned i = 0; i < PATIENCE_MSEC / 10; i++) {
                int fd = connect_unix(type, path);

                if (fd >= 0)
                        return fd;
                check_alive(pid, what);
                (void) usleep(10 * 1000);
        }
        fprintf(stderr, "bench-wgd: nobody listens on %s\n", path);
        die(what, ETIMEDOUT);
}

/*
 * wgd as a user would start it by hand: not under systemd (so no fdstore and no notify socket),
 * and with the soft limit of descriptors raised to the hard one, because every group holds
 * one; the units set LimitNOFILE= for the same reason.
 */
static pid_t spawn_wgd(const char *wgd, const char *socket_path, const char *extra1, const char *extra2) {
        char socket_arg[PATH_MAX + 16];
        pid_t pid;

        snprintf(socket_arg, sizeof(socket_arg), "--socket=%s", socket_path);
        pid = fork_child();
        if (pid < 0)
                die("fork", -pid);
        if (pid == 0) {
                const char *argv[] = {
                        wgd, socket_arg, "--idle-timeout=0", "--log-level=warning", extra1, extra2, NULL,
                };
                struct rlimit rl;

                /* Before exec, so that every thread wgd starts is there too. */
                pin(0, cpus[0]);
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                        rl.rlim_cur = rl.rlim_max;
                        (void) setrlimit(RLIMIT_NOFILE, &rl);
                }
                (void) unsetenv("NOTIFY_SOCKET");
                (void) unsetenv("LISTEN_FDS");
                (void) unsetenv("LISTEN_PID");
                (void) unsetenv("LISTEN_FDNAMES");
                (void) unsetenv("WATCHDOG_USEC");
                (void) unsetenv("WATCHDOG_PID");
                execvp(wgd, (char *const *) argv);
                fprintf(stderr, "bench-wgd: cannot run %s: %s\n", wgd, strerror(errno));
                _exit(127);
        }
        return pid;
}

static pid_t spawn_redis(const char *redis_server) {
        pid_t pid;

        pid = fork_child();
        if (pid < 0)
                die("fork", -pid);
        if (pid == 0) {
                int fd = open(redis_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                /* Before exec, so that its background threads are there too. */
                pin(0, cpus[0]);
                /* Its banner and warnings would bury the report; they are kept in a file. */
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(126);
                /* The unix socket only, no persistence (wgd has none but the fdstore), our child. */
                execlp(redis_server,
                       redis_server,
                       "--port",
                       "0",
                       "--unixsocket",
                       redis_socket,
                       "--save",
                       "",
                       "--appendonly",
                       "no",
                       "--daemonize",
                       "no",
                       "--dir",
                       tmp_dir,
                       "--loglevel",
                       "warning",
                       (char *) NULL);
                _exit(127);
        }
        return pid;
}

/* Redis answers PING once it serves. */
static void wait_redis(void) {
        char buf[64];
        ssize_t n;
        int fd;

        fd = connect_when_up(SOCK_STREAM, redis_socket, redis_pid, "redis-server");
        if (write(fd, "PING\r\n", 6) != 6)
                die("write PING", errno);
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 5 || strncmp(buf, "+PONG", 5) != 0)
                die("redis-server does not answer PING", EPROTO);
        safe_close(fd);
}

/* ---- the wg.v1 client ---- */

struct conn {
        int fd;
        unsigned outstanding;
        uint64_t next_id;   /* of the next request */
        uint64_t expect_id; /* of the next response: Stat and Add are answered in order */
        char pending[1024]; /* Redis: a stream, so a reply may come in pieces */
        size_t n_pending;
};

struct load {
        enum mech mech;
        unsigned depth;
        uint64_t total, issued, answered;
        uint64_t base;      /* the counter before the run */
        uint64_t max_drift; /* how far Add may move it: +1 and -1 alternate, a few in flight */
};

/* One record out, one record back: for setting up, not for measuring. */
static Wg__V1__Response *call(int fd, Wg__V1__Request *req) {
        static uint64_t next_id = UINT64_C(1) << 62;
        uint8_t out[REQUEST_MAX * 4], in[RESPONSE_MAX * 4];
        Wg__V1__Response *resp;
        size_t len;
        ssize_t n;

        req->has_version = true;
        req->version = 1;
        req->has_id = true;
        req->id = next_id++;
        len = wg__v1__request__get_packed_size(req);
        if (len > sizeof(out))
                die("request too large", EMSGSIZE);
        wg__v1__request__pack(req, out);
        if (send(fd, out, len, MSG_NOSIGNAL) != (ssize_t) len)
                die("send", errno);
        n = recv(fd, in, sizeof(in), 0);
        if (n <= 0)
                die("recv", n < 0 ? errno : EPIPE);
        resp = wg__v1__response__unpack(NULL, (size_t) n, in);
        if (!resp)
                die("a response that is not a wg.v1.Response", EBADMSG);
        if (!resp->has_id || resp->id != req->id)
                die("a response with the wrong id", EPROTO);
        return resp;
}

/* The error of @resp as -errno (with its message printed), or 0. */
static int response_error(const Wg__V1__Response *resp, const char *what) {
        if (resp->result_case != WG__V1__RESPONSE__RESULT_ERROR)
                return 0;
        fprintf(stderr,
                "bench-wgd: %s: %s\n",
                what,
                resp->error && resp->error->message ? resp->error->message : "?");
        return -(resp->error && resp->error->has_errnum ? resp->error->errnum : EPROTO);
}

/* The counter of GROUP now: a run of odd length leaves it one off where the run found it. */
static uint64_t group_count(int fd) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Stat m = WG__V1__STAT__INIT;
        Wg__V1__Response *resp;
        uint64_t count;
        int r;

        m.name = (char *) GROUP;
        req.op_case = WG__V1__REQUEST__OP_STAT;
        req.stat = &m;
        resp = call(fd, &req);
        r = response_error(resp, "Stat");
        if (r < 0)
                die("Stat", -r);
        if (resp->result_case != WG__V1__RESPONSE__RESULT_GROUP || !resp->group || !resp->group->has_count)
                die("a Stat response without a count", EPROTO);
        count = resp->group->count;
        wg__v1__response__free_unpacked(resp, NULL);
        return count;
}

static void create_group(int fd, const char *name, uint64_t count, bool exist_ok) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Create m = WG__V1__CREATE__INIT;
        Wg__V1__Response *resp;
        int r;

        m.name = (char *) name;
        m.has_count = true;
        m.count = count;
        m.has_exist_ok = exist_ok;
        m.exist_ok = exist_ok;
        req.op_case = WG__V1__REQUEST__OP_CREATE;
        req.create = &m;
        resp = call(fd, &req);
        r = response_error(resp, "Create");
        if (r < 0)
                die("Create", -r);
        wg__v1__response__free_unpacked(resp, NULL);
}

static int connect_patient(int type, const char *path) {
        struct timeval tv = { .tv_sec = PATIENCE_MSEC / 1000 };
        int fd = connect_unix(type, path);

        if (fd < 0)
                die("connect", -fd);
        /* A blocking receive that never ends would hang the run: better a failed run. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
                die("SO_RCVTIMEO", errno);
        return fd;
}

static int wg_connect(const char *path) {
        return connect_patient(SOCK_SEQPACKET, path);
}

static int redis_connect(const char *path) {
        return connect_patient(SOCK_STREAM, path);
}

/* Redis's protocol, RESP: k INCRs in one write(), as redis-benchmark -P k sends them. */
static void redis_send_batch(struct conn *c, unsigned k) {
        static const char incr[] = "*2\r\n$4\r\nINCR\r\n$13\r\nbench:counter\r\n";
        char buf[DEPTH_MAX * (sizeof(incr) - 1)];
        size_t len = 0, done = 0;

        for (unsigned i = 0; i < k; i++, len += sizeof(incr) - 1)
                memcpy(buf + len, incr, sizeof(incr) - 1);
        while (done < len) {
                ssize_t n = send(c->fd, buf + done, len - done, MSG_NOSIGNAL);

                if (n < 0 && errno != EINTR)
                        die("send to redis", errno);
                if (n > 0)
                        done += (size_t) n;
        }
        c->outstanding += k;
}

/* Whatever replies are there: each ":<integer>\r\n", anything else is an error. */
static unsigned redis_receive(struct conn *c, int flags) {
        unsigned replies = 0;
        size_t start = 0;
        ssize_t n;

        n = recv(c->fd, c->pending + c->n_pending, sizeof(c->pending) - c->n_pending, flags);
        if (n < 0) {
                /* Without MSG_DONTWAIT, EAGAIN is SO_RCVTIMEO: the server hangs. */
                if (errno == EINTR || (errno == EAGAIN && (flags & MSG_DONTWAIT)))
                        return 0;
                die("recv from redis", errno);
        }
        if (n == 0)
                die("redis closed the connection", EPIPE);
        c->n_pending += (size_t) n;
        for (size_t i = 0; i + 1 < c->n_pending; i++)
                if (c->pending[i] == '\r' && c->pending[i + 1] == '\n') {
                        if (c->pending[start] != ':') {
                                fprintf(stderr,
                                        "bench-wgd: redis answered '%.*s'\n",
                                        (int) (i - start),
                                        c->pending + start);
                                die("redis INCR", EPROTO);
                        }
                        replies++;
                        start = i + 2;
                        i++;
                }
        memmove(c->pending, c->pending + start, c->n_pending - start);
        c->n_pending -= start;
        if (c->n_pending == sizeof(c->pending))
                die("a reply from redis too long", EMSGSIZE);
        return replies;
}

/* The next batch of requests of @c, in one sendmmsg(), as redis-benchmark sends a batch in one write(). */
static void send_batch(struct load *l, struct conn *c) {
        static uint8_t buf[DEPTH_MAX][REQUEST_MAX];
        struct iovec iov[DEPTH_MAX];
        struct mmsghdr msgs[DEPTH_MAX];
        uint64_t left = l->total - l->issued;
        unsigned k = left < l->depth ? (unsigned) left : l->depth, sent = 0;

        if (l->mech == MECH_REDIS_OWN) {
                redis_send_batch(c, k);
                l->issued += k;
                return;
        }

        for (unsigned i = 0; i < k; i++) {
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                Wg__V1__Stat stat = WG__V1__STAT__INIT;
                Wg__V1__Add add = WG__V1__ADD__INIT;
                size_t len;

                req.has_version = true;
                req.version = 1;
                req.has_id = true;
                req.id = c->next_id++;
                if (l->mech != MECH_WG_ADD) {
                        stat.name = (char *) GROUP;
                        req.op_case = WG__V1__REQUEST__OP_STAT;
                        req.stat = &stat;
                } else {
                        add.name = (char *) GROUP;
                        add.has_delta = true;
                        add.delta = (l->issued + i) % 2 ? -1 : 1;
                        req.op_case = WG__V1__REQUEST__OP_ADD;
                        req.add = &add;
                }
                len = wg__v1__request__get_packed_size(&req);
                if (len > REQUEST_MAX)
                        die("request too large", EMSGSIZE);
                wg__v1__request__pack(&req, buf[i]);
                iov[i] = (struct iovec) { .iov_base = buf[i], .iov_len = len };
                msgs[i] = (struct mmsghdr) { .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }

        while (sent < k) {
                int n = sendmmsg(c->fd, msgs + sent, k - sent, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        die("sendmmsg", errno);
                }
                sent += (unsigned) n;
        }
        c->outstanding += k;
        l->issued += k;
}

static void check_response(struct load *l, struct conn *c, const uint8_t *buf, size_t len) {
        Wg__V1__Response *resp;
        int r;

        resp = wg__v1__response__unpack(NULL, len, buf);
        if (!resp)
                die("a response that is not a wg.v1.Response", EBADMSG);
        if (!resp->has_id || resp->id != c->expect_id)
                die("a response out of order", EPROTO);
        c->expect_id++;
        r = response_error(resp, mech_name[l->mech]);
        if (r < 0)
                die(mech_name[l->mech], -r);
        if (resp->result_case != WG__V1__RESPONSE__RESULT_GROUP || !resp->group || !resp->group->has_count ||
            resp->group->count + l->max_drift < l->base || resp->group->count > l->base + l->max_drift)
                die("a response that does not describe the group", EPROTO);
        wg__v1__response__free_unpacked(resp, NULL);
}

/* Whatever wg.v1 answers of @c are there (at least one, unless @flags has MSG_DONTWAIT). */
static unsigned wg_receive(struct load *l, struct conn *c, int flags) {
        static uint8_t buf[DEPTH_MAX][RESPONSE_MAX];
        struct iovec iov[DEPTH_MAX];
        struct mmsghdr msgs[DEPTH_MAX];
        int n;

        for (unsigned i = 0; i < c->outstanding; i++) {
                iov[i] = (struct iovec) { .iov_base = buf[i], .iov_len = RESPONSE_MAX };
                msgs[i] = (struct mmsghdr) { .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }
        n = recvmmsg(c->fd, msgs, c->outstanding, flags | MSG_WAITFORONE, NULL);
        if (n < 0) {
                /* Without MSG_DONTWAIT, EAGAIN is SO_RCVTIMEO: the server hangs. */
                if (errno == EINTR || (errno == EAGAIN && (flags & MSG_DONTWAIT)))
                        return 0;
                die("recvmmsg", errno);
        }
        for (int i = 0; i < n; i++) {
                if (msgs[i].msg_len == 0)
                        die("the server closed the connection", EPIPE);
                if (msgs[i].msg_hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
                        die("a response larger than expected", EMSGSIZE);
                check_response(l, c, buf[i], msgs[i].msg_len);
        }
        return (unsigned) n;
}

static void receive(struct load *l, struct conn *c, int flags) {
        unsigned n;

        if (c->outstanding == 0)
                return;
        n = l->mech == MECH_REDIS_OWN ? redis_receive(c, flags) : wg_receive(l, c, flags);
        if (n > c->outstanding)
                die("more answers than requests", EPROTO);
        c->outstanding -= n;
        l->answered += n;
        /* As redis-benchmark -P: the next batch once the whole batch is answered. */
        if (c->outstanding == 0 && l->issued < l->total)
                send_batch(l, c);
}

/* @n requests over the connections of @shape; returns requests per second. */
static double client_run(const char *path, enum mech mech, const struct shape *shape, uint64_t n) {
        struct conn conns[2];
        struct pollfd pfds[2];
        struct load l = {
                .mech = mech,
                .depth = shape->depth,
                .total = n,
                .max_drift = (uint64_t) shape->conns * shape->depth,
        };
        uint64_t t0, t1;

        if (shape->conns > ELEMENTSOF(conns) || shape->depth > DEPTH_MAX)
                die("shape", EINVAL);
        for (unsigned i = 0; i < shape->conns; i++) {
                conns[i] = (struct conn) {
                        .fd = mech == MECH_REDIS_OWN ? redis_connect(path) : wg_connect(path),
                        .next_id = 1,
                        .expect_id = 1,
                };
                pfds[i] = (struct pollfd) { .fd = conns[i].fd, .events = POLLIN };
        }
        /* Where the counter starts, outside the clock. */
        if (mech != MECH_REDIS_OWN)
                l.base = group_count(conns[0].fd);

        t0 = now_ns();
        for (unsigned i = 0; i < shape->conns; i++)
                send_batch(&l, &conns[i]);
        while (l.answered < l.total) {
                int r;

                /* One connection: sleep in the receive itself, as a plain client would; no poll(). */
                if (shape->conns == 1) {
                        receive(&l, &conns[0], 0);
                        continue;
                }
                r = poll(pfds, shape->conns, PATIENCE_MSEC);
                if (r < 0 && errno != EINTR)
                        die("poll", errno);
                if (r == 0)
                        die("no response from the server", ETIMEDOUT);
                for (unsigned i = 0; i < shape->conns; i++)
                        if (pfds[i].revents)
                                receive(&l, &conns[i], MSG_DONTWAIT);
        }
        t1 = now_ns();

        for (unsigned i = 0; i < shape->conns; i++)
                safe_close(conns[i].fd);
        return (double) n * 1e9 / (double) (t1 - t0);
}

/* ---- the stub server: the floor of any wg.v1 server on this transport ---- */

/*
 * A server that does nothing but answer: every record gets the same GroupInfo back, packed
 * once, with the request's id spliced in, and no protobuf-c, no event library, no lookup.
 * It makes wgd's system calls (epoll_wait, then records until EAGAIN), but takes the records
 * 32 at a time with recvmmsg() and answers them with one sendmmsg(): at -P 1 that is the same
 * count of system calls as wgd's, at -P 16 it shows what batching them would give.
 */
#define STUB_BATCH 32

static size_t
stub_answer(const uint8_t *req, size_t len, const uint8_t *group, size_t group_len, uint8_t *out) {
        uint64_t id = 0;
        size_t i = 3, n = 0;

        /* protobuf-c packs in field order: version (08 01), then id (10 varint). */
        if (len < 4 || req[0] != 0x08 || req[1] != 0x01 || req[2] != 0x10)
                die("stub: a request that does not start with version and id", EBADMSG);
        for (unsigned shift = 0; i < len && shift < 64; shift += 7, i++) {
                id |= (uint64_t) (req[i] & 0x7f) << shift;
                if (!(req[i] & 0x80))
                        break;
        }
        out[n++] = 0x08; /* Response.id */
        do {
                out[n++] = (uint8_t) ((id & 0x7f) | (id > 0x7f ? 0x80 : 0));
                id >>= 7;
        } while (id);
        memcpy(out + n, group, group_len);
        return n + group_len;
}

static _Noreturn void stub_serve(int lfd) {
        static uint8_t in[STUB_BATCH][REQUEST_MAX], out[STUB_BATCH][RESPONSE_MAX];
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__GroupInfo info = WG__V1__GROUP_INFO__INIT;
        struct iovec iov_in[STUB_BATCH], iov_out[STUB_BATCH];
        struct mmsghdr msg_in[STUB_BATCH], msg_out[STUB_BATCH];
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
        uint8_t group[RESPONSE_MAX / 2];
        size_t group_len;
        int ep;

        /* What wgd answers to Stat: the Response's group field alone, packed once. */
        info.name = (char *) GROUP;
        info.has_count = info.has_generation = info.has_waiters = info.has_futex_waiters = true;
        info.count = ADD_BASE;
        info.has_owner = info.has_gid = info.has_mode = info.has_created_usec = true;
        info.owner = (uint32_t) getuid();
        info.gid = (uint32_t) getgid();
        info.mode = 0600;
        info.created_usec = now_ns() / 1000;
        resp.result_case = WG__V1__RESPONSE__RESULT_GROUP;
        resp.group = &info;
        group_len = wg__v1__response__get_packed_size(&resp);
        if (group_len > sizeof(group))
                die("stub: answer too large", EMSGSIZE);
        wg__v1__response__pack(&resp, group);

        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
                die("stub: epoll", errno);
        for (unsigned i = 0; i < STUB_BATCH; i++) {
                iov_in[i] = (struct iovec) { .iov_base = in[i], .iov_len = REQUEST_MAX };
                iov_out[i] = (struct iovec) { .iov_base = out[i] };
                msg_out[i] = (struct mmsghdr) { .msg_hdr = { .msg_iov = &iov_out[i], .msg_iovlen = 1 } };
        }

        for (;;) {
                struct epoll_event events[8];
                int n = epoll_wait(ep, events, ELEMENTSOF(events), -1);

                if (n < 0 && errno != EINTR)
                        die("stub: epoll_wait", errno);
                for (int e = 0; e < n; e++) {
                        int fd = events[e].data.fd;

                        if (fd == lfd) {
                                int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                                struct epoll_event cev = { .events = EPOLLIN };

                                if (c < 0)
                                        continue;
                                cev.data.fd = c;
                                if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0)
                                        die("stub: epoll_ctl", errno);
                                continue;
                        }
                        for (;;) {
                                int k, sent = 0;

                                for (unsigned i = 0; i < STUB_BATCH; i++)
                                        msg_in[i] = (struct mmsghdr) {
                                                .msg_hdr = { .msg_iov = &iov_in[i], .msg_iovlen = 1 },
                                        };
                                k = recvmmsg(fd, msg_in, STUB_BATCH, MSG_DONTWAIT, NULL);
                                if (k < 0 && errno == EAGAIN)
                                        break;
                                if (k <= 0 || msg_in[0].msg_len == 0) {
                                        /* End of file (the client is done) or a broken connection. */
                                        safe_close(fd);
                                        break;
                                }
                                for (int i = 0; i < k; i++)
                                        iov_out[i].iov_len = stub_answer(
                                                in[i], msg_in[i].msg_len, group, group_len, out[i]);
                                while (sent < k) {
                                        int r = sendmmsg(
                                                fd, msg_out + sent, (unsigned) (k - sent), MSG_NOSIGNAL);

                                        if (r < 0 && errno != EINTR && errno != EAGAIN)
                                                die("stub: sendmmsg", errno);
                                        if (r > 0)
                                                sent += r;
                                }
                        }
                }
        }
}

static pid_t spawn_stub(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        pid_t pid;
        int lfd;

        strcpy(sa.sun_path, stub_socket);
        lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (lfd < 0)
                die("socket", errno);
        if (bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(lfd, SOMAXCONN) < 0)
                die("stub: bind", errno);
        pid = fork_child();
        if (pid < 0)
                die("fork", -pid);
        if (pid == 0) {
                /* Our handlers clean up after the main process: not the stub's business. */
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGHUP, SIG_DFL);
                pin(0, cpus[0]);
                stub_serve(lfd);
        }
        safe_close(lfd);
        return pid;
}

/* ---- redis-benchmark ---- */

/* With -q, its last line is "INCR: 19928.30 requests per second, p50=..."; progress lines end in \r. */
static double parse_redis_rps(const char *out) {
        const char *key = " requests per second", *p = NULL, *q, *start;

        for (q = strstr(out, key); q; q = strstr(q + 1, key))
                p = q;
        if (!p)
                return -1;
        for (start = p; start > out && (start[-1] == '.' || (start[-1] >= '0' && start[-1] <= '9')); start--)
                ;
        if (start == p)
                return -1;
        return strtod(start, NULL);
}

static double redis_run(const char *redis_benchmark, const struct shape *shape, uint64_t n) {
        char n_arg[32], c_arg[16], p_arg[16], out[65536];
        size_t len = 0;
        int pipefd[2];
        double rps;
        pid_t pid;

        snprintf(n_arg, sizeof(n_arg), "%" PRIu64, n);
        snprintf(c_arg, sizeof(c_arg), "%u", shape->conns);
        snprintf(p_arg, sizeof(p_arg), "%u", shape->depth);
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                die("pipe2", errno);
        pid = fork_child();
        if (pid < 0)
                die("fork", -pid);
        if (pid == 0) {
                if (dup2(pipefd[1], STDOUT_FILENO) < 0)
                        _exit(126);
                /* INCR of one key, -c connections, -P requests in flight on each. */
                execlp(redis_benchmark,
                       redis_benchmark,
                       "-s",
                       redis_socket,
                       "-t",
                       "incr",
                       "-n",
                       n_arg,
                       "-c",
                       c_arg,
                       "-P",
                       p_arg,
                       "-q",
                       (char *) NULL);
                _exit(127);
        }
        safe_close(pipefd[1]);
        for (;;) {
                ssize_t k;

                /* Only the end matters: keep the last part if it ever fills the buffer. */
                if (len == sizeof(out) - 1) {
                        memmove(out, out + sizeof(out) / 2, len - sizeof(out) / 2);
                        len -= sizeof(out) / 2;
                }
                k = read(pipefd[0], out + len, sizeof(out) - 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        die("read from redis-benchmark", errno);
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        out[len] = 0;
        safe_close(pipefd[0]);
        reap(pid);

        rps = parse_redis_rps(out);
        if (rps <= 0) {
                fprintf(stderr, "bench-wgd: cannot read redis-benchmark's output:\n%s\n", out);
                die("redis-benchmark", EPROTO);
        }
        return rps;
}

/* ---- /proc ---- */

/* CPU time of @pid's main thread in ns (sum_exec_runtime), or -1 if the kernel does not say. */
static double cpu_ns(pid_t pid) {
        char path[64];
        unsigned long long ns;
        FILE *f;
        int ok;

        snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        ok = fscanf(f, "%llu", &ns) == 1;
        fclose(f);
        return ok ? (double) ns : -1;
}

/* User and system CPU time of the whole of @pid, in clock ticks (/proc/PID/stat). */
static bool cpu_ticks(pid_t pid, unsigned long long ret[2]) {
        char path[64], buf[1024], *p;
        size_t n;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        /* The command name may hold spaces and parentheses: fields count from the last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return false;
        return sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ret[0], &ret[1]) == 2;
}

/* "Key:   1234 kB" from a /proc file, in KiB; -1 if the file or the key is missing. */
static long proc_kib(const char *path, const char *key) {
        char line[256];
        size_t klen = strlen(key);
        long v = -1;
        FILE *f;

        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
                        v = strtol(line + klen + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

static long count_entries(const char *path) {
        struct dirent *de;
        long n = 0;
        DIR *d;

        d = opendir(path);
        if (!d)
                return -1;
        while ((de = readdir(d)))
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

static long count_lines(const char *path) {
        long n = 0;
        FILE *f;
        int ch;

        f = fopen(path, "re");
        if (!f)
                return -1;
        while ((ch = getc(f)) != EOF)
                n += ch == '\n';
        fclose(f);
        return n;
}

enum {
        MEM_VMRSS,
        MEM_RSS_ANON,
        MEM_RSS_FILE,
        MEM_RSS_SHMEM,
        MEM_PSS,
        MEM_PSS_ANON,
        MEM_PSS_SHMEM,
        MEM_FDS,
        MEM_MAPS,
        MEM_SYS_SHMEM,
        MEM_SYS_SLAB,
        _MEM_MAX,
};

static const struct {
        const char *name;
        const char *unit;
} mem_field[_MEM_MAX] = {
        [MEM_VMRSS] = { "VmRSS (status)", "KiB" },
        [MEM_RSS_ANON] = { "  RssAnon: heap, stacks", "KiB" },
        [MEM_RSS_FILE] = { "  RssFile: binary, libraries", "KiB" },
        [MEM_RSS_SHMEM] = { "  RssShmem: segment pages", "KiB" },
        [MEM_PSS] = { "Pss (smaps_rollup)", "KiB" },
        [MEM_PSS_ANON] = { "  Pss_Anon", "KiB" },
        [MEM_PSS_SHMEM] = { "  Pss_Shmem", "KiB" },
        [MEM_FDS] = { "open descriptors", "fds" },
        [MEM_MAPS] = { "mappings (/proc/PID/maps)", "maps" },
        [MEM_SYS_SHMEM] = { "machine Shmem (meminfo)*", "KiB" },
        [MEM_SYS_SLAB] = { "machine Slab (meminfo)*", "KiB" },
};

static void mem_sample(pid_t pid, long v[_MEM_MAX]) {
        char status[64], rollup[64], path[64];

        snprintf(status, sizeof(status), "/proc/%d/status", (int) pid);
        snprintf(rollup, sizeof(rollup), "/proc/%d/smaps_rollup", (int) pid);
        v[MEM_VMRSS] = proc_kib(status, "VmRSS");
        v[MEM_RSS_ANON] = proc_kib(status, "RssAnon");
        v[MEM_RSS_FILE] = proc_kib(status, "RssFile");
        v[MEM_RSS_SHMEM] = proc_kib(status, "RssShmem");
        v[MEM_PSS] = proc_kib(rollup, "Pss");
        v[MEM_PSS_ANON] = proc_kib(rollup, "Pss_Anon");
        v[MEM_PSS_SHMEM] = proc_kib(rollup, "Pss_Shmem");
        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        v[MEM_FDS] = count_entries(path);
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        v[MEM_MAPS] = count_lines(path);
        v[MEM_SYS_SHMEM] = proc_kib("/proc/meminfo", "Shmem");
        v[MEM_SYS_SLAB] = proc_kib("/proc/meminfo", "Slab");
}

static void bench_memory(const char *wgd, const struct config *cfg) {
        long samples[3][_MEM_MAX];
        unsigned groups[3] = { 0, cfg->groups[0], cfg->groups[1] }, made = 0;
        char extra1[64], extra2[64], name[32];
        struct rlimit rl;
        int fd, r;

        /* Every group holds a descriptor in wgd, which gets our hard limit as its soft one. */
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                die("getrlimit", errno);
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t) groups[2] + 64) {
                groups[2] = rl.rlim_max > 128 ? (unsigned) rl.rlim_max - 64 : 64;
                if (groups[1] > groups[2] / 2)
                        groups[1] = groups[2] / 2;
                printf("memory: the hard limit of descriptors is %llu, so at most %u groups\n",
                       (unsigned long long) rl.rlim_max,
                       groups[2]);
        }

        /* Both limits, the one in all (4096 by default) and the one per uid (1024). */
        snprintf(extra1, sizeof(extra1), "--max-groups=%u", groups[2] + 1);
        snprintf(extra2, sizeof(extra2), "--max-groups-per-user=%u", groups[2] + 1);
        mem_wgd_pid = spawn_wgd(wgd, mem_socket, extra1, extra2);
        safe_close(connect_when_up(SOCK_SEQPACKET, mem_socket, mem_wgd_pid, "wgd (memory)"));
        fd = wg_connect(mem_socket);

        /* One request first, so that what serving any request allocates is in the baseline. */
        {
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                Wg__V1__Stat m = WG__V1__STAT__INIT;
                Wg__V1__Response *resp;

                m.name = (char *) "warm-up";
                req.op_case = WG__V1__REQUEST__OP_STAT;
                req.stat = &m;
                resp = call(fd, &req);
                r = 0;
                if (resp->result_case == WG__V1__RESPONSE__RESULT_ERROR && resp->error &&
                    resp->error->has_errnum)
                        r = resp->error->errnum;
                if (r != ENOENT)
                        die("Stat of a missing group", r ? r : EPROTO);
                wg__v1__response__free_unpacked(resp, NULL);
        }

        for (unsigned s = 0; s < ELEMENTSOF(groups); s++) {
                for (; made < groups[s]; made++) {
                        snprintf(name, sizeof(name), "mem-%05u", made);
                        create_group(fd, name, 0, false);
                }
                mem_sample(mem_wgd_pid, samples[s]);
        }

        printf("\nMemory of wgd (pid %d) with 0, %u and %u groups (one client connected):\n",
               (int) mem_wgd_pid,
               groups[1],
               groups[2]);
        {
                char a[32], b[32];

                snprintf(a, sizeof(a), "/group %u-%u", 0, groups[1]);
                snprintf(b, sizeof(b), "/group %u-%u", groups[1], groups[2]);
                printf("  %-30s %9u %9u %9u   %-8s %15s %15s\n",
                       "groups",
                       0,
                       groups[1],
                       groups[2],
                       "unit",
                       a,
                       b);
        }
        for (unsigned k = 0; k < _MEM_MAX; k++) {
                double d1, d2;

                if (samples[0][k] < 0 || samples[2][k] < 0) {
                        printf("  %-30s (not available)\n", mem_field[k].name);
                        continue;
                }
                d1 = (double) (samples[1][k] - samples[0][k]) / groups[1];
                d2 = (double) (samples[2][k] - samples[1][k]) / (groups[2] - groups[1]);
                printf("  %-30s %9ld %9ld %9ld   %-8s %15.3f %15.3f\n",
                       mem_field[k].name,
                       samples[0][k],
                       samples[1][k],
                       samples[2][k],
                       mem_field[k].unit,
                       d1,
                       d2);
        }
        printf("  * machine-wide: kernel objects (memfd inode, file, mapping) and the segment pages,\n"
               "    moved by everything else running too\n");

        safe_close(fd);
        stop(&mem_wgd_pid, "wgd (memory)");
}

/* ---- throughput ---- */

static const char *server_socket(enum mech m) {
        if (m == MECH_REDIS_OWN)
                return redis_socket;
        return m == MECH_STUB ? stub_socket : wgd_socket;
}

static void
measure(enum place place,
        enum mech m,
        const char *redis_benchmark,
        const struct shape *shape,
        uint64_t n,
        struct result *res) {
        pid_t server = m >= MECH_REDIS_FIRST ? redis_pid : m == MECH_STUB ? stub_pid : wgd_pid;
        double c0, c1, rps;

        /* The servers stay on cpus[0]; redis-benchmark inherits our CPU. */
        pin(0, cpus[place == PLACE_SAME_CPU ? 0 : 1]);
        c0 = cpu_ns(server);
        if (m == MECH_REDIS_INCR)
                rps = redis_run(redis_benchmark, shape, n);
        else
                rps = client_run(server_socket(m), m, shape, n);
        c1 = cpu_ns(server);
        if (!res)
                return;
        series_add(&res->rps, rps);
        if (c0 >= 0 && c1 >= 0)
                series_add(&res->cpu_us, (c1 - c0) / 1e3 / (double) n);
}

static void shape_name(char *buf, size_t size, const struct shape *shape) {
        snprintf(
                buf,
                size,
                "%u conn%s, %s",
                shape->conns,
                shape->conns > 1 ? "s" : "",
                shape->depth == 1 ? "req/resp" : "");
        if (shape->depth > 1)
                snprintf(buf + strlen(buf), size - strlen(buf), "-P %u", shape->depth);
}

/* --load: one shape, one operation, against a wgd somebody else started. */
static int load_only(const char *path, enum mech m, const struct shape *shape, uint64_t n) {
        int fd = wg_connect(path);

        create_group(fd, GROUP, ADD_BASE, true);
        safe_close(fd);
        printf("%.0f requests per second (%s, %u connection%s, %u in flight each, %" PRIu64 " requests)\n",
               client_run(path, m, shape, n),
               mech_name[m],
               shape->conns,
               shape->conns > 1 ? "s" : "",
               shape->depth,
               n);
        return EXIT_SUCCESS;
}

static unsigned long long parse_number(const char *s, unsigned long long max, const char *option) {
        unsigned long long v;
        char *end;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || v == 0 || v > max) {
                fprintf(stderr, "bench-wgd: %s needs a number from 1 to %llu, not '%s'\n", option, max, s);
                exit(EXIT_FAILURE);
        }
        return v;
}

static void
report(unsigned n_places,
       unsigned n_mech,
       struct result res[][N_SHAPES][_MECH_MAX],
       unsigned long long ticks[][2][2]) {
        static const char *const server_name[] = { "wgd", "stub", "redis-server" };
        static const char *const short_name[_MECH_MAX] = {
                [MECH_WG_STAT] = "wgd Stat",      [MECH_WG_ADD] = "wgd Add",        [MECH_STUB] = "stub",
                [MECH_REDIS_INCR] = "redis, r-b", [MECH_REDIS_OWN] = "redis, ours",
        };
        bool redis = n_mech > MECH_REDIS_FIRST;

        printf("Over the runs (requests per second; the server's CPU time per request):\n");
        for (unsigned p = 0; p < n_places; p++)
                for (unsigned s = 0; s < N_SHAPES; s++)
                        for (unsigned m = 0; m < n_mech; m++) {
                                char name[96], sh[48];

                                shape_name(sh, sizeof(sh), &shapes[s]);
                                snprintf(name, sizeof(name), "%s, %s, %s", place_name[p], sh, short_name[m]);
                                series_print(name, "r/s", &res[p][s][m].rps);
                                snprintf(
                                        name,
                                        sizeof(name),
                                        "%s, %s, %s, CPU",
                                        place_name[p],
                                        sh,
                                        short_name[m]);
                                series_print(name, "us", &res[p][s][m].cpu_us);
                        }

        printf("\nRequests per second, medians. redis, r-b: redis-benchmark -t incr; redis, ours: INCR\n"
               "from our client, the one that loads wgd. Target: wgd at least %.1fx redis (met?: against\n"
               "both). floor: the stub server, which answers every record without doing anything.\n",
               TARGET_VS_REDIS);
        printf("%-9s %-17s %-8s %8s %10s %6s %11s %6s %4s %8s %6s\n",
               "placement",
               "shape",
               "wgd op",
               "wgd",
               "redis, r-b",
               "ratio",
               "redis, ours",
               "ratio",
               "met?",
               "floor",
               "/floor");
        for (unsigned p = 0; p < n_places; p++)
                for (unsigned s = 0; s < N_SHAPES; s++)
                        for (unsigned m = MECH_WG_STAT; m <= MECH_WG_ADD; m++) {
                                double w = series_median(&res[p][s][m].rps);
                                double fl = series_median(&res[p][s][MECH_STUB].rps);
                                double rb = redis ? series_median(&res[p][s][MECH_REDIS_INCR].rps) : 0;
                                double ro = redis ? series_median(&res[p][s][MECH_REDIS_OWN].rps) : 0;
                                char sh[48], rbs[16] = "-", ros[16] = "-", rbr[16] = "-", ror[16] = "-",
                                             met[8] = "-";

                                shape_name(sh, sizeof(sh), &shapes[s]);
                                if (rb > 0 && ro > 0) {
                                        snprintf(rbs, sizeof(rbs), "%.0f", rb);
                                        snprintf(ros, sizeof(ros), "%.0f", ro);
                                        snprintf(rbr, sizeof(rbr), "%.2fx", w / rb);
                                        snprintf(ror, sizeof(ror), "%.2fx", w / ro);
                                        snprintf(
                                                met,
                                                sizeof(met),
                                                "%s",
                                                w / rb >= TARGET_VS_REDIS && w / ro >= TARGET_VS_REDIS ?
                                                        "yes" :
                                                        "NO");
                                }
                                printf("%-9s %-17s %-8s %8.0f %10s %6s %11s %6s %4s %8.0f %5.2fx\n",
                                       place_name[p],
                                       sh,
                                       short_name[m] + 4,
                                       w,
                                       rbs,
                                       rbr,
                                       ros,
                                       ror,
                                       met,
                                       fl,
                                       fl > 0 ? w / fl : 0);
                        }

        printf("\nThe server's CPU time per request, µs, medians (/proc/PID/schedstat of its main "
               "thread)\n");
        printf("%-9s %-17s", "placement", "shape");
        for (unsigned m = 0; m < n_mech; m++)
                printf(" %11s", short_name[m]);
        printf("\n");
        for (unsigned p = 0; p < n_places; p++)
                for (unsigned s = 0; s < N_SHAPES; s++) {
                        char sh[48];

                        shape_name(sh, sizeof(sh), &shapes[s]);
                        printf("%-9s %-17s", place_name[p], sh);
                        for (unsigned m = 0; m < n_mech; m++)
                                printf(" %11.2f", series_median(&res[p][s][m].cpu_us));
                        printf("\n");
                }

        /* Where the servers' time goes: in the kernel (sockets, wakeups) or in their own code. */
        printf("\n");
        for (unsigned k = 0; k < (redis ? 3u : 2u); k++) {
                unsigned long long user = ticks[k][1][0] - ticks[k][0][0],
                                   sys = ticks[k][1][1] - ticks[k][0][1];

                if (user + sys > 0)
                        printf("%s: %.1f s of CPU over the measured runs, %.0f%% user, %.0f%% system\n",
                               server_name[k],
                               (double) (user + sys) / (double) sysconf(_SC_CLK_TCK),
                               100.0 * (double) user / (double) (user + sys),
                               100.0 * (double) sys / (double) (user + sys));
        }
}

static void help(void) {
        printf("Usage: bench-wgd [OPTIONS]\n"
               "\n"
               "Measure wgd's Stat and Add requests per second against Redis INCR (redis-benchmark)\n"
               "in the same run, and wgd's memory per group (see docs/benchmarks.md).\n"
               "\n"
               "  --wgd PATH              the wgd to run (default %s)\n"
               "  --redis-server PATH     default: redis-server from $PATH\n"
               "  --redis-benchmark PATH  default: redis-benchmark from $PATH\n"
               "  --no-redis              wgd alone\n"
               "  --no-memory             skip the memory figures\n"
               "  --quick                 fewer and shorter runs\n"
               "  --runs N                runs per figure (default 7, quick 3)\n"
               "  --help                  this text\n"
               "\n"
               "To profile a wgd started by hand (under valgrind, strace...), load it alone:\n"
               "  --load SOCKET           only send requests to the wgd on SOCKET (group '" GROUP "',\n"
               "                          created if missing) and print requests per second\n"
               "  --op stat|add           the request (default stat)\n"
               "  --conns N               connections, 1 or 2 (default 1)\n"
               "  --depth N               requests in flight per connection, 1 to %d (default 1)\n"
               "  --requests N            requests in all (default 100000)\n",
               BENCH_WGD,
               DEPTH_MAX);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "wgd", required_argument, NULL, 'w' },
                { "redis-server", required_argument, NULL, 's' },
                { "redis-benchmark", required_argument, NULL, 'b' },
                { "no-redis", no_argument, NULL, 'R' },
                { "no-memory", no_argument, NULL, 'M' },
                { "quick", no_argument, NULL, 'q' },
                { "runs", required_argument, NULL, 'r' },
                { "load", required_argument, NULL, 'L' },
                { "op", required_argument, NULL, 'o' },
                { "conns", required_argument, NULL, 'c' },
                { "depth", required_argument, NULL, 'd' },
                { "requests", required_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *wgd = BENCH_WGD, *redis_server = "redis-server", *redis_benchmark = "redis-benchmark";
        const char *load = NULL;
        struct shape load_shape = { 1, 1 };
        enum mech load_op = MECH_WG_STAT;
        unsigned n_places, n_mech;
        uint64_t load_requests = 100000, t_start;
        unsigned long long ticks[3][2][2] = {}; /* [wgd, stub, redis][before, after][user, system] */
        static struct result res[_PLACE_MAX][N_SHAPES][_MECH_MAX];
        struct config cfg = config_full;
        bool redis = true, memory = true, quick = false;
        unsigned runs = 0;
        int opt, fd;

        bench_init(cleanup);
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 'w':
                        wgd = optarg;
                        break;
                case 's':
                        redis_server = optarg;
                        break;
                case 'b':
                        redis_benchmark = optarg;
                        break;
                case 'R':
                        redis = false;
                        break;
                case 'M':
                        memory = false;
                        break;
                case 'q':
                        cfg = config_quick;
                        quick = true;
                        break;
                case 'r':
                        runs = (unsigned) parse_number(optarg, BENCH_MAX_RUNS, "--runs");
                        break;
                case 'L':
                        load = optarg;
                        break;
                case 'o':
                        if (strcmp(optarg, "stat") == 0)
                                load_op = MECH_WG_STAT;
                        else if (strcmp(optarg, "add") == 0)
                                load_op = MECH_WG_ADD;
                        else {
                                fprintf(stderr, "bench-wgd: --op is stat or add, not '%s'\n", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case 'c':
                        load_shape.conns = (unsigned) parse_number(optarg, 2, "--conns");
                        break;
                case 'd':
                        load_shape.depth = (unsigned) parse_number(optarg, DEPTH_MAX, "--depth");
                        break;
                case 'n':
                        load_requests = parse_number(optarg, UINT64_MAX / 2, "--requests");
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                default:
                        return EXIT_FAILURE;
                }
        if (optind < argc) {
                fprintf(stderr, "bench-wgd: unexpected argument '%s'\n", argv[optind]);
                return EXIT_FAILURE;
        }
        if (runs)
                cfg.runs = runs;
        if (load)
                return load_only(load, load_op, &load_shape, load_requests);

        find_cpus();
        n_places = n_cpus > 1 ? 2 : 1;
        n_mech = redis ? _MECH_MAX : MECH_REDIS_FIRST;
        {
                const char *t = getenv("TMPDIR");

                snprintf(tmp_dir, sizeof(tmp_dir), "%s/bench-wgd-XXXXXX", t && *t ? t : "/tmp");
                if (!mkdtemp(tmp_dir)) {
                        tmp_dir[0] = 0;
                        die("mkdtemp", errno);
                }
        }
        path_in_tmp(wgd_socket, "wgd.sock");
        path_in_tmp(mem_socket, "wgd-mem.sock");
        path_in_tmp(stub_socket, "stub.sock");
        snprintf(wgd_lock, sizeof(wgd_lock), "%s.lock", wgd_socket);
        snprintf(mem_lock, sizeof(mem_lock), "%s.lock", mem_socket);
        path_in_tmp(redis_socket, "redis.sock");
        path_in_tmp(redis_log, "redis.log");
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        signal(SIGPIPE, SIG_IGN);

        t_start = now_ns();
        wgd_pid = spawn_wgd(wgd, wgd_socket, NULL, NULL);
        fd = connect_when_up(SOCK_SEQPACKET, wgd_socket, wgd_pid, "wgd");
        create_group(fd, GROUP, ADD_BASE, false);
        safe_close(fd);
        stub_pid = spawn_stub();
        if (redis) {
                redis_pid = spawn_redis(redis_server);
                wait_redis();
        }

        printf("bench-wgd: %s run; every figure is the median of %u runs, interleaved\n",
               quick ? "quick" : "full",
               cfg.runs);
        printf("  wgd (pid %d) on %s, group '" GROUP "' created with count %" PRIu64 "\n",
               (int) wgd_pid,
               wgd_socket,
               ADD_BASE);
        if (redis)
                printf("  redis-server (pid %d) on %s, no persistence; redis-benchmark -t incr\n",
                       (int) redis_pid,
                       redis_socket);
        printf("  servers pinned to CPU %d; the client to CPU %d (same CPU)", cpus[0], cpus[0]);
        if (n_places == _PLACE_MAX)
                printf(" or CPU %d (two CPUs)", cpus[1]);
        printf("\n  one client thread serves all its connections (redis-benchmark's design, and ours);\n"
               "  -P 16: each connection sends 16 requests at once, then waits for the 16 answers\n");
        for (unsigned p = 0; p < n_places; p++)
                printf("  requests per run, %s: %" PRIu64 " request/response, %" PRIu64 " with -P 16\n",
                       place_name[p],
                       cfg.requests[p][0],
                       cfg.requests[p][1]);
        if (n_places < _PLACE_MAX)
                printf("  only one CPU to run on: no figures across two CPUs\n");
        printf("\n");
        (void) fflush(stdout);

        /* Warm up: fault in, fill caches, let the CPUs clock up. */
        for (unsigned p = 0; p < n_places; p++)
                for (unsigned s = 0; s < N_SHAPES; s++)
                        for (unsigned m = 0; m < n_mech; m++)
                                measure(p,
                                        m,
                                        redis_benchmark,
                                        &shapes[s],
                                        cfg.requests[p][shapes[s].depth > 1] / 4,
                                        NULL);

        (void) cpu_ticks(wgd_pid, ticks[0][0]);
        (void) cpu_ticks(stub_pid, ticks[1][0]);
        if (redis)
                (void) cpu_ticks(redis_pid, ticks[2][0]);
        for (unsigned run = 0; run < cfg.runs; run++) {
                unsigned total = n_places * N_SHAPES * n_mech;

                /* A different one goes first in each run, so none always gets the cold turn. */
                for (unsigned k = 0; k < total; k++) {
                        unsigned which = (run + k) % total, m = which % n_mech,
                                 s = which / n_mech % N_SHAPES, p = which / n_mech / N_SHAPES;

                        measure(p,
                                m,
                                redis_benchmark,
                                &shapes[s],
                                cfg.requests[p][shapes[s].depth > 1],
                                &res[p][s][m]);
                }
                fprintf(stderr, "bench-wgd: run %u of %u done\n", run + 1, cfg.runs);
        }
        (void) cpu_ticks(wgd_pid, ticks[0][1]);
        (void) cpu_ticks(stub_pid, ticks[1][1]);
        if (redis)
                (void) cpu_ticks(redis_pid, ticks[2][1]);

        report(n_places, n_mech, res, ticks);
        stop(&wgd_pid, "wgd");
        (void) kill(stub_pid, SIGKILL);
        (void) waitpid(stub_pid, NULL, 0);
        stub_pid = -1;
        stop(&redis_pid, "redis-server");
        (void) fflush(stdout);

        if (memory)
                bench_memory(wgd, &cfg);

        cleanup();
        printf("\nbench-wgd: done in %.1f s\n", (double) (now_ns() - t_start) / 1e9);
        return EXIT_SUCCESS;
}
