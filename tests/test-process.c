/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unrelated processes on one group: every other process here is tests/wg-helper, exec'd with
 * the segment inherited as an fd or received over a unix socket, doing what its arguments say.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "seqpacket.h"
#include "test-util.h"
#include "wg.h"

/* Start a helper that receives the segment over a unix socket, and send it. */
static pid_t spawn_over_socket(wg *g, const char *const *ops) {
        const char *argv[16] = { "recv", "3" };
        size_t n = 2;
        int s[2];
        pid_t pid;

        for (; *ops; ops++) {
                assert_true(n < ELEMENTSOF(argv) - 1);
                argv[n++] = *ops;
        }
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s), 0);
        pid = spawn_helper(&s[1], 1, argv);
        close(s[1]);
        assert_int_equal(seqpacket_send(s[0], "w", 1, wg_fd(g), 0), 0);
        close(s[0]);
        return pid;
}

/* Bytes waiting in a non-blocking pipe, without consuming more than @max. */
static size_t drain(int fd, size_t max) {
        char buf[256];
        ssize_t n;

        assert_true(max <= sizeof(buf));
        n = read(fd, buf, max);
        if (n < 0) {
                assert_int_equal(errno, EAGAIN);
                return 0;
        }
        return (size_t) n;
}

/* Read exactly @n bytes from a non-blocking pipe, sleeping in poll() between tries. */
static void read_exactly(int fd, size_t n) {
        while (n > 0) {
                struct pollfd p = { .fd = fd, .events = POLLIN };

                assert_int_equal(poll(&p, 1, 30000), 1);
                n -= drain(fd, n < 256 ? n : 256);
        }
}

/*
 * Go's TestWaitGroup, with processes: N workers each mark wg1 done and wait on wg2; none may be
 * released before the last done on wg2. The tally is a pipe each worker writes a byte to when it
 * is released. Eight rounds on the same two groups, so each starts from a reused state.
 */
static void test_go_waitgroup(void **state) {
        const unsigned n = 8;
        int tally[2];
        wg *wg1, *wg2;

        assert_int_equal(wg_new(&wg1), 0);
        assert_int_equal(wg_new(&wg2), 0);
        assert_int_equal(pipe2(tally, O_CLOEXEC | O_NONBLOCK), 0);

        for (unsigned round = 0; round < 8; round++) {
                int fds[3] = { wg_fd(wg1), wg_fd(wg2), tally[1] };
                const char *argv[] = { "ops", "3,4", "done", "use:1", "wait", "tally:5", NULL };
                pid_t pid[n];

                assert_int_equal(wg_add(wg1, n), 0);
                assert_int_equal(wg_add(wg2, n), 0);
                for (unsigned i = 0; i < n; i++)
                        pid[i] = spawn_helper(fds, 3, argv);

                assert_int_equal(wg_wait(wg1, WG_USEC_INFINITY), 0);
                for (unsigned i = 0; i < n; i++) {
                        if (drain(tally[0], 1) != 0)
                                fail_msg("round %u: a worker was released too soon", round);
                        assert_int_equal(wg_done(wg2), 0);
                }
                read_exactly(tally[0], n);
                for (unsigned i = 0; i < n; i++)
                        assert_int_equal(reap(pid[i]), 0);
                assert_int_equal(count_of(wg1), 0);
                assert_int_equal(count_of(wg2), 0);
        }
        assert_int_equal(generation_of(wg1), 8);
        assert_int_equal(generation_of(wg2), 8);

        close(tally[0]);
        close(tally[1]);
        wg_unref(wg1);
        wg_unref(wg2);
}

/* Go's TestWaitGroupRace, with processes: wait never returns before both workers are done. */
static void test_go_race(void **state) {
        unsigned rounds = test_scale(200);
        int tally[2];
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(pipe2(tally, O_CLOEXEC | O_NONBLOCK), 0);
        for (unsigned i = 0; i < rounds; i++) {
                int fds[2] = { wg_fd(g), tally[1] };
                const char *argv[] = { "ops", "3", "tally:4", "done", NULL };
                pid_t a, b;

                assert_int_equal(wg_add(g, 1), 0);
                a = spawn_helper(fds, 2, argv);
                assert_int_equal(wg_add(g, 1), 0);
                b = spawn_helper(fds, 2, argv);
                assert_int_equal(wg_wait(g, WG_USEC_INFINITY), 0);
                if (drain(tally[0], 2) != 2)
                        fail_msg("round %u: wait returned before both workers were done", i);
                assert_int_equal(reap(a), 0);
                assert_int_equal(reap(b), 0);
        }
        close(tally[0]);
        close(tally[1]);
        wg_unref(g);
}

/* Adders, doers and waiters in different processes, some by inheritance, some over a socket. */
static void test_spread(void **state) {
        const char *adder[] = { "add:3", "count:3", NULL };
        const char *short_waiter[] = { "wait:2000=ETIMEDOUT", "count:3", NULL };
        const char *waiter_inherited[] = { "ops", "3", "wait", "count:0", NULL };
        const char *waiter_socket[] = { "wait:60000000", NULL };
        const char *doer_inherited[] = { "ops", "3", "done", NULL };
        const char *doer_socket[] = { "done", NULL };
        int fd;
        pid_t waiters[3], doers[3];
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        fd = wg_fd(g);

        assert_int_equal(reap(spawn_over_socket(g, adder)), 0);
        assert_int_equal(count_of(g), 3);

        /* With nothing done yet, a short timeout must expire, and change nothing. */
        assert_int_equal(reap(spawn_over_socket(g, short_waiter)), 0);

        waiters[0] = spawn_helper(&fd, 1, waiter_inherited);
        waiters[1] = spawn_over_socket(g, waiter_socket);
        waiters[2] = spawn_helper(&fd, 1, waiter_inherited);
        for (unsigned i = 0; i < 3; i++)
                wait_until_futex_sleep(waiters[i]);

        doers[0] = spawn_helper(&fd, 1, doer_inherited);
        doers[1] = spawn_over_socket(g, doer_socket);
        assert_int_equal(reap(doers[0]), 0);
        assert_int_equal(reap(doers[1]), 0);
        assert_int_equal(count_of(g), 1);
        assert_int_equal(generation_of(g), 0);

        doers[2] = spawn_helper(&fd, 1, doer_inherited);
        assert_int_equal(reap(doers[2]), 0);
        for (unsigned i = 0; i < 3; i++)
                assert_int_equal(reap(waiters[i]), 0);
        assert_int_equal(count_of(g), 0);
        assert_int_equal(generation_of(g), 1);

        /* A done below zero from another process: refused there, and nothing changed here. */
        assert_int_equal(reap(spawn_helper(&fd, 1, (const char *[]) { "ops", "3", "done=ERANGE", NULL })), 0);
        assert_int_equal(count_of(g), 0);
        assert_int_equal(generation_of(g), 1);
        wg_unref(g);
}

/*
 * A waiter is stopped while its generation completes and the group is reused (several times);
 * continued, it returns success although the counter is non-zero again.
 */
static void test_stopped_waiter(void **state) {
        const char *argv[] = { "ops", "3", "wait:30000000", "count:1", NULL };
        pid_t pid;
        int fd;
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        fd = wg_fd(g);
        assert_int_equal(wg_add(g, 1), 0);
        pid = spawn_helper(&fd, 1, argv);
        wait_until_futex_sleep(pid);

        assert_int_equal(kill(pid, SIGSTOP), 0);
        for (unsigned i = 0; i < 3; i++) {
                assert_int_equal(wg_done(g), 0);
                assert_int_equal(wg_add(g, 1), 0);
        }
        assert_int_equal(kill(pid, SIGCONT), 0);

        assert_int_equal(reap(pid), 0);
        assert_int_equal(count_of(g), 1);
        assert_int_equal(generation_of(g), 3);
        wg_unref(g);
}

/* A waiter killed while it sleeps leaves at most a stale WAITERS bit, which costs one wake. */
static void test_killed_waiter(void **state) {
        const char *argv[] = { "ops", "3", "wait", NULL };
        pid_t pid;
        int fd;
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        fd = wg_fd(g);
        assert_int_equal(wg_add(g, 1), 0);
        pid = spawn_helper(&fd, 1, argv);
        wait_until_futex_sleep(pid);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(reap(pid), 128 + SIGKILL);

        assert_int_equal(wg_wait(g, 0), -ETIMEDOUT);
        assert_int_equal(wg_done(g), 0);
        assert_int_equal(wg_wait(g, 0), 0);
        assert_int_equal(generation_of(g), 1);
        wg_unref(g);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_go_waitgroup),
                cmocka_unit_test(test_go_race),
                cmocka_unit_test(test_spread),
                cmocka_unit_test(test_stopped_waiter),
                cmocka_unit_test(test_killed_waiter),
        };

        return cmocka_run_group_tests_name("process", tests, NULL, NULL);
}
