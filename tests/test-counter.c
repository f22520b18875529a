/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The counter's semantics within one process: add, done and wait, misuse as errors that leave
 * the state word exactly as it was, timeouts, signals, generations and their wrap, and waiters in
 * threads.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "segment.h"
#include "test-util.h"
#include "wg-private.h"
#include "wg.h"

static void test_add_done(void **state) {
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(wg_add(g, 3), 0);
        assert_int_equal(count_of(g), 3);
        assert_int_equal(wg_wait(g, 0), -ETIMEDOUT);
        assert_int_equal(wg_done(g), 0);
        assert_int_equal(wg_add(g, -1), 0);
        assert_int_equal(count_of(g), 1);
        assert_int_equal(generation_of(g), 0);
        assert_int_equal(wg_done(g), 0);
        assert_int_equal(count_of(g), 0);
        assert_int_equal(generation_of(g), 1);
        assert_int_equal(wg_wait(g, 0), 0);
        assert_int_equal(wg_wait(g, WG_USEC_INFINITY), 0);

        /* add(0) checks and changes nothing, not even at zero. */
        assert_int_equal(wg_add(g, 0), 0);
        assert_int_equal(generation_of(g), 1);

        /* Reuse: each return to zero is one more generation. */
        for (unsigned i = 0; i < 10; i++) {
                assert_int_equal(wg_add(g, 2), 0);
                assert_int_equal(wg_add(g, -2), 0);
        }
        assert_int_equal(generation_of(g), 11);
        wg_unref(g);
}

/* Go's TestWaitGroupMisuse: one done too many. Go panics; we refuse and change nothing. */
static void test_misuse(void **state) {
        uint64_t before;
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(wg_add(g, 1), 0);
        assert_int_equal(wg_done(g), 0);
        before = raw_state(g);
        assert_int_equal(wg_done(g), -ERANGE);
        assert_true(raw_state(g) == before);
        assert_int_equal(wg_add(g, -5), -ERANGE);
        assert_true(raw_state(g) == before);

        /* Below zero from above zero too. */
        assert_int_equal(wg_add(g, 2), 0);
        before = raw_state(g);
        assert_int_equal(wg_add(g, -3), -ERANGE);
        assert_true(raw_state(g) == before);
        assert_int_equal(count_of(g), 2);
        wg_unref(g);
}

static void test_limits(void **state) {
        uint64_t before;
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        before = raw_state(g);
        assert_int_equal(wg_add(g, INT64_MIN), -ERANGE);
        assert_int_equal(wg_add(g, INT64_MAX), -EOVERFLOW);
        assert_int_equal(wg_add(g, WG_COUNT_MAX + 1), -EOVERFLOW);
        assert_int_equal(wg_add(g, UINT32_MAX), -EOVERFLOW);
        assert_true(raw_state(g) == before);

        assert_int_equal(wg_add(g, WG_COUNT_MAX), 0);
        assert_int_equal(count_of(g), WG_COUNT_MAX);
        before = raw_state(g);
        assert_int_equal(wg_add(g, 1), -EOVERFLOW);
        assert_int_equal(wg_add(g, INT64_MAX), -EOVERFLOW);
        assert_int_equal(wg_add(g, INT64_MIN), -ERANGE);
        assert_int_equal(wg_add(g, -WG_COUNT_MAX - 1), -ERANGE);
        assert_true(raw_state(g) == before);

        /* All of it at once: done, next generation, never a carry into the flag bits. */
        assert_int_equal(wg_add(g, -WG_COUNT_MAX), 0);
        assert_int_equal(count_of(g), 0);
        assert_int_equal(generation_of(g), 1);
        assert_true(raw_state(g) == WG_STATE_GEN_ONE);
        wg_unref(g);
}

static void test_bad_handle(void **state) {
        uint64_t v;
        wg *g;

        assert_int_equal(wg_add(NULL, 1), -EINVAL);
        assert_int_equal(wg_done(NULL), -EINVAL);
        assert_int_equal(wg_wait(NULL, 0), -EINVAL);
        assert_int_equal(wg_get_count(NULL, &v), -EINVAL);
        assert_int_equal(wg_get_generation(NULL, &v), -EINVAL);

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(wg_get_count(g, NULL), -EINVAL);
        assert_int_equal(wg_get_generation(g, NULL), -EINVAL);
        wg_unref(g);
}

static void test_ref_unref(void **state) {
        wg *g;
        int fd;

        assert_int_equal(wg_new(&g), 0);
        fd = wg_fd(g);
        assert_ptr_equal(wg_ref(g), g);
        assert_null(wg_unref(g));
        /* Still alive: the fd is open and the counter works. */
        assert_true(fcntl(fd, F_GETFD) >= 0);
        assert_int_equal(wg_add(g, 1), 0);
        assert_null(wg_unref(g));
        assert_true(fcntl(fd, F_GETFD) < 0);
}

static void test_timeout(void **state) {
        uint64_t start, elapsed;
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(wg_add(g, 1), 0);

        /* A try-wait never sleeps and never registers. */
        assert_int_equal(wg_wait(g, 0), -ETIMEDOUT);
        assert_false(raw_state(g) & WG_STATE_WAITERS);

        start = monotonic_usec();
        assert_int_equal(wg_wait(g, 20000), -ETIMEDOUT);
        elapsed = monotonic_usec() - start;
        assert_true(elapsed >= 20000); /* never early; how late is the scheduler's business */
        assert_int_equal(count_of(g), 1);

        /* The timed-out waiter left WAITERS behind; the completion clears it. */
        assert_true(raw_state(g) & WG_STATE_WAITERS);
        assert_int_equal(wg_done(g), 0);
        assert_true(raw_state(g) == WG_STATE_GEN_ONE);
        wg_unref(g);
}

struct waiter {
        wg *g;
        uint64_t timeout_usec;
        pid_t tid;
        int result;
};

static void *waiter_thread(void *p) {
        struct waiter *w = p;

        __atomic_store_n(&w->tid, gettid(), __ATOMIC_SEQ_CST);
        w->result = wg_wait(w->g, w->timeout_usec);
        return NULL;
}

static void start_waiter(pthread_t *t, struct waiter *w) {
        assert_int_equal(pthread_create(t, NULL, waiter_thread, w), 0);
        while (__atomic_load_n(&w->tid, __ATOMIC_SEQ_CST) == 0)
                sched_yield();
        wait_until_thread_futex_sleep(w->tid);
}

static void test_thread_waiters(void **state) {
        struct waiter w[4] = {};
        pthread_t t[4];
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(wg_add(g, 2), 0);
        for (unsigned i = 0; i < 4; i++) {
                w[i] = (struct waiter) { .g = g, .timeout_usec = i % 2 ? WG_USEC_INFINITY : 60000000 };
                start_waiter(&t[i], &w[i]);
        }
        assert_true(raw_state(g) & WG_STATE_WAITERS);

        assert_int_equal(wg_done(g), 0);
        assert_int_equal(wg_done(g), 0);
        for (unsigned i = 0; i < 4; i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(w[i].result, 0);
        }
        assert_false(raw_state(g) & WG_STATE_WAITERS);
        wg_unref(g);
}

/* The generation wraps at 2^29; a waiter in the last generation before the wrap is released. */
static void test_generation_wrap(void **state) {
        struct waiter w = {};
        pthread_t t;
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        raw_state_set(g, (WG_STATE_GEN_MASK << WG_STATE_GEN_SHIFT) | 1);
        assert_int_equal(generation_of(g), WG_STATE_GEN_MASK);

        w = (struct waiter) { .g = g, .timeout_usec = WG_USEC_INFINITY };
        start_waiter(&t, &w);
        assert_int_equal(wg_done(g), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(w.result, 0);
        assert_int_equal(generation_of(g), 0);
        assert_true(raw_state(g) == 0);
        wg_unref(g);
}

/* wgd's Delete: final; every operation, in-flight waits included, fails with EIDRM. */
static void test_deleted(void **state) {
        struct waiter w = {};
        uint64_t v = 42;
        pthread_t t;
        wg *g, *other;

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(wg_from_fd(wg_fd(g), &other), 0);
        assert_int_equal(wg_add(g, 2), 0);
        w = (struct waiter) { .g = other, .timeout_usec = WG_USEC_INFINITY };
        start_waiter(&t, &w);

        wg__mark_deleted(g);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(w.result, -EIDRM);

        assert_int_equal(wg_add(other, 1), -EIDRM);
        assert_int_equal(wg_done(other), -EIDRM);
        assert_int_equal(wg_wait(other, 0), -EIDRM);
        assert_int_equal(wg_wait(other, WG_USEC_INFINITY), -EIDRM);
        assert_int_equal(wg_get_count(other, &v), -EIDRM);
        assert_int_equal(wg_get_generation(other, &v), -EIDRM);
        assert_int_equal(v, 42);
        assert_true(raw_state(g) == (WG_STATE_DELETED | 2));

        /* A deleted segment still attaches (its header is fine), and is still deleted. */
        wg_unref(other);
        assert_int_equal(wg_from_fd(wg_fd(g), &other), 0);
        assert_int_equal(wg_done(other), -EIDRM);
        wg_unref(other);
        wg_unref(g);
}

/* wgd's policy for a member that died: broken until reset; every operation says EOWNERDEAD. */
/*
 * A waiter whose generation ended is released with success, whatever the group did after:
 * deleted or broken before the waiter first looked, as much as while it slept. (Spin found that
 * the first look of wg__wait_generation() tested the stop bits first, unlike every other.)
 */
static void test_ended_then_stopped(void **state) {
        for (unsigned broken = 0; broken < 2; broken++) {
                uint64_t gen;
                wg *g;

                assert_int_equal(wg_new(&g), 0);
                assert_int_equal(wg_add(g, 1), 0);
                assert_int_equal(wg__wait_begin(g, &gen), 1);
                assert_int_equal(wg_done(g), 0);
                if (broken)
                        wg__mark_broken(g);
                else
                        wg__mark_deleted(g);
                assert_int_equal(wg__wait_generation(g, gen, UINT64_MAX), 0);
                /* A wait that begins now learns what happened to the group. */
                assert_int_equal(wg_wait(g, 0), broken ? -EOWNERDEAD : -EIDRM);
                wg_unref(g);
        }
}

static void test_broken(void **state) {
        struct waiter w = {};
        uint64_t v = 42, old;
        pthread_t t;
        wg *g, *other;

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(wg_from_fd(wg_fd(g), &other), 0);
        assert_int_equal(wg_add(g, 3), 0);
        w = (struct waiter) { .g = other, .timeout_usec = WG_USEC_INFINITY };
        start_waiter(&t, &w);

        wg__mark_broken(g);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(w.result, -EOWNERDEAD);
        assert_int_equal(wg_add(other, 1), -EOWNERDEAD);
        assert_int_equal(wg_done(other), -EOWNERDEAD);
        assert_int_equal(wg_wait(other, 0), -EOWNERDEAD);
        assert_int_equal(wg_get_count(other, &v), -EOWNERDEAD);
        assert_int_equal(v, 42);

        /* A reset ends the generation and makes the group whole: counter 0, generation on. */
        assert_int_equal(wg__reset(g, &old), 0);
        assert_true(old & WG_STATE_BROKEN);
        assert_int_equal(count_of(other), 0);
        assert_int_equal(generation_of(other), 1);
        assert_int_equal(wg_add(other, 1), 0);
        assert_int_equal(wg_done(other), 0);

        wg_unref(other);
        wg_unref(g);
}

/* The outcome slots wgd fills in: wg_wait counts the failures of the generation it saw end. */
static void test_outcome(void **state) {
        uint64_t succeeded, failed, abandoned;
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        /* A fresh page's slots are zero, tag 0 included: that is no outcome, not an empty one. */
        assert_int_equal(wg_get_outcome(g, 0, &succeeded, &failed, &abandoned), -ENODATA);

        /* Generation 0: three members, one of which fails, one abandoned. */
        assert_int_equal(wg_add(g, 3), 0);
        wg__outcome_count(g, 0, WG_OUTCOME_SUCCEEDED);
        assert_int_equal(wg_done(g), 0);
        wg__outcome_count(g, 0, WG_OUTCOME_FAILED);
        assert_int_equal(wg_done(g), 0);
        wg__outcome_count(g, 0, WG_OUTCOME_ABANDONED);
        assert_int_equal(wg_done(g), 0);

        /* Waiting after the fact reports the generation that ended last. */
        assert_int_equal(wg_wait(g, 0), 2);
        assert_int_equal(wg_get_outcome(g, 0, &succeeded, &failed, &abandoned), 0);
        assert_int_equal(succeeded, 1);
        assert_int_equal(failed, 1);
        assert_int_equal(abandoned, 1);

        /* A generation with no members is clean, and has no outcome of its own. */
        assert_int_equal(wg_add(g, 1), 0);
        assert_int_equal(wg_done(g), 0);
        assert_int_equal(wg_wait(g, WG_USEC_INFINITY), 0);
        assert_int_equal(wg_get_outcome(g, 1, NULL, NULL, NULL), -ENODATA);

        /* Four generations on, slot 0 belongs to generation 4. */
        for (unsigned i = 0; i < 3; i++) {
                assert_int_equal(wg_add(g, 1), 0);
                assert_int_equal(wg_done(g), 0);
        }
        wg__outcome_count(g, 4, WG_OUTCOME_SUCCEEDED);
        assert_int_equal(wg_get_outcome(g, 0, NULL, NULL, NULL), -ENODATA);
        assert_int_equal(wg_get_outcome(g, 4, &succeeded, &failed, &abandoned), 0);
        assert_int_equal(succeeded + failed + abandoned, 1);
        assert_int_equal(wg_get_outcome(g, UINT64_C(1) << 29, NULL, NULL, NULL), -EINVAL);
        wg_unref(g);
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig) {
        got_signal = sig;
}

static void interrupted(int sa_flags, uint64_t timeout_usec) {
        struct sigaction sa = { .sa_handler = on_signal, .sa_flags = sa_flags }, old;
        struct waiter w = {};
        pthread_t t;
        wg *g;

        assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
        got_signal = 0;

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(wg_add(g, 1), 0);
        w = (struct waiter) { .g = g, .timeout_usec = timeout_usec };
        start_waiter(&t, &w);
        assert_int_equal(pthread_kill(t, SIGUSR1), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(w.result, -EINTR);
        assert_int_equal(got_signal, SIGUSR1);
        assert_int_equal(count_of(g), 1);

        assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
        wg_unref(g);
}

static void test_eintr(void **state) {
        interrupted(0, WG_USEC_INFINITY);
        interrupted(SA_RESTART, WG_USEC_INFINITY);
        interrupted(0, 60000000);
        interrupted(SA_RESTART, 60000000);
}

/* Go's TestWaitGroupRace, with threads: nobody is released before both dones. */
struct racer {
        wg *g;
        int *n;
};

static void *racer_thread(void *p) {
        struct racer *r = p;

        __atomic_add_fetch(r->n, 1, __ATOMIC_RELAXED);
        (void) wg_done(r->g);
        return NULL;
}

static void test_race_threads(void **state) {
        unsigned rounds = test_scale(1000);
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        for (unsigned i = 0; i < rounds; i++) {
                int n = 0;
                struct racer r = { .g = g, .n = &n };
                pthread_t t[2];

                assert_int_equal(wg_add(g, 1), 0);
                assert_int_equal(pthread_create(&t[0], NULL, racer_thread, &r), 0);
                assert_int_equal(wg_add(g, 1), 0);
                assert_int_equal(pthread_create(&t[1], NULL, racer_thread, &r), 0);
                assert_int_equal(wg_wait(g, WG_USEC_INFINITY), 0);
                assert_int_equal(__atomic_load_n(&n, __ATOMIC_RELAXED), 2);
                assert_int_equal(pthread_join(t[0], NULL), 0);
                assert_int_equal(pthread_join(t[1], NULL), 0);
        }
        assert_int_equal(count_of(g), 0);
        wg_unref(g);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                fd_checked_test(test_add_done),
                fd_checked_test(test_misuse),
                fd_checked_test(test_limits),
                fd_checked_test(test_bad_handle),
                fd_checked_test(test_ref_unref),
                fd_checked_test(test_timeout),
                fd_checked_test(test_thread_waiters),
                fd_checked_test(test_generation_wrap),
                fd_checked_test(test_deleted),
                fd_checked_test(test_broken),
                fd_checked_test(test_ended_then_stopped),
                fd_checked_test(test_outcome),
                fd_checked_test(test_eintr),
                fd_checked_test(test_race_threads),
        };

        return cmocka_run_group_tests_name("counter", tests, NULL, NULL);
}
