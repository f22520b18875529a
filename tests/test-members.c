/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Members: a worker that dies never hangs its group. Real member processes (wg-helper member,
 * which joins through libwg) killed with SIGKILL at random points, wgd killed and restarted with
 * members joined, the break policy, and what waiters learn.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-util.h"
#include "wg.h"
#include "wgd-harness.h"

static const char *const quiet[] = { "--idle-timeout=0", "--log-level=warning", NULL };

static pid_t member(const char *name, int status, unsigned usec, int report) {
        char status_arg[16], usec_arg[16];

        snprintf(status_arg, sizeof(status_arg), "%d", status);
        snprintf(usec_arg, sizeof(usec_arg), "%u", usec);
        if (report < 0)
                return spawn_helper(NULL, 0, (const char *[]) { "member", name, status_arg, usec_arg, NULL });
        return spawn_helper(&report, 1, (const char *[]) { "member", name, status_arg, usec_arg, "3", NULL });
}

/* What a member's report pipe says: 'J' once joined, 'L' once left. */
static void read_report(int fd, bool *joined, bool *left) {
        char buf[4];
        ssize_t n;

        *joined = *left = false;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                for (ssize_t i = 0; i < n; i++) {
                        *joined |= buf[i] == 'J';
                        *left |= buf[i] == 'L';
                }
}

/*
 * Two hundred trials: a handful of members, some of which fail, killed with SIGKILL at random
 * points (before joining, while joined, while leaving). A waiter must always be released well
 * before its deadline, and the outcome must add up to what the members did.
 */
static void test_killed_members(void **state) {
        enum { MEMBERS = 4 };
        Harness *h = *state;
        unsigned trials = test_scale(200);
        wg *g;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "crew", 0, 0), 0);
        assert_int_equal(wg_open("crew", 0, &g), 0);
        srand(20261126);

        for (unsigned trial = 0; trial < trials; trial++) {
                uint64_t generation, succeeded = 0, failed = 0, abandoned = 0;
                unsigned left_ok = 0, left_failed = 0, joined = 0;
                int reports[MEMBERS][2], r;
                pid_t pids[MEMBERS];

                /* Hold the generation open until every member has started. */
                assert_int_equal(wg_add(g, 1), 0);
                assert_int_equal(wg_get_generation(g, &generation), 0);

                for (unsigned i = 0; i < MEMBERS; i++) {
                        assert_int_equal(pipe2(reports[i], O_CLOEXEC), 0);
                        pids[i] = member("crew", i % 2 ? 0 : 3, (unsigned) (rand() % 3000), reports[i][1]);
                        close(reports[i][1]);
                }
                /* Kill two of them at random moments within their lives. */
                for (unsigned i = 0; i < 2; i++) {
                        sleep_usec((uint64_t) (rand() % 4000));
                        (void) kill(pids[(unsigned) rand() % MEMBERS], SIGKILL);
                }
                for (unsigned i = 0; i < MEMBERS; i++) {
                        bool j, l;

                        (void) reap(pids[i]);
                        read_report(reports[i][0], &j, &l);
                        close(reports[i][0]);
                        joined += j;
                        if (l && i % 2)
                                left_ok++;
                        else if (l)
                                left_failed++;
                }

                /*
                 * Every member is gone now, one way or another: wgd does the done of the dead
                 * ones as it learns of them, so the wait returns. The deadline only turns a hang
                 * into a failure; it is no measure of speed.
                 */
                assert_int_equal(wg_done(g), 0);
                r = wg_wait(g, 120 * 1000000);
                assert_true(r >= 0);

                (void) wg_get_outcome(g, generation, &succeeded, &failed, &abandoned);
                /* Those that said they left are counted so; the dead ones may have left or not. */
                if (succeeded < left_ok || failed < left_failed || succeeded + failed + abandoned < joined ||
                    succeeded + failed + abandoned > MEMBERS)
                        fail_msg("trial %u: %u joined, %u left ok, %u left failing; outcome %llu/%llu/%llu", trial,
                                 joined, left_ok, left_failed, (unsigned long long) succeeded,
                                 (unsigned long long) failed, (unsigned long long) abandoned);
                assert_int_equal(r, (int) (failed + abandoned));
        }

        wg_unref(g);
        close(c);
}

/* wgd killed and restarted with members joined: each is either still there or abandoned. */
static void test_restart_with_members(void **state) {
        Harness *h = *state;
        Wg__V1__Response *resp;
        uint64_t succeeded, failed, abandoned;
        pid_t stays, leaves_later, dies;
        int c, report[3][2], go[2], go_stays[2];
        bool j, l;
        wg *g;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "job", 0, 0), 0);
        assert_int_equal(wg_open("job", 0, &g), 0);
        for (unsigned i = 0; i < 3; i++)
                assert_int_equal(pipe2(report[i], O_CLOEXEC), 0);

        /*
         * Each leaves when told, however slow the machine: one before the kill, once all three
         * have joined (had it left before the others joined, its leave would have ended
         * generation 0 alone, and the others would be members of generation 1), one after
         * the restart.
         */
        assert_int_equal(pipe2(go_stays, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        stays = spawn_helper((int[]) { report[0][1], go_stays[0] }, 2,
                             (const char *[]) { "member", "job", "0", "0", "3", "4", NULL });
        close(go_stays[0]);
        leaves_later = spawn_helper((int[]) { report[1][1], go[0] }, 2,
                                    (const char *[]) { "member", "job", "5", "0", "3", "4", NULL });
        close(go[0]);
        dies = member("job", 0, 60 * 1000 * 1000, report[2][1]); /* killed while wgd is away */
        for (unsigned i = 0; i < 3; i++) {
                close(report[i][1]);
                expect_byte(report[i][0], 'J');
        }
        close(go_stays[1]);
        assert_int_equal(reap(stays), 0);
        read_report(report[0][0], &j, &l);
        assert_true(!j && l); /* its 'J' was read above */
        close(c);

        assert_int_equal(harness_stop(h, SIGKILL), 128 + SIGKILL);
        assert_int_equal(harness_stored(h, "job"), 1);
        assert_int_equal(kill(dies, SIGKILL), 0);
        assert_int_equal(reap(dies), 128 + SIGKILL);

        harness_start(h, quiet);
        /* The dead one is abandoned at once; the other leaves over a new connection. */
        close(go[1]);
        assert_int_equal(reap(leaves_later), 0);
        read_report(report[1][0], &j, &l); /* its 'J' was read before the kill */
        assert_true(!j && l);
        assert_int_equal(wg_wait(g, 10 * 1000000), 2);
        assert_int_equal(wg_get_outcome(g, 0, &succeeded, &failed, &abandoned), 0);
        assert_int_equal(succeeded, 1);
        assert_int_equal(failed, 1);
        assert_int_equal(abandoned, 1);

        /* wgd knows who: the failed one with its status, the abandoned one. */
        c = pc_connect(h->socket_path);
        resp = pc_stat(c, "job");
        assert_int_equal(resp->result_case, WG__V1__RESPONSE__RESULT_GROUP);
        assert_non_null(resp->group->outcome);
        assert_int_equal(resp->group->outcome->abandoned, 1);
        {
                unsigned seen_failed = 0, seen_abandoned = 0;

                for (size_t i = 0; i < resp->group->n_members; i++) {
                        Wg__V1__Member *m = resp->group->members[i];

                        if (m->state == WG__V1__MEMBER_STATE__MEMBER_STATE_FAILED) {
                                assert_int_equal(m->status, 5);
                                assert_int_equal(m->pid, leaves_later);
                                seen_failed++;
                        } else if (m->state == WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED) {
                                assert_int_equal(m->pid, dies);
                                seen_abandoned++;
                        }
                }
                assert_int_equal(seen_failed, 1);
                assert_int_equal(seen_abandoned, 1);
        }
        pc_free(resp);
        for (unsigned i = 0; i < 3; i++)
                close(report[i][0]);
        close(c);
        wg_unref(g);
}

/* The break policy, through the protocol: every waiter fails until a Reset. */
static void test_break_policy(void **state) {
        Harness *h = *state;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Create create = WG__V1__CREATE__INIT;
        Wg__V1__Reset reset = WG__V1__RESET__INIT;
        Wg__V1__Response *r;
        pid_t victim, waiter;
        int c, report[2];
        wg *g;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        create.name = (char *) "strict";
        create.has_on_abandon = true;
        create.on_abandon = WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK;
        req.op_case = WG__V1__REQUEST__OP_CREATE;
        req.create = &create;
        r = pc_call(c, &req, NULL);
        assert_int_equal(r->group->on_abandon, WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK);
        pc_free(r);

        assert_int_equal(pipe2(report, O_CLOEXEC), 0);
        victim = member("strict", 0, 60 * 1000 * 1000, report[1]);
        close(report[1]);
        expect_byte(report[0], 'J');
        close(report[0]);
        waiter = spawn_helper(NULL, 0, (const char *[]) { "named", "strict", "0", "wait=EOWNERDEAD", NULL });
        wait_until_futex_sleep(waiter);
        pc_wait_send(c, 5, "strict", UINT64_MAX);
        pc_expect(pc_stat(c, "strict"), 0);

        assert_int_equal(kill(victim, SIGKILL), 0);
        assert_int_equal(reap(victim), 128 + SIGKILL);
        assert_int_equal(reap(waiter), 0);
        r = pc_recv(c, NULL);
        assert_true(r->id == 5);
        pc_expect(r, EOWNERDEAD);

        /* Broken: no join, no add, no wait, until a reset. */
        assert_int_equal(wg_join("strict", 0, &g), -EOWNERDEAD);
        pc_expect(pc_add(c, "strict", 1), EOWNERDEAD);
        r = pc_stat(c, "strict");
        assert_true(r->group->broken);
        pc_free(r);

        reset.name = (char *) "strict";
        req = (Wg__V1__Request) WG__V1__REQUEST__INIT;
        req.op_case = WG__V1__REQUEST__OP_RESET;
        req.reset = &reset;
        r = pc_call(c, &req, NULL);
        assert_false(r->group->broken);
        assert_int_equal(r->group->count, 0);
        pc_free(r);

        assert_int_equal(wg_join("strict", 0, &g), 0);
        assert_int_equal(wg_leave(g, 0), 0);
        assert_int_equal(wg_leave(g, 0), -ENOTCONN);
        assert_int_equal(wg_wait(g, 0), 0);
        wg_unref(g);
        close(c);
}

/* A member's handle dropped without a leave: that is an abandonment too, and joins are checked. */
static void test_join_rules(void **state) {
        Harness *h = *state;
        uint64_t abandoned = 0;
        int c;
        wg *g, *w;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "rules", 0, 0), 0);

        assert_int_equal(wg_join("nosuch", 0, &g), -ENOENT);
        assert_int_equal(wg_join("bad/name", 0, &g), -EINVAL);
        assert_int_equal(wg_join("rules", 1, &g), -EINVAL);

        assert_int_equal(wg_open("rules", 0, &w), 0);
        assert_int_equal(wg_join("rules", 0, &g), 0);
        assert_int_equal(wg_get_count(w, &abandoned), 0);
        assert_int_equal(abandoned, 1);
        wg_unref(g); /* no leave */
        assert_int_equal(wg_wait(w, 10 * 1000000), 1);
        assert_int_equal(wg_get_outcome(w, 0, NULL, NULL, &abandoned), 0);
        assert_int_equal(abandoned, 1);

        /* A plain handle is no member. */
        assert_int_equal(wg_leave(w, 0), -ENOTCONN);
        wg_unref(w);
        close(c);
}

/*
 * A member of uid/gid nobody: a child that drops to it and joins in-process (no exec: the build
 * tree may be where nobody cannot go), and leaves once @go says so.
 */
/* Joins @name as nobody, writes 'J' to @report, and leaves once @go reads end of file. */
static pid_t member_as_nobody(const char *name, const int go[2], int report) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                char byte;
                wg *g;

                close(go[1]); /* else the EOF we wait for never comes */
                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(99);
                if (wg_join(name, 0, &g) < 0)
                        _exit(10);
                if (write(report, "J", 1) != 1)
                        _exit(12);
                /* Leave when told (the parent closes its end): after the restart, not before. */
                while (read(go[0], &byte, 1) < 0 && errno == EINTR)
                        ;
                if (wg_leave(g, 0) < 0)
                        _exit(11);
                wg_unref(g);
                _exit(0);
        }
        return pid;
}

/*
 * A member that comes back from the fdstore is held by no connection; its uid's account must
 * live on while it does, even when that uid owns no group and its other connections come and go.
 */
static void test_restored_member_of_another_uid(void **state) {
        Harness *h = *state;
        pid_t m, other;
        int c, go[2], report[2];
        wg *g;

        if (geteuid() != 0)
                skip_test("a second uid needs root");

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "shared", 0666, 0), 0);
        close(c);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(report, O_CLOEXEC), 0);
        m = member_as_nobody("shared", go, report[1]);
        close(go[0]);
        close(report[1]);
        expect_byte(report[0], 'J');
        close(report[0]);

        assert_int_equal(harness_stop(h, SIGKILL), 128 + SIGKILL);
        harness_start(h, quiet);

        /* Another connection of the same uid, opened and closed while the member is detached. */
        other = fork();
        assert_true(other >= 0);
        if (other == 0) {
                int fd;

                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(99);
                fd = pc_connect(h->socket_path);
                close(fd);
                _exit(0);
        }
        assert_int_equal(reap(other), 0);

        close(go[1]);
        assert_int_equal(reap(m), 0); /* its leave, over a new connection, found its membership */
        assert_int_equal(wg_open("shared", 0, &g), 0);
        assert_int_equal(wg_wait(g, 10 * 1000000), 0);
        wg_unref(g);
        assert_int_equal(kill(h->pid, 0), 0); /* and wgd is alive */
}

typedef struct Leaver {
        wg *g;
        pid_t tid;
        int result;
} Leaver;

static int usr1_seen;

static void on_usr1(int sig) {
        __atomic_store_n(&usr1_seen, 1, __ATOMIC_SEQ_CST);
}

static void *leaver_main(void *userdata) {
        Leaver *l = userdata;

        __atomic_store_n(&l->tid, gettid(), __ATOMIC_SEQ_CST);
        l->result = wg_leave(l->g, 0);
        return NULL;
}

/*
 * A signal that interrupts wg_leave() while it waits for wgd's answer: the Leave went out, so
 * libwg reads its answer rather than return EINTR with the answer left on the connection.
 */
static void test_leave_interrupted(void **state) {
        struct sigaction sa = { .sa_handler = on_usr1 }, old;
        Harness *h = *state;
        uint64_t succeeded, failed, abandoned;
        Leaver l = {};
        pthread_t t;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "calm", 0, 0), 0);
        close(c);
        assert_int_equal(wg_join("calm", 0, &l.g), 0);

        sigemptyset(&sa.sa_mask);
        assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0); /* no SA_RESTART */
        assert_int_equal(kill(h->pid, SIGSTOP), 0);         /* wgd answers nothing for now */
        assert_int_equal(pthread_create(&t, NULL, leaver_main, &l), 0);
        while (__atomic_load_n(&l.tid, __ATOMIC_SEQ_CST) == 0)
                sleep_usec(1000);
        wait_until_thread_syscall(l.tid, SYS_recvmsg);
        assert_int_equal(pthread_kill(t, SIGUSR1), 0);
        /* The handler has run, so the wait for the answer was interrupted before it came. */
        for (unsigned i = 0; !__atomic_load_n(&usr1_seen, __ATOMIC_SEQ_CST); i++) {
                assert_true(i < 20000);
                sleep_usec(1000);
        }
        assert_int_equal(kill(h->pid, SIGCONT), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);

        assert_int_equal(l.result, 0);
        assert_int_equal(wg_wait(l.g, 10 * 1000000), 0);
        assert_int_equal(wg_get_outcome(l.g, 0, &succeeded, &failed, &abandoned), 0);
        assert_int_equal(succeeded, 1);
        assert_int_equal(failed + abandoned, 0);
        wg_unref(l.g);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_killed_members, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_restart_with_members, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_break_policy, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_join_rules, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_leave_interrupted, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_restored_member_of_another_uid, harness_setup, harness_teardown),
        };

        if (getenv("WG_TEST_FILTER"))
                cmocka_set_test_filter(getenv("WG_TEST_FILTER"));
        return cmocka_run_group_tests_name("members", tests, NULL, NULL);
}
