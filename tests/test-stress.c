/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stress across processes, as long as one likes. This process is the coordinator of rounds:
 * it adds the round's work, waits for the work group, and opens the round's gate (two gate
 * groups alternate); the workers (wg-helper stress-worker) do their done on the work group and
 * wait for the gate, two of them forever, two with short random timeouts. Around them a churner
 * does add/done pairs of its own on the work group, two watchers wait on it in a loop with
 * timeouts from none to forever, and the coordinator sends SIGUSR1 to one waiter every few
 * rounds, so that waits end with EINTR and begin again. Each round completes at least two
 * generations (work and a gate); the run ends after WG_STRESS_GENERATIONS of them.
 *
 * What is counted, on a shared board (stress-board.h), and must be zero:
 *   - lost wakeups: a worker that stays in the wait for a gate that was opened (a round that
 *     stalls for WG_STRESS_STALL_SEC, then the coordinator finds who is stuck), or whose timed
 *     wait on a gate opened before it began times out; the coordinator's own wait stalling;
 *   - premature releases: a worker through a gate the coordinator had not opened, the
 *     coordinator released before every worker's done, a watcher released in the generation
 *     it saw running;
 *   - errors: any other unexpected result of any call.
 *
 *   WG_STRESS_GENERATIONS   generations to complete (default 20000, a tenth under valgrind)
 *   WG_STRESS_STALL_SEC     how long a round may take before it counts as stuck (default 20)
 *
 * The long run of docs/stress.md:
 *   WG_STRESS_GENERATIONS=10000000 WG_HELPER=build/tests/wg-helper build/tests/test-stress
 */

#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "stress-board.h"
#include "test-util.h"
#include "wg.h"

#define WORKERS 4 /* 0 and 1 wait forever, 2 and 3 with timeouts */
#define CHURNERS 1
#define WATCHERS 2
#define SIGNAL_EVERY 8 /* rounds between two signals */

static_assert(WORKERS <= STRESS_MAX_WORKERS, "room on the board");

static uint64_t env_number(const char *name, uint64_t def) {
        const char *e = getenv(name);
        char *end;
        unsigned long long v;

        if (!e || !*e)
                return def;
        errno = 0;
        v = strtoull(e, &end, 10);
        if (errno != 0 || *end || v == 0)
                fail_msg("%s=%s is not a positive number", name, e);
        return v;
}

static uint64_t load(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store(uint64_t *p, uint64_t v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Generations completed so far by the work group and both gates. */
static uint64_t generations(wg *work, wg *gate[2]) {
        return generation_of(work) + generation_of(gate[0]) + generation_of(gate[1]);
}

/*
 * A round that took too long: find who is stuck. Worker i has done its done(work) of round
 * arrived[i] - 1 and then waited for that round's gate; if the gate was opened and is still
 * open (count zero), its release was lost. If every worker arrived, the work generation ended
 * and it is our own wait that was not woken.
 */
static uint64_t count_stuck(struct stress_board *b, uint64_t round, wg *work, wg *gate[2]) {
        uint64_t stuck = 0;

        for (unsigned i = 0; i < WORKERS; i++) {
                uint64_t a = load(&b->arrived[i]);

                if (a >= round + 1)
                        continue;
                if (a >= 1 && load(&b->gate_done) >= a && count_of(gate[(a - 1) % 2]) == 0) {
                        print_error(
                                "worker %u: still waiting for gate %" PRIu64 ", open since round %" PRIu64
                                "\n",
                                i,
                                (a - 1) % 2,
                                a - 1);
                        stuck++;
                } else
                        print_error(
                                "worker %u: stuck before round %" PRIu64 " (arrived %" PRIu64 ")\n",
                                i,
                                round,
                                a);
        }
        if (stuck == 0 && count_of(work) == 0) {
                print_error("round %" PRIu64 ": the work generation ended, but its wait went on\n", round);
                stuck++;
        }
        return stuck;
}

/* A process of the run ended: anything but exit status 0 is an error, said with who and how. */
static void reaped(struct stress_board *b, const char *role, unsigned i, int status, bool stalled) {
        if (status == 0 || stalled)
                return;
        printf("# %s %u exited with status %d%s\n", role, i, status, status > 128 ? " (128+signal)" : "");
        stress_count(&b->errors);
}

static void test_stress(void **state) {
        uint64_t target = env_number("WG_STRESS_GENERATIONS", test_scale(20000));
        uint64_t stall_usec = env_number("WG_STRESS_STALL_SEC", getenv("WG_TEST_SLOW") ? 60 : 20) * 1000000;
        bool short_run = !getenv("WG_STRESS_GENERATIONS");
        pid_t workers[WORKERS], churners[CHURNERS], watchers[WATCHERS], waiters[WORKERS + WATCHERS];
        uint64_t round, start, last_report, gens, base_work, base_gates, signals_sent = 0;
        struct stress_board *b;
        bool stalled = false;
        char idx[16];
        wg *work, *gate[2];
        int board_fd;

        if (short_run)
                alarm(150);

        board_fd = memfd_create("wg-stress-board", MFD_CLOEXEC);
        assert_true(board_fd >= 0);
        assert_int_equal(ftruncate(board_fd, sizeof(struct stress_board)), 0);
        b = mmap(NULL, sizeof(struct stress_board), PROT_READ | PROT_WRITE, MAP_SHARED, board_fd, 0);
        assert_true(b != MAP_FAILED);

        assert_int_equal(wg_new(&work), 0);
        assert_int_equal(wg_new(&gate[0]), 0);
        assert_int_equal(wg_new(&gate[1]), 0);

        /* Round 0 armed before anybody starts: the work of every worker, gate 0 closed. */
        assert_int_equal(wg_add(work, WORKERS), 0);
        assert_int_equal(wg_add(gate[0], 1), 0);
        for (unsigned i = 0; i < WORKERS; i++) {
                int fds[4] = { board_fd, wg_fd(work), wg_fd(gate[0]), wg_fd(gate[1]) };

                snprintf(idx, sizeof(idx), "%u", i);
                workers[i] = spawn_helper(
                        fds,
                        4,
                        (const char *[]) { "stress-worker",
                                           "3",
                                           "4",
                                           "5",
                                           "6",
                                           idx,
                                           /* timed= */ i >= 2 ? "1" : "0",
                                           /* restart= */ i % 2 ? "1" : "0",
                                           NULL });
                waiters[i] = workers[i];
        }
        for (unsigned i = 0; i < CHURNERS; i++) {
                int fds[2] = { board_fd, wg_fd(work) };

                churners[i] = spawn_helper(fds, 2, (const char *[]) { "stress-churn", "3", "4", NULL });
        }
        for (unsigned i = 0; i < WATCHERS; i++) {
                int fds[2] = { board_fd, wg_fd(work) };

                watchers[i] = spawn_helper(
                        fds,
                        2,
                        (const char *[]) { "stress-watch", "3", "4", /* restart= */ i ? "1" : "0", NULL });
                waiters[WORKERS + i] = watchers[i];
        }

        /*
         * Every helper running before the first round: the churner and the watchers must meet
         * the rounds, and SIGUSR1 before a helper's handler is installed would kill it.
         */
        start = monotonic_usec();
        while (load(&b->started) < WORKERS + CHURNERS + WATCHERS) {
                if (monotonic_usec() - start >= stall_usec)
                        fail_msg("only %" PRIu64 " of %d helpers started", load(&b->started),
                                 WORKERS + CHURNERS + WATCHERS);
                sleep_usec(1000);
        }
        /* The churner's pairs while the others started ended generations too: not the run's. */
        base_work = generation_of(work);
        base_gates = generation_of(gate[0]) + generation_of(gate[1]);

        start = last_report = monotonic_usec();
        for (round = 0;; round++) {
                uint64_t begin = monotonic_usec();
                int r = wg_wait(work, stall_usec);
                bool last;

                if (r != 0 || monotonic_usec() - begin >= stall_usec) {
                        print_error(
                                "round %" PRIu64 ": the wait for the work returned %d after %" PRIu64
                                " us\n",
                                round,
                                r,
                                monotonic_usec() - begin);
                        __atomic_fetch_add(
                                &b->lost_wakeups, count_stuck(b, round, work, gate), __ATOMIC_RELAXED);
                        stalled = true;
                        break;
                }
                for (unsigned i = 0; i < WORKERS; i++)
                        if (load(&b->arrived[i]) < round + 1) {
                                print_error(
                                        "round %" PRIu64 ": released before worker %u's done\n", round, i);
                                stress_count(&b->premature);
                        }

                /* Next round armed before this one's gate opens: no worker finds it open, or work done. */
                gens = generations(work, gate) - base_work - base_gates;
                last = gens + 1 >= target;
                if (last)
                        store(&b->stop, 1);
                else {
                        assert_int_equal(wg_add(work, WORKERS), 0);
                        assert_int_equal(wg_add(gate[(round + 1) % 2], 1), 0);
                }
                store(&b->opened, round + 1);
                assert_int_equal(wg_done(gate[round % 2]), 0);
                store(&b->gate_done, round + 1);

                if (round % SIGNAL_EVERY == 0) {
                        assert_int_equal(
                                kill(waiters[round / SIGNAL_EVERY % (WORKERS + WATCHERS)], SIGUSR1), 0);
                        signals_sent++;
                }
                if (last)
                        break;
                if (!short_run && monotonic_usec() - last_report >= 10 * 1000000) {
                        last_report = monotonic_usec();
                        fprintf(stderr,
                                "# %" PRIu64 " generations in %.0f s\n",
                                gens,
                                (last_report - start) / 1e6);
                }
        }

        if (stalled) {
                /* Stuck helpers never finish, nor may the others: end them all, then report. */
                for (unsigned i = 0; i < WORKERS; i++)
                        (void) kill(workers[i], SIGKILL);
                for (unsigned i = 0; i < CHURNERS; i++)
                        (void) kill(churners[i], SIGKILL);
                for (unsigned i = 0; i < WATCHERS; i++)
                        (void) kill(watchers[i], SIGKILL);
        }
        for (unsigned i = 0; i < WORKERS; i++)
                reaped(b, "worker", i, reap(workers[i]), stalled);
        for (unsigned i = 0; i < CHURNERS; i++)
                reaped(b, "churner", i, reap(churners[i]), stalled);
        for (unsigned i = 0; i < WATCHERS; i++)
                reaped(b, "watcher", i, reap(watchers[i]), stalled);

        gens = generations(work, gate) - base_work - base_gates;
        printf("# %" PRIu64 " generations (work %" PRIu64 ", gates %" PRIu64 ") in %.1f s, %.0f/s; "
               "%" PRIu64 " rounds, %" PRIu64 " churns\n",
               gens,
               generation_of(work) - base_work,
               generation_of(gate[0]) + generation_of(gate[1]) - base_gates,
               (monotonic_usec() - start) / 1e6,
               gens / ((monotonic_usec() - start) / 1e6),
               round + 1,
               load(&b->churns));
        printf("# %" PRIu64 " waits (%" PRIu64 " with a timeout, %" PRIu64 " timed out, %" PRIu64
               " interrupted), %" PRIu64 " signals sent, %" PRIu64 " caught\n",
               load(&b->waits),
               load(&b->timed_waits),
               load(&b->timeouts),
               load(&b->interrupted),
               signals_sent,
               load(&b->signals));
        printf("# lost wakeups %" PRIu64 ", premature releases %" PRIu64 ", errors %" PRIu64 "\n",
               load(&b->lost_wakeups),
               load(&b->premature),
               load(&b->errors));
        fflush(stdout);

        assert_int_equal(load(&b->lost_wakeups), 0);
        assert_int_equal(load(&b->premature), 0);
        assert_int_equal(load(&b->errors), 0);
        assert_false(stalled);
        assert_true(gens >= target);
        assert_int_equal(count_of(work), 0);
        assert_int_equal(count_of(gate[0]), 0);
        assert_int_equal(count_of(gate[1]), 0);
        assert_int_equal(generation_of(gate[0]) + generation_of(gate[1]) - base_gates, round + 1);
        assert_true(load(&b->signals) > 0);

        alarm(0);
        wg_unref(work);
        wg_unref(gate[0]);
        wg_unref(gate[1]);
        assert_int_equal(munmap(b, sizeof(struct stress_board)), 0);
        assert_int_equal(close(board_fd), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stress),
        };

        return cmocka_run_group_tests_name("stress", tests, NULL, NULL);
}
