/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wgd, for real: the daemon binary on a real socket, spoken to with real protobuf records, by
 * this process and by exec'd programs that open groups by name (tests/wg-helper), by a second
 * uid, across restarts with the fdstore played by the harness.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "futex.h"
#include "segment.h"
#include "seqpacket.h"
#include "test-util.h"
#include "wg-private.h"
#include "wg.h"
#include "wgd-harness.h"

#define NOBODY 65534

static const char *const quiet[] = { "--idle-timeout=0", "--log-level=warning", NULL };

/* Is wgd (built like this test) running under valgrind or a sanitizer? */
static bool running_checked(void) {
#if defined(__SANITIZE_ADDRESS__)
        return true;
#else
        return getenv("WG_TEST_SLOW") != NULL;
#endif
}

static Wg__V1__GroupInfo *group_of(Wg__V1__Response *r) {
        if (r->result_case != WG__V1__RESPONSE__RESULT_GROUP)
                fail_msg("expected a group, got result %d (%s)", r->result_case,
                         r->result_case == WG__V1__RESPONSE__RESULT_ERROR ? r->error->message : "");
        assert_non_null(r->group);
        return r->group;
}

static uint64_t count_through_wgd(int fd, const char *name) {
        Wg__V1__Response *r = pc_stat(fd, name);
        uint64_t c = group_of(r)->count;

        pc_free(r);
        return c;
}

static pid_t helper(const char *const *argv) {
        return spawn_helper(NULL, 0, argv);
}

/* Run @f in a child that has become uid/gid NOBODY; returns its exit status. */
static int as_nobody(int (*f)(void *), void *userdata) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                        _exit(99);
                _exit(f(userdata));
        }
        return reap(pid);
}

static void test_lifecycle(void **state) {
        Harness *h = *state;
        Wg__V1__GroupInfo *info;
        Wg__V1__Response *r;
        struct timespec now;
        pid_t waiter, doer;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);

        r = pc_create(c, "build.42", 0, 2);
        info = group_of(r);
        assert_string_equal(info->name, "build.42");
        assert_int_equal(info->count, 2);
        assert_int_equal(info->generation, 0);
        assert_int_equal(info->owner, getuid());
        assert_int_equal(info->gid, getgid());
        assert_int_equal(info->mode, 0600);
        assert_int_equal(clock_gettime(CLOCK_REALTIME, &now), 0);
        assert_true(info->created_usec <= (uint64_t) now.tv_sec * 1000000 + 1000000);
        assert_true(info->created_usec + 60 * 1000000 >= (uint64_t) now.tv_sec * 1000000);
        pc_free(r);
        assert_int_equal(harness_stored(h, "build.42"), 1);

        /* Type=notify: the status says what wgd holds, and the watchdog is fed. */
        pthread_mutex_lock(&h->mutex);
        assert_non_null(strstr(h->status, "1 groups"));
        pthread_mutex_unlock(&h->mutex);
        for (unsigned i = 0;; i++) {
                unsigned pings;

                pthread_mutex_lock(&h->mutex);
                pings = h->n_watchdog;
                pthread_mutex_unlock(&h->mutex);
                if (pings >= 2)
                        break;
                assert_true(i < 200); /* 20 s, for pings due every 0.2 s */
                usleep(100 * 1000);
        }

        /* A program that opens it by name sees the same counter, and waits on it. */
        waiter = helper((const char *[]) { "named", "build.42", "0", "count:2", "wait:30000000", NULL });
        wait_until_futex_sleep(waiter);
        r = pc_stat(c, "build.42");
        assert_true(group_of(r)->futex_waiters);
        pc_free(r);

        /* A Wait through the protocol too, pending. */
        pc_wait_send(c, 7, "build.42", UINT64_MAX);

        /* One done through the protocol, one from another program's own mapping. */
        r = pc_add(c, "build.42", -1);
        assert_int_equal(group_of(r)->count, 1);
        pc_free(r);
        doer = helper((const char *[]) { "named", "build.42", "0", "done", NULL });
        assert_int_equal(reap(doer), 0);
        assert_int_equal(reap(waiter), 0);

        r = pc_recv(c, NULL);
        assert_true(r->id == 7);
        info = group_of(r);
        assert_int_equal(info->generation, 1);
        pc_free(r);

        /* List shows it; delete; gone from the list, the store and the name space. */
        r = pc_list(c, NULL);
        assert_int_equal(r->result_case, WG__V1__RESPONSE__RESULT_LIST);
        assert_int_equal(r->list->n_groups, 1);
        assert_string_equal(r->list->groups[0]->name, "build.42");
        assert_false(r->list->more);
        pc_free(r);

        pc_expect(pc_delete(c, "build.42"), 0);
        pc_expect(pc_stat(c, "build.42"), ENOENT);
        assert_int_equal(harness_stored(h, "build.42"), 0);
        r = pc_list(c, NULL);
        assert_int_equal(r->list->n_groups, 0);
        pc_free(r);

        /* Stopping answers pending Waits (ESHUTDOWN) and keeps groups in the store. */
        pc_expect(pc_create(c, "kept", 0, 1), 0);
        pc_wait_send(c, 8, "kept", UINT64_MAX);
        pc_expect(pc_stat(c, "kept"), 0);
        assert_int_equal(kill(h->pid, SIGTERM), 0);
        r = pc_recv(c, NULL);
        assert_true(r->id == 8);
        pc_expect(r, ESHUTDOWN);
        close(c);
        assert_int_equal(harness_stop(h, 0), 0);
        assert_int_equal(harness_stored(h, "kept"), 1);
        assert_true(h->stopping); /* STOPPING=1 came before the exit */
}

/* Deleting wakes every waiter with EIDRM: in wgd, and on the segment's futex in other programs. */
static void test_delete_wakes_waiters(void **state) {
        Harness *h = *state;
        Wg__V1__Response *r;
        pid_t waiter, holder;
        int c, c2;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "doomed", 0, 1), 0);

        waiter = helper((const char *[]) { "named", "doomed", "0", "wait=EIDRM", "done=EIDRM", NULL });
        wait_until_futex_sleep(waiter);
        c2 = pc_connect(h->socket_path);
        pc_wait_send(c2, 9, "doomed", 60 * 1000000);
        pc_expect(pc_stat(c2, "doomed"), 0); /* the Wait is in */

        pc_expect(pc_delete(c, "doomed"), 0);
        r = pc_recv(c2, NULL);
        assert_true(r->id == 9);
        pc_expect(r, EIDRM);
        assert_int_equal(reap(waiter), 0);
        close(c2);

        /* The name is free at once, for a new group that has nothing to do with the old one. */
        pc_expect(pc_create(c, "doomed", 0, 0), 0);
        holder = helper((const char *[]) { "named", "doomed", "0", "count:0", "add:1", "done", NULL });
        assert_int_equal(reap(holder), 0);

        close(c);
}

static void test_errors(void **state) {
        static const char *const bad_names[] = {
                "", ".hidden", "a/b", "a b", "naïve", "x\n",
                "0123456789012345678901234567890123456789012345678901234567890123456789",
        };
        Harness *h = *state;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Add add = WG__V1__ADD__INIT;
        Wg__V1__Create create = WG__V1__CREATE__INIT;
        int c;

        harness_start(h, (const char *[]) { "--idle-timeout=0", "--log-level=warning",
                                            "--max-waits-per-connection=2", "--max-groups=5", NULL });
        c = pc_connect(h->socket_path);

        for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
                pc_expect(pc_create(c, bad_names[i], 0, 0), EINVAL);
                pc_expect(pc_stat(c, bad_names[i]), EINVAL);
        }
        pc_expect(pc_create(c, "0123456789012345678901234567890123456789012345678901234567890123", 0, 0), 0);
        pc_expect(pc_create(c, "-_.x", 0, 0), 0);

        pc_expect(pc_stat(c, "missing"), ENOENT);
        pc_expect(pc_add(c, "missing", 1), ENOENT);
        pc_expect(pc_delete(c, "missing"), ENOENT);

        pc_expect(pc_create(c, "g", 0, 1), 0);
        pc_expect(pc_create(c, "g", 0, 1), EEXIST);
        pc_expect(pc_create(c, "m1", 0777, 0), EINVAL);
        pc_expect(pc_create(c, "m2", 01666, 0), EINVAL);
        pc_expect(pc_create(c, "big", 0, UINT64_C(0x80000000)), EOVERFLOW);
        pc_expect(pc_stat(c, "m1"), ENOENT); /* refused creates left nothing behind */

        /* exist_ok: the existing group, unchanged. */
        create.name = (char *) "g";
        create.has_exist_ok = create.exist_ok = true;
        create.has_count = true;
        create.count = 5;
        req.op_case = WG__V1__REQUEST__OP_CREATE;
        req.create = &create;
        {
                Wg__V1__Response *r = pc_call(c, &req, NULL);

                assert_int_equal(group_of(r)->count, 1);
                pc_free(r);
        }

        pc_expect(pc_add(c, "g", -2), ERANGE);
        pc_expect(pc_add(c, "g", INT64_C(0x7fffffff)), EOVERFLOW);
        pc_expect(pc_add(c, "g", INT64_MIN), ERANGE);
        assert_int_equal(count_through_wgd(c, "g"), 1);

        /* Add without a delta is a well-formed message with a field missing. */
        add.name = (char *) "g";
        req = (Wg__V1__Request) WG__V1__REQUEST__INIT;
        req.op_case = WG__V1__REQUEST__OP_ADD;
        req.add = &add;
        pc_expect(pc_call(c, &req, NULL), EINVAL);

        /* Protocol version: missing and unknown. */
        req = (Wg__V1__Request) WG__V1__REQUEST__INIT;
        req.has_id = true;
        req.id = 77;
        req.op_case = WG__V1__REQUEST__OP_ADD;
        req.add = &add;
        pc_send(c, &req);
        pc_expect(pc_recv(c, NULL), EPROTO);
        req.has_version = true;
        req.version = 2;
        pc_send(c, &req);
        pc_expect(pc_recv(c, NULL), EPROTO);

        /* No operation at all. */
        req = (Wg__V1__Request) WG__V1__REQUEST__INIT;
        pc_expect(pc_call(c, &req, NULL), EOPNOTSUPP);

        /* Waits: a try, a short timeout, the per-connection limit. */
        pc_wait_send(c, 1, "g", 0);
        pc_expect(pc_recv(c, NULL), ETIMEDOUT);
        pc_wait_send(c, 2, "g", 1000);
        pc_expect(pc_recv(c, NULL), ETIMEDOUT);
        pc_wait_send(c, 3, "g", UINT64_MAX);
        pc_wait_send(c, 4, "g", UINT64_MAX);
        pc_wait_send(c, 5, "g", UINT64_MAX);
        {
                Wg__V1__Response *r = pc_recv(c, NULL);

                assert_true(r->id == 5);
                pc_expect(r, EBUSY);
        }
        pc_expect(pc_add(c, "g", -1), 0);
        for (unsigned i = 0; i < 2; i++) {
                Wg__V1__Response *r = pc_recv(c, NULL);

                assert_true(r->id == 3 || r->id == 4);
                pc_expect(r, 0);
        }

        assert_int_equal(count_through_wgd(c, "g"), 0);

        /* A Wait for a generation that already ended is answered at once, even after a reuse. */
        pc_expect(pc_add(c, "g", 1), 0);
        {
                Wg__V1__Wait m = WG__V1__WAIT__INIT;
                Wg__V1__Response *r;

                m.name = (char *) "g";
                m.has_generation = true;
                m.generation = 0;
                req = (Wg__V1__Request) WG__V1__REQUEST__INIT;
                req.op_case = WG__V1__REQUEST__OP_WAIT;
                req.wait = &m;
                r = pc_call(c, &req, NULL);
                assert_int_equal(group_of(r)->count, 1);
                assert_int_equal(group_of(r)->generation, 1);
                pc_free(r);

                m.generation = 1; /* the current one: a try-wait times out */
                m.has_timeout_usec = true;
                m.timeout_usec = 0;
                pc_expect(pc_call(c, &req, NULL), ETIMEDOUT);
        }
        pc_expect(pc_add(c, "g", -1), 0);

        /* The limit on groups in all (--max-groups=5), freed by a delete. */
        pc_expect(pc_create(c, "e4", 0, 0), 0);
        pc_expect(pc_create(c, "e5", 0, 0), 0);
        pc_expect(pc_create(c, "e6", 0, 0), ENOSPC);
        pc_expect(pc_delete(c, "e5"), 0);
        pc_expect(pc_create(c, "e6", 0, 0), 0);
        close(c);
}

struct nobody_args {
        const char *socket_path;
};

static int nobody_checks(void *userdata) {
        struct nobody_args *a = userdata;
        Wg__V1__Response *r;
        wg *g;
        int c;

        c = pc_connect(a->socket_path);

        /* 0600: not for us, neither through wgd nor as a segment. */
        pc_expect(pc_stat(c, "private"), EACCES);
        pc_expect(pc_add(c, "private", 1), EACCES);
        pc_expect(pc_delete(c, "private"), EACCES);
        if (wg_open("private", 0, &g) != -EACCES)
                return 10;

        /* 0644: we may look and wait, not write. */
        r = pc_stat(c, "readable");
        if (pc_errnum(r) != 0)
                return 11;
        pc_free(r);
        pc_expect(pc_add(c, "readable", 1), EACCES);
        if (wg_open("readable", 0, &g) != -EACCES)
                return 12;

        /* 0666: everything but delete. */
        if (wg_open("public", 0, &g) != 0)
                return 13;
        if (wg_add(g, 1) != 0 || wg_done(g) != 0)
                return 14;
        wg_unref(g);
        pc_expect(pc_add(c, "public", 2), 0);
        pc_expect(pc_delete(c, "public"), EPERM);
        if (wg_unlink("public") != -EPERM)
                return 15;

        /* List shows what we may read, nothing else. */
        r = pc_list(c, NULL);
        if (r->result_case != WG__V1__RESPONSE__RESULT_LIST || r->list->n_groups != 2 ||
            strcmp(r->list->groups[0]->name, "public") != 0 || strcmp(r->list->groups[1]->name, "readable") != 0)
                return 16;
        pc_free(r);

        /* Our own groups, and the per-uid quota (wgd runs with --max-groups-per-user=3). */
        pc_expect(pc_create(c, "mine", 0, 0), 0);
        pc_expect(pc_create(c, "mine2", 0, 0), 0);
        pc_expect(pc_create(c, "mine3", 0, 0), 0);
        pc_expect(pc_create(c, "mine4", 0, 0), EDQUOT);
        if (wg_open("mine4", WG_CREATE, &g) != -EDQUOT)
                return 17;

        close(c);
        return 0;
}

static void test_other_uid(void **state) {
        Harness *h = *state;
        struct nobody_args args = { .socket_path = h->socket_path };
        Wg__V1__Response *r;
        int c;

        if (geteuid() != 0)
                skip_test("a second uid needs root");

        harness_start(h, (const char *[]) { "--idle-timeout=0", "--log-level=warning", "--max-groups-per-user=3",
                                            NULL });
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "private", 0600, 0), 0);
        pc_expect(pc_create(c, "readable", 0644 & 0666, 0), 0);
        pc_expect(pc_create(c, "public", 0666, 0), 0);

        assert_int_equal(as_nobody(nobody_checks, &args), 0);

        r = pc_stat(c, "public");
        assert_int_equal(group_of(r)->count, 2);
        pc_free(r);
        r = pc_stat(c, "mine");
        assert_int_equal(group_of(r)->owner, NOBODY);
        pc_free(r);

        /* Root may delete anybody's group; the quota is per uid, and freed by a delete. */
        pc_expect(pc_delete(c, "mine"), 0);
        pc_expect(pc_create(c, "root1", 0, 0), EDQUOT);
        pc_expect(pc_delete(c, "private"), 0);
        pc_expect(pc_create(c, "root1", 0, 0), 0);
        close(c);
}

static void test_connection_limit(void **state) {
        Harness *h = *state;
        Wg__V1__Response *r;
        int c[4];

        harness_start(h, (const char *[]) { "--idle-timeout=0", "--log-level=err", "--max-connections-per-user=3",
                                            NULL });
        for (unsigned i = 0; i < 3; i++) {
                c[i] = pc_connect(h->socket_path);
                pc_expect(pc_stat(c[i], "none"), ENOENT);
        }
        c[3] = pc_connect(h->socket_path);
        r = pc_recv(c[3], NULL);
        assert_true(r->id == 0);
        pc_expect(r, EUSERS);
        close(c[3]);

        /* One goes, another may come, once wgd has seen the close. */
        close(c[0]);
        proc_settle_sockets(h->pid, 3); /* the listener and two clients */
        c[0] = pc_connect(h->socket_path);
        pc_expect(pc_stat(c[0], "none"), ENOENT);
        for (unsigned i = 0; i < 3; i++)
                close(c[i]);
}

/*
 * Wait until wgd has taken in and let go of every connection made so far: the backlog is
 * first-in first-out, so once a fresh connection is answered all earlier ones were accepted,
 * and from then on the count of wgd's sockets can only fall, to the listener plus @keep.
 */
static void settle(Harness *h, unsigned keep) {
        int sync = pc_connect(h->socket_path);

        pc_expect(pc_stat(sync, "none"), ENOENT);
        proc_settle_sockets(h->pid, 2 + keep);
        close(sync);
        proc_settle_sockets(h->pid, 1 + keep);
}

/*
 * wgd's fds, less any that come and go: each watchdog ping (the harness sets WATCHDOG_USEC) opens
 * a socket for its sd_notify() for a moment. The least of a few looks 5 ms apart: a ping is
 * microseconds in 100 ms and more, a leaked fd is in every look.
 */
static unsigned steady_fd_count(pid_t pid) {
        unsigned least = proc_fd_count(pid);

        for (unsigned i = 1; i < 5; i++) {
                unsigned n;

                usleep(5 * 1000);
                n = proc_fd_count(pid);
                if (n < least)
                        least = n;
        }
        return least;
}

static void send_raw(int c, const void *buf, size_t len, int fd) {
        assert_int_equal(seqpacket_send(c, buf, len, fd, 0), 0);
}

/* Bad input of every kind: an error or a closed connection, never harm to anybody else. */
static void test_bad_input(void **state) {
        Harness *h = *state;
        static uint8_t big[WG_RECORD_MAX + 4096];
        Wg__V1__Response *r;
        unsigned fds_before, fds_after;
        unsigned long rss_before, rss_after;
        int c, bystander, pipefd[2];
        char byte;

        harness_start(h, quiet);
        bystander = pc_connect(h->socket_path);
        pc_expect(pc_create(bystander, "steady", 0, 3), 0);
        pc_wait_send(bystander, 42, "steady", UINT64_MAX);

        /* Warm up (a timed Wait makes sd-event open its timerfd), then take the baseline. */
        for (unsigned i = 0; i < 50; i++)
                close(pc_connect(h->socket_path));
        pc_wait_send(bystander, 41, "steady", 1);
        pc_expect(pc_recv(bystander, NULL), ETIMEDOUT);
        settle(h, 1);
        fds_before = steady_fd_count(h->pid);
        rss_before = proc_rss_kib(h->pid);

        c = pc_connect(h->socket_path);

        /* Garbage, a truncated message, a record over the cap: EBADMSG, and the connection lives. */
        send_raw(c, "\xff\xff\xff\xff\xff", 5, -1);
        r = pc_recv(c, NULL);
        assert_true(r->id == 0);
        pc_expect(r, EBADMSG);
        send_raw(c, "\x08\x01\x10", 3, -1);
        pc_expect(pc_recv(c, NULL), EBADMSG);
        memset(big, 0x08, sizeof(big));
        send_raw(c, big, sizeof(big), -1);
        pc_expect(pc_recv(c, NULL), EBADMSG);

        /* A client that sends fds: refused, and wgd does not keep them. */
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        {
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                uint8_t buf[64];
                size_t len;

                req.has_version = true;
                req.version = 1;
                req.op_case = WG__V1__REQUEST__OP_LIST;
                req.list = &(Wg__V1__List) WG__V1__LIST__INIT;
                len = wg__v1__request__pack(&req, buf);
                send_raw(c, buf, len, pipefd[1]);
        }
        pc_expect(pc_recv(c, NULL), EBADMSG);
        close(pipefd[1]);
        /* wgd closed its copy: the pipe's last writer is gone, so the reader sees EOF. */
        assert_int_equal(read(pipefd[0], &byte, 1), 0);
        close(pipefd[0]);

        /* Still served after all that. */
        pc_expect(pc_stat(c, "steady"), 0);

        /* An empty record reads as end-of-file: wgd hangs up. */
        send_raw(c, "", 0, -1);
        {
                struct pollfd p = { .fd = c, .events = POLLIN };

                assert_int_equal(poll(&p, 1, 20000), 1);
                assert_int_equal(recv(c, &byte, 1, 0), 0);
        }
        close(c);

        /* Clients that go away mid-request: with a Wait pending, and with responses unread. */
        for (unsigned i = 0; i < 20; i++) {
                c = pc_connect(h->socket_path);
                pc_wait_send(c, 1, "steady", UINT64_MAX);
                pc_wait_send(c, 2, "steady", 5000000);
                for (unsigned j = 0; j < 10; j++) {
                        Wg__V1__Request req = WG__V1__REQUEST__INIT;
                        Wg__V1__Stat st = WG__V1__STAT__INIT;

                        st.name = (char *) "steady";
                        req.has_version = true;
                        req.version = 1;
                        req.op_case = WG__V1__REQUEST__OP_STAT;
                        req.stat = &st;
                        pc_send(c, &req);
                }
                close(c);
        }

        /* A thousand connections opened and dropped. */
        for (unsigned i = 0; i < 1000; i++)
                close(pc_connect(h->socket_path));

        settle(h, 1);
        fds_after = steady_fd_count(h->pid);
        pc_expect(pc_stat(bystander, "steady"), 0);
        rss_after = proc_rss_kib(h->pid);
        if (fds_after != fds_before) {
                char cmd[64];

                snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int) h->pid);
                (void) system(cmd);
                fail_msg("wgd had %u fds before, and now %u", fds_before, fds_after);
        }
        /*
         * Under valgrind or ASan the resident size is mostly theirs (shadow memory, quarantine);
         * their own leak checks cover wgd there.
         */
        if (!running_checked() && rss_after > rss_before + 1024)
                fail_msg("wgd grew from %lu to %lu KiB", rss_before, rss_after);

        /* The bystander's Wait is still there, and still works. */
        pc_expect(pc_add(bystander, "steady", -3), 0);
        r = pc_recv(bystander, NULL);
        assert_true(r->id == 42);
        pc_expect(r, 0);
        close(bystander);
}

/* Out of fds: wgd stops accepting for a while instead of spinning, and serves again after. */
static void test_out_of_fds(void **state) {
        enum { N = 40 };
        Harness *h = *state;
        unsigned long before, after;
        int c[N];

        /* Valgrind keeps fds of its own within the limit: it cannot start wgd with so few. */
        if (getenv("WG_TEST_SLOW"))
                skip_test("valgrind cannot start wgd with 24 fds");

        h->nofile = 24;
        harness_start(h, (const char *[]) { "--idle-timeout=0", "--log-level=err", NULL });
        for (unsigned i = 0; i < N; i++)
                c[i] = pc_connect(h->socket_path); /* into the backlog, past what wgd can take */
        usleep(200 * 1000);

        /* A spinning accept() loop would burn most of this half second; pausing, nearly none. */
        before = proc_cpu_ticks(h->pid);
        usleep(500 * 1000);
        after = proc_cpu_ticks(h->pid);
        if (after - before >= (unsigned long) sysconf(_SC_CLK_TCK) / 4)
                fail_msg("wgd used %lu ticks in 0.5 s while out of fds", after - before);

        for (unsigned i = 0; i < N; i++)
                close(c[i]);
        c[0] = pc_connect(h->socket_path);
        pc_expect(pc_stat(c[0], "none"), ENOENT);
        close(c[0]);
}

/*
 * wgd killed and started again with what the fdstore kept: every group comes back with its
 * count and metadata, and programs holding a mapping keep working while wgd is gone.
 */
static void test_restart(void **state) {
        Harness *h = *state;
        Wg__V1__GroupInfo *info;
        Wg__V1__Response *r;
        pid_t holder, waiter;
        int c, mapped[2], go[2];
        char byte;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "job", 0, 3), 0);
        pc_expect(pc_create(c, "shared.one", 0666, 0), 0);
        pc_expect(pc_create(c, "gone-later", 0, 7), 0);
        assert_int_equal(harness_stored(h, "job"), 1);

        waiter = helper((const char *[]) { "named", "job", "0", "wait:60000000", NULL });
        /* The holder says when it has its mapping, and does its dones when told: after the kill. */
        assert_int_equal(pipe2(mapped, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        holder = spawn_helper((int[]) { mapped[1], go[0] }, 2,
                              (const char *[]) { "named", "job", "0", "tally:3", "block:4", "done", "done", NULL });
        close(mapped[1]);
        close(go[0]);
        wait_until_futex_sleep(waiter);
        assert_int_equal(read(mapped[0], &byte, 1), 1);
        close(mapped[0]);
        close(c);

        assert_int_equal(harness_stop(h, SIGKILL), 128 + SIGKILL);
        /* wgd is gone: the holder's dones still reach the segment. */
        close(go[1]);
        assert_int_equal(reap(holder), 0);

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        r = pc_stat(c, "job");
        info = group_of(r);
        assert_int_equal(info->count, 1);
        assert_int_equal(info->mode, 0600);
        assert_int_equal(info->owner, getuid());
        pc_free(r);
        r = pc_stat(c, "shared.one");
        assert_int_equal(group_of(r)->mode, 0666);
        pc_free(r);
        assert_int_equal(count_through_wgd(c, "gone-later"), 7);

        /* The waiter from before the restart is released by a done after it. */
        pc_expect(pc_add(c, "job", -1), 0);
        assert_int_equal(reap(waiter), 0);

        /* Deleted after a restart: gone from the store, and so after the next restart. */
        pc_expect(pc_delete(c, "gone-later"), 0);
        assert_int_equal(harness_stored(h, "gone-later"), 0);
        close(c);
        assert_int_equal(harness_stop(h, SIGTERM), 0);

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_stat(c, "gone-later"), ENOENT);
        r = pc_stat(c, "job");
        assert_int_equal(group_of(r)->generation, 1);
        pc_free(r);
        r = pc_list(c, NULL);
        assert_int_equal(r->list->n_groups, 2);
        pc_free(r);
        close(c);
}

/*
 * More groups with Waits than one watcher thread can take (127): all are seen. (Under valgrind,
 * which lacks futex_waitv(), wgd watches with a thread per group: fewer groups there.)
 */
static void test_many_watched_groups(void **state) {
        enum { MAX = 300 };
        const unsigned N = getenv("WG_TEST_SLOW") ? 40 : MAX;
        Harness *h = *state;
        int c[5];
        wg *g[MAX];

        harness_start(h, quiet);
        for (unsigned i = 0; i < 5; i++)
                c[i] = pc_connect(h->socket_path);
        for (unsigned i = 0; i < N; i++) {
                char name[16];

                snprintf(name, sizeof(name), "w%03u", i);
                assert_int_equal(wg_open(name, WG_CREATE, &g[i]), 0);
                assert_int_equal(wg_add(g[i], 1), 0);
                pc_wait_send(c[i % 5], i + 1, name, UINT64_MAX);
        }

        /* Complete them from our own mappings, in reverse: wgd hears of it only via the futexes. */
        for (unsigned i = N; i-- > 0;)
                assert_int_equal(wg_done(g[i]), 0);
        for (unsigned i = 0; i < N; i++) {
                Wg__V1__Response *r = pc_recv(c[i % 5], NULL);

                assert_true(r->id >= 1 && r->id <= N && (r->id - 1) % 5 == i % 5);
                pc_expect(r, 0);
        }
        for (unsigned i = 0; i < N; i++)
                wg_unref(g[i]);
        for (unsigned i = 0; i < 5; i++)
                close(c[i]);
}

/*
 * A holder that corrupts the count's half of the state word (bit 31, which no correct writer
 * sets) and wakes the futex: a pending protocol Wait learns it (EUCLEAN), however the write falls
 * against wgd's arming of its watch. When wgd's watcher compared only the futex half, a write
 * between wgd's look and its thread's sleep went unseen and the Wait hung: so, many rounds,
 * half of them racing the Wait, half once wgd is known to watch.
 */
static void test_scribbled_count(void **state) {
        enum { ROUNDS = 40 };
        Harness *h = *state;
        wg *g;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "scribbled", 0, 1), 0);
        assert_int_equal(wg_open("scribbled", 0, &g), 0);

        for (unsigned i = 0; i < ROUNDS; i++) {
                Wg__V1__Response *r;

                pc_wait_send(c, i + 1, "scribbled", UINT64_MAX);
                if (i % 2) {
                        /* Answered after the Wait was taken in: wgd watches the word now. */
                        r = pc_stat(c, "scribbled");
                        assert_int_equal(group_of(r)->waiters, 1);
                        pc_free(r);
                }
                __atomic_fetch_or(g->state, WG_STATE_COUNT_BAD, __ATOMIC_SEQ_CST);
                futex_wake_all(wg_state_futex(g->state), FUTEX_SHARED);

                r = pc_recv(c, NULL);
                assert_int_equal(r->id, i + 1);
                pc_expect(r, EUCLEAN);
                __atomic_fetch_and(g->state, ~WG_STATE_COUNT_BAD, __ATOMIC_SEQ_CST);
        }

        wg_unref(g);
        close(c);
}

/*
 * The watcher's fallback, as on a kernel without futex_waitv() (valgrind's pass runs it too):
 * a thread per watched group, which sleeps on the group's word, or on its control word while it
 * has nothing armed, with no timeout there. Its wake must reach it in the scope it sleeps in: a
 * wake in the other scope (the watcher once woke a word slept on as shared with a private wake,
 * which its 100 ms slices hid as a delay) would leave the thread asleep for good, and the second
 * round of Waits below would hang.
 */
static void test_watcher_fallback(void **state) {
        enum { ROUNDS = 5, GROUPS = 8 };
        Harness *h = *state;
        wg *g[GROUPS];
        int c;

        assert_int_equal(setenv("WGD_WATCHER_FALLBACK", "1", 1), 0);
        harness_start(h, quiet);
        assert_int_equal(unsetenv("WGD_WATCHER_FALLBACK"), 0);
        c = pc_connect(h->socket_path);
        for (unsigned i = 0; i < GROUPS; i++) {
                char name[16];

                snprintf(name, sizeof(name), "fb%u", i);
                assert_int_equal(wg_open(name, WG_CREATE, &g[i]), 0);
        }

        /* Each round: a Wait on every group, ended from our mappings; the threads are reused. */
        for (unsigned round = 0; round < ROUNDS; round++) {
                for (unsigned i = 0; i < GROUPS; i++) {
                        char name[16];

                        snprintf(name, sizeof(name), "fb%u", i);
                        assert_int_equal(wg_add(g[i], 1), 0);
                        pc_wait_send(c, round * GROUPS + i + 1, name, UINT64_MAX);
                }
                for (unsigned i = GROUPS; i-- > 0;)
                        assert_int_equal(wg_done(g[i]), 0);
                for (unsigned i = 0; i < GROUPS; i++)
                        pc_expect(pc_recv(c, NULL), 0);
        }

        for (unsigned i = 0; i < GROUPS; i++)
                wg_unref(g[i]);
        close(c);
}

/* Without systemd: wgd binds the path itself, refuses to take over a live socket, cleans up. */
static void test_self_bound(void **state) {
        Harness *h = *state;
        char path[400];
        pid_t first, second;
        wg *g;
        int c;

        snprintf(path, sizeof(path), "%s/own.sock", h->dir);
        first = spawn_wgd((const char *[]) { "--log-level=warning", "--socket", path, NULL });
        c = connect_retry(path);
        pc_expect(pc_create(c, "alone", 0, 1), 0);
        close(c);

        assert_int_equal(setenv("WGD_SOCKET", path, 1), 0);
        assert_int_equal(wg_open("alone", 0, &g), 0);
        assert_int_equal(wg_done(g), 0);
        wg_unref(g);

        second = spawn_wgd((const char *[]) { "--log-level=emerg", "--socket", path, NULL });
        assert_int_equal(reap(second), 1);

        assert_int_equal(kill(first, SIGTERM), 0);
        assert_int_equal(reap(first), 0);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(wg_open("alone", 0, &g), -ECONNREFUSED);
        assert_int_equal(setenv("WGD_SOCKET", h->socket_path, 1), 0);
}

/* systemd's own socket activation: the first connection starts wgd and is served; idle, it exits. */
static void test_socket_activation(void **state) {
        Harness *h = *state;
        const char *sa = "/usr/bin/systemd-socket-activate";
        char path[400], listen_arg[420];
        pid_t pid;
        int c;

        if (access(sa, X_OK) < 0)
                skip_test("no systemd-socket-activate");

        snprintf(path, sizeof(path), "%s/activated.sock", h->dir);
        snprintf(listen_arg, sizeof(listen_arg), "--listen=%s", path);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                const char *wgd = getenv("WG_WGD");

                closefrom(3);
                execl(sa, sa, "--seqpacket", listen_arg, "--fdname=control", wgd, "--idle-timeout=1",
                      "--log-level=warning", (char *) NULL);
                _exit(127);
        }

        c = connect_retry(path);
        pc_expect(pc_create(c, "activated", 0, 0), 0);
        pc_expect(pc_stat(c, "activated"), 0);

        /* A group keeps it alive past the idle timeout, with nobody connected. */
        close(c);
        usleep(1500 * 1000);
        assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);

        c = pc_connect(path);
        pc_expect(pc_delete(c, "activated"), 0);
        close(c);
        assert_int_equal(reap(pid), 0);
}

/*
 * wgd's log escapes what others chose: here an fd name from "systemd" (the harness) with an
 * escape sequence, an 8-bit CSI in UTF-8 (U+009B) and a byte that is not UTF-8 (sd-event's
 * parser of LISTEN_FDNAMES takes a backslash for its own escapes, so none is tried here).
 * Nothing of it may reach a terminal that shows the log: every byte of those, as \xNN.
 */
static void test_log_escapes(void **state) {
        Harness *h = *state;
        static const char name[] = "x\033[2J\302\233my\377";
        HarnessOptions opts = {};
        char path[400], log[4096];
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "%s/wgd.log", h->dir);
        opts.stderr_path = path;
        snprintf(h->store[0].name, sizeof(h->store[0].name), "%s", name);
        h->store[0].fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(h->store[0].fd >= 0);
        h->n_store = 1;
        harness_spawn(h, (const char *const[]) { "--idle-timeout=0", "--log-level=warning", NULL }, &opts);
        assert_int_equal(harness_wait_ready(h, 60000, NULL), 0);

        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        n = read(fd, log, sizeof(log) - 1);
        close(fd);
        assert_true(n > 0);
        log[n] = 0;
        if (!strstr(log, "x\\x1b[2J\\xc2\\x9bmy\\xff"))
                fail_msg("wgd's log does not show the name escaped: %s", log);
        for (ssize_t i = 0; i < n; i++)
                if (((unsigned char) log[i] < 0x20 && log[i] != '\n') || (unsigned char) log[i] >= 0x7f)
                        fail_msg("wgd's log holds byte 0x%02x: %s", (unsigned char) log[i], log);
        assert_int_equal(harness_stop(h, SIGTERM), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_lifecycle, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_delete_wakes_waiters, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_errors, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_other_uid, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_connection_limit, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_bad_input, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_restart, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_out_of_fds, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_many_watched_groups, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_scribbled_count, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_watcher_fallback, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_self_bound, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_socket_activation, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_log_escapes, harness_setup, harness_teardown),
        };

        if (getenv("WG_TEST_FILTER"))
                cmocka_set_test_filter(getenv("WG_TEST_FILTER"));
        return cmocka_run_group_tests_name("wgd", tests, NULL, NULL);
}
