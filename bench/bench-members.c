/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-members: how long after a member dies its waiters wake, through a real wgd, against
 * what a waiter can do today without members: wait with a timeout of its own, and look whether
 * its worker still lives each time the timeout expires.
 *
 * The program starts its own wgd on a socket in a fresh temporary directory and creates one
 * group. Each run is one of these scenarios, all with one waiter: a process forked from us,
 * asleep in wg_wait() on the group's segment (checked in /proc before the clock starts), which
 * stamps CLOCK_MONOTONIC the moment wg_wait() returns.
 *
 *  kill     A member (this program exec'd in its helper mode: wg_join(), then it blocks) is
 *           killed with SIGKILL. Timed from the kill() call to the waiter's return; and, for
 *           information, from the member's death (its pidfd, polled by us, turns readable) to
 *           the waiter's return. wgd does the done: it sees the member's connection close, or
 *           its pidfd, whichever wakes it first. The waiter must get 1 (one abandoned).
 *  held     The same, but the member forked a child after joining, which keeps the member's
 *           connection to wgd open after the member dies: wgd learns of the death from the
 *           member's pidfd alone.
 *  leave    The member leaves on its own, wg_leave(g, 0): a request to wgd, which does the
 *           done. Timed from the member's call to the waiter's return. For comparison: the
 *           path of a member that does not die.
 *  done     We call wg_done() ourselves: the floor, one futex wake between two processes.
 *  poll     What a user has today. The worker is a plain process (no membership), its add done
 *           by us beforehand as `wgctl add` would be; the waiter loops on wg_wait(g, PERIOD)
 *           and, at each timeout, polls the worker's pidfd: once it is dead, it gives up on
 *           it. The worker is killed at a random moment of the waiter's period, so the
 *           latency is spread over the period as it would be for a worker that dies whenever it
 *           dies. Timed from the kill() call to the moment the waiter knows. PERIOD is 100 ms
 *           and, in a full run, 1 s.
 *
 * The scenarios take turns within each repetition, in an order that rotates. Every figure is a
 * median over the runs, with the 90th percentile and the maximum: for a latency the tail is
 * part of the answer. Every process started here gets SIGKILL if we die (PR_SET_PDEATHSIG), wgd
 * included, but the member's child of "held", which exits when its pipe from us closes, as our
 * death closes it too. A report, not a test: a missed target is printed, never an exit status.
 * bench/run-members.sh builds and runs it; the method and the figures are in
 * docs/benchmarks.md.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "wg.h"

/* From the issue: a member's death wakes its waiters within 10 ms on this machine. */
#define TARGET_MSEC 10.0

#define GROUP "bench-members"
#define RUNS_MAX 1000

/* Nothing here takes this long unless something hangs. */
#define PATIENCE_MSEC 20000

/* The helper's fds: where it reports (joined, its leave's time), and where it reads orders. */
#define HELPER_REPORT_FD 3
#define HELPER_ORDER_FD 4

#ifndef BENCH_WGD
#define BENCH_WGD "wgd"
#endif

enum scenario { SC_KILL, SC_KILL_HELD, SC_LEAVE, SC_DONE, SC_POLL_FAST, SC_POLL_SLOW, _SC_MAX };

static const char *const scenario_names[_SC_MAX] = {
        [SC_KILL] = "member SIGKILLed: kill -> waiter returns",
        [SC_KILL_HELD] = "member SIGKILLed, socket held by its child: kill -> returns",
        [SC_LEAVE] = "member leaves: wg_leave() -> waiter returns",
        [SC_DONE] = "wg_done() by a live process -> waiter returns",
        [SC_POLL_FAST] = "today, wg_wait(100 ms) + pidfd poll: kill -> knows",
        [SC_POLL_SLOW] = "today, wg_wait(1 s) + pidfd poll: kill -> knows",
};

static const uint64_t poll_period_usec[_SC_MAX] = {
        [SC_POLL_FAST] = 100000,
        [SC_POLL_SLOW] = 1000000,
};

struct config {
        unsigned runs;      /* of kill, leave and done */
        unsigned fast_runs; /* of poll, 100 ms */
        unsigned slow_runs; /* of poll, 1 s; 0 skips it */
};

static const struct config config_full = { .runs = 50, .fast_runs = 30, .slow_runs = 12 };
static const struct config config_quick = { .runs = 15, .fast_runs = 8, .slow_runs = 0 };

/* What a waiter leaves behind, in memory shared with us. */
struct stamp {
        uint64_t returned_ns; /* CLOCK_MONOTONIC when wg_wait() returned (poll: when it knew) */
        int64_t result;       /* what wg_wait() returned */
};

/* ms, one per run of each scenario. */
struct samples {
        unsigned n;
        double v[RUNS_MAX];
};

static struct samples latency[_SC_MAX];
/* For information, per kind of kill (0: SC_KILL, 1: SC_KILL_HELD). */
static struct samples death_to_wake[2], kill_to_death[2];

static pid_t wgd_pid;
static char tmpdir[256], socket_path[300];

static void add_sample(struct samples *s, double v) {
        if (s->n < RUNS_MAX)
                s->v[s->n++] = v;
}

static void cleanup(void) {
        if (wgd_pid > 0) {
                (void) kill(wgd_pid, SIGTERM);
                (void) waitpid(wgd_pid, NULL, 0);
                wgd_pid = 0;
        }
        if (socket_path[0]) {
                (void) unlink(socket_path);
                /* wgd's lock file beside its socket. */
                (void) strcat(socket_path, ".lock");
                (void) unlink(socket_path);
                socket_path[0] = 0;
        }
        if (tmpdir[0]) {
                (void) rmdir(tmpdir);
                tmpdir[0] = 0;
        }
}

static void on_signal(int sig) {
        /* The children die with us (PR_SET_PDEATHSIG); die() only cleans up. */
        die("signal", sig == SIGINT ? EINTR : ECANCELED);
}

static int pidfd_open(pid_t pid) {
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);

        if (fd < 0)
                die("pidfd_open", errno);
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                die("fcntl", errno);
        return fd;
}

/* Waits up to PATIENCE_MSEC for @fd to be readable: for a pidfd, for its process to die. */
static void wait_readable(int fd, const char *what) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;

        while ((r = poll(&p, 1, PATIENCE_MSEC)) < 0)
                if (errno != EINTR)
                        die("poll", errno);
        if (r == 0)
                die(what, ETIMEDOUT);
}

static void read_all(int fd, void *buf, size_t size, const char *what) {
        ssize_t n;

        wait_readable(fd, what);
        n = read(fd, buf, size);
        if (n < 0)
                die(what, errno);
        if ((size_t) n != size)
                die(what, EPIPE);
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / 1000000),
                               .tv_nsec = (long) (usec % 1000000) * 1000 };

        while (nanosleep(&ts, &ts) < 0)
                if (errno != EINTR)
                        die("nanosleep", errno);
}

/* ---- the helper: a member or a plain worker, exec'd as a worker would be ---- */

/*
 * bench-members --helper member|member-forked|worker: join the group (a member) or not (a
 * worker), say so on HELPER_REPORT_FD, then block on HELPER_ORDER_FD until killed, or told to
 * leave ('l'). A member-forked also forks a child after the join, which inherits the member's
 * connection to wgd and keeps it open after the member dies (as the children of a worker that
 * forks without exec do), until the order pipe closes; its pid follows the 'j'.
 */
static int helper(const char *kind) {
        bool member = strncmp(kind, "member", 6) == 0, forked = strcmp(kind, "member-forked") == 0;
        pid_t child;
        wg *g = NULL;
        uint64_t t0;
        char c = 'j';
        int r;

        bench_init(NULL);
        if (member) {
                r = wg_join(GROUP, 0, &g);
                if (r < 0)
                        die("wg_join", -r);
        }
        if (write(HELPER_REPORT_FD, &c, 1) != 1)
                die("write", errno);
        if (forked) {
                child = fork();
                if (child < 0)
                        die("fork", errno);
                if (child == 0) {
                        /* Until the bench closes the pipe's other end, or dies: then EOF. */
                        while (read(HELPER_ORDER_FD, &c, 1) > 0)
                                ;
                        _exit(EXIT_SUCCESS);
                }
                if (write(HELPER_REPORT_FD, &child, sizeof(child)) != (ssize_t) sizeof(child))
                        die("write", errno);
        }

        if (read(HELPER_ORDER_FD, &c, 1) != 1 || c != 'l' || !member)
                _exit(EXIT_FAILURE);

        t0 = now_ns();
        r = wg_leave(g, 0);
        if (r < 0)
                die("wg_leave", -r);
        if (write(HELPER_REPORT_FD, &t0, sizeof(t0)) != (ssize_t) sizeof(t0))
                die("write", errno);
        _exit(EXIT_SUCCESS);
}

struct helper_proc {
        pid_t pid;
        int report, order;
};

/* Starts the helper and returns once it has joined (or, a worker, started). */
static struct helper_proc helper_start(const char *kind) {
        struct helper_proc h;
        int report[2], order[2];
        char c;

        if (pipe2(report, O_CLOEXEC) < 0 || pipe2(order, O_CLOEXEC) < 0)
                die("pipe2", errno);
        h.pid = fork_child();
        if (h.pid < 0)
                die("fork", -h.pid);
        if (h.pid == 0) {
                /* dup2() clears close-on-exec on the copies: only these two reach the helper. */
                if (dup2(report[1], HELPER_REPORT_FD) < 0 || dup2(order[0], HELPER_ORDER_FD) < 0)
                        die("dup2", errno);
                execl("/proc/self/exe", "bench-members", "--helper", kind, (char *) NULL);
                die("execl /proc/self/exe", errno);
        }
        (void) close(report[1]);
        (void) close(order[0]);
        h.report = report[0];
        h.order = order[1];
        read_all(h.report, &c, 1, "the helper did not start");
        return h;
}

static void helper_close(struct helper_proc *h) {
        (void) close(h->report);
        (void) close(h->order);
}

/* ---- the waiter ---- */

/*
 * Until @pid sleeps in a futex wait (state S, wchan a futex function): a waiter still on its
 * way to bed when the clock starts would be timed for its bedtime, not its wake-up. Where the
 * kernel hides wchan, state S and then 50 ms more.
 */
static void wait_asleep(pid_t pid) {
        uint64_t deadline = now_ns() + (uint64_t) PATIENCE_MSEC * 1000000;
        char buf[512], *p;

        for (;;) {
                proc_read_or_die(pid, "stat", buf, sizeof(buf));
                /* "pid (comm) S ...": comm may hold anything, so look after its last ')'. */
                p = strrchr(buf, ')');
                if (p && p[1] == ' ' && p[2] == 'S') {
                        proc_read_or_die(pid, "wchan", buf, sizeof(buf));
                        if (strstr(buf, "futex"))
                                return;
                        if (buf[0] == 0 || strcmp(buf, "0") == 0) {
                                sleep_usec(50000);
                                return;
                        }
                } else if (p && p[1] == ' ' && p[2] == 'Z')
                        die("the waiter died before it slept", ECHILD);
                if (now_ns() > deadline)
                        die("the waiter does not fall asleep", ETIMEDOUT);
                sleep_usec(500);
        }
}

/*
 * A waiter: wg_wait() forever, or, with @period_usec, in a loop of timeouts that looks at the
 * worker (@worker_pidfd) each time one expires, which is what a script does with `wgctl wait
 * --timeout` and `kill -0`.
 */
static pid_t waiter_start(wg *g, struct stamp *stamp, uint64_t period_usec, int worker_pidfd) {
        pid_t pid;

        stamp->returned_ns = 0;
        stamp->result = 0;
        pid = fork_child();
        if (pid < 0)
                die("fork", -pid);
        if (pid > 0)
                return pid;

        if (period_usec == 0) {
                int r = wg_wait(g, WG_USEC_INFINITY);

                stamp->returned_ns = now_ns();
                stamp->result = r;
                _exit(EXIT_SUCCESS);
        }
        for (;;) {
                struct pollfd p = { .fd = worker_pidfd, .events = POLLIN };
                int r = wg_wait(g, period_usec);

                if (r != -ETIMEDOUT) {
                        /* The worker's done came after all: not what this scenario measures. */
                        stamp->result = r;
                        _exit(EXIT_FAILURE);
                }
                if (poll(&p, 1, 0) > 0) {
                        stamp->returned_ns = now_ns();
                        stamp->result = r;
                        _exit(EXIT_SUCCESS);
                }
        }
}

/* ---- the scenarios ---- */

static double ms_between(uint64_t from, uint64_t to) {
        return to >= from ? (double) (to - from) / 1e6 : -(double) (from - to) / 1e6;
}

static void check_count(wg *g, uint64_t want, const char *when) {
        uint64_t count;
        int r = wg_get_count(g, &count);

        if (r < 0)
                die("wg_get_count", -r);
        if (count != want) {
                fprintf(stderr,
                        "bench-members: %s: the counter is %" PRIu64 ", not %" PRIu64 "\n",
                        when,
                        count,
                        want);
                die(when, EBADMSG);
        }
}

static void expect_result(const struct stamp *stamp, int64_t want, const char *what) {
        if (stamp->result != want) {
                fprintf(stderr,
                        "bench-members: %s: wg_wait() returned %" PRId64 " (%s), not %" PRId64 "\n",
                        what,
                        stamp->result,
                        stamp->result < 0 ? strerror((int) -stamp->result) : "failures",
                        want);
                die(what, EBADMSG);
        }
}

/*
 * A member killed. With @held, its child keeps its connection to wgd open, so that wgd learns of
 * the death from the member's pidfd alone.
 */
static void run_kill(wg *g, struct stamp *stamp, bool held) {
        struct helper_proc h = helper_start(held ? "member-forked" : "member");
        uint64_t t_kill, t_dead;
        pid_t waiter, child = 0;
        int pidfd, status;

        if (held)
                read_all(h.report, &child, sizeof(child), "the member's child did not start");
        check_count(g, 1, "after the join");
        pidfd = pidfd_open(h.pid);
        waiter = waiter_start(g, stamp, 0, -1);
        wait_asleep(waiter);

        t_kill = now_ns();
        if (kill(h.pid, SIGKILL) < 0)
                die("kill", errno);
        wait_readable(pidfd, "the member does not die");
        t_dead = now_ns();

        reap(waiter);
        expect_result(stamp, 1, "a member was killed");
        add_sample(&latency[held ? SC_KILL_HELD : SC_KILL], ms_between(t_kill, stamp->returned_ns));
        add_sample(&death_to_wake[held], ms_between(t_dead, stamp->returned_ns));
        add_sample(&kill_to_death[held], ms_between(t_kill, t_dead));

        if (waitpid(h.pid, &status, 0) < 0)
                die("waitpid", errno);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
                die("the member ended otherwise than by SIGKILL", ECHILD);
        (void) close(pidfd);
        helper_close(&h);
        if (held)
                /* It read EOF on the order pipe, and came to us (PR_SET_CHILD_SUBREAPER). */
                reap(child);
        check_count(g, 0, "after the kill");
}

static void run_leave(wg *g, struct stamp *stamp) {
        struct helper_proc h = helper_start("member");
        uint64_t t_leave;
        pid_t waiter;

        check_count(g, 1, "after the join");
        waiter = waiter_start(g, stamp, 0, -1);
        wait_asleep(waiter);

        if (write(h.order, "l", 1) != 1)
                die("write", errno);
        reap(waiter);
        read_all(h.report, &t_leave, sizeof(t_leave), "the member does not leave");
        expect_result(stamp, 0, "a member left");
        add_sample(&latency[SC_LEAVE], ms_between(t_leave, stamp->returned_ns));

        reap(h.pid);
        helper_close(&h);
        check_count(g, 0, "after the leave");
}

static void run_done(wg *g, struct stamp *stamp) {
        uint64_t t_done;
        pid_t waiter;
        int r;

        r = wg_add(g, 1);
        if (r < 0)
                die("wg_add", -r);
        waiter = waiter_start(g, stamp, 0, -1);
        wait_asleep(waiter);

        t_done = now_ns();
        r = wg_done(g);
        if (r < 0)
                die("wg_done", -r);
        reap(waiter);
        expect_result(stamp, 0, "a plain done");
        add_sample(&latency[SC_DONE], ms_between(t_done, stamp->returned_ns));
}

static void run_poll(wg *g, struct stamp *stamp, enum scenario sc) {
        uint64_t period = poll_period_usec[sc], t_kill;
        struct helper_proc h;
        pid_t waiter;
        int pidfd, r;

        /* The worker's add, as `wgctl add` before starting it; its done never comes. */
        r = wg_add(g, 1);
        if (r < 0)
                die("wg_add", -r);
        h = helper_start("worker");
        pidfd = pidfd_open(h.pid);
        waiter = waiter_start(g, stamp, period, pidfd);
        wait_asleep(waiter);

        /* A worker dies whenever it dies: anywhere in the waiter's period, uniformly. */
        sleep_usec((uint64_t) random() % period);
        t_kill = now_ns();
        if (kill(h.pid, SIGKILL) < 0)
                die("kill", errno);

        reap(waiter);
        add_sample(&latency[sc], ms_between(t_kill, stamp->returned_ns));

        (void) waitpid(h.pid, NULL, 0);
        (void) close(pidfd);
        helper_close(&h);
        /* What the waiter's owner does next: the dead worker's done. */
        r = wg_done(g);
        if (r < 0)
                die("wg_done", -r);
        check_count(g, 0, "after the poll");
}

/* ---- wgd ---- */

static void start_wgd(const char *wgd) {
        char socket_arg[sizeof(socket_path) + 16];
        uint64_t deadline;
        const char *base = getenv("TMPDIR");
        wg *g;
        int r;

        snprintf(tmpdir, sizeof(tmpdir), "%s/bench-members.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
                tmpdir[0] = 0;
                die("mkdtemp", errno);
        }
        snprintf(socket_path, sizeof(socket_path), "%s/wgd.sock", tmpdir);
        snprintf(socket_arg, sizeof(socket_arg), "--socket=%s", socket_path);
        if (setenv("WGD_SOCKET", socket_path, 1) < 0)
                die("setenv", errno);

        wgd_pid = fork_child();
        if (wgd_pid < 0)
                die("fork", -wgd_pid);
        if (wgd_pid == 0) {
                /* Not under systemd: no fdstore, which changes nothing for members that die. */
                (void) unsetenv("NOTIFY_SOCKET");
                (void) unsetenv("LISTEN_FDS");
                execl(wgd, wgd, socket_arg, "--idle-timeout=0", "--log-level=warning", (char *) NULL);
                die(wgd, errno);
        }

        /* It takes a few ms to listen: create the group as soon as it does. */
        deadline = now_ns() + (uint64_t) PATIENCE_MSEC * 1000000;
        while ((r = wg_open(GROUP, WG_CREATE | 0600, &g)) == -ECONNREFUSED || r == -ENOENT) {
                if (now_ns() > deadline)
                        die("wgd does not listen", ETIMEDOUT);
                sleep_usec(2000);
        }
        if (r < 0)
                die("wg_open", -r);
        wg_unref(g);
}

/* ---- the report ---- */

struct summary {
        double median, p90, max, min, mean;
};

static struct summary summarize(const struct samples *s) {
        double v[RUNS_MAX], sum = 0;
        struct summary r = {};
        size_t k;

        if (s->n == 0)
                return r;
        memcpy(v, s->v, sizeof(double) * s->n);
        r.median = median_of(v, s->n);
        /* Nearest rank: the smallest value with at least 90 % of the runs at or below it. */
        k = (size_t) ((9 * (size_t) s->n + 9) / 10);
        r.p90 = v[k - 1];
        r.min = v[0];
        r.max = v[s->n - 1];
        for (unsigned i = 0; i < s->n; i++)
                sum += v[i];
        r.mean = sum / s->n;
        return r;
}

static void print_row(const char *name, const struct samples *s) {
        struct summary r = summarize(s);

        if (s->n == 0)
                return;
        printf("  %-60s %9.3f %9.3f %9.3f %9.3f %9.3f %5u\n",
               name,
               r.median,
               r.p90,
               r.max,
               r.min,
               r.mean,
               s->n);
}

static void help(void) {
        printf("Usage: bench-members [--quick] [--runs N] [--poll-runs N] [--slow-runs N] [--wgd PATH]\n\n"
               "From a member's death to its waiters' return, through a wgd of its own, against a\n"
               "waiter that polls with a timeout of its own.\n\n"
               "  --quick          fewer runs, and no 1 s polling\n"
               "  --runs N         runs of each kill, of leave and of done (default %u)\n"
               "  --poll-runs N    runs of the 100 ms polling waiter (default %u)\n"
               "  --slow-runs N    runs of the 1 s polling waiter (default %u; 0: none)\n"
               "  --wgd PATH       the wgd to start (default: this build's)\n",
               config_full.runs,
               config_full.fast_runs,
               config_full.slow_runs);
}

static unsigned parse_runs(const char *s, unsigned min) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end || v < min || v > RUNS_MAX) {
                fprintf(stderr,
                        "bench-members: '%s' is not a number of runs (%u to %d)\n",
                        s,
                        min,
                        RUNS_MAX);
                exit(2);
        }
        return (unsigned) v;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "quick", no_argument, NULL, 'q' },
                { "runs", required_argument, NULL, 'r' },
                { "poll-runs", required_argument, NULL, 'p' },
                { "slow-runs", required_argument, NULL, 's' },
                { "wgd", required_argument, NULL, 'w' },
                { "helper", required_argument, NULL, 'H' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct config cfg = config_full;
        int runs = -1, fast = -1, slow = -1;
        const char *wgd = BENCH_WGD;
        struct sigaction sa = { .sa_handler = on_signal };
        struct stamp *stamp;
        struct summary kill_summary;
        unsigned max_runs;
        wg *g;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'q':
                        cfg = config_quick;
                        break;
                case 'r':
                        runs = (int) parse_runs(optarg, 1);
                        break;
                case 'p':
                        fast = (int) parse_runs(optarg, 0);
                        break;
                case 's':
                        slow = (int) parse_runs(optarg, 0);
                        break;
                case 'w':
                        wgd = optarg;
                        break;
                case 'H':
                        return helper(optarg);
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        if (runs >= 0)
                cfg.runs = (unsigned) runs;
        if (fast >= 0)
                cfg.fast_runs = (unsigned) fast;
        if (slow >= 0)
                cfg.slow_runs = (unsigned) slow;

        bench_init(cleanup);
        if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
            sigaction(SIGHUP, &sa, NULL) < 0)
                die("sigaction", errno);
        srandom((unsigned) now_ns());

        /* The member's child of SC_KILL_HELD outlives the member: it is then ours to reap. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                die("prctl", errno);
        start_wgd(wgd);
        r = wg_open(GROUP, 0, &g);
        if (r < 0)
                die("wg_open", -r);
        stamp = shared_memory(page_round(sizeof(*stamp)));

        printf("wgd %s on %s; group %s\n", wgd, socket_path, GROUP);
        printf("runs: kill, leave, done %u each; poll every 100 ms %u; every 1 s %u\n",
               cfg.runs,
               cfg.fast_runs,
               cfg.slow_runs);
        fflush(stdout);

        /* A first member, a first waiter: page cache, wgd's first allocations. Not counted. */
        run_kill(g, stamp, false);
        death_to_wake[0].n = kill_to_death[0].n = latency[SC_KILL].n = 0;

        max_runs = cfg.runs;
        if (cfg.fast_runs > max_runs)
                max_runs = cfg.fast_runs;
        if (cfg.slow_runs > max_runs)
                max_runs = cfg.slow_runs;
        for (unsigned run = 0; run < max_runs; run++)
                for (unsigned k = 0; k < _SC_MAX; k++) {
                        enum scenario sc = (enum scenario)((run + k) % _SC_MAX);

                        switch (sc) {
                        case SC_KILL:
                        case SC_KILL_HELD:
                                if (run < cfg.runs)
                                        run_kill(g, stamp, sc == SC_KILL_HELD);
                                break;
                        case SC_LEAVE:
                                if (run < cfg.runs)
                                        run_leave(g, stamp);
                                break;
                        case SC_DONE:
                                if (run < cfg.runs)
                                        run_done(g, stamp);
                                break;
                        case SC_POLL_FAST:
                                if (run < cfg.fast_runs)
                                        run_poll(g, stamp, sc);
                                break;
                        case SC_POLL_SLOW:
                                if (run < cfg.slow_runs)
                                        run_poll(g, stamp, sc);
                                break;
                        default:
                                break;
                        }
                }

        printf("\nms; median, 90th percentile, max, min, mean over the runs\n");
        printf("  %-60s %9s %9s %9s %9s %9s %5s\n", "", "median", "p90", "max", "min", "mean", "runs");
        for (unsigned k = 0; k < _SC_MAX; k++)
                print_row(scenario_names[k], &latency[k]);
        print_row("member SIGKILLed: its death (pidfd) -> waiter returns", &death_to_wake[0]);
        print_row("member SIGKILLed: kill -> its death (pidfd)", &kill_to_death[0]);
        print_row("socket held: its death (pidfd) -> waiter returns", &death_to_wake[1]);
        print_row("socket held: kill -> its death (pidfd)", &kill_to_death[1]);
        for (unsigned k = SC_POLL_FAST; k <= SC_POLL_SLOW; k++)
                if (latency[k].n == 0)
                        printf("  %-60s expected: median %.0f ms, max %.0f ms (half and all of the "
                               "period)\n",
                               scenario_names[k],
                               (double) poll_period_usec[k] / 2e3,
                               (double) poll_period_usec[k] / 1e3);

        printf("\n");
        for (unsigned k = SC_KILL; k <= SC_KILL_HELD; k++) {
                struct summary sm = summarize(&latency[k]);

                printf("target, %s: under %.0f ms: median %.3f, p90 %.3f, max %.3f ms: %s\n",
                       k == SC_KILL ? "killed member" : "killed member, socket held",
                       TARGET_MSEC,
                       sm.median,
                       sm.p90,
                       sm.max,
                       sm.max < TARGET_MSEC         ? "met in every run" :
                               sm.p90 < TARGET_MSEC ? "met at p90, NOT in every run" :
                                                      "NOT met");
        }
        kill_summary = summarize(&latency[SC_KILL]);
        for (unsigned k = SC_POLL_FAST; k <= SC_POLL_SLOW; k++)
                if (latency[k].n > 0)
                        printf("%s: %.0fx the median of a killed member\n",
                               scenario_names[k],
                               summarize(&latency[k]).median / kill_summary.median);

        wg_unref(g);
        r = wg_unlink(GROUP);
        if (r < 0)
                die("wg_unlink", -r);
        cleanup();
        return 0;
}
