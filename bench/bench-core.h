/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What bench-core.c (pairs, report) needs from bench-wake.c (the benchmarks that sleep). */

#include "bench-util.h"
#include "macro.h"

/*
 * The mechanisms behind the wake benchmarks. The timed futex sleeps as wg_wait() does, to tell
 * the price of its timer from the rest; the fan-out runs only the first two.
 */
enum kind { KIND_WG, KIND_FUTEX, KIND_FUTEX_TIMED, KIND_SEM, _KIND_MAX };
extern const char *const kind_name[_KIND_MAX];

/* Where the two processes of a ping-pong run. */
enum { PLACE_SAME_CPU, PLACE_TWO_CPUS, _PLACE_MAX };
extern const char *const place_name[_PLACE_MAX];

/*
 * @runs runs of @rounds round trips (after @warmup), of each mechanism, in each placement: the
 * one-way latency in µs in @s, and for the futexes, the FUTEX_WAKEs per round trip that found
 * nobody asleep in @empty. Returns how many placements were measured: two CPUs need two CPUs.
 */
unsigned bench_pingpong(
        unsigned runs,
        unsigned warmup,
        unsigned rounds,
        struct series s[][_KIND_MAX],
        struct series empty[][_KIND_MAX]);

struct fanout_result {
        int error;             /* if non-zero, fork() failed with it: no figures */
        struct series last;    /* µs from the release to the return of the last waiter */
        struct series median;  /* µs from the release to the return of the median waiter */
        struct series release; /* µs the waker spent in its wg_done() or FUTEX_WAKE */
};

/* @runs runs of @n waiters released at once: res[KIND_WG] and res[KIND_FUTEX]. */
void bench_fanout(unsigned n, unsigned runs, struct fanout_result res[2]);

static inline void check_wg(const char *what, int r) {
        if (_unlikely_(r < 0))
                die(what, -r);
}
