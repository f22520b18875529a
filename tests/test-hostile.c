/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One user cannot hurt another. A second uid (nobody, forked and dropped from root, as a
 * hostile local user would be) attacks a real wgd with what wgd's limits let any user do, and
 * the test asserts the bound that wgd(8) documents, while root keeps being served:
 *
 *  - memory: many connections ask for large answers (List) and never read them, against one
 *    uid's share of queued answers and against the total;
 *  - descriptors: many connections ask for segments (Open) and never read them, with wgd run as
 *    the shipped unit runs it (no capabilities: the kernel then refuses every send of an fd once
 *    wgd has RLIMIT_NOFILE of them in flight); and groups made, opened and deleted in a loop,
 *    whose segments only the unread answers keep;
 *  - CPU: as many Waits as the limits allow, on many groups; then root's Done, Delete, member
 *    death and connection close, each of which must look at its own group only.
 *
 * Root's create, status, open and wait are answered within a second (three under ASan, twenty
 * under valgrind) while the
 * attacker is still sending, and again once all of it went in: the attacker says when it has
 * sent its first round, and when wgd has read every request it sent (SIOCOUTQ of each of its
 * sockets is zero, or wgd hung up on it), so that the test looks at wgd after the whole attack,
 * not after however much of it the scheduler let through.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "group-name.h"
#include "macro.h"
#include "test-util.h"
#include "wgd-harness.h"

#define NOBODY 65534

/* The defaults of wgd(8) that these tests hold wgd to. */
#define QUEUED_PER_UID (8u << 20)

/* How much slower wgd runs here than in a plain build: ASan about 3 times, valgrind 20 to 50. */
static unsigned slowdown(void) {
#if defined(__SANITIZE_ADDRESS__)
        return 3;
#else
        return getenv("WG_TEST_SLOW") ? 20 : 1;
#endif
}

/* How long root may wait for an answer during an attack: a second, in a plain build. */
#define SERVED_USEC (slowdown() * UINT64_C(1000000))

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
        ATTACK_OPEN,  /* its own group, which it may open */
        ATTACK_CHURN, /* create, open, delete: a new group each time, kept only by the answer */
        ATTACK_WAIT,
} Attack;

typedef struct Attacker {
        const char *socket_path;
        Attack attack;
        unsigned connections;
        unsigned requests; /* per connection */
        unsigned groups;   /* ATTACK_WAIT: spread over g000 ... */
        int report;        /* write end: 'S' when the first round went out, 'I' when all is in */
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
        Wg__V1__Create create = WG__V1__CREATE__INIT;
        Wg__V1__Delete delete = WG__V1__DELETE__INIT;
        Wg__V1__Wait wait = WG__V1__WAIT__INIT;
        char name[32];

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
        case ATTACK_CHURN:
                snprintf(name, sizeof(name), "c%u-%u", conn, i / 3);
                if (i % 3 == 0) {
                        create.name = name;
                        req.op_case = WG__V1__REQUEST__OP_CREATE;
                        req.create = &create;
                } else if (i % 3 == 1) {
                        open.name = name;
                        req.op_case = WG__V1__REQUEST__OP_OPEN;
                        req.open = &open;
                } else {
                        delete.name = name;
                        req.op_case = WG__V1__REQUEST__OP_DELETE;
                        req.delete_ = &delete;
                }
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

#define ATTACK_CONNECTIONS_MAX 1024

static int attacker_main(const Attacker *a) {
        uint64_t deadline = monotonic_usec() + 120 * UINT64_C(1000000);
        int fds[ATTACK_CONNECTIONS_MAX];
        char c = 0;

        if (a->connections > ATTACK_CONNECTIONS_MAX)
                return 10;
        /* Room for the connections, raised while still root (valgrind does not let it: fewer there). */
        (void) setrlimit(RLIMIT_NOFILE, &(struct rlimit) { .rlim_cur = 4096, .rlim_max = 4096 });
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
        for (unsigned i = 0; i < a->requests; i++) {
                for (unsigned conn = 0; conn < a->connections; conn++)
                        if (fds[conn] >= 0 && attack_one(fds[conn], a, conn, i) < 0) {
                                /* wgd hung up on this one (it went past its share): that is allowed. */
                                close(fds[conn]);
                                fds[conn] = -1;
                        }
                if (i == 0 && write(a->report, "S", 1) != 1)
                        return 15;
        }
        for (unsigned conn = 0; conn < a->connections; conn++)
                while (fds[conn] >= 0 && !sent_all_read(fds[conn])) {
                        if (monotonic_usec() > deadline)
                                return 14;
                        sleep_usec(1000);
                }

        /* How many connections wgd hung up on: closed here, or shut down by wgd. */
        uint32_t dropped = 0;
        for (unsigned conn = 0; conn < a->connections; conn++) {
                struct pollfd p = { .fd = fds[conn], .events = POLLRDHUP };

                if (fds[conn] < 0 || (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP))))
                        dropped++;
        }
        if (write(a->report, "I", 1) != 1 || write(a->report, &dropped, sizeof(dropped)) != sizeof(dropped))
                return 15;
        (void) read(a->hold, &c, 1); /* until the test is done looking */
        return 0;
}

typedef struct AttackRun {
        pid_t pid;
        int report; /* read end: 'S', then 'I' and the number of connections dropped */
        int hold;   /* close it to end the attack */
        uint32_t dropped;
} AttackRun;

static AttackRun attack_start(Attacker *a) {
        int report[2], hold[2];
        AttackRun run = {};
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
        run.report = report[0];
        run.hold = hold[1];
        if (read(run.report, &c, 1) != 1 || c != 'S')
                fail_msg("the attacker gave up: exit %d", reap(run.pid));
        return run;
}

/* Whether every request of the attack went in; a dead attacker fails the test. */
static bool attack_in(AttackRun *run, int timeout_msec) {
        struct pollfd p = { .fd = run->report, .events = POLLIN };
        char c;

        if (poll(&p, 1, timeout_msec) == 0)
                return false;
        if (read(run->report, &c, 1) != 1 || c != 'I' ||
            read(run->report, &run->dropped, sizeof(run->dropped)) != sizeof(run->dropped))
                fail_msg("the attacker gave up: exit %d", reap(run->pid));
        return true;
}

static void attack_end(AttackRun *run) {
        close(run->report);
        close(run->hold);
        assert_int_equal(reap(run->pid), 0);
}

static void check_served(const char *what, const char *op, uint64_t usec) {
        if (usec > SERVED_USEC)
                fail_msg("during the %s attack root's %s took %.1f ms", what, op, (double) usec / 1000);
}

/* Root's everyday requests: each answered within SERVED_USEC. */
static void root_is_served(Harness *h, const char *what) {
        uint64_t t0, t1, t2, t3, t4;
        Wg__V1__Response *r;
        char name[32];
        int c, fd;

        snprintf(name, sizeof(name), "root-%s", what);
        t0 = monotonic_usec();
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, name, 0, 1), 0);
        t1 = monotonic_usec();
        r = pc_stat(c, name);
        pc_expect(r, 0);
        t2 = monotonic_usec();
        pc_expect(pc_open(c, name, &fd), 0);
        assert_true(fd >= 0); /* wgd may still pass a segment: none of the attacker's is in the way */
        close(fd);
        t3 = monotonic_usec();
        pc_wait_send(c, 99, name, UINT64_MAX);
        pc_expect(pc_add(c, name, -1), 0);
        r = pc_recv(c, NULL);
        assert_int_equal(r->id, 99);
        pc_expect(r, 0);
        t4 = monotonic_usec();
        pc_expect(pc_delete(c, name), 0);
        close(c);
        check_served(what, "create", t1 - t0);
        check_served(what, "status", t2 - t1);
        check_served(what, "open", t3 - t2);
        check_served(what, "wait", t4 - t3);
        printf("# during the %s attack: root's create %.1f ms, status %.1f ms, open %.1f ms, wait %.1f ms\n",
               what,
               (double) (t1 - t0) / 1000,
               (double) (t2 - t1) / 1000,
               (double) (t3 - t2) / 1000,
               (double) (t4 - t3) / 1000);
}

/*
 * Start the attack, and serve root while it goes in (at least once, after its first round),
 * until every request of it is in.
 */
static AttackRun attack_while_served(Harness *h, Attacker *a, const char *what) {
        AttackRun run;
        unsigned rounds = 0;

        a->socket_path = h->socket_path;
        run = attack_start(a);
        do {
                root_is_served(h, what);
                rounds++;
        } while (!attack_in(&run, 0));
        printf("# root was served %u times while the %s attack went in; %u of %u connections dropped\n",
               rounds,
               what,
               run.dropped,
               a->connections);
        return run;
}

static const char *const defaults[] = { "--idle-timeout=0", "--log-level=err", NULL };

/* Start wgd as the shipped unit runs it: root without capabilities, with @nofile descriptors. */
static void start_unprivileged(Harness *h, unsigned nofile, const char *const *args) {
        HarnessOptions opts = { .no_capabilities = true };
        int r, status = 0;

        /* valgrind keeps the fd limit of the processes it runs to itself: there, wgd keeps its own. */
        h->nofile = getenv("WG_TEST_SLOW") ? 0 : nofile;
        harness_spawn(h, args, &opts);
        r = harness_wait_ready(h, 60000, &status);
        if (r < 0)
                fail_msg("wgd without capabilities did not start: %s, status %d", strerror(-r), status);
}

/*
 * Memory: 20 connections ask for 100 Lists each, 37 KiB apiece, and read none: 70 MiB of
 * answers, where one uid's share of queued answers is 8 MiB (with @total_args, everybody's is
 * 4 MiB, which binds first). wgd queues up to the share, hangs up on connections past it, and
 * nobody else notices.
 */
static void unread_answers(Harness *h, const char *const *args, size_t share) {
        enum { GROUPS = 300 };
        Attacker a = { .attack = ATTACK_LIST, .connections = 20, .requests = 100 };
        unsigned long before, after;
        AttackRun run;
        int c;

        if (geteuid() != 0)
                skip_test("a second uid needs root");

        harness_start(h, args);
        c = pc_connect(h->socket_path);
        for (unsigned i = 0; i < GROUPS; i++) {
                char name[WG_NAME_MAX + 1];

                /* Long names, readable by all: each List answer is as large as it may be. */
                snprintf(name, sizeof(name), "%03u-%060u", i, 0u);
                pc_expect(pc_create(c, name, 0644, 0), 0);
        }
        before = proc_rss_kib(h->pid);

        run = attack_while_served(h, &a, "memory");
        after = proc_rss_kib(h->pid);
        printf("# wgd's resident memory: %lu KiB before, %lu KiB with the attack in\n", before, after);
        /* 70 MiB asked for, the share far below: wgd must have hung up on some. */
        assert_true(run.dropped > 0);
        /* ASan's quarantine and valgrind keep freed memory: resident size says nothing there. */
        if (!running_checked() && after > before + (share + (16u << 20)) / 1024)
                fail_msg(
                        "wgd grew from %lu to %lu KiB: more than the share of queued answers",
                        before,
                        after);
        root_is_served(h, "memory");
        attack_end(&run);
        close(c);
}

static void test_unread_answers(void **state) {
        unread_answers(*state, defaults, QUEUED_PER_UID);
}

static void test_unread_answers_total(void **state) {
        unread_answers(
                *state,
                (const char *const[]) {
                        "--idle-timeout=0", "--log-level=err", "--max-queued=4194304", NULL },
                4u << 20);
}

/* The limits of passed segments for the descriptor tests, and the fd limit they stay under. */
#define PASSED_PER_UID 64
#define PASSED_ALL 128
#define TEST_NOFILE 512
static const char *const passed_args[] = {
        "--idle-timeout=0", "--log-level=err", "--max-passed-per-user=64", "--max-passed=128", NULL,
};

/*
 * The limits of passed segments, seen by the client: Opens pipelined and unread are served up to
 * the uid's share (or everybody's), the rest refused with ETOOMANYREFS, in order; once the
 * client has read its answers they no longer count, and the next Open passes its segment.
 */
static void passed_limit(Harness *h, unsigned per_uid, unsigned all, unsigned expect_passed) {
        char arg_uid[64], arg_all[64];
        unsigned passed = 0;
        int c, d;

        snprintf(arg_uid, sizeof(arg_uid), "--max-passed-per-user=%u", per_uid);
        snprintf(arg_all, sizeof(arg_all), "--max-passed=%u", all);
        harness_start(
                h, (const char *const[]) { "--idle-timeout=0", "--log-level=err", arg_uid, arg_all, NULL });
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "passed", 0, 0), 0);

        /* Another connection of the same uid that read its one Open: reclaimed when the limit is met. */
        d = pc_connect(h->socket_path);
        {
                int fd;

                pc_expect(pc_open(d, "passed", &fd), 0);
                close(fd);
        }

        for (unsigned i = 0; i < expect_passed + 5; i++) {
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                Wg__V1__Open m = WG__V1__OPEN__INIT;

                m.name = (char *) "passed";
                req.op_case = WG__V1__REQUEST__OP_OPEN;
                req.open = &m;
                pc_send_id(c, i + 1, &req);
        }
        /*
         * Read only once wgd has answered them all: what is read meanwhile would count no more.
         * wgd has read them all once the socket is empty, and has answered them all once it
         * answers d: it handles what one wakeup read before it looks at another connection, and
         * d's request goes in after the last read.
         */
        wait_until_sent_all_read(c);
        pc_expect(pc_stat(d, "passed"), 0);
        for (unsigned i = 0; i < expect_passed + 5; i++) {
                Wg__V1__Response *r;
                int fd = -1;

                r = pc_recv(c, &fd);
                assert_int_equal(r->id, i + 1);
                if (pc_errnum(r) == 0) {
                        assert_true(fd >= 0);
                        close(fd);
                        passed++;
                } else {
                        assert_int_equal(pc_errnum(r), ETOOMANYREFS);
                        assert_true(fd < 0);
                        assert_true(i >= expect_passed);
                }
                pc_free(r);
        }
        assert_int_equal(passed, expect_passed);

        /* All read now: the next one passes. */
        {
                int fd;

                pc_expect(pc_open(c, "passed", &fd), 0);
                assert_true(fd >= 0);
                close(fd);
        }
        close(d);
        close(c);
}

static void test_passed_limit_per_uid(void **state) {
        passed_limit(*state, 8, 100, 8);
}

static void test_passed_limit_all(void **state) {
        passed_limit(*state, 100, 8, 8);
}

/*
 * Descriptors: 100 connections ask for 250 segments each and read none. Fds in flight in unix
 * sockets count against the sender's RLIMIT_NOFILE (for a sender without capabilities, which is
 * how the unit runs wgd): 25,000 of them would make the kernel refuse every fd wgd sends, to
 * root's Open and to the fdstore alike. Past its share of passed segments the attacker's Opens
 * are refused instead, and wgd's own table holds one fd per connection.
 */
static void test_unread_segments(void **state) {
        Harness *h = *state;
        Attacker a = { .attack = ATTACK_OPEN, .requests = 250 };
        unsigned before, after;
        AttackRun run;

        if (geteuid() != 0)
                skip_test("a second uid needs root");

        /* 25,000 unread segments; 7,500 under valgrind, still far past everybody's share. */
        a.connections = running_checked() ? 30 : 100;
        start_unprivileged(h, TEST_NOFILE, passed_args);
        before = proc_fd_count(h->pid);

        run = attack_while_served(h, &a, "descriptor");
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
 * Descriptors and memory of deleted groups: each connection makes a group, opens it and
 * deletes it, 100 times, and reads nothing. Nothing but the unread Open answers keeps those
 * segments (a page, and while queued a mapping and an fd in wgd): they count as passed
 * segments, so the uid holds at most its share of them.
 */
static void test_deleted_segments(void **state) {
        Harness *h = *state;
        Attacker a = { .attack = ATTACK_CHURN, .requests = 300 };
        unsigned before, after;
        unsigned long rss_before, rss_after;
        AttackRun run;

        if (geteuid() != 0)
                skip_test("a second uid needs root");

        /* 2,000 segments kept by unread answers, 1,000 under valgrind: either is far past the share. */
        a.connections = running_checked() ? 10 : 20;
        start_unprivileged(h, TEST_NOFILE, passed_args);
        before = proc_fd_count(h->pid);
        rss_before = proc_rss_kib(h->pid);

        run = attack_while_served(h, &a, "deleted-segment");
        after = proc_fd_count(h->pid);
        rss_after = proc_rss_kib(h->pid);
        printf("# wgd's descriptors: %u before, %u with the attack in; memory %lu KiB, then %lu KiB\n",
               before,
               after,
               rss_before,
               rss_after);
        /* One per connection, the share of segments queued (each an fd while queued), sd-event's. */
        if (after > before + a.connections + PASSED_PER_UID + 8)
                fail_msg(
                        "wgd went from %u to %u descriptors for %u connections",
                        before,
                        after,
                        a.connections);
        if (!running_checked() &&
            rss_after > rss_before + (QUEUED_PER_UID + PASSED_PER_UID * 8192u + (16u << 20)) / 1024)
                fail_msg("wgd grew from %lu to %lu KiB", rss_before, rss_after);
        root_is_served(h, "deleted-segment");
        attack_end(&run);
}

/*
 * What root does to groups of its own, many times over: Dones that end generations, a Delete
 * with a Wait pending, a member that dies (its connection closes), a connection that closes
 * with a Wait pending. Each looks at its own group only, so it costs wgd the same with twelve
 * thousand of the attacker's Waits on other groups as without them.
 */
static void storm(Harness *h, unsigned rounds) {
        int c = pc_connect(h->socket_path);

        pc_expect(pc_create(c, "probe", 0, 0), 0);
        for (unsigned i = 0; i < rounds; i++) {
                Wg__V1__Response *r;
                int w, j, fd;

                /* Done: one that does not end the generation, one that does. */
                pc_expect(pc_add(c, "probe", 2), 0);
                pc_expect(pc_add(c, "probe", -1), 0);
                pc_expect(pc_add(c, "probe", -1), 0);

                /* Delete with a Wait pending: the Stat after it shows wgd has the Wait. */
                pc_expect(pc_create(c, "doomed", 0, 1), 0);
                w = pc_connect(h->socket_path);
                pc_wait_send(w, 7, "doomed", UINT64_MAX);
                pc_expect(pc_stat(w, "doomed"), 0);
                pc_expect(pc_delete(c, "doomed"), 0);
                r = pc_recv(w, NULL);
                assert_int_equal(r->id, 7);
                pc_expect(r, EIDRM);

                /* A member dies (its connection closes): the Wait on its generation returns. */
                j = pc_connect(h->socket_path);
                pc_expect(pc_join(j, "probe", &fd), 0);
                close(fd);
                pc_wait_send(w, 8, "probe", UINT64_MAX);
                pc_expect(pc_stat(w, "probe"), 0);
                close(j);
                r = pc_recv(w, NULL);
                assert_int_equal(r->id, 8);
                pc_expect(r, 0);

                /* A connection closes with a Wait pending. */
                pc_expect(pc_add(c, "probe", 1), 0);
                pc_wait_send(w, 9, "probe", UINT64_MAX);
                pc_expect(pc_stat(w, "probe"), 0);
                close(w);
                pc_expect(pc_add(c, "probe", -1), 0);
        }
        pc_expect(pc_delete(c, "probe"), 0);
        close(c);
}

/*
 * CPU: 1000 connections with 64 Waits each on 1000 groups (40 of each under valgrind). Arming a Wait touches
 * its group alone, so the attack costs wgd linear time (wgd that re-walked every pending Wait for each new
 * one took 28 s of CPU for 64,000), and root is answered at once. Then the storm, with the Waits pending,
 * costs wgd no more than it did without them (within a margin for a noisy machine: the bound catches a walk
 * over all Waits, not a few per cent). wgd(8)'s defaults allow this attack: 1024 connections a uid, 64 Waits
 * each.
 */
static void test_many_waits(void **state) {
        Harness *h = *state;
        Attacker a = { .attack = ATTACK_WAIT, .requests = 64 };
        unsigned long ticks_before, ticks_after, quiet, loaded;
        unsigned rounds = running_checked() ? 100 : 300;
        Wg__V1__Response *r;
        AttackRun run;
        int c;

        if (geteuid() != 0)
                skip_test("a second uid needs root");
        a.connections = running_checked() ? 40 : 1000;
        a.groups = running_checked() ? 40 : 1000;

        harness_start(h, defaults);
        c = pc_connect(h->socket_path);
        for (unsigned i = 0; i < a.groups; i++) {
                char name[16];

                snprintf(name, sizeof(name), "g%03u", i);
                pc_expect(pc_create(c, name, 0644, 1), 0);
        }

        ticks_before = proc_cpu_ticks(h->pid);
        storm(h, rounds);
        quiet = proc_cpu_ticks(h->pid) - ticks_before;

        ticks_before = proc_cpu_ticks(h->pid);
        run = attack_while_served(h, &a, "Wait");
        ticks_after = proc_cpu_ticks(h->pid);
        printf("# %u Waits (and root's requests meanwhile) took wgd %lu clock ticks\n",
               a.connections * a.requests,
               ticks_after - ticks_before);
        /* Linear: a few ticks. A second of CPU (in a plain build) is a walk over all of them. */
        if (ticks_after - ticks_before > (unsigned long) sysconf(_SC_CLK_TCK) * slowdown())
                fail_msg(
                        "%u Waits took wgd %lu clock ticks",
                        a.connections * a.requests,
                        ticks_after - ticks_before);
        r = pc_stat(c, "g000");
        assert_int_equal(r->group->waiters, a.connections * a.requests / a.groups);
        pc_free(r);

        ticks_before = proc_cpu_ticks(h->pid);
        storm(h, rounds);
        loaded = proc_cpu_ticks(h->pid) - ticks_before;
        printf("# %u rounds of Done, Delete, member death and close took wgd %lu ticks, %lu with the "
               "Waits\n",
               rounds,
               quiet,
               loaded);
        if (loaded > 3 * quiet + 20)
                fail_msg("the storm took wgd %lu ticks with the Waits pending, %lu without", loaded, quiet);
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
                cmocka_unit_test_setup_teardown(test_unread_answers_total, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_passed_limit_per_uid, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_passed_limit_all, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_unread_segments, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_deleted_segments, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_many_waits, harness_setup, harness_teardown),
        };

        if (getenv("WG_TEST_FILTER"))
                cmocka_set_test_filter(getenv("WG_TEST_FILTER"));
        return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}
