/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The benchmarks of bench-core that sleep: one-way wake latency between two processes, and one
 * wake releasing many. wg and its peers (a raw futex; for the ping-pong also a raw futex that
 * sleeps with wg's timer, and POSIX named semaphores) run behind the very same code, so that
 * what differs between their figures is the mechanism.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-core.h"
#include "wg.h"

const char *const kind_name[_KIND_MAX] = {
        [KIND_WG] = "wg",
        [KIND_FUTEX] = "raw futex",
        [KIND_FUTEX_TIMED] = "raw futex, timed",
        [KIND_SEM] = "POSIX named sem",
};

/* ---- one-way wake latency: ping-pong ---- */

/*
 * Two one-shot events, 0 (A) and 1 (B), behind one interface, so that all mechanisms run the
 * very same loop: post() fires an event, wait() returns once it fired, rearm() makes it
 * fire-able again. For wg, an event is a group of count 1: done, wait, add 1.
 */
struct events {
        enum kind kind;
        wg *g[2];
        uint32_t *word;        /* word[0], word[1], for the futexes, on one shared page */
        uint64_t *empty_wakes; /* on that page too: FUTEX_WAKEs that found nobody asleep */
        sem_t *sem[2];
};

static void events_post(struct events *e, int i) {
        switch (e->kind) {
        case KIND_WG:
                check_wg("wg_done", wg_done(e->g[i]));
                break;
        case KIND_FUTEX:
        case KIND_FUTEX_TIMED:
                /*
                 * Always a FUTEX_WAKE, as a bare futex does; wg and glibc's semaphores skip it
                 * when nobody has said it sleeps. Count the ones in vain, to show what that saves.
                 */
                if (futex_set_and_wake(&e->word[i]) == 0)
                        (void) __atomic_fetch_add(e->empty_wakes, 1, __ATOMIC_RELAXED);
                break;
        case KIND_SEM:
                if (sem_post(e->sem[i]) < 0)
                        die("sem_post", errno);
                break;
        default:
                abort();
        }
}

static void events_wait(struct events *e, int i) {
        switch (e->kind) {
        case KIND_WG:
                check_wg("wg_wait", wg_wait(e->g[i], WG_USEC_INFINITY));
                break;
        case KIND_FUTEX:
        case KIND_FUTEX_TIMED:
                futex_wait_nonzero(&e->word[i], e->kind == KIND_FUTEX_TIMED);
                break;
        case KIND_SEM:
                while (sem_wait(e->sem[i]) < 0)
                        if (errno != EINTR)
                                die("sem_wait", errno);
                break;
        default:
                abort();
        }
}

static void events_rearm(struct events *e, int i) {
        switch (e->kind) {
        case KIND_WG:
                check_wg("wg_add", wg_add(e->g[i], 1));
                break;
        case KIND_FUTEX:
        case KIND_FUTEX_TIMED:
                /* Ordered before the post() that follows it by that post's release. */
                __atomic_store_n(&e->word[i], 0, __ATOMIC_RELAXED);
                break;
        case KIND_SEM:
                break; /* sem_wait() consumed the post */
        default:
                abort();
        }
}

static void events_new(struct events *e, enum kind kind) {
        *e = (struct events) { .kind = kind };

        if (kind == KIND_FUTEX || kind == KIND_FUTEX_TIMED) {
                e->word = shared_memory(page_round(1));
                /* Its own cache line, away from the futex words. */
                e->empty_wakes = (uint64_t *) ((uint8_t *) e->word + 64);
        }
        for (int i = 0; i < 2; i++) {
                char name[64];

                switch (kind) {
                case KIND_WG:
                        check_wg("wg_new", wg_new(&e->g[i]));
                        check_wg("wg_add", wg_add(e->g[i], 1));
                        break;
                case KIND_FUTEX:
                case KIND_FUTEX_TIMED:
                        break;
                case KIND_SEM:
                        (void) snprintf(name, sizeof(name), "/bench-core-%d-%d", (int) getpid(), i);
                        e->sem[i] = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
                        if (e->sem[i] == SEM_FAILED)
                                die("sem_open", errno);
                        /* Both processes keep it mapped across fork(); the name is not needed. */
                        if (sem_unlink(name) < 0)
                                die("sem_unlink", errno);
                        break;
                default:
                        abort();
                }
        }
}

/* In the child: handles of its own, from the fds, as an unrelated process would get them. */
static void events_attach(struct events *e) {
        if (e->kind != KIND_WG)
                return; /* the mappings fork() copied are shared ones */
        for (int i = 0; i < 2; i++) {
                wg *g;

                check_wg("wg_from_fd", wg_from_fd(wg_fd(e->g[i]), &g));
                (void) wg_unref(e->g[i]);
                e->g[i] = g;
        }
}

static void events_free(struct events *e) {
        if (e->word)
                shared_memory_free(e->word, page_round(1));
        for (int i = 0; i < 2; i++) {
                e->g[i] = wg_unref(e->g[i]);
                if (e->sem[i] && sem_close(e->sem[i]) < 0)
                        die("sem_close", errno);
        }
}

static void pin_to(int cpu) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
                die("sched_setaffinity", errno);
}

/*
 * One-way latency in µs: each round is post A -> (child) wait A, rearm A, post B -> wait B.
 * Parent and child are pinned, to one CPU or to two: left to the scheduler, the pair hops
 * between both placements and the runs split into two clusters several times apart. For the
 * futexes, *ret_empty is the number of FUTEX_WAKEs per round trip that found nobody asleep.
 */
static double pingpong(
        enum kind kind, int cpu_parent, int cpu_child, unsigned warmup, unsigned rounds, double *ret_empty) {
        struct events e;
        uint64_t t0 = 0, t1;
        pid_t pid;

        events_new(&e, kind);
        pin_to(cpu_parent);

        pid = fork_child();
        if (pid < 0)
                die("fork", (int) -pid);
        if (pid == 0) {
                pin_to(cpu_child);
                events_attach(&e);
                for (unsigned i = 0; i < warmup + rounds; i++) {
                        events_wait(&e, 0);
                        events_rearm(&e, 0);
                        events_post(&e, 1);
                }
                _exit(EXIT_SUCCESS);
        }

        for (unsigned i = 0; i < warmup + rounds; i++) {
                if (i == warmup)
                        t0 = now_ns();
                events_post(&e, 0);
                events_wait(&e, 1);
                events_rearm(&e, 1);
        }
        t1 = now_ns();

        reap(pid);
        *ret_empty = e.empty_wakes ? (double) *e.empty_wakes / (warmup + rounds) : 0;
        events_free(&e);
        return (double) (t1 - t0) / rounds / 2 / 1000;
}

const char *const place_name[_PLACE_MAX] = {
        [PLACE_SAME_CPU] = "same CPU",
        [PLACE_TWO_CPUS] = "two CPUs",
};

unsigned bench_pingpong(
        unsigned runs,
        unsigned warmup,
        unsigned rounds,
        struct series s[][_KIND_MAX],
        struct series empty[][_KIND_MAX]) {
        int cpus[2] = { -1, -1 };
        unsigned n_cpus = 0, n_places;
        cpu_set_t saved;

        if (sched_getaffinity(0, sizeof(saved), &saved) < 0)
                die("sched_getaffinity", errno);
        for (int cpu = 0; cpu < CPU_SETSIZE && n_cpus < 2; cpu++)
                if (CPU_ISSET(cpu, &saved))
                        cpus[n_cpus++] = cpu;
        n_places = n_cpus >= 2 ? _PLACE_MAX : 1;

        for (unsigned run = 0; run < runs; run++)
                for (unsigned place = 0; place < n_places; place++)
                        for (unsigned k = 0; k < _KIND_MAX; k++) {
                                enum kind kind = (run + k) % _KIND_MAX;
                                int cpu_child = place == PLACE_SAME_CPU ? cpus[0] : cpus[1];
                                double e;

                                series_add(
                                        &s[place][kind],
                                        pingpong(kind, cpus[0], cpu_child, warmup, rounds, &e));
                                series_add(&empty[place][kind], e);
                        }

        if (sched_setaffinity(0, sizeof(saved), &saved) < 0)
                die("sched_setaffinity", errno);
        return n_places;
}

/* ---- one wake, many waiters ---- */

/*
 * Whether @pid sleeps in a futex wait: 1 yes, 0 not yet, -ENODATA if it sleeps but the kernel
 * hides wchan (no kallsyms), so that only the state says it sleeps.
 */
static int sleeps_in_futex(pid_t pid) {
        char buf[512], *p;

        proc_read_or_die(pid, "stat", buf, sizeof(buf));
        /* "pid (comm) S ...": comm may hold anything, so look after its last ')'. */
        p = strrchr(buf, ')');
        if (!p || p[1] != ' ' || p[2] != 'S')
                return 0;

        proc_read_or_die(pid, "wchan", buf, sizeof(buf));
        if (strstr(buf, "futex"))
                return 1;
        if (buf[0] == 0 || strcmp(buf, "0") == 0)
                return -ENODATA;
        return 0;
}

/* A waiter gone before it was let go failed; reap() tells how. */
static bool a_child_exited(void) {
        siginfo_t si = {};

        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                die("waitid", errno);
        return si.si_pid != 0;
}

static void poll_sleep(uint64_t deadline, const char *what) {
        if (now_ns() > deadline)
                die(what, ETIMEDOUT);
        if (usleep(1000) < 0 && errno != EINTR)
                die("usleep", errno);
}

/* Until every waiter sleeps in the kernel: a waiter that is late to bed is no wake latency. */
static void wait_all_asleep(const pid_t *pids, unsigned n) {
        uint64_t deadline = now_ns() + UINT64_C(60000000000);
        bool hidden = false;

        /* Once asleep a waiter stays asleep until we release it: look at each until it is. */
        for (unsigned i = 0; i < n;) {
                int r = sleeps_in_futex(pids[i]);

                if (r == -ENODATA)
                        hidden = true;
                if (r != 0)
                        i++;
                else if (a_child_exited())
                        return;
                else
                        poll_sleep(deadline, "waiters do not fall asleep");
        }

        /* Without wchan, 'S' might be a sleep on the way to the futex: give them time to get there. */
        if (hidden && usleep(100000) < 0 && errno != EINTR)
                die("usleep", errno);
}

static void wait_all_stamped(const uint64_t *stamps, unsigned n) {
        uint64_t deadline = now_ns() + UINT64_C(60000000000);

        for (unsigned i = 0; i < n;)
                if (__atomic_load_n(&stamps[i], __ATOMIC_ACQUIRE) != 0)
                        i++;
                else if (a_child_exited())
                        return;
                else
                        poll_sleep(deadline, "waiters do not return");
}

static _Noreturn void
fanout_child(enum kind kind, wg *g, uint32_t *word, uint64_t *stamp, int ready_fd, int gate_fd) {
        char c = 1;

        if (write(ready_fd, &c, 1) != 1)
                die("write", errno);
        /* So that the parent sees EOF, rather than waiting forever, if a waiter dies early. */
        if (close(ready_fd) < 0)
                die("close", errno);

        if (kind == KIND_WG)
                check_wg("wg_wait", wg_wait(g, WG_USEC_INFINITY));
        else
                futex_wait_nonzero(word, false);
        __atomic_store_n(stamp, now_ns(), __ATOMIC_RELEASE);

        /*
         * Stay until every waiter has returned: exiting tears down an address space, which would
         * take the CPU from the waiters still to run and count as their wake latency.
         */
        while (read(gate_fd, &c, 1) < 0)
                if (errno != EINTR)
                        die("read", errno);
        _exit(EXIT_SUCCESS);
}

/*
 * @n processes sleep on one group of count 1 (or one futex word); one wg_done() (or store and
 * FUTEX_WAKE of INT_MAX) releases them all; each writes down when its wait returned.
 */
static void fanout(enum kind kind, unsigned n, struct fanout_result *res) {
        size_t stamps_size = page_round(n * sizeof(uint64_t));
        unsigned started = 0, ready = 0;
        uint64_t *stamps, t0, t1;
        uint32_t *word = NULL;
        int ready_pipe[2], gate_pipe[2], error = 0;
        double *lat;
        pid_t *pids;
        wg *g = NULL;

        pids = calloc(n, sizeof(pid_t));
        lat = calloc(n, sizeof(double));
        if (!pids || !lat)
                die("calloc", ENOMEM);
        stamps = shared_memory(stamps_size);
        if (kind == KIND_WG) {
                check_wg("wg_new", wg_new(&g));
                check_wg("wg_add", wg_add(g, 1));
        } else
                word = shared_memory(page_round(1));
        if (pipe2(ready_pipe, O_CLOEXEC) < 0 || pipe2(gate_pipe, O_CLOEXEC) < 0)
                die("pipe2", errno);

        for (; started < n; started++) {
                pid_t pid = fork_child();

                if (pid < 0) {
                        /* Out of processes is a result too: release those we have, report it. */
                        error = (int) -pid;
                        break;
                }
                if (pid == 0) {
                        if (close(ready_pipe[0]) < 0 || close(gate_pipe[1]) < 0)
                                die("close", errno);
                        fanout_child(kind, g, word, &stamps[started], ready_pipe[1], gate_pipe[0]);
                }
                pids[started] = pid;
        }
        if (close(ready_pipe[1]) < 0 || close(gate_pipe[0]) < 0)
                die("close", errno);

        while (ready < started) {
                char buf[256];
                ssize_t k = read(ready_pipe[0], buf, sizeof(buf));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        die("read", errno);
                if (k == 0)
                        break; /* a waiter died before it was ready: reap() reports it */
                ready += (unsigned) k;
        }
        if (close(ready_pipe[0]) < 0)
                die("close", errno);
        if (ready == started)
                wait_all_asleep(pids, started);

        t0 = now_ns();
        if (kind == KIND_WG)
                check_wg("wg_done", wg_done(g));
        else
                futex_set_and_wake(word);
        t1 = now_ns();

        wait_all_stamped(stamps, started);
        if (close(gate_pipe[1]) < 0)
                die("close", errno);
        for (unsigned i = 0; i < started; i++)
                reap(pids[i]);

        if (error != 0)
                res->error = error;
        else {
                for (unsigned i = 0; i < n; i++) {
                        /* A wait that returned before the release would be a libwg bug. */
                        if (stamps[i] < t0)
                                die("a waiter returned before the release", EPROTO);
                        lat[i] = (double) (stamps[i] - t0) / 1000;
                }
                series_add(&res->median, median_of(lat, n));
                series_add(&res->last, lat[n - 1]);
                series_add(&res->release, (double) (t1 - t0) / 1000);
        }

        if (word)
                shared_memory_free(word, page_round(1));
        (void) wg_unref(g);
        shared_memory_free(stamps, stamps_size);
        free(lat);
        free(pids);
}

void bench_fanout(unsigned n, unsigned runs, struct fanout_result res[2]) {
        for (unsigned run = 0; run < runs; run++)
                for (unsigned k = 0; k < 2; k++) {
                        enum kind kind = (run + k) % 2 == 0 ? KIND_WG : KIND_FUTEX;

                        if (res[kind].error == 0)
                                fanout(kind, n, &res[kind]);
                }
}
