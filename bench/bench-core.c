/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-core: libwg's core side by side with what it is built from, in one run.
 *
 *  1. wg_add(g, 1) + wg_done(g) with nobody waiting, against a raw atomic add/sub pair and a CAS
 *     loop pair on a word in a MAP_SHARED memfd page (the memory a segment is), and a SysV semop
 *     +1/-1 pair.
 *  2. With --only-pairs N, nothing but N such pairs: run it under strace -c to see that add and
 *     done make no system call (bench/run-core.sh does).
 *  3. One-way wake latency between two processes, ping-pong on two one-shot events, with wg,
 *     a raw futex and POSIX named semaphores behind the very same loop.
 *  4. One wg_done() waking 100 and 1000 processes asleep in wg_wait(), against a FUTEX_WAKE of
 *     INT_MAX on a shared word.
 *
 * The machine is shared and noisy, so every figure is the median of several runs, and the
 * mechanisms take turns within each repetition so that they all see the same noise. It is a
 * report, not a test: a missed target is printed, never an exit status.
 *
 * This file holds 1 and 2 and the report; 3 and 4 are in bench-wake.c. The method and the
 * figures measured are written down in docs/benchmarks.md.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>

#include "bench-core.h"
#include "wg.h"

/* Targets from the design: the price of libwg over what it is made of. */
#define TARGET_PAIR_VS_ATOMIC 1.20
#define TARGET_WAKE_VS_FUTEX 1.10

struct config {
        unsigned pair_runs;
        uint64_t pair_iterations;
        uint64_t semop_iterations;
        unsigned pingpong_runs;
        unsigned pingpong_warmup;
        unsigned pingpong_rounds;
        unsigned fanout_runs[2]; /* for 100 and for 1000 waiters */
};

/*
 * Many short ping-pong runs rather than a few long ones: cross-CPU wakes drift by tens of percent
 * over seconds on a shared (virtual) machine, and the median of many interleaved runs sees the
 * same drift for every mechanism. A full run takes 15 to 20 seconds on two CPUs.
 */
static const struct config config_full = {
        .pair_runs = 7,
        .pair_iterations = 5000000,
        .semop_iterations = 200000,
        .pingpong_runs = 25,
        .pingpong_warmup = 200,
        .pingpong_rounds = 2000,
        .fanout_runs = { 7, 5 },
};

static const struct config config_quick = {
        .pair_runs = 3,
        .pair_iterations = 1000000,
        .semop_iterations = 20000,
        .pingpong_runs = 5,
        .pingpong_warmup = 100,
        .pingpong_rounds = 1000,
        .fanout_runs = { 3, 3 },
};

static const unsigned fanout_sizes[2] = { 100, 1000 };

/* ---- 1. add + done with nobody waiting ---- */

/* A SysV semaphore set outlives the process unless removed, so dying removes it too. */
static int sysv_semid = -1;

static void remove_sysv_sem(void) {
        if (sysv_semid >= 0)
                (void) semctl(sysv_semid, 0, IPC_RMID);
        sysv_semid = -1;
}

/* Per pair, in ns. The results are checked, as any caller would, and that keeps the calls. */
static double pairs_wg(wg *g, uint64_t n) {
        uint64_t t0 = now_ns();

        for (uint64_t i = 0; i < n; i++) {
                check_wg("wg_add", wg_add(g, 1));
                check_wg("wg_done", wg_done(g));
        }
        return (double) (now_ns() - t0) / (double) n;
}

/* The same, but without wg_done()'s hop through the PLT to wg_add(). */
static double pairs_wg_add(wg *g, uint64_t n) {
        uint64_t t0 = now_ns();

        for (uint64_t i = 0; i < n; i++) {
                check_wg("wg_add", wg_add(g, 1));
                check_wg("wg_add", wg_add(g, -1));
        }
        return (double) (now_ns() - t0) / (double) n;
}

static double pairs_atomic(uint64_t *word, uint64_t n) {
        uint64_t t0 = now_ns(), sum = 0;

        /*
         * Using what the atomics return keeps them lock xadd (rather than lock add) and checks
         * them, like the wg loop does; atomics on shared memory are never optimised away.
         */
        for (uint64_t i = 0; i < n; i++) {
                sum += __atomic_fetch_add(word, 1, __ATOMIC_ACQ_REL);
                sum += __atomic_fetch_sub(word, 1, __ATOMIC_ACQ_REL);
        }
        if (sum != n)
                die("atomic pair", EPROTO);
        return (double) (now_ns() - t0) / (double) n;
}

static inline uint64_t cas_add(uint64_t *word, uint64_t delta) {
        uint64_t s = __atomic_load_n(word, __ATOMIC_RELAXED);

        while (!__atomic_compare_exchange_n(word, &s, s + delta, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                ;
        return s;
}

/* What wg_add() does at heart, inline and without its checks: how much of the gap is CAS. */
static double pairs_cas(uint64_t *word, uint64_t n) {
        uint64_t t0 = now_ns(), sum = 0;

        for (uint64_t i = 0; i < n; i++) {
                sum += cas_add(word, 1);
                sum += cas_add(word, (uint64_t) -1);
        }
        if (sum != n)
                die("cas pair", EPROTO);
        return (double) (now_ns() - t0) / (double) n;
}

static double pairs_semop(int semid, uint64_t n) {
        struct sembuf up = { .sem_num = 0, .sem_op = 1 }, down = { .sem_num = 0, .sem_op = -1 };
        uint64_t t0 = now_ns();

        for (uint64_t i = 0; i < n; i++) {
                if (semop(semid, &up, 1) < 0)
                        die("semop +1", errno);
                if (semop(semid, &down, 1) < 0)
                        die("semop -1", errno);
        }
        return (double) (now_ns() - t0) / (double) n;
}

enum { PAIR_WG, PAIR_WG_ADD, PAIR_ATOMIC, PAIR_CAS, PAIR_SEMOP, _PAIR_MAX };

static double pairs_one(int which, wg *g, uint64_t *word, uint64_t n, uint64_t n_semop) {
        switch (which) {
        case PAIR_WG:
                return pairs_wg(g, n);
        case PAIR_WG_ADD:
                return pairs_wg_add(g, n);
        case PAIR_ATOMIC:
                return pairs_atomic(word, n);
        case PAIR_CAS:
                return pairs_cas(word, n);
        case PAIR_SEMOP:
                return pairs_semop(sysv_semid, n_semop);
        default:
                abort();
        }
}

static void bench_pairs(const struct config *c, struct series s[_PAIR_MAX]) {
        uint64_t *word;
        void *page;
        wg *g;

        check_wg("wg_new", wg_new(&g));
        page = shared_memory(page_round(1));
        /* The same offset as libwg's state word: alone on its cache line. */
        word = (uint64_t *) ((uint8_t *) page + 64);
        sysv_semid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
        if (sysv_semid < 0)
                die("semget", errno);

        /* Warm up: fault the pages in, resolve the PLT, let the CPU clock up. */
        for (int k = 0; k < _PAIR_MAX; k++)
                (void) pairs_one(k, g, word, c->pair_iterations / 4, c->semop_iterations / 4);

        for (unsigned run = 0; run < c->pair_runs; run++)
                /* A different one goes first in each run, so none always gets the cold turn. */
                for (unsigned k = 0; k < _PAIR_MAX; k++) {
                        int which = (int) ((run + k) % _PAIR_MAX);

                        series_add(
                                &s[which],
                                pairs_one(which, g, word, c->pair_iterations, c->semop_iterations));
                }

        if (semctl(sysv_semid, 0, IPC_RMID) < 0)
                die("semctl IPC_RMID", errno);
        sysv_semid = -1;
        shared_memory_free(page, page_round(1));
        (void) wg_unref(g);
}

static int only_pairs(uint64_t n) {
        wg *g;

        check_wg("wg_new", wg_new(&g));
        (void) pairs_wg(g, n);
        (void) wg_unref(g);
        return EXIT_SUCCESS;
}

/* ---- report ---- */

static void row(const char *op, const char *peer, double w, double p, double target) {
        double ratio = w / p;
        char t[16] = "-", met[8] = "-";

        if (target > 0) {
                (void) snprintf(t, sizeof(t), "<= %.2fx", target);
                (void) snprintf(met, sizeof(met), "%s", ratio <= target ? "yes" : "NO");
        }
        printf("%-36s %10.3f  %-16s %10.3f %7.2fx  %-8s  %s\n", op, w, peer, p, ratio, t, met);
}

static void fanout_report(unsigned n, const struct fanout_result res[2], bool table) {
        const struct fanout_result *w = &res[KIND_WG], *f = &res[KIND_FUTEX];
        char s[64];

        if (w->error != 0 || f->error != 0) {
                printf("wake %u waiters: skipped, fork: %s\n",
                       n,
                       strerror(w->error != 0 ? w->error : f->error));
                return;
        }
        if (table) {
                (void) snprintf(s, sizeof(s), "wake %u waiters, last (us)", n);
                row(s, kind_name[KIND_FUTEX], series_median(&w->last), series_median(&f->last), 0);
                (void) snprintf(s, sizeof(s), "wake %u waiters, median (us)", n);
                row(s, kind_name[KIND_FUTEX], series_median(&w->median), series_median(&f->median), 0);
                return;
        }
        for (unsigned k = 0; k < 2; k++) {
                (void) snprintf(s, sizeof(s), "%u waiters, %s: last", n, kind_name[k]);
                series_print(s, "us", &res[k].last);
                (void) snprintf(s, sizeof(s), "%u waiters, %s: median", n, kind_name[k]);
                series_print(s, "us", &res[k].median);
                (void) snprintf(s, sizeof(s), "%u waiters, %s: waker's call", n, kind_name[k]);
                series_print(s, "us", &res[k].release);
        }
}

static void help(void) {
        printf("Usage: bench-core [--quick] [--only-pairs N]\n"
               "\n"
               "Measure libwg's add/done, wake latency and wake fan-out against raw atomics,\n"
               "futexes and semaphores, and print medians and ratios (see docs/benchmarks.md).\n"
               "\n"
               "  --quick          fewer and shorter runs\n"
               "  --only-pairs N   only N wg_add(1) + wg_done() pairs and exit, for strace -c\n"
               "  --help           this text\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "quick", no_argument, NULL, 'q' },
                { "only-pairs", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const char *const pair_name[_PAIR_MAX] = {
                [PAIR_WG] = "pair, wg_add(1) + wg_done()",
                [PAIR_WG_ADD] = "pair, wg_add(1) + wg_add(-1)",
                [PAIR_ATOMIC] = "pair, atomic fetch_add + fetch_sub",
                [PAIR_CAS] = "pair, CAS loop +1, -1 (inline)",
                [PAIR_SEMOP] = "pair, SysV semop +1, -1",
        };
        const struct config *c = &config_full;
        struct series pairs[_PAIR_MAX] = {}, pp[_PLACE_MAX][_KIND_MAX] = {},
                      empty[_PLACE_MAX][_KIND_MAX] = {};
        struct fanout_result fan[2][2] = {};
        unsigned n_places;
        uint64_t t_start;
        double wg_pair;
        int opt;

        bench_init(remove_sysv_sem);
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 'q':
                        c = &config_quick;
                        break;
                case 'p': {
                        unsigned long long n;
                        char *end;

                        errno = 0;
                        n = strtoull(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end != 0 || n == 0) {
                                fprintf(stderr, "bench-core: bad iteration count '%s'\n", optarg);
                                return EXIT_FAILURE;
                        }
                        return only_pairs(n);
                }
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                default:
                        return EXIT_FAILURE;
                }
        if (optind < argc) {
                fprintf(stderr, "bench-core: unexpected argument '%s'\n", argv[optind]);
                return EXIT_FAILURE;
        }

        t_start = now_ns();
        printf("bench-core: %s run; every figure is the median of several runs\n",
               c == &config_quick ? "quick" : "full");
        printf("  pairs: %u runs of %" PRIu64 " pairs (semop: %" PRIu64 "); ns per pair of operations\n",
               c->pair_runs,
               c->pair_iterations,
               c->semop_iterations);
        printf("  ping-pong: %u runs of %u round trips (after %u warm-up); one-way = round trip / 2\n",
               c->pingpong_runs,
               c->pingpong_rounds,
               c->pingpong_warmup);
        printf("  wake fan-out: 100 waiters x %u runs, 1000 waiters x %u runs\n\n",
               c->fanout_runs[0],
               c->fanout_runs[1]);

        bench_pairs(c, pairs);
        n_places = bench_pingpong(c->pingpong_runs, c->pingpong_warmup, c->pingpong_rounds, pp, empty);
        for (unsigned i = 0; i < ELEMENTSOF(fanout_sizes); i++)
                bench_fanout(fanout_sizes[i], c->fanout_runs[i], fan[i]);

        printf("Over the runs:\n");
        for (unsigned k = 0; k < _PAIR_MAX; k++)
                series_print(pair_name[k], "ns", &pairs[k]);
        for (unsigned place = 0; place < n_places; place++)
                for (unsigned k = 0; k < _KIND_MAX; k++) {
                        char s[64];

                        (void) snprintf(
                                s, sizeof(s), "one-way wake, %s, %s", place_name[place], kind_name[k]);
                        series_print(s, "us", &pp[place][k]);
                }
        for (unsigned place = 0; place < n_places; place++)
                for (unsigned k = KIND_FUTEX; k <= KIND_FUTEX_TIMED; k++) {
                        char s[64];

                        (void) snprintf(
                                s, sizeof(s), "empty FUTEX_WAKEs, %s, %s", place_name[place], kind_name[k]);
                        series_print(s, "/rt", &empty[place][k]);
                }
        for (unsigned i = 0; i < ELEMENTSOF(fanout_sizes); i++)
                fanout_report(fanout_sizes[i], fan[i], false);

        printf("\n%-36s %10s  %-16s %10s %8s  %-8s  %s\n",
               "operation (medians)",
               "wg",
               "peer",
               "peer",
               "ratio",
               "target",
               "met?");
        wg_pair = series_median(&pairs[PAIR_WG]);
        row("add+done pair, no waiter (ns)",
            "atomic xadd",
            wg_pair,
            series_median(&pairs[PAIR_ATOMIC]),
            TARGET_PAIR_VS_ATOMIC);
        row("add+done pair, no waiter (ns)", "inline CAS loop", wg_pair, series_median(&pairs[PAIR_CAS]), 0);
        row("add+done pair, no waiter (ns)", "SysV semop", wg_pair, series_median(&pairs[PAIR_SEMOP]), 0);
        row("add(1)+add(-1) pair, no waiter (ns)",
            "atomic xadd",
            series_median(&pairs[PAIR_WG_ADD]),
            series_median(&pairs[PAIR_ATOMIC]),
            0);
        for (unsigned place = 0; place < n_places; place++) {
                double w = series_median(&pp[place][KIND_WG]);
                char s[64];

                (void) snprintf(s, sizeof(s), "one-way wake, %s (us)", place_name[place]);
                row(s,
                    kind_name[KIND_FUTEX],
                    w,
                    series_median(&pp[place][KIND_FUTEX]),
                    TARGET_WAKE_VS_FUTEX);
                row(s, kind_name[KIND_FUTEX_TIMED], w, series_median(&pp[place][KIND_FUTEX_TIMED]), 0);
                row(s, kind_name[KIND_SEM], w, series_median(&pp[place][KIND_SEM]), 0);
        }
        if (n_places < _PLACE_MAX)
                printf("one-way wake, two CPUs: skipped, only one CPU to run on\n");
        for (unsigned i = 0; i < ELEMENTSOF(fanout_sizes); i++)
                fanout_report(fanout_sizes[i], fan[i], true);

        printf("\nbench-core: done in %.1f s\n", (double) (now_ns() - t_start) / 1e9);
        return EXIT_SUCCESS;
}
