/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every error path of wgd, run. wgd-fault is wgd with each fallible call it makes wrapped
 * (fault-inject.c): WGD_FAULT_AT=N fails the Nth counted call. Each scenario below drives a short
 * piece of wgd's work through the protocol. It runs once without a fault (the dry run: it must
 * pass, and its fault log tells how many calls each part of the run makes), then once for each
 * N = 1, 2, 3 ... until a run meets no fault. Runs whose failed call was sendmsg() run again with
 * ENOBUFS for EAGAIN, and failures that have a recovery path of their own (accept4's pause, the
 * output queue behind a full socket) once more with the next calls failing too.
 *
 * A scenario's points are the calls wgd makes for it: start-up (counted up to READY=1) belongs
 * to the startup scenarios alone, and the check after the scenario is not a point either (the
 * test marks where it begins and ends with SIGUSR1), but the shutdown that follows is.
 *
 * After every run:
 *   - wgd is alive and serving; or, if the fault struck its start-up, it exited non-zero without
 *     crashing, and a start without the fault serves;
 *   - every request got its answer within RECV_MSEC: its result; or an Error, only if the fault
 *     struck while wgd handled that request, and then the request changed nothing; or a closed
 *     connection, at most one per run, and only in a run that met its fault;
 *   - no Wait is left pending on a group whose generation ended, and no group at zero shows
 *     Waits;
 *   - a new client's create, add, done and wait round trip works;
 *   - SIGTERM answers every pending Wait and stops wgd with status 0, with nothing from the
 *     sanitizers on its stderr (under ASan, LeakSanitizer makes a leak a non-zero exit).
 *
 * Failures are listed as TAP comments (scenario, N, the call that failed and where, what went
 * wrong, the sanitizer's report), and the scenario's test fails; every point runs regardless.
 *
 *   WG_FAULT_SCENARIO=NAME   run this scenario only
 *   WG_FAULT_N=N[,M]         run only this point (N, or N and M at once) of it, after its dry run
 *   WG_FAULT_ERRNO=E         with this errno (a number) instead of the call's usual one
 *   WG_FAULT_VERBOSE=1       say what every run met
 *   WG_FAULT_KEEP=1          keep the directory of a failed run (wgd's stderr, the fault log)
 *   WG_FAULT_CLUSTER=1       the scenarios of a node on a real etcd, instead of the others (they
 *                            run only when asked: meson test fault-cluster)
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "group-name.h"
#include "macro.h"
#include "seqpacket.h"
#include "test-util.h"
#include "wg.h"
#include "wgd-harness.h"
#ifdef WG_HAVE_ETCD
#include "etcd-harness.h"
#endif

/* An answer takes milliseconds; this long means it is not coming. */
#define RECV_MSEC 3000
/* Start-up and shutdown, with LeakSanitizer's look at the heap at exit. */
#define PROCESS_MSEC 5000

#define CONNS_MAX 16
#define WAITS_MAX 16
#define CHILDREN_MAX 4
#define PROCS_MAX 4
#define INFLIGHT_MAX 8
#define TRACKED_MAX 8
#define AT_MAX 2
#define WINDOWS_MAX 8
#define JOINED_MAX 8

#define NO_TIMEOUT UINT64_MAX

#define ANSWERS_MAX 4

typedef struct Answer {
        uint64_t id;
        Wg__V1__Response *resp;
        int fd;
} Answer;

typedef struct Conn {
        int fd;
        bool closed;                     /* by us, or by a wgd that stopped */
        uint64_t inflight[INFLIGHT_MAX]; /* sent, and not passed by a later answer: oldest first */
        size_t n_inflight;
        Answer answers[ANSWERS_MAX]; /* answers other than a Wait's, until call() takes them */
        size_t n_answers;
        /* A notice (id 0): the answer to one of the requests in flight when it came. */
        Wg__V1__Response *notice;
        uint64_t notice_inflight[INFLIGHT_MAX];
        size_t notice_n_inflight;
} Conn;

typedef struct PendingWait {
        Conn *conn;
        uint64_t id;
        char name[WG_NAME_MAX + 1];
        uint64_t generation; /* the one whose end it waits for */
        bool fault_before;   /* the run had met its fault when the Wait was sent */
        bool answered;
        bool void_; /* its connection was dropped or closed by us */
        int errnum; /* of the answer, 0 for a completion */
        uint64_t answer_generation;
        uint32_t failed, abandoned; /* the answer's outcome */
        bool fault_at_answer;
} PendingWait;

typedef struct Child {
        pid_t pid;
        int cmd;    /* 'L': leave */
        int report; /* ChildReport records */
        uint64_t member_id;
} Child;

/* 'J' joined, 'L' left, 'C' closed, 'E' an Error, 'X' closed by wgd, 'T' no answer in time. */
typedef struct ChildReport {
        char kind;
        int32_t errnum;
        uint64_t member_id;
} ChildReport;

typedef struct Info {
        bool exists, cluster;
        uint64_t count, generation;
        uint32_t waiters, mode;
        size_t n_joined;
        uint32_t joined_pid[JOINED_MAX];
        bool has_outcome;
        uint32_t succeeded, failed, abandoned;
} Info;

/* What one wgd process wrote to its fault log. */
typedef struct ProcLog {
        bool has_ready, has_exit, failed;
        uint64_t ready, exit;
        uint64_t marks[2];
        size_t n_marks;
        char fail[2][1024]; /* the "fail ..." lines */
        size_t n_fail;
} ProcLog;

/* One wgd process of a run: the scenario's @logical-th start (restarts count), or a retry. */
typedef struct Proc {
        unsigned logical;
        char log_path[320], err_path[320];
        uint64_t at[AT_MAX];
        size_t n_at;
} Proc;

typedef struct Window {
        unsigned proc;   /* logical */
        uint64_t lo, hi; /* counted calls lo < n <= hi */
} Window;

typedef struct Scenario Scenario;

typedef struct Run {
        const Scenario *scenario;
        Harness h;
        char socket_path[300];

        /* The fault: global points (see map_point()), and the errno. */
        uint64_t points[AT_MAX];
        size_t n_points;
        int errnum;
        const Window *windows;
        size_t n_windows;

        Proc procs[PROCS_MAX];
        size_t n_procs;
        unsigned logical; /* the logical index of the next start */
        bool met;         /* a fault log says "fail" (sticky) */
        bool fresh;       /* set by call(): the fault struck during that request */

        Conn conns[CONNS_MAX];
        size_t n_conns;
        PendingWait waits[WAITS_MAX];
        size_t n_waits;
        Child children[CHILDREN_MAX];
        size_t n_children;
        int fds[TRACKED_MAX];
        size_t n_fds;
        wg *handles[TRACKED_MAX];
        size_t n_handles;

        Harness witness; /* a second node, in the checks after a cluster scenario */
        bool has_witness;
        int refused_errnum; /* of the last request refused */
        /*
         * A cluster request refused (not ETIMEDOUT) just before the run ended: what etcd must
         * still hold of its group, which cluster_agree() checks on the witness.
         */
        struct {
                bool set, exists, check_count;
                uint64_t count;
                char name[WG_NAME_MAX + 1];
                const char *what;
        } expect;

        unsigned drops;
        unsigned verify_tries;
        const char *context; /* what led to a death of wgd, for its report */
        uint64_t next_id;
        sigjmp_buf end;  /* the scenario cannot go on, as the fault allows: to the checks */
        sigjmp_buf fail; /* a failure: to the report */
        char failure[1024];
} Run;

struct Scenario {
        const char *name;
        void (*run)(Run *r);
        bool startup;  /* its points are the start-up's */
        bool bind_own; /* wgd binds its socket itself (no socket activation) */
        bool cluster;  /* wgd is a node of a cluster on the test's etcd, which each run empties */
};

static struct {
        const char *wgd_fault;
        const char *addr2line;
        const char *only_scenario;
        uint64_t only[AT_MAX];
        size_t n_only;
        int only_errno;
        bool verbose, keep;
        bool cluster; /* the scenarios of a node on etcd, instead of the others */
        unsigned points_total, failures_total;
#ifdef WG_HAVE_ETCD
        EtcdCluster etcd; /* for the scenarios of cluster groups, started by the first */
        bool etcd_up;
#endif
        /*
         * In a run of a double fault: the call the first fault is meant for. Where the counts of
         * a run can differ from the dry run's (a node on etcd), it may fall on another.
         */
        const char *double_first;
        /* Call sites already given a follow-up fault, across scenarios: one run per site. */
        char followed[64][160];
        size_t n_followed;
} cfg;

static void __attribute__((noreturn, format(printf, 2, 3))) run_fail(Run *r, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vsnprintf(r->failure, sizeof(r->failure), format, ap);
        va_end(ap);
        siglongjmp(r->fail, 1);
}

#define check(r, cond, ...)                                                                                 \
        do {                                                                                                \
                if (!(cond))                                                                                \
                        run_fail(r, __VA_ARGS__);                                                           \
        } while (0)

/* The scenario cannot continue, and may stop here: the fault made a request fail. */
static void __attribute__((noreturn)) run_end(Run *r) {
        siglongjmp(r->end, 1);
}

static const char *errno_name(int e) {
        const char *n = strerrorname_np(e);

        return n ? n : "?";
}

/* Fault logs. */

static void read_log(const char *path, ProcLog *ret) {
        char line[1100];
        FILE *f;

        *ret = (ProcLog) {};
        f = fopen(path, "re");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                unsigned long long v;

                line[strcspn(line, "\n")] = 0;
                if (sscanf(line, "ready %llu", &v) == 1) {
                        ret->has_ready = true;
                        ret->ready = v;
                } else if (sscanf(line, "mark %llu", &v) == 1) {
                        if (ret->n_marks < 2)
                                ret->marks[ret->n_marks++] = v;
                } else if (sscanf(line, "exit %llu", &v) == 1) {
                        ret->has_exit = true;
                        ret->exit = v;
                } else if (strncmp(line, "fail ", 5) == 0) {
                        ret->failed = true;
                        if (ret->n_fail < 2)
                                snprintf(
                                        ret->fail[ret->n_fail++], sizeof(ret->fail[0]), "%.1000s", line + 5);
                }
        }
        fclose(f);
}

/* Has any wgd of this run failed a call yet? (Once it has, it stays so.) */
static bool fault_met(Run *r) {
        for (size_t i = 0; i < r->n_procs && !r->met; i++) {
                ProcLog log;

                read_log(r->procs[i].log_path, &log);
                r->met = log.failed;
        }
        return r->met;
}

/* How many faults the wgd of this run met so far: one, or two in a run of a double fault. */
static size_t faults_met(Run *r) {
        size_t n = 0;

        for (size_t i = 0; i < r->n_procs; i++) {
                ProcLog log;

                read_log(r->procs[i].log_path, &log);
                n += log.n_fail;
        }
        return n;
}

static void check_alive(Run *r);

/* Wait (bounded) for the next "mark" line: the count at this moment, between two requests. */
static void mark(Run *r) {
        Proc *p = &r->procs[r->n_procs - 1];
        ProcLog before, now;

        check_alive(r);
        read_log(p->log_path, &before);
        check(r, kill(r->h.pid, SIGUSR1) == 0, "kill(SIGUSR1): %m");
        for (unsigned i = 0; i < RECV_MSEC; i++) {
                read_log(p->log_path, &now);
                if (now.n_marks > before.n_marks || now.n_marks == 2)
                        return;
                usleep(1000);
        }
        check_alive(r);
        run_fail(r, "wgd wrote no mark for SIGUSR1");
}

/* Lines of wgd's stderr that matter: a sanitizer's report, else its errors and warnings. */
static void print_stderr(const char *path) {
        char line[1024];
        unsigned printed = 0, report = 0;
        FILE *f = fopen(path, "re");

        if (!f)
                return;
        while (fgets(line, sizeof(line), f) && printed < 40) {
                line[strcspn(line, "\n")] = 0;
                if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "ERROR: LeakSanitizer") ||
                    strstr(line, "runtime error:") || strstr(line, "AddressSanitizer:DEADLYSIGNAL"))
                        report = 30;
                if (report > 0 || strncmp(line, "<3>", 3) == 0 || strncmp(line, "<4>", 3) == 0 ||
                    strstr(line, "SUMMARY:")) {
                        printf("#     | %s\n", line);
                        printed++;
                        if (report > 0)
                                report--;
                }
        }
        fclose(f);
}

/* The sanitizer's one-line summary of its report, if there is one ("" if not). */
static void sanitizer_summary(const char *path, char *buf, size_t size) {
        char line[1024];
        FILE *f = fopen(path, "re");

        *buf = 0;
        while (f && fgets(line, sizeof(line), f)) {
                char *p = strstr(line, "SUMMARY: ");

                line[strcspn(line, "\n")] = 0;
                if (p) {
                        snprintf(buf, size, "%s", p + 9);
                        break;
                }
                p = strstr(line, "runtime error:");
                if (p && !*buf)
                        snprintf(buf, size, "UndefinedBehaviorSanitizer: %s", p);
        }
        if (f)
                fclose(f);
}

static bool sanitizer_report(const char *path) {
        char line[1024];
        bool found = false;
        FILE *f = fopen(path, "re");

        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f))
                found = strstr(line, "ERROR: AddressSanitizer") || strstr(line, "ERROR: LeakSanitizer") ||
                        strstr(line, "runtime error:") || strstr(line, "AddressSanitizer:DEADLYSIGNAL");
        fclose(f);
        return found;
}

/*
 * "NAME N errno=E [DETAIL] at +0x... lib+0x..." with the frames in wgd-fault symbolized, the
 * injector's own left out.
 */
static void print_fail_line(const char *line) {
        char cmd[2048], out[512];
        const char *at = strstr(line, " at ");
        size_t len;
        FILE *f;

        printf("#   fault: %.*s\n", at ? (int) (at - line) : (int) strlen(line), line);
        if (!at || !cfg.addr2line)
                return;
        /* Called from a library: a callback of wgd's that ended in a tail call (say, from sd-event). */
        if (strncmp(at, " at +0x", 7) != 0)
                printf("#     (from %.*s)\n", (int) strcspn(at + 4, " "), at + 4);
        len = (size_t) snprintf(cmd, sizeof(cmd), "%s -f -i -p -e %s", cfg.addr2line, cfg.wgd_fault);
        for (const char *p = strstr(at, " +0x"); p && len < sizeof(cmd) - 32; p = strstr(p + 1, " +0x")) {
                unsigned long long off = strtoull(p + 4, NULL, 16);

                /* A return address: the call is the byte before. */
                len += (size_t) snprintf(cmd + len, sizeof(cmd) - len, " 0x%llx", off - 1);
        }
        len += (size_t) snprintf(cmd + len, sizeof(cmd) - len, " 2>/dev/null");
        f = popen(cmd, "re");
        if (!f)
                return;
        for (bool done = false; fgets(out, sizeof(out), f);) {
                char *start, *base;

                out[strcspn(out, "\n")] = 0;
                if (strstr(out, "fault-inject.c") || done)
                        continue;
                /* Paths from the source root on: "wgd/client.c:208". */
                start = strstr(out, " at /");
                base = start ? strstr(start, "/../") : NULL;
                if (base)
                        memmove(start + 4, base + 4, strlen(base + 4) + 1);
                printf("#     %s\n", out);
                done = strncmp(out, "main at", 7) == 0;
        }
        pclose(f);
}

/* If wgd died (a crash, a sanitizer's abort), that is the failure, whatever else went wrong. */
static void check_alive(Run *r) {
        char summary[512];
        int status;

        if (r->h.pid <= 0 || waitpid(r->h.pid, &status, WNOHANG) != r->h.pid)
                return;
        r->h.pid = -1;
        status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        sanitizer_summary(r->procs[r->n_procs - 1].err_path, summary, sizeof(summary));
        run_fail(
                r,
                "wgd died with status %d%s%s%s%s",
                status,
                *summary ? ": " : "",
                summary,
                r->context ? ", after this: " : "",
                r->context ? r->context : "");
}

/* Connections and answers. */

static void __attribute__((noreturn)) conn_dropped(Run *r, Conn *c, const char *when);

static Conn *conn_open(Run *r) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        Conn *c;

        check(r, r->n_conns < CONNS_MAX, "too many connections for the test");
        c = &r->conns[r->n_conns++];
        *c = (Conn) { .fd = -1 };
        c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        check(r, c->fd >= 0, "socket: %m");
        strcpy(sa.sun_path, r->socket_path);
        check(r,
              connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) == 0,
              "connect to %s: %m",
              r->socket_path);
        return c;
}

static Info op_stat(Run *r, Conn *c, const char *name);
static void stat_until(Run *r, Conn *c, const char *name, uint64_t count, const char *what);

/*
 * A connection that wgd has accepted: a first request on it makes sure that it is, so that
 * wgd's calls come in the same order in every run (the accept would otherwise fall anywhere
 * among the work for other connections).
 */
static Conn *conn_new(Run *r) {
        Conn *c = conn_open(r);

        (void) op_stat(r, c, "fault-hello");
        return c;
}

static void waits_void(Run *r, Conn *c) {
        for (size_t i = 0; i < r->n_waits; i++)
                if (r->waits[i].conn == c)
                        r->waits[i].void_ = true;
}

static void conn_close(Run *r, Conn *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        c->closed = true;
        waits_void(r, c);
}

/*
 * wgd closed @c. Allowed once per fault met: a connection is what wgd gives up when it cannot
 * serve it (its reply cannot be sent, or it cannot be accepted).
 */
static void conn_dropped(Run *r, Conn *c, const char *when) {
        conn_close(r, c);
        /* A connection closes too when wgd dies: give it time to be reaped. */
        usleep(10 * 1000);
        check_alive(r);
        check(r, fault_met(r), "wgd closed a connection (%s) with no fault injected", when);
        check(r, ++r->drops <= faults_met(r), "wgd closed more connections (%s) than faults struck", when);
        run_end(r);
}

static PendingWait *find_wait(Run *r, Conn *c, uint64_t id) {
        for (size_t i = 0; i < r->n_waits; i++)
                if (r->waits[i].conn == c && r->waits[i].id == id)
                        return &r->waits[i];
        return NULL;
}

static int errnum_of(Run *r, const Wg__V1__Response *resp) {
        if (resp->result_case != WG__V1__RESPONSE__RESULT_ERROR)
                return 0;
        check(r,
              resp->error && resp->error->has_errnum && resp->error->errnum > 0,
              "an Error without an errno");
        check(r,
              resp->error->message && *resp->error->message,
              "an Error (%d) without a message",
              resp->error->errnum);
        return resp->error->errnum;
}

/*
 * Read one record from @c, waiting up to @msec: false if none came. A Wait's answer goes to its
 * PendingWait; any other answer waits in c->answers for call(). A notice (id 0: a record wgd
 * could not read) is kept aside: which request it answers, call() finds out.
 */
static bool recv_one(Run *r, Conn *c, unsigned msec) {
        uint8_t buf[WG_RECORD_MAX];
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        Wg__V1__Response *resp;
        PendingWait *w;
        uint64_t id;
        int fd = -1, k;
        ssize_t n;
        size_t i;

        k = poll(&p, 1, (int) msec);
        check(r, k >= 0, "poll: %m");
        if (k == 0)
                return false;
        n = seqpacket_recv(c->fd, buf, sizeof(buf), &fd, MSG_DONTWAIT);
        if (n == -EAGAIN)
                return true;
        if (n == 0 || n == -ECONNRESET)
                conn_dropped(r, c, "awaiting an answer");
        check(r, n > 0, "reading an answer: %s", strerror((int) -n));
        resp = wg__v1__response__unpack(NULL, (size_t) n, buf);
        if (!resp && fd >= 0)
                close(fd);
        check(r, resp, "wgd sent a record that is not a Response");

        id = resp->has_id ? resp->id : 0;
        if (id == 0) {
                bool ok = resp->result_case == WG__V1__RESPONSE__RESULT_ERROR && fd < 0 &&
                        c->n_inflight > 0 && !c->notice;

                if (!ok) {
                        wg__v1__response__free_unpacked(resp, NULL);
                        if (fd >= 0)
                                close(fd);
                        run_fail(r, "a Response with id 0 that answers nothing");
                }
                (void) errnum_of(r, resp);
                c->notice = resp;
                memcpy(c->notice_inflight, c->inflight, c->n_inflight * sizeof(uint64_t));
                c->notice_n_inflight = c->n_inflight;
                return true;
        }

        /* wgd reads a connection's records in order: this answer passes every older request. */
        for (i = 0; i < c->n_inflight && c->inflight[i] != id; i++)
                ;
        if (i < c->n_inflight) {
                c->n_inflight -= i + 1;
                memmove(c->inflight, c->inflight + i + 1, c->n_inflight * sizeof(uint64_t));
        } else if (!find_wait(r, c, id) || find_wait(r, c, id)->answered) {
                /* Only a Wait is answered after later requests were. */
                wg__v1__response__free_unpacked(resp, NULL);
                if (fd >= 0)
                        close(fd);
                run_fail(r, "a Response to id %" PRIu64 ", which is not waiting for one", id);
        }

        w = find_wait(r, c, id);
        if (w) {
                w->answered = true;
                w->fault_at_answer = fault_met(r);
                w->errnum = errnum_of(r, resp);
                if (resp->result_case == WG__V1__RESPONSE__RESULT_GROUP && resp->group) {
                        w->answer_generation = resp->group->generation;
                        if (resp->group->outcome) {
                                w->failed = resp->group->outcome->failed;
                                w->abandoned = resp->group->outcome->abandoned;
                        }
                } else if (w->errnum == 0) {
                        wg__v1__response__free_unpacked(resp, NULL);
                        run_fail(r, "a Wait answered with neither a group nor an Error");
                }
                wg__v1__response__free_unpacked(resp, NULL);
                if (fd >= 0)
                        close(fd);
                return true;
        }
        if (c->n_answers == ANSWERS_MAX) {
                wg__v1__response__free_unpacked(resp, NULL);
                if (fd >= 0)
                        close(fd);
                run_fail(r, "answers nobody asked for");
        }
        c->answers[c->n_answers++] = (Answer) { .id = id, .resp = resp, .fd = fd };
        return true;
}

static Answer *find_answer(Conn *c, uint64_t id) {
        for (size_t i = 0; i < c->n_answers; i++)
                if (c->answers[i].id == id)
                        return &c->answers[i];
        return NULL;
}

static Answer take_answer(Conn *c, Answer *a) {
        Answer taken = *a;

        *a = c->answers[--c->n_answers];
        return taken;
}

/* Read until the answer to @id is in (bounded); a notice that comes meanwhile stays aside. */
static Answer await_answer(Run *r, Conn *c, uint64_t id, const char *what) {
        uint64_t deadline = monotonic_usec() + RECV_MSEC * UINT64_C(1000);
        Answer *a;

        while (!(a = find_answer(c, id))) {
                uint64_t now = monotonic_usec();

                /* A notice that came while @id was in flight: it may be @id's own answer. */
                for (size_t i = 0; c->notice && i < c->notice_n_inflight; i++)
                        if (c->notice_inflight[i] == id)
                                return (Answer) { .id = 0 };
                if (now >= deadline || !recv_one(r, c, (unsigned) ((deadline - now) / 1000) + 1)) {
                        check_alive(r);
                        run_fail(r, "%s: no answer in %u ms", what, RECV_MSEC);
                }
        }
        return take_answer(c, a);
}

static uint64_t send_request(Run *r, Conn *c, Wg__V1__Request *req);

/*
 * A notice answers one of the requests that were in flight when it came: a Wait sent before
 * @id (its record could not be read), or @id itself. Ask something more on the connection: when
 * that is answered, wgd has answered everything before it, so @id's own answer is there unless
 * the notice was it. Returns the notice if it was @id's answer; else gives it to the Wait.
 */
static Wg__V1__Response *resolve_notice(Run *r, Conn *c, uint64_t id) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Stat m = WG__V1__STAT__INIT;
        Wg__V1__Response *notice;
        uint64_t probe;
        Answer a;

        m.name = (char *) "fault-probe";
        req.op_case = WG__V1__REQUEST__OP_STAT;
        req.stat = &m;
        /* The notice stays the connection's until the probe is answered: a run that ends meanwhile frees it.
         */
        probe = send_request(r, c, &req);
        for (;;) {
                a = await_answer(r, c, probe, "Stat (after a notice)");
                if (a.id == probe)
                        break;
                check(r, false, "a second notice");
        }
        notice = TAKE_PTR(c->notice);
        wg__v1__response__free_unpacked(a.resp, NULL);
        if (a.fd >= 0)
                close(a.fd);
        if (!find_answer(c, id))
                return notice;

        for (size_t i = 0; i < c->notice_n_inflight && c->notice_inflight[i] != id; i++) {
                PendingWait *w = find_wait(r, c, c->notice_inflight[i]);

                if (w && !w->answered) {
                        w->answered = true;
                        w->fault_at_answer = true;
                        w->errnum = errnum_of(r, notice);
                        wg__v1__response__free_unpacked(notice, NULL);
                        return NULL;
                }
        }
        wg__v1__response__free_unpacked(notice, NULL);
        run_fail(r, "a notice that answers nothing");
}

static uint64_t send_request(Run *r, Conn *c, Wg__V1__Request *req) {
        uint8_t buf[WG_RECORD_MAX];
        size_t len;
        int n;

        check(r, !c->closed, "a request on a closed connection");
        check(r, c->n_inflight < INFLIGHT_MAX, "too many requests in flight for the test");
        req->has_version = true;
        req->version = 1;
        req->has_id = true;
        req->id = ++r->next_id;
        len = wg__v1__request__get_packed_size(req);
        wg__v1__request__pack(req, buf);
        n = seqpacket_send(c->fd, buf, len, -1, 0);
        if (n == -EPIPE || n == -ECONNRESET)
                conn_dropped(r, c, "sending a request");
        check(r, n == 0, "sending a request: %s", strerror(-n));
        c->inflight[c->n_inflight++] = req->id;
        return req->id;
}

/* Send @req, wait for its answer. r->fresh tells whether the fault struck meanwhile. */
static Wg__V1__Response *call(Run *r, Conn *c, Wg__V1__Request *req, int *ret_fd, const char *what) {
        bool before = fault_met(r);
        Wg__V1__Response *resp;
        uint64_t id;
        Answer a;

        id = send_request(r, c, req);
        for (;;) {
                a = await_answer(r, c, id, what);
                if (a.id == id) {
                        resp = a.resp;
                        break;
                }
                resp = resolve_notice(r, c, id);
                if (resp)
                        break;
        }
        r->fresh = !before && fault_met(r);
        if (ret_fd)
                *ret_fd = a.id == id ? a.fd : -1;
        else if (a.id == id && a.fd >= 0) {
                close(a.fd);
                wg__v1__response__free_unpacked(resp, NULL);
                run_fail(r, "%s: answered with an fd", what);
        }
        return resp;
}

/*
 * @resp is an Error where success was due: fine only if the fault struck while wgd handled the
 * request. Frees @resp; fails the run otherwise.
 */
static void refused(Run *r, Wg__V1__Response *resp, const char *what) {
        int e = errnum_of(r, resp);
        char message[256];

        snprintf(message, sizeof(message), "%s", resp->error->message);
        wg__v1__response__free_unpacked(resp, NULL);
        r->refused_errnum = e;
        check(r,
              r->fresh,
              "%s failed with %s (%s) and no fault struck meanwhile",
              what,
              errno_name(e),
              message);
        if (cfg.verbose)
                printf("#     %s: %s (%s), as the fault allows\n", what, errno_name(e), message);
}

static void track_fd(Run *r, int fd) {
        check(r, r->n_fds < TRACKED_MAX, "too many fds for the test");
        r->fds[r->n_fds++] = fd;
}

static wg *track_wg(Run *r, int fd) {
        wg *g;
        int k;

        k = wg_from_fd(fd, &g);
        check(r, k == 0, "wg_from_fd() of wgd's segment: %s", strerror(-k));
        check(r, r->n_handles < TRACKED_MAX, "too many handles for the test");
        r->handles[r->n_handles++] = g;
        return g;
}

static void info_from(const Wg__V1__GroupInfo *g, Info *ret) {
        *ret = (Info) {
                .exists = true,
                .cluster = g->cluster,
                .count = g->count,
                .generation = g->generation,
                .waiters = g->waiters,
                .mode = g->mode,
        };
        for (size_t i = 0; i < g->n_members; i++)
                if (g->members[i]->state == WG__V1__MEMBER_STATE__MEMBER_STATE_JOINED &&
                    ret->n_joined < JOINED_MAX)
                        ret->joined_pid[ret->n_joined++] = g->members[i]->pid;
        if (g->outcome) {
                ret->has_outcome = true;
                ret->succeeded = g->outcome->succeeded;
                ret->failed = g->outcome->failed;
                ret->abandoned = g->outcome->abandoned;
        }
}

static bool joined(const Info *info, pid_t pid) {
        for (size_t i = 0; i < info->n_joined; i++)
                if (info->joined_pid[i] == (uint32_t) pid)
                        return true;
        return false;
}

/* The group of a successful answer, or a failed run. */
static void group_answer(Run *r, Wg__V1__Response *resp, const char *what, Info *ret) {
        bool ok = resp->result_case == WG__V1__RESPONSE__RESULT_GROUP && resp->group;

        if (ok)
                info_from(resp->group, ret);
        wg__v1__response__free_unpacked(resp, NULL);
        check(r, ok, "%s: the answer is not a group", what);
}

/* Requests, each checking its answer; on an Error that the fault allows, also that it changed nothing. */

static Info op_stat(Run *r, Conn *c, const char *name) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Stat m = WG__V1__STAT__INIT;
        Wg__V1__Response *resp;
        Info info = {};

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_STAT;
        req.stat = &m;
        resp = call(r, c, &req, NULL, "Stat");
        if (errnum_of(r, resp) == ENOENT) {
                wg__v1__response__free_unpacked(resp, NULL);
                return info;
        }
        if (errnum_of(r, resp) != 0) {
                refused(r, resp, "Stat");
                run_end(r);
        }
        group_answer(r, resp, "Stat", &info);
        return info;
}

/* A Stat after a refused request: the group is as it was before. */
/*
 * On a node of a cluster, the group must be so in etcd: the node's view lags etcd, so the
 * checks after the scenario hold the witness to it (cluster_agree()). Except after ETIMEDOUT,
 * which wg.proto says may have been carried out.
 */
static void unchanged_in_etcd(
        Run *r, const char *name, bool exists, bool check_count, uint64_t count, const char *what) {
        if (r->refused_errnum == ETIMEDOUT)
                return;
        r->expect.set = true;
        r->expect.exists = exists;
        r->expect.check_count = check_count;
        r->expect.count = count;
        r->expect.what = what;
        snprintf(r->expect.name, sizeof(r->expect.name), "%s", name);
}

static void unchanged(Run *r, Conn *c, const char *name, bool exists, uint64_t count, const char *what) {
        Info i;

        if (c->closed) {
                if (r->scenario->cluster)
                        unchanged_in_etcd(r, name, exists, true, count, what);
                return;
        }
        i = op_stat(r, c, name);
        if (r->scenario->cluster && !(i.exists && !i.cluster)) {
                /* Not a local group of the node (verify() makes those): a cluster group's, maybe. */
                unchanged_in_etcd(r, name, exists, true, count, what);
                return;
        }
        check(r,
              i.exists == exists,
              "%s was refused, yet group %s %s",
              what,
              name,
              exists ? "is gone" : "exists");
        check(r,
              !exists || i.count == count,
              "%s was refused, yet the count of %s is %" PRIu64 ", not %" PRIu64,
              what,
              name,
              i.count,
              count);
}

static Wg__V1__Response *
create_call_full(Run *r, Conn *c, const char *name, uint32_t mode, uint64_t count, bool cluster) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Create m = WG__V1__CREATE__INIT;

        m.name = (char *) name;
        m.has_cluster = m.cluster = cluster;
        m.has_mode = mode != 0;
        m.mode = mode;
        m.has_count = true;
        m.count = count;
        req.op_case = WG__V1__REQUEST__OP_CREATE;
        req.create = &m;
        return call(r, c, &req, NULL, "Create");
}

static Wg__V1__Response *create_call(Run *r, Conn *c, const char *name, uint32_t mode, uint64_t count) {
        return create_call_full(r, c, name, mode, count, false);
}

static Info op_create_full(Run *r, Conn *c, const char *name, uint32_t mode, uint64_t count, bool cluster) {
        Wg__V1__Response *resp = create_call_full(r, c, name, mode, count, cluster);
        Info info;

        if (errnum_of(r, resp) != 0) {
                refused(r, resp, "Create");
                unchanged(r, c, name, false, 0, "Create");
                run_end(r);
        }
        group_answer(r, resp, "Create", &info);
        check(r,
              info.count == count && info.generation == 0,
              "Create %s: count %" PRIu64 ", generation %" PRIu64,
              name,
              info.count,
              info.generation);
        /* Made in etcd, a cluster group may not be mirrored yet where the fault struck (wg.proto). */
        if (cluster && r->fresh)
                stat_until(r, c, name, count, "a cluster group created where a fault struck");
        return info;
}

static Info op_create(Run *r, Conn *c, const char *name, uint32_t mode, uint64_t count) {
        return op_create_full(r, c, name, mode, count, false);
}

static void expect_error(Run *r, Wg__V1__Response *resp, int errnum, const char *what) {
        int e = errnum_of(r, resp);

        if (e != errnum && e != 0 && r->fresh) {
                refused(r, resp, what);
                run_end(r);
        }
        wg__v1__response__free_unpacked(resp, NULL);
        check(r,
              e == errnum,
              "%s: %s instead of %s",
              what,
              e ? errno_name(e) : "success",
              errno_name(errnum));
}

/* Open by name: the segment's fd (tracked), or -1 when @create is false and it is not there. */
static int op_open(Run *r, Conn *c, const char *name, bool create) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Open m = WG__V1__OPEN__INIT;
        Wg__V1__Response *resp;
        Info info;
        int fd = -1;

        m.name = (char *) name;
        m.has_create = create;
        m.create = create;
        req.op_case = WG__V1__REQUEST__OP_OPEN;
        req.open = &m;
        resp = call(r, c, &req, &fd, "Open");
        if (fd >= 0)
                track_fd(r, fd);
        if (errnum_of(r, resp) != 0) {
                refused(r, resp, "Open");
                check(r, fd < 0, "Open: an Error with an fd");
                if (create)
                        unchanged(r, c, name, false, 0, "Open");
                run_end(r);
        }
        group_answer(r, resp, "Open", &info);
        check(r, fd >= 0, "Open %s: no fd with the answer", name);
        return fd;
}

static Wg__V1__Response *add_call(Run *r, Conn *c, const char *name, int64_t delta) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Add add = WG__V1__ADD__INIT;
        Wg__V1__Done done = WG__V1__DONE__INIT;

        if (delta == -1) {
                /* Done, the protocol's own request for it. */
                done.name = (char *) name;
                req.op_case = WG__V1__REQUEST__OP_DONE;
                req.done = &done;
        } else {
                add.name = (char *) name;
                add.has_delta = true;
                add.delta = delta;
                req.op_case = WG__V1__REQUEST__OP_ADD;
                req.add = &add;
        }
        return call(r, c, &req, NULL, delta == -1 ? "Done" : "Add");
}

/* Add @delta (-1: a Done), which must bring the count to @count. */
static Info op_add(Run *r, Conn *c, const char *name, int64_t delta, uint64_t count) {
        Wg__V1__Response *resp = add_call(r, c, name, delta);
        const char *what = delta == -1 ? "Done" : "Add";
        Info info;

        if (errnum_of(r, resp) != 0) {
                refused(r, resp, what);
                unchanged(r, c, name, true, (uint64_t) ((int64_t) count - delta), what);
                run_end(r);
        }
        group_answer(r, resp, what, &info);
        check(r,
              info.count == count,
              "%s %s %+" PRIi64 ": count %" PRIu64 ", not %" PRIu64,
              what,
              name,
              delta,
              info.count,
              count);
        return info;
}

static void op_delete(Run *r, Conn *c, const char *name) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Delete m = WG__V1__DELETE__INIT;
        Wg__V1__Response *resp;
        bool ok;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_DELETE;
        req.delete_ = &m;
        resp = call(r, c, &req, NULL, "Delete");
        if (errnum_of(r, resp) != 0) {
                Info i;

                refused(r, resp, "Delete");
                i = op_stat(r, c, name);
                if (r->scenario->cluster && !(i.exists && !i.cluster))
                        unchanged_in_etcd(r, name, true, false, 0, "Delete"); /* as in unchanged() */
                else
                        check(r, i.exists, "Delete was refused, yet group %s is gone", name);
                run_end(r);
        }
        ok = resp->result_case == WG__V1__RESPONSE__RESULT_DELETED;
        wg__v1__response__free_unpacked(resp, NULL);
        check(r, ok, "Delete: the answer is not Deleted");
}

/* List (after @after): the names, in @names (room for 8), and how many. */
static size_t op_list(Run *r, Conn *c, const char *after, char names[][WG_NAME_MAX + 1]) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__List m = WG__V1__LIST__INIT;
        Wg__V1__Response *resp;
        size_t n;

        m.after = (char *) after;
        req.op_case = WG__V1__REQUEST__OP_LIST;
        req.list = &m;
        resp = call(r, c, &req, NULL, "List");
        if (errnum_of(r, resp) != 0) {
                refused(r, resp, "List");
                run_end(r);
        }
        if (resp->result_case != WG__V1__RESPONSE__RESULT_LIST || !resp->list || resp->list->n_groups > 8) {
                wg__v1__response__free_unpacked(resp, NULL);
                run_fail(r, "List: the answer is not a list of at most 8");
        }
        n = resp->list->n_groups;
        for (size_t i = 0; i < n; i++)
                snprintf(names[i], WG_NAME_MAX + 1, "%s", resp->list->groups[i]->name);
        wg__v1__response__free_unpacked(resp, NULL);
        return n;
}

/* Join on @c; the count becomes @count. Returns the member id. */
static uint64_t op_join(Run *r, Conn *c, const char *name, uint64_t count) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Join m = WG__V1__JOIN__INIT;
        Wg__V1__Response *resp;
        uint64_t id;
        int fd = -1;
        bool ok;

        m.name = (char *) name;
        m.description = (char *) "test-fault";
        req.op_case = WG__V1__REQUEST__OP_JOIN;
        req.join = &m;
        resp = call(r, c, &req, &fd, "Join");
        /*
         * A node without a lease in etcd (a fault struck the call that gets it, which it makes
         * again a second later) says to try again, as wg.proto has it.
         */
        for (unsigned tries = 0; r->scenario->cluster && errnum_of(r, resp) == EAGAIN && tries < 100;
             tries++) {
                wg__v1__response__free_unpacked(resp, NULL);
                usleep(50 * 1000);
                resp = call(r, c, &req, &fd, "Join");
        }
        if (fd >= 0)
                track_fd(r, fd);
        if (errnum_of(r, resp) != 0) {
                refused(r, resp, "Join");
                unchanged(r, c, name, true, count - 1, "Join");
                run_end(r);
        }
        ok = resp->result_case == WG__V1__RESPONSE__RESULT_JOINED && resp->joined && resp->joined->group &&
                resp->joined->has_member_id && resp->joined->group->count == count;
        id = ok ? resp->joined->member_id : 0;
        wg__v1__response__free_unpacked(resp, NULL);
        check(r, ok, "Join %s: not Joined, or not at count %" PRIu64, name, count);
        check(r, fd >= 0, "Join %s: no fd with the answer", name);
        return id;
}

/* Leave (with @member_id if not 0) with @status; the count becomes @count. */
static void op_leave(Run *r, Conn *c, const char *name, uint64_t member_id, int status, uint64_t count) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Leave m = WG__V1__LEAVE__INIT;
        Wg__V1__Response *resp;
        Info info;

        m.name = (char *) name;
        m.has_status = true;
        m.status = status;
        m.has_member_id = member_id != 0;
        m.member_id = member_id;
        req.op_case = WG__V1__REQUEST__OP_LEAVE;
        req.leave = &m;
        resp = call(r, c, &req, NULL, "Leave");
        if (errnum_of(r, resp) != 0) {
                refused(r, resp, "Leave");
                unchanged(r, c, name, true, count + 1, "Leave");
                run_end(r);
        }
        group_answer(r, resp, "Leave", &info);
        check(r, info.count == count, "Leave %s: count %" PRIu64 ", not %" PRIu64, name, info.count, count);
}

/*
 * Send a Wait on @c, then a Stat on the same connection: its answer comes after wgd took the
 * Wait in, and says which generation the Wait waits for.
 */
static PendingWait *wait_send(Run *r, Conn *c, const char *name, uint64_t timeout_usec) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Wait m = WG__V1__WAIT__INIT;
        PendingWait *w;
        Info info;

        check(r, r->n_waits < WAITS_MAX, "too many Waits for the test");
        w = &r->waits[r->n_waits++];
        *w = (PendingWait) { .conn = c, .fault_before = fault_met(r), .generation = UINT64_MAX };
        snprintf(w->name, sizeof(w->name), "%s", name);
        m.name = (char *) name;
        m.has_timeout_usec = timeout_usec != NO_TIMEOUT;
        m.timeout_usec = timeout_usec;
        req.op_case = WG__V1__REQUEST__OP_WAIT;
        req.wait = &m;
        w->id = send_request(r, c, &req);

        info = op_stat(r, c, name);
        w->generation = info.generation;
        return w;
}

/*
 * Wait (bounded) for the answer to @w: a completion (@errnum 0) of the generation it waited for,
 * or the Error @errnum. Another Error is fine only if the fault struck after the Wait was sent.
 */
static bool wait_answered(Run *r, PendingWait *w) {
        uint64_t deadline = monotonic_usec() + RECV_MSEC * UINT64_C(1000);

        while (!w->answered) {
                uint64_t now = monotonic_usec();

                check(r, !w->void_, "awaiting a Wait on a closed connection");
                if (now >= deadline || !recv_one(r, w->conn, (unsigned) ((deadline - now) / 1000) + 1))
                        return false;
                /* Nothing else is in flight: anything else is an answer to nothing. */
                check(r,
                      w->conn->n_answers == 0 && !w->conn->notice,
                      "an unexpected answer while awaiting a Wait");
        }
        return true;
}

static void await_wait(Run *r, PendingWait *w, int errnum) {
        if (!wait_answered(r, w)) {
                check_alive(r);
                run_fail(
                        r,
                        "Wait on %s (generation %" PRIu64 "): no answer in %u ms",
                        w->name,
                        w->generation,
                        RECV_MSEC);
        }
        if (w->errnum != errnum && w->errnum != 0 && !w->fault_before && w->fault_at_answer) {
                if (cfg.verbose)
                        printf("#     Wait on %s: %s, as the fault allows\n",
                               w->name,
                               errno_name(w->errnum));
                run_end(r);
        }
        check(r,
              w->errnum == errnum,
              "Wait on %s: %s instead of %s",
              w->name,
              w->errnum ? errno_name(w->errnum) : "completion",
              errnum ? errno_name(errnum) : "completion");
        check(r,
              errnum != 0 || w->answer_generation > w->generation,
              "Wait on %s answered in generation %" PRIu64 ", before the one it waited for (%" PRIu64
              ") ended",
              w->name,
              w->answer_generation,
              w->generation);
}

/* Member processes: a child that joins over its own connection, leaves when told, or is killed. */

static int child_request(int fd, Wg__V1__Request *req, uint64_t id, ChildReport *rep) {
        uint8_t buf[WG_RECORD_MAX];
        struct pollfd p = { .fd = fd, .events = POLLIN };
        Wg__V1__Response *resp;
        int received = -1;
        ssize_t n;

        req->has_version = true;
        req->version = 1;
        req->has_id = true;
        req->id = id;
        wg__v1__request__pack(req, buf);
        if (seqpacket_send(fd, buf, wg__v1__request__get_packed_size(req), -1, 0) < 0)
                return 'X';
        if (poll(&p, 1, RECV_MSEC) != 1)
                return 'T';
        n = seqpacket_recv(fd, buf, sizeof(buf), &received, 0);
        if (n <= 0)
                return 'X';
        if (received >= 0)
                close(received); /* a Join's answer brings the segment */
        resp = wg__v1__response__unpack(NULL, (size_t) n, buf);
        if (!resp)
                return 'P';
        if (resp->result_case == WG__V1__RESPONSE__RESULT_ERROR) {
                rep->errnum = resp->error && resp->error->has_errnum ? resp->error->errnum : -1;
                wg__v1__response__free_unpacked(resp, NULL);
                return 'E';
        }
        if (resp->result_case == WG__V1__RESPONSE__RESULT_JOINED && resp->joined)
                rep->member_id = resp->joined->member_id;
        wg__v1__response__free_unpacked(resp, NULL);
        return 0;
}

static void __attribute__((noreturn)) child_main(const char *path, const char *name, int cmd, int report) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Join join = WG__V1__JOIN__INIT;
        Wg__V1__Leave leave = WG__V1__LEAVE__INIT;
        ChildReport rep = {};
        char c;
        int fd, k;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                _exit(2);

        join.name = (char *) name;
        join.description = (char *) "test-fault member";
        req.op_case = WG__V1__REQUEST__OP_JOIN;
        req.join = &join;
        /* EAGAIN says to try again (a node without its lease in etcd yet, say): so it does. */
        for (unsigned tries = 0;; tries++) {
                k = child_request(fd, &req, tries == 0 ? 1 : 1000 + tries, &rep);
                if (k != 'E' || rep.errnum != EAGAIN || tries >= 100)
                        break;
                usleep(50 * 1000);
        }
        rep.kind = k ? (char) k : 'J';
        if (write(report, &rep, sizeof(rep)) != sizeof(rep))
                _exit(3);

        /* 'L': leave (the first membership); 'J': join once more; 'C': close the connection. */
        for (uint64_t id = 2, first = rep.member_id; read(cmd, &c, 1) == 1; id++) {
                Wg__V1__Request more = WG__V1__REQUEST__INIT;

                if (c == 'C') {
                        close(fd);
                        rep.kind = 'C';
                } else if (c == 'J') {
                        more.op_case = WG__V1__REQUEST__OP_JOIN;
                        more.join = &join;
                        k = child_request(fd, &more, id, &rep);
                        rep.kind = k ? (char) k : 'J';
                } else {
                        leave.name = (char *) name;
                        leave.has_status = true;
                        leave.status = 0;
                        leave.has_member_id = true;
                        leave.member_id = first;
                        more.op_case = WG__V1__REQUEST__OP_LEAVE;
                        more.leave = &leave;
                        k = child_request(fd, &more, id, &rep);
                        rep.kind = k ? (char) k : 'L';
                }
                if (write(report, &rep, sizeof(rep)) != sizeof(rep))
                        _exit(3);
        }
        /* Told nothing more: live on, a member, until killed. */
        for (;;)
                pause();
}

static ChildReport child_report(Run *r, Child *ch) {
        struct pollfd p = { .fd = ch->report, .events = POLLIN };
        ChildReport rep = { .kind = 'T' };

        if (poll(&p, 1, RECV_MSEC + 1000) == 1 && read(ch->report, &rep, sizeof(rep)) != sizeof(rep))
                rep.kind = '?';
        return rep;
}

static void child_kill(Run *r, Child *ch) {
        if (ch->pid <= 0)
                return;
        (void) kill(ch->pid, SIGKILL);
        (void) reap(ch->pid);
        ch->pid = -1;
}

/*
 * The child's answer was not the expected one: a failure, or what the fault allows. An Error is
 * checked to have changed nothing; then the run ends, or goes on if @go_on.
 */
static void child_refused(
        Run *r,
        Child *ch,
        const ChildReport *rep,
        bool before,
        const char *what,
        const char *name,
        uint64_t count_before,
        bool go_on) {
        if (rep->kind == 'X') {
                child_kill(r, ch);
                usleep(10 * 1000);
                check_alive(r);
                check(r,
                      fault_met(r),
                      "%s: wgd closed the member's connection with no fault injected",
                      what);
                check(r,
                      ++r->drops <= faults_met(r),
                      "%s: wgd closed more connections than faults struck",
                      what);
                run_end(r);
        }
        check(r,
              rep->kind == 'E',
              "%s of a member process: %s",
              what,
              rep->kind == 'T' ? "no answer" : "a broken answer");
        check(r,
              !before && fault_met(r),
              "%s of a member process failed with %s and no fault struck meanwhile",
              what,
              errno_name(rep->errnum));
        /* Before the child dies: its death would change the count. */
        r->refused_errnum = rep->errnum;
        unchanged(r, conn_new(r), name, true, count_before, what);
        if (go_on) {
                r->expect.set = false; /* the scenario goes on, and changes the group */
                return;
        }
        child_kill(r, ch);
        run_end(r);
}

/* Fork a member that joins @name, after which the count is @count. */
static Child *child_join(Run *r, const char *name, uint64_t count) {
        bool before = fault_met(r);
        int cmd[2], report[2];
        ChildReport rep;
        Child *ch;

        check(r, r->n_children < CHILDREN_MAX, "too many children for the test");
        ch = &r->children[r->n_children++];
        *ch = (Child) { .pid = -1, .cmd = -1, .report = -1 };
        check(r, pipe2(cmd, O_CLOEXEC) == 0 && pipe2(report, O_CLOEXEC) == 0, "pipe2: %m");
        fflush(stdout);
        ch->pid = fork();
        check(r, ch->pid >= 0, "fork: %m");
        if (ch->pid == 0) {
                close(cmd[1]);
                close(report[0]);
                child_main(r->socket_path, name, cmd[0], report[1]);
        }
        close(cmd[0]);
        close(report[1]);
        ch->cmd = cmd[1];
        ch->report = report[0];

        rep = child_report(r, ch);
        if (rep.kind != 'J')
                child_refused(r, ch, &rep, before, "Join", name, count - 1, false);
        ch->member_id = rep.member_id;
        return ch;
}

/* Tell @ch to leave (status 0), after which the count is @count. */
static void child_leave(Run *r, Child *ch, const char *name, uint64_t count) {
        bool before = fault_met(r);
        ChildReport rep;

        check(r, write(ch->cmd, "L", 1) == 1, "write to the member: %m");
        rep = child_report(r, ch);
        if (rep.kind != 'L')
                child_refused(r, ch, &rep, before, "Leave", name, count + 1, false);
}

/*
 * Have @ch join once more, on the same connection; the count becomes @count. Refused as the
 * fault allows, it returns false, and the scenario goes on with one membership fewer: what a
 * failed join leaves behind shows later.
 */
static bool child_join_more(Run *r, Child *ch, const char *name, uint64_t count) {
        bool before = fault_met(r);
        ChildReport rep;

        check(r, write(ch->cmd, "J", 1) == 1, "write to the member: %m");
        rep = child_report(r, ch);
        if (rep.kind == 'J')
                return true;
        child_refused(r, ch, &rep, before, "A second Join", name, count - 1, true);
        return false;
}

/* Have @ch close its connection to wgd, and live on. */
static void child_disconnect(Run *r, Child *ch) {
        ChildReport rep;

        check(r, write(ch->cmd, "C", 1) == 1, "write to the member: %m");
        rep = child_report(r, ch);
        check(r, rep.kind == 'C', "the member did not close its connection");
}

/* wgd processes. */

static void map_point(Run *r, uint64_t point, unsigned *ret_proc, uint64_t *ret_local) {
        const Window *last = &r->windows[r->n_windows - 1];

        for (size_t i = 0; i < r->n_windows; i++) {
                const Window *w = &r->windows[i];

                if (point <= w->hi - w->lo) {
                        *ret_proc = w->proc;
                        *ret_local = w->lo + point;
                        return;
                }
                point -= w->hi - w->lo;
        }
        /*
         * Past what the dry run counted: on past the end of the last window, which is the last
         * wgd's exit; but past a start-up are the checks, which are no points.
         */
        *ret_proc = r->scenario->startup ? UINT_MAX : last->proc;
        *ret_local = last->hi + point;
}

/*
 * Cluster groups. A run of a cluster scenario starts from an empty etcd, and its wgd is node
 * "fault" with a lease long enough that no keepalive falls within a run: the calls come in the
 * same order in every run, as far as etcd's answers and its watch allow (a run whose count
 * differs meets no fault, or another point, and says so).
 */
#define CLUSTER_ARGS 4

static void cluster_args(char *etcd_arg, size_t size, const char *node_arg, const char **args) {
#ifdef WG_HAVE_ETCD
        snprintf(etcd_arg, size, "--etcd=%s", cfg.etcd.endpoints[0]);
#else
        snprintf(etcd_arg, size, "--etcd=");
#endif
        args[0] = etcd_arg;
        args[1] = node_arg;
        args[2] = "--lease-ttl=60";
        /* A call that a fault left hanging ends in a second, within the test's deadlines. */
        args[3] = "--etcd-timeout=1";
}

static void cluster_clear(Run *r) {
#ifdef WG_HAVE_ETCD
        /* Every key: from "\0" to the end ("\0" as range_end). */
        long status = etcd_harness_post(
                &cfg.etcd, 0, "kv/deleterange", "{\"key\":\"AA==\",\"range_end\":\"AA==\"}", NULL, NULL);

        check(r, status == 200, "emptying etcd: HTTP status %ld", status);
#endif
}

/* A node has read what etcd holds (and watches it from then on): it says so once. */
static void cluster_following(Run *r, const char *err_path, const char *who) {
        uint64_t deadline = monotonic_usec() + PROCESS_MSEC * UINT64_C(1000);

        for (unsigned round = 0; file_count(err_path, "Following ") == 0;) {
                check_alive(r);
                check(r, monotonic_usec() < deadline, "%s did not read etcd in %u ms", who, PROCESS_MSEC);
                poll_pause(&round);
        }
}

/*
 * Start the next wgd of the scenario and wait until it serves. A fault in its start-up must
 * make it exit non-zero, without a crash or a sanitizer's report; then a start without the
 * fault must serve.
 */
static void wgd_start(Run *r) {
        unsigned logical = r->logical++;
        bool faulty = true;

        for (;;) {
                char at_env[64] = "WGD_FAULT_AT=", log_env[340], errno_env[40], socket_arg[320];
                char etcd_arg[128];
                const char *env[4] = { log_env, NULL, NULL, NULL };
                const char *args[8] = { "--idle-timeout=60", NULL, NULL, NULL, NULL, NULL, NULL, NULL };
                size_t n_args = 1;
                HarnessOptions opts = { .binary = cfg.wgd_fault,
                                        .env = env,
                                        .no_listen_fds = r->scenario->bind_own };
                size_t n_env = 1;
                Proc *p;
                int k, status = 0;

                check(r, r->n_procs < PROCS_MAX, "too many wgd processes for the test");
                p = &r->procs[r->n_procs++];
                *p = (Proc) { .logical = logical };
                snprintf(p->log_path, sizeof(p->log_path), "%s/fault-%zu.log", r->h.dir, r->n_procs - 1);
                snprintf(p->err_path, sizeof(p->err_path), "%s/wgd-%zu.err", r->h.dir, r->n_procs - 1);
                opts.stderr_path = p->err_path;
                snprintf(log_env, sizeof(log_env), "WGD_FAULT_LOG=%s", p->log_path);

                for (size_t i = 0; faulty && i < r->n_points; i++) {
                        unsigned proc;
                        uint64_t local;

                        map_point(r, r->points[i], &proc, &local);
                        if (proc == logical)
                                p->at[p->n_at++] = local;
                }
                if (p->n_at > 0) {
                        for (size_t i = 0; i < p->n_at; i++)
                                snprintf(
                                        at_env + strlen(at_env),
                                        sizeof(at_env) - strlen(at_env),
                                        "%s%" PRIu64,
                                        i > 0 ? "," : "",
                                        p->at[i]);
                        env[n_env++] = at_env;
                        if (r->errnum > 0) {
                                snprintf(errno_env, sizeof(errno_env), "WGD_FAULT_ERRNO=%d", r->errnum);
                                env[n_env++] = errno_env;
                        }
                }
                if (r->scenario->bind_own) {
                        snprintf(socket_arg, sizeof(socket_arg), "--socket=%s", r->socket_path);
                        args[n_args++] = socket_arg;
                }
                if (r->scenario->cluster) {
                        cluster_args(etcd_arg, sizeof(etcd_arg), "--node-name=fault", args + n_args);
                        n_args += CLUSTER_ARGS;
                }

                harness_spawn(&r->h, args, &opts);
                /*
                 * READY=1 itself failing is a failed start-up like any other: wgd exits, rather
                 * than serve unannounced until systemd times it out.
                 */
                for (unsigned waited = 0;; waited += 10) {
                        k = harness_wait_ready(&r->h, 10, &status);
                        if (k != -ETIMEDOUT)
                                break;
                        check(r,
                              waited < PROCESS_MSEC,
                              "wgd %u did not send READY=1 in %u ms",
                              logical,
                              PROCESS_MSEC);
                }
                if (k == 0) {
                        if (r->scenario->cluster)
                                cluster_following(r, p->err_path, "wgd");
                        return;
                }

                check(r,
                      fault_met(r),
                      "wgd %u exited with status %d at start-up, with no fault injected",
                      logical,
                      status);
                if (status <= 0 || status >= 128 || sanitizer_report(p->err_path)) {
                        char summary[512];

                        sanitizer_summary(p->err_path, summary, sizeof(summary));
                        run_fail(
                                r,
                                "wgd %u failed its start-up with status %d%s%s",
                                logical,
                                status,
                                *summary ? ": " : "",
                                summary);
                }
                check(r, faulty, "wgd %u exited at start-up a second time", logical);
                if (cfg.verbose)
                        printf("#     wgd %u exited with status %d at start-up, as the fault allows\n",
                               logical,
                               status);
                faulty = false;
        }
}

/*
 * Stop wgd with SIGTERM: every pending Wait is answered (ESHUTDOWN) before wgd closes its
 * connection, and wgd exits with status 0 and no sanitizer's report. An answer lost at shutdown
 * is fine only in a run that met its fault (a reply that could not be sent).
 */
static void wgd_stop(Run *r) {
        Proc *p = &r->procs[r->n_procs - 1];
        bool owed[WAITS_MAX];
        int status = -1;

        for (size_t i = 0; i < r->n_waits; i++)
                owed[i] = !r->waits[i].answered && !r->waits[i].void_;

        check(r, kill(r->h.pid, SIGTERM) == 0, "kill(SIGTERM): %m");
        for (size_t i = 0; i < r->n_conns; i++) {
                Conn *c = &r->conns[i];
                uint64_t deadline = monotonic_usec() + PROCESS_MSEC * UINT64_C(1000);

                while (!c->closed) {
                        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
                        uint64_t now = monotonic_usec();
                        char byte;

                        check(r,
                              now < deadline && poll(&pfd, 1, (int) ((deadline - now) / 1000) + 1) == 1,
                              "wgd did not stop in %u ms after SIGTERM (nor close its connections)",
                              PROCESS_MSEC);
                        /* End of file (or a reset): closed. Else a record, read as an answer. */
                        if (recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
                                conn_close(r, c);
                                break;
                        }
                        (void) recv_one(r, c, 0);
                        check(r, c->n_answers == 0 && !c->notice, "an answer to nothing at shutdown");
                }
        }
        for (size_t i = 0; i < r->n_waits; i++)
                check(r,
                      !owed[i] || r->waits[i].answered || fault_met(r),
                      "the Wait on %s was not answered before wgd closed its connection at SIGTERM",
                      r->waits[i].name);

        for (unsigned waited = 0;; waited++) {
                if (waitpid(r->h.pid, &status, WNOHANG) == r->h.pid)
                        break;
                check(r, waited < PROCESS_MSEC, "wgd did not exit in %u ms after SIGTERM", PROCESS_MSEC);
                usleep(1000);
        }
        r->h.pid = -1;
        harness_pump(&r->h);
        status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (status != 0 || sanitizer_report(p->err_path)) {
                char summary[512];

                sanitizer_summary(p->err_path, summary, sizeof(summary));
                run_fail(
                        r,
                        "wgd exited with status %d after SIGTERM%s%s",
                        status,
                        *summary ? ": " : "",
                        summary);
        }
}

/*
 * A connection to the witness, a second node of the cluster without a fault: started by the
 * first call of a run (a scenario that makes changes on another node, or the checks after it).
 */
static int witness_connect(Run *r) {
        char etcd_arg[128], err_path[320];
        const char *args[8] = { "--idle-timeout=0", "--log-level=info" };
        HarnessOptions opts = { .binary = cfg.wgd_fault, .stderr_path = err_path };

        if (!r->has_witness || r->witness.pid <= 0) {
                snprintf(err_path, sizeof(err_path), "%s/witness.err", r->h.dir);
                /* A witness started again must say anew that it has read etcd. */
                (void) unlink(err_path);
                cluster_args(etcd_arg, sizeof(etcd_arg), "--node-name=witness", args + 2);
                if (r->has_witness)
                        harness_done(&r->witness);
                harness_init(&r->witness);
                r->has_witness = true;
                harness_spawn(&r->witness, args, &opts);
                check(r,
                      harness_wait_ready(&r->witness, PROCESS_MSEC, NULL) == 0,
                      "the witness did not start");
                cluster_following(r, err_path, "the witness");
        }
        return pc_connect(r->witness.socket_path);
}

/* What a node that saw no fault says of @name, on @fd: a group, or none (ENOENT). */
static Info witness_stat(Run *r, int fd, const char *name) {
        Wg__V1__Response *resp = pc_stat(fd, name);
        int e = pc_errnum(resp);
        Info info = {};

        if (e == 0 && resp->result_case == WG__V1__RESPONSE__RESULT_GROUP && resp->group)
                info_from(resp->group, &info);
        pc_free(resp);
        check(r, e == 0 || e == ENOENT, "Stat of %s on the witness: %s", name, errno_name(e));
        return info;
}

/* Whether two nodes' views of a cluster group agree; if not, in what (into @why). */
static bool info_agree(const Info *a, const Info *b, char *why, size_t size) {
        if (a->exists != b->exists)
                snprintf(why, size, "it is there on %s only", a->exists ? "node fault" : "the witness");
        else if (!a->exists)
                return true;
        else if (a->count != b->count || a->generation != b->generation)
                snprintf(
                        why,
                        size,
                        "count %" PRIu64 " generation %" PRIu64 " against %" PRIu64 " %" PRIu64,
                        a->count,
                        a->generation,
                        b->count,
                        b->generation);
        else if (a->n_joined != b->n_joined)
                snprintf(why, size, "%zu members joined against %zu", a->n_joined, b->n_joined);
        else if (
                a->has_outcome != b->has_outcome || a->succeeded != b->succeeded || a->failed != b->failed ||
                a->abandoned != b->abandoned)
                snprintf(
                        why,
                        size,
                        "outcome %u/%u/%u against %u/%u/%u",
                        a->succeeded,
                        a->failed,
                        a->abandoned,
                        b->succeeded,
                        b->failed,
                        b->abandoned);
        else
                return true;
        return false;
}

/*
 * After a cluster scenario: etcd holds the truth of the cluster groups, whatever a fault made
 * node fault answer, and the node must hold it too. A second node (the witness), started now
 * without a fault, reads etcd; within a generous deadline (each node follows etcd through its
 * watch) both must show every cluster group alike: there or not, its count and generation, its
 * members joined, its outcome. A node that answered a change it did not make, made one it
 * did not answer and never learnt of it, or lost a group, shows here.
 */
static void cluster_agree(Run *r, Conn *c) {
        char names[16][WG_NAME_MAX + 1], why[320] = "";
        uint64_t deadline;
        int fd;

        fd = witness_connect(r);

        deadline = monotonic_usec() + PROCESS_MSEC * UINT64_C(1000);
        for (unsigned round = 0;; poll_pause(&round)) {
                Wg__V1__Response *resp = pc_list(fd, NULL);
                const char *differs = NULL;
                bool refusal = false;
                size_t n;

                n = op_list(r, c, NULL, names);
                check(r,
                      pc_errnum(resp) == 0 && resp->list && resp->list->n_groups <= 8,
                      "List on the witness: not a list of at most 8");
                for (size_t i = 0; i < resp->list->n_groups; i++)
                        snprintf(names[n++], WG_NAME_MAX + 1, "%s", resp->list->groups[i]->name);
                pc_free(resp);

                for (size_t i = 0; i < n && !differs; i++) {
                        Info a = op_stat(r, c, names[i]), b = witness_stat(r, fd, names[i]);

                        if (a.exists && !a.cluster)
                                continue; /* a local group of the node */
                        if (!info_agree(&a, &b, why, sizeof(why)))
                                differs = names[i];
                }
                /* The two may agree on a state on the way (a Join withdrawn, say): until etcd's last. */
                if (!differs && r->expect.set) {
                        Info b = witness_stat(r, fd, r->expect.name);

                        if (b.exists != r->expect.exists ||
                            (b.exists && r->expect.check_count && b.count != r->expect.count)) {
                                refusal = true;
                                snprintf(
                                        why,
                                        sizeof(why),
                                        "%s was refused with %s, yet etcd has group %s %s, count %" PRIu64
                                        " (expected %s, count %" PRIu64 ")",
                                        r->expect.what,
                                        errno_name(r->refused_errnum),
                                        r->expect.name,
                                        b.exists ? "there" : "gone",
                                        b.count,
                                        r->expect.exists ? "there" : "gone",
                                        r->expect.count);
                                differs = r->expect.name;
                        }
                }
                if (!differs)
                        break;
                if (refusal)
                        check(r, monotonic_usec() < deadline, "%s, after %u ms", why, PROCESS_MSEC);
                check(r,
                      monotonic_usec() < deadline,
                      "node fault and a node that saw no fault disagree on cluster group %s after %u ms: %s",
                      differs,
                      PROCESS_MSEC,
                      why);
        }
        close(fd);
        check(r, harness_stop(&r->witness, SIGTERM) == 0, "the witness did not stop cleanly");
}

/* The checks after the scenario: wgd serves, and no Wait is forgotten. */
static void verify(Run *r) {
        char names[8][WG_NAME_MAX + 1], name[WG_NAME_MAX + 1];
        PendingWait *w;
        size_t n;
        Conn *c;

        c = conn_new(r);
        n = op_list(r, c, NULL, names);
        for (size_t i = 0; i < n; i++) {
                Info info = op_stat(r, c, names[i]);

                check(r,
                      !info.exists || info.count > 0 || info.waiters == 0,
                      "group %s is at zero, yet %u Waits are pending on it",
                      names[i],
                      info.waiters);
        }

        /* Every Wait still pending whose generation ended must be answered now. */
        for (size_t i = 0; i < r->n_waits; i++) {
                Info info;

                w = &r->waits[i];
                if (w->answered || w->void_)
                        continue;
                info = op_stat(r, c, w->name);
                /* (A Wait whose Stat was refused does not know its generation: UINT64_MAX.) */
                if (!info.exists || info.count == 0 ||
                    (w->generation != UINT64_MAX && info.generation != w->generation)) {
                        uint64_t deadline = monotonic_usec() + RECV_MSEC * UINT64_C(1000);

                        while (!w->answered) {
                                uint64_t now = monotonic_usec();

                                if (now >= deadline ||
                                    !recv_one(r, w->conn, (unsigned) ((deadline - now) / 1000) + 1)) {
                                        check_alive(r);
                                        run_fail(
                                                r,
                                                "Wait on %s (generation %" PRIu64
                                                ") is still pending, yet the "
                                                "group is %s",
                                                w->name,
                                                w->generation,
                                                !info.exists            ? "gone" :
                                                        info.count == 0 ? "at zero" :
                                                                          "in a later generation");
                                }
                        }
                }
        }

        if (r->scenario->cluster) {
                cluster_agree(r, c);
                /* A round trip on a cluster group too. */
                snprintf(name, sizeof(name), "kfault-verify-%u", r->verify_tries);
                op_create_full(r, c, name, 0, 1, true);
                op_add(r, c, name, -1, 0);
                op_delete(r, c, name);
        }

        /* A new client's round trip (on a name of its own, should it have to try again). */
        snprintf(name, sizeof(name), "fault-verify-%u", r->verify_tries);
        op_create(r, c, name, 0, 1);
        op_add(r, c, name, 1, 2);
        op_add(r, c, name, -1, 1);
        w = wait_send(r, conn_new(r), name, NO_TIMEOUT);
        op_add(r, c, name, -1, 0);
        await_wait(r, w, 0);
        op_delete(r, c, name);
}

/* Restart wgd, as systemd does: SIGTERM, then a new wgd with what the fdstore kept. */
static void wgd_restart(Run *r) {
        wgd_stop(r);
        for (size_t i = 0; i < r->n_waits; i++)
                r->waits[i].void_ = true;
        wgd_start(r);
}

/* The scenarios. */

static void scenario_create(Run *r) {
        Conn *a = conn_new(r);
        Info i;

        op_create(r, a, "fc", 0640, 2);
        expect_error(r, create_call(r, a, "fc", 0, 0), EEXIST, "Create of a name that exists");
        {
                /* Larger than wgd's arena for requests: unpacked with malloc(), then refused. */
                static char long_name[9000];

                memset(long_name, 'n', sizeof(long_name) - 1);
                expect_error(r, create_call(r, a, long_name, 0, 0), EINVAL, "Create of a name too long");
        }
        op_create(r, a, "fc2", 0, 0);
        i = op_stat(r, a, "fc");
        check(r,
              i.exists && i.count == 2 && i.mode == 0640,
              "Stat fc: count %" PRIu64 ", mode %o",
              i.count,
              i.mode);
}

static void scenario_open(Run *r) {
        Conn *a = conn_new(r);
        uint64_t count;
        wg *g1, *g2;
        Info i;

        g1 = track_wg(r, op_open(r, a, "fo", true));
        check(r, wg_add(g1, 2) == 0, "wg_add on the mapping");
        g2 = track_wg(r, op_open(r, a, "fo", false));
        check(r, wg_get_count(g2, &count) == 0 && count == 2, "a second Open does not see the first's add");
        check(r, wg_done(g1) == 0 && wg_done(g2) == 0, "wg_done on the mappings");
        i = op_stat(r, a, "fo");
        check(r,
              i.count == 0 && i.generation == 1,
              "Stat fo: count %" PRIu64 ", generation %" PRIu64,
              i.count,
              i.generation);
}

static void scenario_add(Run *r) {
        Conn *a = conn_new(r);
        Info i;

        op_create(r, a, "fa", 0, 0);
        op_add(r, a, "fa", 3, 3);
        op_add(r, a, "fa", -1, 2);
        op_add(r, a, "fa", -2, 0);
        expect_error(r, add_call(r, a, "fa", -1), ERANGE, "Done below zero");
        i = op_stat(r, a, "fa");
        check(r,
              i.count == 0 && i.generation == 1,
              "Stat fa: count %" PRIu64 ", generation %" PRIu64,
              i.count,
              i.generation);
}

/*
 * Waits through the protocol, ended by a process's own mapping (which only the watcher sees:
 * first in wgd's life, so that its thread starts then, and then with another group still
 * watched, so that the watcher's wakeup sets a new watch), by a Done, and by the timeout.
 */
static void scenario_wait(Run *r) {
        Conn *a = conn_new(r), *b = conn_new(r);
        PendingWait *w, *w2;
        wg *g, *g2;

        op_create(r, a, "fw", 0, 1);
        op_create(r, a, "fw2", 0, 1);
        g = track_wg(r, op_open(r, a, "fw", false));
        g2 = track_wg(r, op_open(r, a, "fw2", false));
        w = wait_send(r, b, "fw", NO_TIMEOUT);
        check(r, wg_done(g) == 0, "wg_done on the mapping");
        await_wait(r, w, 0);

        op_add(r, a, "fw", 1, 1);
        w = wait_send(r, b, "fw", NO_TIMEOUT);
        w2 = wait_send(r, b, "fw2", NO_TIMEOUT);
        check(r, wg_done(g) == 0, "wg_done on the mapping");
        await_wait(r, w, 0);
        check(r, wg_done(g2) == 0, "wg_done on the mapping");
        await_wait(r, w2, 0);

        op_add(r, a, "fw", 1, 1);
        w = wait_send(r, b, "fw", NO_TIMEOUT);
        op_add(r, a, "fw", -1, 0);
        await_wait(r, w, 0);

        op_add(r, a, "fw", 1, 1);
        w = wait_send(r, b, "fw", 20 * 1000);
        await_wait(r, w, ETIMEDOUT);
        op_add(r, a, "fw", -1, 0);
}

/* Members on connections of this process: leave, leave failing, and a connection that closes. */
static void scenario_join(Run *r) {
        Conn *a = conn_new(r), *j = conn_new(r), *k;
        PendingWait *w;
        uint64_t id;
        Info i;

        op_create(r, a, "fj", 0, 0);
        id = op_join(r, j, "fj", 1);
        i = op_stat(r, a, "fj");
        check(r,
              i.n_joined == 1 && i.joined_pid[0] == (uint32_t) getpid(),
              "Stat fj: %zu members joined",
              i.n_joined);
        op_leave(r, j, "fj", id, 0, 0);
        id = op_join(r, j, "fj", 1);
        op_leave(r, j, "fj", id, 3, 0);
        i = op_stat(r, a, "fj");
        check(r,
              i.has_outcome && i.failed == 1,
              "Stat fj: the member that left with status 3 is not counted failed");

        k = conn_new(r);
        (void) op_join(r, k, "fj", 1);
        w = wait_send(r, a, "fj", NO_TIMEOUT);
        conn_close(r, k);
        await_wait(r, w, 0);
        check(r, w->abandoned == 1, "the member whose connection closed is not counted abandoned");
}

/*
 * Member processes: one that holds two memberships on one connection and closes it (wgd does
 * both dones; a failed second join must not have disturbed the first), one that is killed.
 */
static void scenario_member_death(Run *r) {
        Conn *a = conn_new(r), *b = conn_new(r);
        PendingWait *w;
        Child *ch;
        bool both;
        Info i;

        op_create(r, a, "fm", 0, 0);
        ch = child_join(r, "fm", 1);
        both = child_join_more(r, ch, "fm", 2);
        w = wait_send(r, b, "fm", NO_TIMEOUT);
        child_disconnect(r, ch);
        if (!wait_answered(r, w)) {
                /* A membership left behind points to the freed connection: the death shows it. */
                child_kill(r, ch);
                r->context =
                        "the member closed its connection and its memberships were not ended; then it died";
                /* (A sanitizer takes its time to write its report.) */
                for (unsigned k = 0; k < 200; k++) {
                        usleep(10 * 1000);
                        check_alive(r);
                }
                run_fail(
                        r,
                        "the member closed its connection, yet the Wait on fm got no answer in %u ms: its "
                        "memberships were not ended",
                        RECV_MSEC);
        }
        await_wait(r, w, 0);
        check(r,
              w->abandoned == (both ? 2u : 1u),
              "%u memberships abandoned with the connection, not %u",
              w->abandoned,
              both ? 2u : 1u);
        child_kill(r, ch);

        ch = child_join(r, "fm", 1);
        w = wait_send(r, b, "fm", NO_TIMEOUT);
        child_kill(r, ch);
        await_wait(r, w, 0);
        check(r, w->abandoned == 1, "the killed member is not counted abandoned");
        i = op_stat(r, a, "fm");
        check(r,
              i.count == 0 && i.generation == 2,
              "Stat fm: count %" PRIu64 ", generation %" PRIu64,
              i.count,
              i.generation);
}

/* Delete with Waits pending (one with a timer), a member, and a mapping. */
static void scenario_delete(Run *r) {
        Conn *a = conn_new(r), *b = conn_new(r), *c = conn_new(r), *j = conn_new(r);
        PendingWait *w1, *w2;
        wg *g;

        op_create(r, a, "fx", 0, 1);
        w1 = wait_send(r, b, "fx", NO_TIMEOUT);
        w2 = wait_send(r, c, "fx", 60 * UINT64_C(1000000));
        (void) op_join(r, j, "fx", 2);
        g = track_wg(r, op_open(r, a, "fx", false));
        op_delete(r, a, "fx");
        await_wait(r, w1, EIDRM);
        await_wait(r, w2, EIDRM);
        check(r, wg_done(g) == -EIDRM, "wg_done on a deleted group's mapping is not EIDRM");
        check(r, !op_stat(r, a, "fx").exists, "group fx is still there after Delete");
        op_create(r, a, "fx", 0, 0);
}

static void scenario_list(Run *r) {
        char names[8][WG_NAME_MAX + 1];
        Conn *a = conn_new(r);
        size_t n;

        op_create(r, a, "la", 0, 0);
        op_create(r, a, "lb", 0, 0);
        op_create(r, a, "lc", 0, 0);
        n = op_list(r, a, NULL, names);
        check(r,
              n == 3 && strcmp(names[0], "la") == 0 && strcmp(names[2], "lc") == 0,
              "List: %zu groups",
              n);
        n = op_list(r, a, "la", names);
        check(r, n == 2 && strcmp(names[0], "lb") == 0, "List after la: %zu groups", n);
}

/*
 * A restart with groups and members: a member that left (and must not come back), one that
 * stays and dies after the restart, this process as a member that leaves after the restart on
 * a new connection, and a Wait pending across it (answered ESHUTDOWN, then asked again).
 */
static void scenario_restart(Run *r) {
        Conn *a = conn_new(r), *w = conn_new(r), *j = conn_new(r);
        PendingWait *pw;
        Child *gone, *stays;
        uint64_t id;
        Info i;

        op_create(r, a, "fr", 0, 1);
        op_create(r, a, "fr2", 0660, 0);
        gone = child_join(r, "fr", 2);
        child_leave(r, gone, "fr", 1);
        stays = child_join(r, "fr", 2);
        id = op_join(r, j, "fr2", 1);
        pw = wait_send(r, w, "fr", NO_TIMEOUT);
        wgd_restart(r);
        check(r,
              !pw->answered || pw->errnum == ESHUTDOWN || (!pw->fault_before && pw->fault_at_answer),
              "the Wait pending at SIGTERM was answered %s",
              pw->errnum ? errno_name(pw->errnum) : "as complete");

        a = conn_new(r);
        w = conn_new(r);
        i = op_stat(r, a, "fr");
        check(r, i.exists, "group fr did not survive the restart");
        check(r, i.count == 2, "group fr came back at count %" PRIu64 ", not 2", i.count);
        check(r,
              i.n_joined == 1 && joined(&i, stays->pid),
              "group fr came back with %zu members joined, not just the one that stayed (it is %s; the "
              "one that left is %s)",
              i.n_joined,
              joined(&i, stays->pid) ? "there" : "missing",
              joined(&i, gone->pid) ? "back" : "not back");
        i = op_stat(r, a, "fr2");
        check(r, i.exists, "group fr2 did not survive the restart");
        check(r,
              i.count == 1 && i.mode == 0660 && i.n_joined == 1 && i.joined_pid[0] == (uint32_t) getpid(),
              "group fr2 came back at count %" PRIu64 ", mode %o, %zu members joined",
              i.count,
              i.mode,
              i.n_joined);

        op_leave(r, a, "fr2", id, 0, 0);
        pw = wait_send(r, w, "fr", NO_TIMEOUT);
        op_add(r, a, "fr", -1, 1);
        child_kill(r, gone);
        child_kill(r, stays);
        await_wait(r, pw, 0);
        check(r, pw->abandoned == 1, "the member killed after the restart is not counted abandoned");
}

/*
 * A cluster group (the node is started with --etcd): Create, Add, Done, a member that joins and
 * leaves, one whose connection closes (abandoned), a Wait that etcd's zero ends, Delete. Each
 * change goes to etcd and back; the checks after it hold the node to what etcd has.
 */
/* Stat @name until its count is @count (bounded, then the run fails): the node follows etcd. */
static void stat_until(Run *r, Conn *c, const char *name, uint64_t count, const char *what) {
        uint64_t deadline = monotonic_usec() + PROCESS_MSEC * UINT64_C(1000);
        unsigned round = 0;
        Info i;

        while ((i = op_stat(r, c, name)).count != count || !i.exists) {
                check(r,
                      monotonic_usec() < deadline,
                      "%s: the count of %s is %" PRIu64 " after %u ms, not %" PRIu64,
                      what,
                      name,
                      i.count,
                      PROCESS_MSEC,
                      count);
                poll_pause(&round);
        }
}

static void scenario_cluster(Run *r) {
        Conn *a = conn_new(r), *j = conn_new(r), *k;
        PendingWait *w;
        uint64_t id;

        op_create_full(r, a, "kc", 0640, 2, true);
        op_add(r, a, "kc", 1, 3);
        op_add(r, a, "kc", -1, 2);
        id = op_join(r, j, "kc", 3);
        op_leave(r, j, "kc", id, 0, 2);
        k = conn_new(r);
        (void) op_join(r, k, "kc", 3);
        conn_close(r, k);
        stat_until(r, a, "kc", 2, "a member whose connection closed");
        w = wait_send(r, j, "kc", NO_TIMEOUT);
        op_add(r, a, "kc", -2, 0);
        await_wait(r, w, 0);
        op_delete(r, a, "kc");
}

/* Stat @name until it is gone (bounded, then the run fails). */
static void stat_until_gone(Run *r, Conn *c, const char *name, const char *what) {
        uint64_t deadline = monotonic_usec() + PROCESS_MSEC * UINT64_C(1000);
        unsigned round = 0;

        while (op_stat(r, c, name).exists) {
                check(r,
                      monotonic_usec() < deadline,
                      "%s: %s is still there after %u ms",
                      what,
                      name,
                      PROCESS_MSEC);
                poll_pause(&round);
        }
}

/*
 * Cluster groups across a restart of the node, and made elsewhere: a group that the witness (a
 * node without a fault) makes, which the node mirrors from its watch and changes; a member
 * process of the node's own group that stays joined across the restart (the fdstore keeps it,
 * the lease too) and dies after it; the witness's group deleted there.
 */
static void scenario_cluster_restart(Run *r) {
        Conn *a = conn_new(r), *w;
        PendingWait *pw;
        Child *stays;
        int peer;
        Info i;

        op_create_full(r, a, "kr", 0, 1, true);
        peer = witness_connect(r);
        pc_expect(pc_create_cluster(peer, "kp", 0666, 1), 0);
        stat_until(r, a, "kp", 1, "a group made on another node");
        op_add(r, a, "kp", 1, 2);
        stays = child_join(r, "kr", 2);

        wgd_restart(r);
        a = conn_new(r);
        w = conn_new(r);
        i = op_stat(r, a, "kr");
        check(r, i.exists, "cluster group kr did not survive the restart");
        check(r,
              i.count == 2 && i.n_joined == 1 && joined(&i, stays->pid),
              "cluster group kr came back at count %" PRIu64 " with %zu members joined (the one that stayed "
              "is %s)",
              i.count,
              i.n_joined,
              joined(&i, stays->pid) ? "there" : "missing");
        stat_until(r, a, "kp", 2, "a group made on another node, after the restart");

        pc_expect(pc_delete(peer, "kp"), 0);
        close(peer);
        stat_until_gone(r, a, "kp", "a group deleted on another node");
        pw = wait_send(r, w, "kr", NO_TIMEOUT);
        op_add(r, a, "kr", -1, 1);
        child_kill(r, stays);
        await_wait(r, pw, 0);
        check(r, pw->abandoned == 1, "the member killed after the restart is not counted abandoned");
}

static const Scenario scenarios[] = {
        { .name = "startup", .startup = true },
        { .name = "startup-bind", .startup = true, .bind_own = true },
        { .name = "create", .run = scenario_create },
        { .name = "open", .run = scenario_open },
        { .name = "add", .run = scenario_add },
        { .name = "wait", .run = scenario_wait },
        { .name = "join", .run = scenario_join },
        { .name = "member-death", .run = scenario_member_death },
        { .name = "delete", .run = scenario_delete },
        { .name = "list", .run = scenario_list },
        { .name = "restart", .run = scenario_restart },
        { .name = "cluster", .run = scenario_cluster, .cluster = true },
        { .name = "cluster-restart", .run = scenario_cluster_restart, .cluster = true },
};

/* One run. */

typedef struct Result {
        bool met, failed;
        bool shifted;       /* a double fault whose first fell on another call than the one meant */
        char fail[2][1024]; /* what the logs say failed */
        size_t n_fail;
        ProcLog logs[PROCS_MAX]; /* by logical process, the first start of each */
        size_t n_logs;
} Result;

static void run_cleanup(Run *r) {
        for (size_t i = 0; i < r->n_children; i++)
                child_kill(r, &r->children[i]);
        for (size_t i = 0; i < r->n_children; i++) {
                if (r->children[i].cmd >= 0)
                        close(r->children[i].cmd);
                if (r->children[i].report >= 0)
                        close(r->children[i].report);
        }
        for (size_t i = 0; i < r->n_conns; i++) {
                if (r->conns[i].fd >= 0)
                        close(r->conns[i].fd);
                for (size_t k = 0; k < r->conns[i].n_answers; k++) {
                        wg__v1__response__free_unpacked(r->conns[i].answers[k].resp, NULL);
                        if (r->conns[i].answers[k].fd >= 0)
                                close(r->conns[i].answers[k].fd);
                }
                if (r->conns[i].notice)
                        wg__v1__response__free_unpacked(r->conns[i].notice, NULL);
        }
        for (size_t i = 0; i < r->n_fds; i++)
                close(r->fds[i]);
        for (size_t i = 0; i < r->n_handles; i++)
                wg_unref(r->handles[i]);
        if (r->h.pid > 0) {
                (void) kill(r->h.pid, SIGKILL);
                (void) reap(r->h.pid);
                r->h.pid = -1;
        }
        if (r->has_witness)
                harness_done(&r->witness);
}

static void print_run(const Run *r, const Result *res, const char *verdict) {
        printf("# %s %s N=", verdict, r->scenario->name);
        for (size_t i = 0; i < r->n_points; i++)
                printf("%s%" PRIu64, i > 0 ? "," : "", r->points[i]);
        if (r->errnum > 0)
                printf(" (%s)", errno_name(r->errnum));
        for (size_t i = 0; i < r->n_procs; i++)
                if (r->procs[i].n_at > 0) {
                        printf(" [wgd %u: WGD_FAULT_AT=", r->procs[i].logical);
                        for (size_t k = 0; k < r->procs[i].n_at; k++)
                                printf("%s%" PRIu64, k > 0 ? "," : "", r->procs[i].at[k]);
                        printf("]");
                }
        printf("%s%s\n", *r->failure ? ": " : "", r->failure);
        for (size_t i = 0; i < res->n_fail; i++)
                print_fail_line(res->fail[i]);
}

/* Move the fault logs and wgd's stderr of @r out of the directory that the harness removes. */
static void keep_files(Run *r) {
        char dir[] = "/tmp/wg-fault-XXXXXX", path[400];

        if (!mkdtemp(dir))
                return;
        for (size_t i = 0; i < r->n_procs; i++) {
                snprintf(path, sizeof(path), "%s/fault-%zu.log", dir, i);
                (void) rename(r->procs[i].log_path, path);
                snprintf(path, sizeof(path), "%s/wgd-%zu.err", dir, i);
                (void) rename(r->procs[i].err_path, path);
        }
        printf("#   kept: %s\n", dir);
}

static bool fail_is(const Result *res, const char *name);

static bool any_sanitizer_report(Run *r) {
        for (size_t i = 0; i < r->n_procs; i++)
                if (sanitizer_report(r->procs[i].err_path))
                        return true;
        return false;
}

static void run_once(
        const Scenario *s,
        const uint64_t *points,
        size_t n_points,
        int errnum,
        const Window *windows,
        size_t n_windows,
        Result *ret) {
        Run *r = calloc(1, sizeof(Run));
        volatile bool keep = false;

        assert_non_null(r);
        *ret = (Result) {};
        r->scenario = s;
        r->errnum = errnum;
        r->windows = windows;
        r->n_windows = n_windows;
        r->next_id = 1000;
        for (size_t i = 0; i < n_points; i++)
                r->points[r->n_points++] = points[i];

        harness_init(&r->h);
        if (s->bind_own)
                snprintf(r->socket_path, sizeof(r->socket_path), "%s/own.sock", r->h.dir);
        else
                snprintf(r->socket_path, sizeof(r->socket_path), "%s", r->h.socket_path);

        if (sigsetjmp(r->fail, 1) == 0) {
                if (s->cluster)
                        cluster_clear(r);
                wgd_start(r);
                if (sigsetjmp(r->end, 1) == 0 && s->run)
                        s->run(r);
                mark(r);
                if (sigsetjmp(r->end, 1) != 0)
                        check(r, ++r->verify_tries < 2, "the checks after the scenario were refused twice");
                verify(r);
                mark(r);
                if (sigsetjmp(r->end, 1) != 0)
                        run_fail(r, "the shutdown took an unexpected turn");
                wgd_stop(r);
        } else
                ret->failed = true;

        run_cleanup(r);

        for (size_t i = 0; i < r->n_procs; i++) {
                ProcLog log;

                read_log(r->procs[i].log_path, &log);
                ret->met = ret->met || log.failed;
                for (size_t k = 0; k < log.n_fail && ret->n_fail < 2; k++)
                        snprintf(ret->fail[ret->n_fail++], sizeof(ret->fail[0]), "%s", log.fail[k]);
                /* The first process of each logical start: what the dry run measures. */
                if (i == 0 || r->procs[i].logical != r->procs[i - 1].logical)
                        ret->logs[ret->n_logs++] = log;
        }

        if (ret->failed && cfg.double_first && s->cluster && ret->n_fail > 0 &&
            !fail_is(ret, cfg.double_first) && !strstr(r->failure, "died") && !any_sanitizer_report(r)) {
                /*
                 * On etcd, where counts can differ from the dry run's: two faults on calls that
                 * no double fault is meant for (two requests that cannot be read, say) are beyond
                 * what the checks can tell apart, and the pair is not judged; unless wgd died or
                 * a sanitizer spoke, which is a finding whatever the calls.
                 */
                ret->failed = false;
                ret->shifted = true;
                if (cfg.verbose)
                        print_run(r, ret, "shifted:");
        } else if (ret->failed) {
                print_run(r, ret, "FAIL");
                for (size_t i = 0; i < r->n_procs; i++)
                        print_stderr(r->procs[i].err_path);
                keep = cfg.keep;
        } else if (cfg.verbose)
                print_run(r, ret, ret->met ? "ok" : "no fault:");
        fflush(stdout);

        if (keep)
                keep_files(r);
        harness_done(&r->h);
        free(r);
}

/* The fault windows, from the dry run's logs: which counted calls of which wgd are the points. */
static size_t windows_from(const Scenario *s, const Result *dry, Window *w) {
        size_t n = 0;

        assert_true(dry->n_logs > 0 && dry->logs[0].has_ready);
        if (s->startup) {
                w[n++] = (Window) { .proc = 0, .lo = 0, .hi = dry->logs[0].ready };
                return n;
        }
        for (size_t p = 0; p < dry->n_logs; p++) {
                const ProcLog *log = &dry->logs[p];
                uint64_t lo = p == 0 ? log->ready : 0;

                assert_true(log->has_exit);
                if (p + 1 < dry->n_logs) {
                        w[n++] = (Window) { .proc = (unsigned) p, .lo = lo, .hi = log->exit };
                        continue;
                }
                /* The last wgd: the scenario, then (after the checks) its shutdown. */
                assert_int_equal(log->n_marks, 2);
                w[n++] = (Window) { .proc = (unsigned) p, .lo = lo, .hi = log->marks[0] };
                w[n++] = (Window) { .proc = (unsigned) p, .lo = log->marks[1], .hi = log->exit };
        }
        return n;
}

static bool fail_is(const Result *res, const char *name) {
        return res->n_fail > 0 && strncmp(res->fail[0], name, strlen(name)) == 0 &&
                res->fail[0][strlen(name)] == ' ';
}

/* A failed send of answers, one (sendmsg) or a batch (sendmmsg): each point runs again with ENOBUFS. */
static bool fail_is_send(const Result *res) {
        return fail_is(res, "sendmsg") || fail_is(res, "sendmmsg");
}

/*
 * Where a failed call was made, as a key: its name and the first return addresses. A site
 * whose failure has a recovery path gets its follow-up faults once, in the first scenario
 * that reaches it.
 */
static bool follow_up_new(const Result *res) {
        char key[160];
        const char *at = strstr(res->fail[0], " at ");
        size_t len = strcspn(res->fail[0], " ");
        unsigned frames = 0;

        if (!at)
                return false;
        snprintf(key, sizeof(key), "%.*s", (int) len, res->fail[0]);
        for (const char *p = at + 3; *p && frames < 5; p++) {
                size_t l = strlen(key);

                if (*p == ' ')
                        frames++;
                if (l < sizeof(key) - 1) {
                        key[l] = *p;
                        key[l + 1] = 0;
                }
        }
        for (size_t i = 0; i < cfg.n_followed; i++)
                if (strcmp(cfg.followed[i], key) == 0)
                        return false;
        if (cfg.n_followed < ELEMENTSOF(cfg.followed))
                snprintf(cfg.followed[cfg.n_followed++], sizeof(cfg.followed[0]), "%s", key);
        return true;
}

static void test_scenario(void **state) {
        const Scenario *s = *state;
        Window windows[WINDOWS_MAX];
        uint64_t sendmsg_points[256], follow_points[64];
        const char *follow_names[64];
        size_t n_windows, n_sendmsg = 0, n_follow = 0;
        unsigned points = 0, enobufs = 0, doubles = 0, failed = 0, unmet = 0, shifted = 0;
        uint64_t total = 0, started = monotonic_usec();
        Result res;

        if (cfg.only_scenario && strcmp(cfg.only_scenario, s->name) != 0)
                return;
#ifdef WG_HAVE_ETCD
        if (s->cluster && !cfg.etcd_up) {
                etcd_cluster_start(&cfg.etcd, 1);
                cfg.etcd_up = true;
        }
#endif

        run_once(s, NULL, 0, 0, NULL, 0, &res);
        if (res.failed)
                fail_msg("scenario %s fails without a fault", s->name);
        n_windows = windows_from(s, &res, windows);
        for (size_t i = 0; i < n_windows; i++)
                total += windows[i].hi - windows[i].lo;

        if (cfg.n_only > 0) {
                run_once(s, cfg.only, cfg.n_only, cfg.only_errno, windows, n_windows, &res);
                if (res.failed)
                        fail_msg("scenario %s fails at N=%" PRIu64, s->name, cfg.only[0]);
                if (!res.met)
                        printf("# %s: N=%" PRIu64 " met no fault (%" PRIu64 " points)\n",
                               s->name,
                               cfg.only[0],
                               total);
                return;
        }

        /* Each point once, until a run past the dry run's count meets no fault. */
        for (uint64_t n = 1;; n++) {
                run_once(s, &n, 1, 0, windows, n_windows, &res);
                if (!res.met) {
                        if (n > total)
                                break;
                        unmet++;
                        continue;
                }
                points++;
                failed += res.failed;
                if (fail_is_send(&res) && n_sendmsg < ELEMENTSOF(sendmsg_points))
                        sendmsg_points[n_sendmsg++] = n;
                if ((fail_is_send(&res) || fail_is(&res, "accept4")) &&
                    n_follow < ELEMENTSOF(follow_points) && follow_up_new(&res)) {
                        follow_names[n_follow] = fail_is(&res, "accept4") ? "accept4" :
                                fail_is(&res, "sendmsg")                  ? "sendmsg" :
                                                                            "sendmmsg";
                        follow_points[n_follow++] = n;
                }
        }

        /* A socket that fails for good, not just full: the client is dropped. */
        for (size_t i = 0; i < n_sendmsg; i++) {
                run_once(s, &sendmsg_points[i], 1, ENOBUFS, windows, n_windows, &res);
                enobufs += res.met;
                failed += res.failed;
        }

        /* The recovery paths: accept4's pause and resume, the queue behind a full socket. */
        for (size_t i = 0; i < n_follow; i++)
                for (uint64_t next = 1; next <= 2; next++) {
                        uint64_t two[2] = { follow_points[i], follow_points[i] + next };

                        cfg.double_first = follow_names[i];
                        run_once(s, two, 2, 0, windows, n_windows, &res);
                        cfg.double_first = NULL;
                        doubles += res.n_fail == 2 && !res.shifted;
                        shifted += res.shifted;
                        failed += res.failed;
                }

        printf("# %s: %u points of %" PRIu64 " counted calls, %u again with ENOBUFS, %u double; %u failing; "
               "%.1f s\n",
               s->name,
               points,
               total,
               enobufs,
               doubles,
               failed,
               (double) (monotonic_usec() - started) / 1e6);
        if (shifted > 0)
                printf("# %s: %u double faults fell on other calls than meant (their counts differ from "
                       "the dry run's)\n",
                       s->name,
                       shifted);
        if (unmet > 0)
                printf("# %s: %u runs met no fault (their counts differ from the dry run's)\n",
                       s->name,
                       unmet);
        fflush(stdout);
        cfg.points_total += points + enobufs + doubles;
        cfg.failures_total += failed;
        if (failed > 0)
                fail_msg("%u failing runs in scenario %s", failed, s->name);
}

static int summary(void **state) {
#ifdef WG_HAVE_ETCD
        if (cfg.etcd_up)
                etcd_cluster_done(&cfg.etcd);
#endif
        printf("# fault injection: %u points exercised in all, %u failing\n",
               cfg.points_total,
               cfg.failures_total);
        return 0;
}

int main(void) {
        struct CMUnitTest tests[ELEMENTSOF(scenarios)];
        size_t n_tests = 0;
        struct rlimit no_core = {};
        const char *e;

        cfg.wgd_fault = getenv("WG_WGD_FAULT");
        if (!cfg.wgd_fault) {
                fprintf(stderr, "WG_WGD_FAULT is not set: run this through meson test.\n");
                return 1;
        }
        cfg.addr2line = getenv("WG_ADDR2LINE");
        if (cfg.addr2line && !*cfg.addr2line)
                cfg.addr2line = NULL;
        cfg.only_scenario = getenv("WG_FAULT_SCENARIO");
        e = getenv("WG_FAULT_N");
        for (char *end; e && *e && cfg.n_only < AT_MAX; e = *end == ',' ? end + 1 : end) {
                cfg.only[cfg.n_only] = strtoull(e, &end, 10);
                if (end == e)
                        break;
                cfg.n_only++;
        }
        e = getenv("WG_FAULT_ERRNO");
        cfg.only_errno = e ? atoi(e) : 0;
        cfg.verbose = getenv("WG_FAULT_VERBOSE") != NULL;
        cfg.keep = getenv("WG_FAULT_KEEP") != NULL;

        /* A crash of wgd is a finding, reported from its stderr: no core files on the way. */
        (void) setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGPIPE, SIG_IGN);

        /*
         * The scenarios of a node on etcd (some 2,000 runs) run only when asked: they are meson
         * test fault-cluster, where wgd has cluster groups; without etcd, that test is skipped.
         */
        cfg.cluster = getenv("WG_FAULT_CLUSTER") != NULL;
        if (cfg.cluster || (cfg.only_scenario && strncmp(cfg.only_scenario, "cluster", 7) == 0)) {
#ifdef WG_HAVE_ETCD
                if (!etcd_binary()) {
                        printf("1..0 # SKIP no etcd (Debian: etcd-server)\n");
                        return 0;
                }
#else
                printf("1..0 # SKIP wgd is built without cluster groups\n");
                return 0;
#endif
        }
        for (size_t i = 0; i < ELEMENTSOF(scenarios); i++)
                if (cfg.only_scenario ? strcmp(scenarios[i].name, cfg.only_scenario) == 0 :
                                        scenarios[i].cluster == cfg.cluster)
                        tests[n_tests++] = (struct CMUnitTest) {
                                .name = scenarios[i].name,
                                .test_func = test_scenario,
                                .initial_state = (void *) &scenarios[i],
                        };
        return _cmocka_run_group_tests("test-fault", tests, n_tests, NULL, summary);
}
