/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One user cannot hurt another. A second uid (nobody, forked and dropped from root, as a
 * hostile local user would be) attacks a real wgd with what wgd's defaults let any user do, and
 * the test asserts the bound that wgd(8) documents, while root keeps being served:
 *
 *  - memory: many connections ask for large answers (List) and never read them;
 *  - descriptors: many connections ask for segments (Open) and never read them;
 *  - CPU: as many Waits as the limits allow, on many groups.
 *
 * The attacker tells the test when wgd has read every request it sent (SIOCOUTQ of each of its
 * sockets is zero, or wgd hung up on it), so the test looks at wgd after the whole attack went
 * in, not after however much of it the scheduler let through. Root's create, status and wait are
 * then answered with the attacker's connections still open; how long each took is printed, not
 * asserted (the machine may be loaded, or running valgrind).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sockios.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "group-name.h"
#include "test-util.h"
#include "wgd-harness.h"

#define NOBODY 65534

/* The defaults of wgd(8) that these tests hold wgd to. */
#define QUEUED_PER_UID (8u << 20)

static bool running_checked(void) {
#if defined(__SANITIZE_ADDRESS__)
        return true;
#else
        return getenv("WG_TEST_SLOW") != NULL;
#endif
}

/* What the attacker does on each connection. */
typedef enum Attack {
        ATTACK_LIST,
        ATTACK_OPEN,
        ATTACK_WAIT,
} Attack;

typedef struct Attacker {
        const char *socket_path;
        Attack attack;
        unsigned connections;
        unsigned requests; /* per connection */
        unsigned groups;   /* ATTACK_WAIT: spread over g000 ... */
        int report;        /* write end: one byte when the attack is in */
        int hold;          /* read end: the attack lasts until this closes */
} Attacker;

/* The attacker's side cannot use cmocka's asserts: plain code, exit codes. */
static int raw_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

static int raw_send(int fd, Wg__V1__Request *req) {
        uint8_t buf[512];
        size_t len;

        req->has_version = true;
        req->version = 1;
        len = wg__v1__request__get_packed_size(req);
        if (len > sizeof(buf))
                return -EMSGSIZE;
        wg__v1__request__pack(req, buf);
        return send(fd, buf, len, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int attack_one(int fd, const Attacker *a, unsigned conn, unsigned i) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__List list = WG__V1__LIST__INIT;
        Wg__V1__Open open = WG__V1__OPEN__INIT;
        Wg__V1__Wait wait = WG__V1__WAIT__INIT;
        char name[16];

        req.has_id = true;
        req.id = i + 1;
        switch (a->attack) {
        case ATTACK_LIST:
                req.op_case = WG__V1__REQUEST__OP_LIST;
                req.list = &list;
                break;
        case ATTACK_OPEN:
                open.name = (char *) "nobodys";
                req.op_case = WG__V1__REQUEST__OP_OPEN;
                req.open = &open;
                break;
        case ATTACK_WAIT:
                snprintf(name, sizeof(name), "g%03u", (conn * a->requests + i) % a->groups);
                wait.name = name;
                req.op_case = WG__V1__REQUEST__OP_WAIT;
                req.wait = &wait;
                break;
        }
        return raw_send(fd, &req);
}

#define ATTACK_CONNECTIONS_MAX 256

static int attacker_main(const Attacker *a) {
        uint64_t deadline = monotonic_usec() + 120 * UINT64_C(1000000);
        int fds[ATTACK_CONNECTIONS_MAX];
        char c = 0;

        if (a->connections > ATTACK_CONNECTIONS_MAX)
                return 10;
        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                return 11;

        if (a->attack == ATTACK_OPEN) {
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                Wg__V1__Create create = WG__V1__CREATE__INIT;
                uint8_t buf[512];
                int fd = raw_connect(a->socket_path);

                /* A group of our own, which we may open: no answer read but this one. */
                create.name = (char *) "nobodys";
                req.op_case = WG__V1__REQUEST__OP_CREATE;
                req.create = &create;
                if (fd < 0 || raw_send(fd, &req) < 0 || recv(fd, buf, sizeof(buf), 0) <= 0)
                        return 12;
                close(fd);
        }

        for (unsigned i = 0; i < a->connections; i++) {
                fds[i] = raw_connect(a->socket_path);
                if (fds[i] < 0)
                        return 13;
        }
        /* Round-robin, so that no connection is done before the others begin. */
        for (unsigned i = 0; i < a->requests; i++)
                for (unsigned conn = 0; conn < a->connections; conn++)
                        if (fds[conn] >= 0 && attack_one(fds[conn], a, conn, i) < 0) {
                                /* wgd hung up on this one (it went past its share): that is allowed. */
                                close(fds[conn]);
                                fds[conn] = -1;
                        }
        for (unsigned conn = 0; conn < a->connections; conn++)
                while (fds[conn] >= 0 && !sent_all_read(fds[conn])) {
                        if (monotonic_usec() > deadline)
                                return 14;
                        sleep_usec(1000);
                }

        if (write(a->report, &c, 1) != 1)
                return 15;
        (void) read(a->hold, &c, 1); /* until the test is done looking */
        return 0;
}

typedef struct AttackRun {
        pid_t pid;
        int hold; /* close it to end the attack */
} AttackRun;

static AttackRun attack_start(Attacker *a) {
        int report[2], hold[2];
        AttackRun run;
        char c;

        assert_int_equal(pipe2(report, O_CLOEXEC), 0);
        assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
        run.pid = fork();
        assert_true(run.pid >= 0);
        if (run.pid == 0) {
                close(report[0]);
                close(hold[1]);
                a->report = report[1];
                a->hold = hold[0];
                _exit(attacker_main(a));
        }
        close(report[1]);
        close(hold[0]);
        /* In once every request it sent was read by wgd (or refused with a hang-up). */
        if (read(report[0], &c, 1) != 1)
                fail_msg("the attacker gave up: exit %d", reap(run.pid));
        close(report[0]);
        run.hold = hold[1];
        return run;
}

static void attack_end(AttackRun *run) {
        close(run->hold);
        assert_int_equal(reap(run->pid), 0);
}

/* Root's everyday requests, while the attack holds: each answered, and how fast is printed. */
static void root_is_served(Harness *h, const char *what) {
        uint64_t t0, t1, t2, t3;
        Wg__V1__Response *r;
        char name[32];
        int c;

        snprintf(name, sizeof(name), "root-%s", what);
        t0 = monotonic_usec();
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, name, 0, 1), 0);
        t1 = monotonic_usec();
        r = pc_stat(c, name);
        pc_expect(r, 0);
        t2 = monotonic_usec();
        pc_wait_send(c, 99, name, UINT64_MAX);
        pc_expect(pc_add(c, name, -1), 0);
        r = pc_recv(c, NULL);
        assert_int_equal(r->id, 99);
        pc_expect(r, 0);
        t3 = monotonic_usec();
        pc_expect(pc_delete(c, name), 0);
        close(c);
        printf("# during the %s attack: root's create %.1f ms, status %.1f ms, wait %.1f ms\n",
               what,
               (double) (t1 - t0) / 1000,
               (double) (t2 - t1) / 1000,
               (double) (t3 - t2) / 1000);
}

static const char *const defaults[] = { "--idle-timeout=0", "--log-level=err", NULL };

/*
 * Memory: 20 connections ask for 100 Lists each, 37 KiB apiece, and read none: 70 MiB of
 * answers, where one uid's share of queued answers is 8 MiB. wgd queues up to the share, hangs up
 * on connections past it, and nobody else notices.
 */
static void test_unread_answers(void **state) {
        enum { GROUPS = 300 };
        Harness *h = *state;
        Attacker a = { .attack = ATTACK_LIST, .connections = 20, .requests = 100 };
        unsigned long before, after;
        AttackRun run;
        int c;

        if (geteuid() != 0)
                skip_test("a second uid needs root");

        harness_start(h, defaults);
        a.socket_path = h->socket_path;
        c = pc_connect(h->socket_path);
        for (unsigned i = 0; i < GROUPS; i++) {
                char name[WG_NAME_MAX + 1];

                /* Long names, readable by all: each List answer is as large as it may be. */
                snprintf(name, sizeof(name), "%03u-%060u", i, 0u);
                pc_expect(pc_create(c, name, 0644, 0), 0);
        }
        before = proc_rss_kib(h->pid);

        run = attack_start(&a);
        after = proc_rss_kib(h->pid);
        printf("# wgd's resident memory: %lu KiB before, %lu KiB with the attack in\n", before, after);
        /* ASan's quarantine and valgrind keep freed memory: resident size says nothing there. */
        if (!running_checked() && after > before + (QUEUED_PER_UID + (16u << 20)) / 1024)
                fail_msg(
                        "wgd grew from %lu to %lu KiB: more than one uid's share of queued answers",
                        before,
                        after);
        root_is_served(h, "memory");
        attack_end(&run);
        close(c);
}

/*
 * Descriptors: 20 connections ask for 300 segments each and read none. A queued answer holds a
 * reference to the mapping, not a descriptor, so wgd's fd table does not grow with them.
 */
static void test_unread_segments(void **state) {
        Harness *h = *state;
        Attacker a = { .attack = ATTACK_OPEN, .connections = 20, .requests = 300 };
        unsigned before, after;
        AttackRun run;

        if (geteuid() != 0)
                skip_test("a second uid needs root");

        harness_start(h, defaults);
        a.socket_path = h->socket_path;
        before = proc_fd_count(h->pid);

        run = attack_start(&a);
        after = proc_fd_count(h->pid);
        printf("# wgd's descriptors: %u before, %u with the attack in\n", before, after);
        /* One per connection, one for the attacker's group, and a few for sd-event. */
        if (after > before + a.connections + 1 + 8)
                fail_msg(
                        "wgd went from %u to %u descriptors for %u connections",
                        before,
                        after,
                        a.connections);
        root_is_served(h, "descriptor");
        attack_end(&run);
}

/*
 * CPU: 200 connections with 64 Waits each on 200 groups. Arming a Wait touches its group alone,
 * so the attack costs wgd linear time, and root is answered at once.
 */
static void test_many_waits(void **state) {
        Harness *h = *state;
        Attacker a = { .attack = ATTACK_WAIT, .requests = 64 };
        unsigned long ticks_before, ticks_after;
        Wg__V1__Response *r;
        AttackRun run;
        int c;

        if (geteuid() != 0)
                skip_test("a second uid needs root");
        a.connections = running_checked() ? 40 : 200;
        a.groups = running_checked() ? 40 : 200;

        harness_start(h, defaults);
        a.socket_path = h->socket_path;
        c = pc_connect(h->socket_path);
        for (unsigned i = 0; i < a.groups; i++) {
                char name[16];

                snprintf(name, sizeof(name), "g%03u", i);
                pc_expect(pc_create(c, name, 0644, 1), 0);
        }
        ticks_before = proc_cpu_ticks(h->pid);

        run = attack_start(&a);
        ticks_after = proc_cpu_ticks(h->pid);
        printf("# %u Waits took wgd %lu clock ticks\n",
               a.connections * a.requests,
               ticks_after - ticks_before);
        r = pc_stat(c, "g000");
        assert_int_equal(r->group->waiters, a.connections * a.requests / a.groups);
        pc_free(r);
        root_is_served(h, "Wait");

        /* Every Wait is answered when its group completes. */
        for (unsigned i = 0; i < a.groups; i++) {
                char name[16];

                snprintf(name, sizeof(name), "g%03u", i);
                pc_expect(pc_add(c, name, -1), 0);
                r = pc_stat(c, name);
                assert_int_equal(r->group->count, 0);
                pc_free(r);
        }
        attack_end(&run);
        close(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_unread_answers, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_unread_segments, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_many_waits, harness_setup, harness_teardown),
        };

        if (getenv("WG_TEST_FILTER"))
                cmocka_set_test_filter(getenv("WG_TEST_FILTER"));
        return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}
