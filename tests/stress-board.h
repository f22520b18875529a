/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The board of the stress test: one shared page (a memfd that test-stress maps and passes to
 * every wg-helper it starts) where the coordinator and the helpers leave what the others need
 * to check each release, and count what happened. Every field is accessed with __atomic
 * builtins only.
 *
 * The rounds: worker i stores arrived[i] = r + 1 before its done(work) of round r, so that the
 * coordinator, released by work's generation, must find every worker arrived (else it was
 * released prematurely). The coordinator stores opened = r + 1 before the done that opens gate
 * r % 2, so that a worker released by that gate must find it (else premature), and
 * gate_done = r + 1 once that done returned: a worker that saw gate_done >= r + 1 before it
 * began to wait on the gate must be let through at once (else its release was lost).
 */

#include <stdint.h>

#define STRESS_MAX_WORKERS 8

/* The pause of a churner between two add/done pairs, and of a watcher that found no work. */
#define STRESS_PAUSE_USEC 20

struct stress_board {
        uint64_t stop;      /* the coordinator's last round is on: finish */
        uint64_t opened;    /* rounds whose gate is open, stored before the done that opens it */
        uint64_t gate_done; /* the same, stored after that done returned */
        uint64_t arrived[STRESS_MAX_WORKERS];
        uint64_t started; /* helpers ready, their signal handler installed: none is signalled before */

        /* Tallies, added to by everybody. */
        uint64_t waits;        /* wg_wait() calls */
        uint64_t timed_waits;  /* of which with a finite timeout */
        uint64_t timeouts;     /* -ETIMEDOUT returns */
        uint64_t interrupted;  /* -EINTR returns */
        uint64_t signals;      /* signal handler runs */
        uint64_t churns;       /* add/done pairs of the churners */
        uint64_t lost_wakeups; /* waiters not released although their generation ended */
        uint64_t premature;    /* waiters released before their generation ended */
        uint64_t errors;       /* any other unexpected result */
};

static inline void stress_count(uint64_t *counter) {
        __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}
