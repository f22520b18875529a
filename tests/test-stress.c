/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stress across processes: workers that are released round by round through two alternating
 * gate groups (thousands of generations, each a reuse), churners doing add/done on the same
 * group at the same time, and watchers waiting on it in a loop with every kind of timeout and
 * checking each return. No hang (an alarm bounds the whole test), no error, and every counter
 * back at zero.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-util.h"
#include "wg.h"

#define WORKERS 3
#define CHURNERS 2
#define WATCHERS 2

static void test_rounds_under_churn(void **state) {
        unsigned rounds = test_scale(3000), churn = test_scale(50000);
        char rounds_arg[16], churn_arg[16];
        pid_t workers[WORKERS], churners[CHURNERS], watchers[WATCHERS];
        unsigned long long released = 0;
        char line[32];
        FILE *f;
        int tally[2];
        wg *work, *gate[2], *stop;
        uint64_t v;

        alarm(120);

        assert_int_equal(wg_new(&work), 0);
        assert_int_equal(wg_new(&gate[0]), 0);
        assert_int_equal(wg_new(&gate[1]), 0);
        assert_int_equal(wg_new(&stop), 0);
        assert_int_equal(pipe2(tally, O_CLOEXEC), 0);
        snprintf(rounds_arg, sizeof(rounds_arg), "%u", rounds);
        snprintf(churn_arg, sizeof(churn_arg), "%u", churn);

        assert_int_equal(wg_add(stop, 1), 0);
        for (unsigned i = 0; i < WATCHERS; i++) {
                int fds[3] = { wg_fd(work), wg_fd(stop), tally[1] };
                watchers[i] = spawn_helper(fds, 3, (const char *[]) { "watch", "3", "4", "5", NULL });
        }

        assert_int_equal(wg_add(work, WORKERS), 0);
        assert_int_equal(wg_add(gate[0], 1), 0);
        for (unsigned i = 0; i < WORKERS; i++) {
                int fds[3] = { wg_fd(work), wg_fd(gate[0]), wg_fd(gate[1]) };
                workers[i] = spawn_helper(fds, 3, (const char *[]) { "rounds", "3", "4", "5", rounds_arg, NULL });
        }
        for (unsigned i = 0; i < CHURNERS; i++) {
                int fd = wg_fd(work);
                churners[i] = spawn_helper(&fd, 1, (const char *[]) { "churn", "3", churn_arg, NULL });
        }

        /*
         * Round r: every worker marks work done, then waits on gate[r % 2]. Before opening that
         * gate, arm the next round (work back to WORKERS, the other gate closed), so that a
         * fast worker can never run into an open gate or an empty work group.
         */
        for (unsigned r = 0; r < rounds; r++) {
                assert_int_equal(wg_wait(work, WG_USEC_INFINITY), 0);
                if (r + 1 < rounds) {
                        assert_int_equal(wg_add(work, WORKERS), 0);
                        assert_int_equal(wg_add(gate[(r + 1) % 2], 1), 0);
                }
                assert_int_equal(wg_done(gate[r % 2]), 0);
        }

        for (unsigned i = 0; i < WORKERS; i++)
                assert_int_equal(reap(workers[i]), 0);
        for (unsigned i = 0; i < CHURNERS; i++)
                assert_int_equal(reap(churners[i]), 0);
        assert_int_equal(wg_done(stop), 0);
        for (unsigned i = 0; i < WATCHERS; i++)
                assert_int_equal(reap(watchers[i]), 0);

        /* Each watcher wrote one line: how many of its waits returned 0. */
        close(tally[1]);
        f = fdopen(tally[0], "r");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                released += strtoull(line, NULL, 10);
        fclose(f);
        assert_true(released > 0);

        assert_int_equal(wg_get_count(work, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(wg_get_generation(work, &v), 0);
        assert_true(v >= rounds); /* the churners may have completed it more often */
        for (unsigned i = 0; i < 2; i++) {
                assert_int_equal(wg_get_count(gate[i], &v), 0);
                assert_int_equal(v, 0);
                assert_int_equal(wg_get_generation(gate[i], &v), 0);
                assert_int_equal(v, (rounds + 1 - i) / 2);
        }

        alarm(0);
        wg_unref(work);
        wg_unref(gate[0]);
        wg_unref(gate[1]);
        wg_unref(stop);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rounds_under_churn),
        };

        return cmocka_run_group_tests_name("stress", tests, NULL, NULL);
}
