/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cluster groups: three real wgd nodes (each its own socket, node name and directory) on one
 * real etcd, started here on free ports of 127.0.0.1 with a fresh data directory. Clients speak
 * wg.v1 to the nodes, and libwg works on the nodes' mirrors (wg_open, wg_add, wg_done, wg_wait)
 * as on any group. Skipped, saying why, where etcd is not installed.
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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base64.h"
#include "etcd-harness.h"
#include "macro.h"
#include "test-util.h"
#include "wg.h"
#include "wgd-harness.h"

#define NODES 3
/*
 * Seconds a dead node's members hold their groups (etcd's least is about two): short, so that
 * the tests of a node's death are quick; longer under valgrind, where a wgd that restarts must
 * be back within it.
 */
static unsigned lease_ttl(void) {
        return getenv("WG_TEST_SLOW") ? 8 : 3;
}

typedef struct Fixture {
        EtcdCluster etcd;
        Harness nodes[NODES];
} Fixture;

static const char *const node_names[NODES] = { "alpha", "beta", "gamma" };

/*
 * Start node @i's wgd on the fixture's etcd, with @extra arguments (NULL-terminated, or NULL), as
 * @opts (may be NULL) say.
 */
static void node_start_opts(Fixture *f, size_t i, const char *const *extra, const HarnessOptions *opts) {
        char etcd_arg[512], node_arg[64];
        char ttl_arg[32];
        const char *args[16] = { "--idle-timeout=0", "--log-level=warning", ttl_arg };
        size_t n = 0, k = 3;

        snprintf(ttl_arg, sizeof(ttl_arg), "--lease-ttl=%u", lease_ttl());
        n += (size_t) snprintf(etcd_arg, sizeof(etcd_arg), "--etcd=");
        for (size_t m = 0; f->etcd.endpoints[m]; m++)
                n += (size_t) snprintf(
                        etcd_arg + n, sizeof(etcd_arg) - n, "%s%s", m ? "," : "", f->etcd.endpoints[m]);
        snprintf(node_arg, sizeof(node_arg), "--node-name=%s", node_names[i]);
        args[k++] = etcd_arg;
        args[k++] = node_arg;
        for (size_t j = 0; extra && extra[j] && k < ELEMENTSOF(args) - 1; j++)
                args[k++] = extra[j];
        args[k] = NULL;
        harness_spawn(&f->nodes[i], args, opts);
        assert_int_equal(harness_wait_ready(&f->nodes[i], 60000, NULL), 0);
}

static void node_start_with(Fixture *f, size_t i, const char *const *extra) {
        node_start_opts(f, i, extra, NULL);
}

static void node_start(Fixture *f, size_t i) {
        node_start_with(f, i, NULL);
}

/*
 * Stop node @i (SIGTERM) and drop from its fdstore the lease it may have parked (etcd's grant
 * races with the test), which its next wgd would take back: that one is granted a lease anew.
 */
static void node_stop_unleased(Fixture *f, size_t i) {
        assert_int_equal(harness_stop(&f->nodes[i], SIGTERM), 0);
        (void) harness_drop_stored(&f->nodes[i], "wl1."); /* wgd's LEASE_FDNAME_PREFIX */
}

/*
 * Start node @i again (stopping it first, unless it is stopped) as wgd-fault, failing what
 * @fault_call says (WGD_FAULT_CALL), with @extra arguments; its stderr in @log (room for 400), if
 * not NULL.
 */
static void
node_restart_faulty(Fixture *f, size_t i, const char *fault_call, const char *const *extra, char *log) {
        HarnessOptions opts = { .binary = getenv("WG_WGD_FAULT") };

        assert_non_null(opts.binary);
        if (log) {
                snprintf(log, 400, "%s/wgd.log", f->nodes[i].dir);
                opts.stderr_path = log;
        }
        if (f->nodes[i].pid > 0)
                harness_stop(&f->nodes[i], SIGTERM);
        assert_int_equal(setenv("WGD_FAULT_CALL", fault_call, 1), 0);
        node_start_opts(f, i, extra, &opts);
        assert_int_equal(unsetenv("WGD_FAULT_CALL"), 0);
}

static int setup_members(void **state, size_t members) {
        Fixture *f;

        *state = NULL;
        if (!etcd_binary())
                return 0; /* each test skips, saying why */
        f = calloc(1, sizeof(*f));
        assert_non_null(f);
        etcd_cluster_start(&f->etcd, members);
        for (size_t i = 0; i < NODES; i++) {
                harness_init(&f->nodes[i]);
                node_start(f, i);
        }
        *state = f;
        return 0;
}

static int setup(void **state) {
        return setup_members(state, 1);
}

/* etcd as a cluster of three members: every node knows all three. */
static int setup3(void **state) {
        return setup_members(state, 3);
}

static int teardown(void **state) {
        Fixture *f = *state;

        if (!f)
                return 0;
        for (size_t i = 0; i < NODES; i++)
                harness_done(&f->nodes[i]);
        etcd_cluster_done(&f->etcd);
        free(f);
        return 0;
}

/* Each test starts with this: the fixture, or a skip where etcd is missing. */
#define FIXTURE(state)                                                                                      \
        ({                                                                                                  \
                Fixture *_f = *(state);                                                                     \
                if (!_f)                                                                                    \
                        skip_test("no etcd here (Debian's etcd-server)");                                   \
                _f;                                                                                         \
        })

/* libwg finds wgd through $WGD_SOCKET: point it at node @i. */
static void use_node(Fixture *f, size_t i) {
        assert_int_equal(setenv("WGD_SOCKET", f->nodes[i].socket_path, 1), 0);
}

/* Poll node @c's Stat of @name until it says @count and @generation (60 s at most). */
static void stat_until(int c, const char *name, uint64_t count, uint64_t generation) {
        uint64_t deadline = monotonic_usec() + 60 * UINT64_C(1000000);

        for (;;) {
                Wg__V1__Response *r = pc_stat(c, name);
                bool there =
                        pc_errnum(r) == 0 && r->group->count == count && r->group->generation == generation;

                if (there) {
                        assert_true(r->group->cluster);
                        pc_free(r);
                        return;
                }
                if (monotonic_usec() > deadline)
                        fail_msg(
                                "group %s: errno %d, count %" PRIu64 ", generation %" PRIu64
                                "; expected %" PRIu64 ", %" PRIu64,
                                name,
                                pc_errnum(r),
                                pc_errnum(r) ? 0 : r->group->count,
                                pc_errnum(r) ? 0 : r->group->generation,
                                count,
                                generation);
                pc_free(r);
                sleep_usec(10000);
        }
}

/* Poll node @c's Stat of @name until it is gone (ENOENT; 60 s at most). */
static void stat_until_gone(int c, const char *name) {
        uint64_t deadline = monotonic_usec() + 60 * UINT64_C(1000000);
        Wg__V1__Response *r;

        for (unsigned round = 0; pc_errnum(r = pc_stat(c, name)) != ENOENT; poll_pause(&round)) {
                if (monotonic_usec() > deadline)
                        fail_msg("group %s: still there (errno %d) after 60 s", name, pc_errnum(r));
                pc_free(r);
        }
        pc_free(r);
}

/* stat_until() on every node. */
static void stat_all_until(Fixture *f, const char *name, uint64_t count, uint64_t generation) {
        for (size_t i = 0; i < NODES; i++) {
                int n = pc_connect(f->nodes[i].socket_path);

                stat_until(n, name, count, generation);
                close(n);
        }
}

/*
 * Add on alpha, done on beta (the protocol) and on gamma (libwg on gamma's mirror): waiters on
 * all three nodes return, protocol Waits and wg_wait() alike, and every node agrees.
 */
static void test_three_nodes(void **state) {
        Fixture *f = FIXTURE(state);
        int c[NODES];
        wg *g;
        pid_t waiter;

        for (size_t i = 0; i < NODES; i++)
                c[i] = pc_connect(f->nodes[i].socket_path);
        pc_expect(pc_create_cluster(c[0], "build", 0666, 0), 0);
        for (size_t i = 0; i < NODES; i++)
                stat_until(c[i], "build", 0, 0);

        pc_expect(pc_add(c[0], "build", 2), 0);
        for (size_t i = 0; i < NODES; i++)
                stat_until(c[i], "build", 2, 0);

        /* A protocol Wait on each node, and a libwg waiter on beta's mirror in another process. */
        for (size_t i = 0; i < NODES; i++)
                pc_wait_send(c[i], 50 + i, "build", UINT64_MAX);
        use_node(f, 1);
        assert_int_equal(wg_open("build", 0, &g), 0);
        waiter = fork();
        assert_true(waiter >= 0);
        if (waiter == 0)
                _exit(wg_wait(g, 60 * UINT64_C(1000000)) == 0 ? 0 : 1);

        pc_expect(pc_add(c[1], "build", -1), 0);
        for (size_t i = 0; i < NODES; i++)
                stat_until(c[i], "build", 1, 0);

        /* The last done through libwg, on gamma: a mirror's wg_done() is a request to its node. */
        {
                wg *mirror;

                use_node(f, 2);
                assert_int_equal(wg_open("build", 0, &mirror), 0);
                assert_int_equal(wg_done(mirror), 0);
                assert_int_equal(wg_done(mirror), -ERANGE); /* below zero, from etcd's own count */
                wg_unref(mirror);
        }

        for (size_t i = 0; i < NODES; i++) {
                Wg__V1__Response *r = pc_recv(c[i], NULL);

                assert_int_equal(r->id, 50 + i);
                pc_expect(r, 0);
                stat_until(c[i], "build", 0, 1);
        }
        assert_int_equal(reap(waiter), 0);
        wg_unref(g);

        /* Delete on gamma: gone everywhere. */
        pc_expect(pc_delete(c[2], "build"), 0);
        for (size_t i = 0; i < NODES; i++) {
                uint64_t deadline = monotonic_usec() + 60 * UINT64_C(1000000);
                Wg__V1__Response *r;

                while (pc_errnum(r = pc_stat(c[i], "build")) != ENOENT) {
                        assert_true(monotonic_usec() < deadline);
                        pc_free(r);
                        sleep_usec(10000);
                }
                pc_free(r);
                close(c[i]);
        }
}

/*
 * When a test of counting fails: what etcd holds of @group (its state, and each node's last
 * transaction), and what each node mirrors, for whoever reads the log.
 */
static void dump_group(Fixture *f, const char *group) {
        char body[512], prefix[128], *answer = NULL;
        size_t n;

        n = (size_t) snprintf(prefix, sizeof(prefix), "/wg/v1/g/%s/", group);
        {
                _cleanup_free_ char *key = NULL, *end = NULL;

                assert_int_equal(base64_encode(prefix, n, &key), 0);
                prefix[n - 1]++; /* the range's end: every key that starts with the prefix */
                assert_int_equal(base64_encode(prefix, n, &end), 0);
                snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\"}", key, end);
        }
        for (size_t m = 0; m < f->etcd.n; m++)
                if (f->etcd.members[m].pid > 0 && !f->etcd.members[m].stopped &&
                    etcd_harness_post(&f->etcd, m, "kv/range", body, NULL, &answer) == 200)
                        break;
        fprintf(stderr, "etcd's keys of %s (base64 values): %s\n", group, answer ? answer : "(no answer)");
        free(answer);
        for (size_t i = 0; i < NODES; i++) {
                Wg__V1__Response *r;
                int c;

                if (f->nodes[i].pid <= 0)
                        continue;
                c = pc_connect(f->nodes[i].socket_path);
                r = pc_stat(c, group);
                if (pc_errnum(r) == 0)
                        fprintf(stderr,
                                "%s mirrors count %" PRIu64 ", generation %" PRIu64 "\n",
                                node_names[i],
                                r->group->count,
                                r->group->generation);
                pc_free(r);
                close(c);
        }
}

/* Reap the workers of a counting test; on a failure, say what etcd and the nodes hold first. */
static void reap_workers(Fixture *f, const pid_t *pids, const char *group) {
        int status[NODES];
        bool ok = true;

        for (size_t i = 0; i < NODES; i++) {
                status[i] = reap(pids[i]);
                ok = ok && status[i] == 0;
        }
        if (ok)
                return;
        dump_group(f, group);
        fail_msg("workers exited %d, %d, %d", status[0], status[1], status[2]);
}

/*
 * A process on node @i that does @n dones on @group's mirror, writes a byte to @report (if it is
 * not -1) after the third of them, and waits for the generation to end. Exit 0, or 10 and up.
 */
static pid_t done_worker(Fixture *f, size_t i, const char *group, unsigned n, int report) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                wg *g;

                if (setenv("WGD_SOCKET", f->nodes[i].socket_path, 1) < 0 || wg_open(group, 0, &g) < 0)
                        _exit(10);
                for (unsigned k = 0; k < n; k++) {
                        int r = wg_done(g);

                        if (r < 0) {
                                fprintf(stderr, "done %u on %s: %s\n", k, node_names[i], strerror(-r));
                                _exit(11);
                        }
                        if (report >= 0 && k == n / 3 && write(report, "q", 1) != 1)
                                _exit(12);
                }
                _exit(wg_wait(g, 60 * UINT64_C(1000000)) == 0 ? 0 : 13);
        }
        return pid;
}

/*
 * Every add and done counts once, cluster-wide: three processes, one per node, each do their
 * dones on their node's mirror as fast as they can, against one group; nothing is lost or
 * doubled (a lost done leaves the count above zero, a doubled one meets ERANGE), and the
 * generation ends exactly once.
 */
static void test_concurrent_dones(void **state) {
        enum { PER_NODE = 150 };
        Fixture *f = FIXTURE(state);
        pid_t pids[NODES];
        int c = pc_connect(f->nodes[0].socket_path);

        pc_expect(pc_create_cluster(c, "shards", 0666, NODES * PER_NODE), 0);
        stat_all_until(f, "shards", NODES * PER_NODE, 0);
        for (size_t i = 0; i < NODES; i++)
                pids[i] = done_worker(f, i, "shards", PER_NODE, -1);
        reap_workers(f, pids, "shards");
        stat_all_until(f, "shards", 0, 1);
        close(c);
}

/*
 * etcd stopped under a stream of dones, then continued: the dones wait for it (within their
 * deadline), none is lost or doubled, no waiter is released early; meanwhile local groups keep
 * working.
 */
static void test_etcd_stopped(void **state) {
        enum { DONES = 40 };
        Fixture *f = FIXTURE(state);
        int c = pc_connect(f->nodes[0].socket_path), w = pc_connect(f->nodes[1].socket_path), report[2];
        pid_t worker;
        char byte;

        /* gamma, where the worker's dones go, with a call timeout shorter than etcd's stop. */
        assert_int_equal(harness_stop(&f->nodes[2], SIGTERM), 0);
        node_start_with(f, 2, (const char *const[]) { "--etcd-timeout=1", NULL });
        pc_expect(pc_create_cluster(c, "stream", 0666, DONES + 1), 0);
        stat_until(w, "stream", DONES + 1, 0);
        {
                int n = pc_connect(f->nodes[2].socket_path);

                stat_until(n, "stream", DONES + 1, 0); /* gamma has it too, for the worker */
                close(n);
        }
        pc_wait_send(w, 77, "stream", UINT64_MAX);
        pc_expect(pc_stat(w, "stream"), 0); /* beta has the Wait */

        assert_int_equal(pipe2(report, O_CLOEXEC), 0);
        worker = fork();
        assert_true(worker >= 0);
        if (worker == 0) {
                wg *g;

                close(report[0]);
                if (setenv("WGD_SOCKET", f->nodes[2].socket_path, 1) < 0 || wg_open("stream", 0, &g) < 0)
                        _exit(10);
                for (unsigned k = 0; k < DONES; k++) {
                        int r = wg_done(g);

                        if (r < 0) {
                                fprintf(stderr, "done %u: %s\n", k, strerror(-r));
                                _exit(11);
                        }
                        if (k == DONES / 4 && write(report[1], "q", 1) != 1)
                                _exit(12);
                }
                _exit(0);
        }
        close(report[1]);

        /* A quarter in, stop etcd; local groups are served meanwhile; then continue it. */
        if (read(report[0], &byte, 1) != 1)
                fail_msg("the worker gave up: exit %d", reap(worker));
        etcd_member_signal(&f->etcd, 0, SIGSTOP);
        pc_expect(pc_create(c, "local-meanwhile", 0, 1), 0);
        pc_expect(pc_add(c, "local-meanwhile", -1), 0);
        {
                struct pollfd p = { .fd = w, .events = POLLIN };

                /* The Wait is not released: its generation has a done outstanding. */
                assert_int_equal(poll(&p, 1, 0), 0);
        }
        /*
         * "A few seconds" of etcd stopped, longer than gamma's calls may take (1 s): the done in
         * flight times out, is sent again and again, and etcd, once continued, takes the first
         * and refuses the copies; gamma must learn that the first took effect (op/gamma holds its
         * number), and count it once. What is tested is that nothing is lost or doubled.
         */
        sleep_usec(3 * 1000000);
        etcd_member_signal(&f->etcd, 0, SIGCONT);
        close(report[0]);
        assert_int_equal(reap(worker), 0);

        stat_until(w, "stream", 1, 0);
        {
                struct pollfd p = { .fd = w, .events = POLLIN };

                assert_int_equal(poll(&p, 1, 0), 0);
        }
        pc_expect(pc_add(c, "stream", -1), 0);
        {
                Wg__V1__Response *r = pc_recv(w, NULL);

                assert_int_equal(r->id, 77);
                pc_expect(r, 0);
        }
        stat_until(c, "stream", 0, 1);
        close(c);
        close(w);
}

/* Without an etcd to talk to, a cluster request fails in bounded time; local groups work. */
static void test_no_etcd(void **state) {
        Fixture *f = FIXTURE(state);
        uint64_t t0;
        int c;

        etcd_member_signal(&f->etcd, 0, SIGKILL);
        c = pc_connect(f->nodes[0].socket_path);
        t0 = monotonic_usec();
        {
                Wg__V1__Response *r = pc_create_cluster(c, "unreachable", 0, 0);
                int e = pc_errnum(r);

                assert_true(e == EHOSTUNREACH || e == ETIMEDOUT);
                pc_free(r);
        }
        /* Bounded by the node's call timeout (5 s), with room for a slow machine. */
        assert_true(monotonic_usec() - t0 < 30 * UINT64_C(1000000));
        pc_expect(pc_create(c, "local", 0, 0), 0);

        /* A wgd that is not a node at all says so. */
        harness_stop(&f->nodes[1], SIGTERM);
        harness_start(&f->nodes[1], (const char *const[]) { "--idle-timeout=0", "--log-level=err", NULL });
        close(c);
        c = pc_connect(f->nodes[1].socket_path);
        pc_expect(pc_create_cluster(c, "nowhere", 0, 0), EOPNOTSUPP);
        close(c);
}

/* How many times @text is in the file at @path. */
/*
 * A node holds no more than its own limits allow, whatever the other nodes let through: gamma,
 * with --max-groups-per-user=2, mirrors two of the three cluster groups that root makes on
 * alpha, and says no to a third of its own; alpha and beta hold all three.
 */
static void test_mirror_limits(void **state) {
        Fixture *f = FIXTURE(state);
        int a, b, g;

        harness_stop(&f->nodes[2], SIGTERM);
        node_start_with(f, 2, (const char *const[]) { "--max-groups-per-user=2", NULL });
        a = pc_connect(f->nodes[0].socket_path);
        b = pc_connect(f->nodes[1].socket_path);
        g = pc_connect(f->nodes[2].socket_path);

        pc_expect(pc_create_cluster(a, "limit-1", 0, 0), 0);
        pc_expect(pc_create_cluster(a, "limit-2", 0, 0), 0);
        pc_expect(pc_create_cluster(a, "limit-3", 0, 0), 0);
        /* A change after the three: once gamma has it, it has seen all three (etcd's order). */
        pc_expect(pc_add(a, "limit-1", 1), 0);
        stat_until(b, "limit-3", 0, 0);
        stat_until(g, "limit-1", 1, 0);

        stat_until(g, "limit-2", 0, 0);
        pc_expect(pc_stat(g, "limit-3"), ENOENT);
        pc_expect(pc_create_cluster(g, "limit-4", 0, 0), EDQUOT);
        pc_expect(pc_create(g, "local", 0, 0), EDQUOT);
        /* Room again: a deleted mirror makes room for the group that gamma passed over. */
        pc_expect(pc_delete(a, "limit-2"), 0);
        stat_until(g, "limit-3", 0, 0);
        pc_expect(pc_create(g, "local", 0, 0), EDQUOT);
        /* And with nothing passed over, for a group of gamma's own. */
        pc_expect(pc_delete(a, "limit-3"), 0);
        stat_until_gone(g, "limit-3");
        pc_expect(pc_create(g, "local", 0, 0), 0);
        close(a);
        close(b);
        close(g);
}

/*
 * A local group hides a cluster group of its name on its node; once deleted there, the node reads
 * etcd again and mirrors the cluster group.
 */
static void test_hidden_group_appears(void **state) {
        Fixture *f = FIXTURE(state);
        int a = pc_connect(f->nodes[0].socket_path), g = pc_connect(f->nodes[2].socket_path);

        pc_expect(pc_create(g, "hidden", 0, 5), 0);
        pc_expect(pc_create_cluster(a, "hidden", 0, 2), 0);
        pc_expect(pc_create_cluster(a, "after", 0, 0), 0);
        stat_until(g, "after", 0, 0); /* gamma has seen "hidden" too, and passed over it */
        {
                Wg__V1__Response *r = pc_stat(g, "hidden");

                assert_int_equal(pc_errnum(r), 0);
                assert_false(r->group->cluster);
                pc_free(r);
        }
        pc_expect(pc_delete(g, "hidden"), 0);
        stat_until(g, "hidden", 2, 0);
        close(a);
        close(g);
}

/*
 * The read of etcd that room calls for cannot be scheduled (wgd-fault fails turning its timer on,
 * once): the node says so and serves on, and the next room made schedules it.
 */
static void test_room_read_fails(void **state) {
        Fixture *f = FIXTURE(state);
        char path[400];
        int a, g;

        node_restart_faulty(
                f,
                2,
                "sd_event_source_set_enabled/cluster-room:1",
                (const char *const[]) { "--max-groups-per-user=1", NULL },
                path);
        a = pc_connect(f->nodes[0].socket_path);
        g = pc_connect(f->nodes[2].socket_path);

        pc_expect(pc_create_cluster(a, "room-1", 0, 0), 0);
        pc_expect(pc_create_cluster(a, "room-2", 0, 0), 0);
        pc_expect(pc_add(a, "room-1", 1), 0);
        stat_until(g, "room-1", 1, 0); /* and room-2 passed over */

        pc_expect(pc_delete(a, "room-1"), 0);
        file_count_until(path, "<4>Failed to schedule a read of etcd for the cluster groups", 1);
        pc_expect(pc_stat(g, "room-1"), ENOENT);
        /* A group that the watch brings takes the room; its delete makes room again. */
        pc_expect(pc_create_cluster(a, "room-3", 0, 0), 0);
        stat_until(g, "room-3", 0, 0);
        pc_expect(pc_delete(a, "room-3"), 0);
        stat_until(g, "room-2", 0, 0);
        assert_int_equal(file_count(path, "Failed to schedule a read of etcd"), 1);
        close(a);
        close(g);
}

/*
 * Creates of cluster groups wait for etcd: those in flight count against the uid's groups
 * already. With --max-groups-per-user=2, one group and one Create waiting for a stopped etcd, a
 * third Create is refused at once.
 */
static void test_creates_in_flight(void **state) {
        Fixture *f = FIXTURE(state);
        HarnessOptions opts = {};
        Wg__V1__Response *r;
        char path[400];
        int b;

        snprintf(path, sizeof(path), "%s/wgd.log", f->nodes[1].dir);
        opts.stderr_path = path;
        harness_stop(&f->nodes[1], SIGTERM);
        node_start_opts(f, 1, (const char *const[]) { "--max-groups-per-user=2", NULL }, &opts);
        b = pc_connect(f->nodes[1].socket_path);
        pc_expect(pc_create_cluster(b, "made-1", 0, 0), 0);

        etcd_member_signal(&f->etcd, 0, SIGSTOP);
        for (uint64_t id = 2; id <= 3; id++) {
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                Wg__V1__Create m = WG__V1__CREATE__INIT;
                char name[16];

                snprintf(name, sizeof(name), "made-%" PRIu64, id);
                m.name = name;
                m.has_cluster = m.cluster = true;
                req.op_case = WG__V1__REQUEST__OP_CREATE;
                req.create = &m;
                pc_send_id(b, id, &req);
        }
        r = pc_recv(b, NULL); /* the third's, at once: etcd answers nothing now */
        assert_int_equal(r->id, 3);
        assert_int_equal(pc_errnum(r), EDQUOT);
        pc_free(r);
        etcd_member_signal(&f->etcd, 0, SIGCONT);

        r = pc_recv(b, NULL);
        assert_int_equal(r->id, 2);
        assert_int_equal(pc_errnum(r), 0);
        pc_free(r);
        pc_expect(pc_stat(b, "made-2"), 0);
        pc_expect(pc_stat(b, "made-3"), ENOENT);
        /* The reservation became the group: still two, not three. */
        pc_expect(pc_create_cluster(b, "made-4", 0, 0), EDQUOT);
        /*
         * Its own groups, which its watch may bring before etcd's answer to their Create, are
         * never counted twice (their reservation and the group) and refused.
         */
        assert_int_equal(file_count(path, "Not mirroring"), 0);
        close(b);
}

/* Send a Join of @name with id @id on @c, not waiting for its answer. */
static void join_send(int c, uint64_t id, const char *name) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Join m = WG__V1__JOIN__INIT;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_JOIN;
        req.join = &m;
        pc_send_id(c, id, &req);
}

/*
 * Joins of a cluster group wait for etcd: those in flight count against the uid's memberships
 * already. With --max-members-per-user=2, one member and one Join waiting for a stopped etcd,
 * a third Join is refused at once.
 */
static void test_joins_in_flight(void **state) {
        Fixture *f = FIXTURE(state);
        Wg__V1__Response *r;
        int a, b, j, fd;

        harness_stop(&f->nodes[1], SIGTERM);
        node_start_with(f, 1, (const char *const[]) { "--max-members-per-user=2", NULL });
        a = pc_connect(f->nodes[0].socket_path);
        b = pc_connect(f->nodes[1].socket_path);
        pc_expect(pc_create_cluster(a, "crowd", 0666, 0), 0);
        stat_until(b, "crowd", 0, 0);

        /* The first member, once beta holds its lease (EAGAIN until then). */
        j = pc_connect(f->nodes[1].socket_path);
        {
                uint64_t deadline = monotonic_usec() + 60 * UINT64_C(1000000);

                while (pc_errnum(r = pc_join(j, "crowd", &fd)) == EAGAIN) {
                        assert_true(monotonic_usec() < deadline);
                        pc_free(r);
                        sleep_usec(50000);
                }
                assert_int_equal(pc_errnum(r), 0);
                pc_free(r);
                close(fd);
        }

        etcd_member_signal(&f->etcd, 0, SIGSTOP);
        join_send(b, 2, "crowd"); /* waits for etcd */
        join_send(b, 3, "crowd");
        r = pc_recv(b, &fd); /* the third's, at once: etcd answers nothing now */
        assert_int_equal(r->id, 3);
        assert_int_equal(pc_errnum(r), EDQUOT);
        assert_true(fd < 0);
        pc_free(r);
        etcd_member_signal(&f->etcd, 0, SIGCONT);

        r = pc_recv(b, &fd);
        assert_int_equal(r->id, 2);
        assert_int_equal(pc_errnum(r), 0);
        assert_true(fd >= 0);
        close(fd);
        pc_free(r);
        stat_until(a, "crowd", 2, 0);
        close(a);
        close(b);
        close(j);
}

/*
 * A node whose etcd is away tries again every second, and says so once (a warning), then only
 * at debug level, until it works again (a notice): not a warning a second in the journal.
 */
static void test_etcd_away_quietly(void **state) {
        Fixture *f = FIXTURE(state);
        HarnessOptions opts = {};
        char path[400];

        snprintf(path, sizeof(path), "%s/wgd.log", f->nodes[2].dir);
        opts.stderr_path = path;
        harness_stop(&f->nodes[2], SIGTERM);
        node_start_opts(f, 2, (const char *const[]) { "--log-level=debug", NULL }, &opts);
        file_count_until(path, "Following 0 cluster groups in etcd", 1);

        etcd_member_signal(&f->etcd, 0, SIGKILL);
        /* Three tries at least, each a failure. */
        file_count_until(path, "<7>The watch of etcd ended, trying again", 2);
        assert_int_equal(file_count(path, "<4>The watch of etcd ended"), 1);

        etcd_member_restart(&f->etcd, 0);
        file_count_until(path, "<5>Following etcd again.", 1);
}

/*
 * A node that cannot take a change of etcd (here: the mirror of a group made elsewhere, whose
 * segment it cannot make, twice; wgd-fault's memfd_create fails) reads everything again, a
 * second later, then two: it says so once as a warning, the rest at debug level, and a notice
 * when a read takes everything; then it mirrors the group as the others do.
 */
static void test_lost_change_read_again(void **state) {
        Fixture *f = FIXTURE(state);
        char path[400];
        int c;

        node_restart_faulty(
                f, 2, "memfd_create/wg:2", (const char *const[]) { "--log-level=debug", NULL }, path);
        file_count_until(path, "Following 0 cluster groups in etcd", 1);

        c = pc_connect(f->nodes[0].socket_path);
        {
                Wg__V1__Response *r = pc_create_cluster(c, "lost", 0644, 3);

                assert_int_equal(pc_errnum(r), 0);
                pc_free(r);
        }
        close(c);

        file_count_until(path, "<5>Took every change of the cluster groups in etcd again.", 1);
        assert_int_equal(file_count(path, "<4>Failed to mirror cluster group lost"), 1);
        assert_int_equal(file_count(path, "<7>Failed to mirror cluster group lost"), 1);
        assert_int_equal(
                file_count(
                        path,
                        "<4>Could not take a change of the cluster groups in etcd (Too many open files), "
                        "reading them all again in 1 s (quietly, until it works)."),
                1);
        assert_int_equal(
                file_count(
                        path,
                        "<7>Could not take a change of the cluster groups in etcd (Too many open files), "
                        "reading them all again in 2 s."),
                1);
        assert_int_equal(file_count(path, "Could not take a change"), 2);

        c = pc_connect(f->nodes[2].socket_path);
        stat_until(c, "lost", 3, 0);
        close(c);
}

/* Open @name with `create` as a cluster group; the answer, and the segment in *@ret_fd. */
static Wg__V1__Response *open_create_cluster(int c, const char *name, int *ret_fd) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Open m = WG__V1__OPEN__INIT;

        m.name = (char *) name;
        m.has_create = m.create = true;
        m.has_cluster = m.cluster = true;
        req.op_case = WG__V1__REQUEST__OP_OPEN;
        req.open = &m;
        return pc_call(c, &req, ret_fd);
}

/*
 * etcd makes a Create's group, and the node cannot mirror it (wgd-fault fails every segment the
 * node makes, until SIGUSR2). Create is answered with the group all the same, since an error
 * would say it was not made; an Open with create with EAGAIN, and asked again, EAGAIN again (the
 * group exists now, still not mirrored), never EEXIST. Once segments can be made, the node
 * mirrors both (it reads etcd again) and the Open opens.
 */
static void test_create_unmirrored(void **state) {
        Fixture *f = FIXTURE(state);
        Wg__V1__Response *r;
        int g, fd = -1;

        node_restart_faulty(f, 2, "memfd_create/wg:1000000", NULL, NULL);
        g = pc_connect(f->nodes[2].socket_path);

        r = pc_create_cluster(g, "unmirrored", 0, 2);
        assert_int_equal(pc_errnum(r), 0);
        assert_true(r->group->cluster);
        assert_int_equal(r->group->count, 2);
        pc_free(r);
        for (int i = 0; i < 2; i++) {
                r = open_create_cluster(g, "unopened", &fd);
                assert_int_equal(pc_errnum(r), EAGAIN);
                assert_true(fd < 0);
                pc_free(r);
        }
        pc_expect(pc_stat(g, "unmirrored"), ENOENT);

        assert_int_equal(kill(f->nodes[2].pid, SIGUSR2), 0);
        stat_until(g, "unmirrored", 2, 0);
        stat_until(g, "unopened", 0, 0);
        r = open_create_cluster(g, "unopened", &fd);
        assert_int_equal(pc_errnum(r), 0);
        assert_true(fd >= 0);
        pc_free(r);
        close(fd);
        close(g);
}

/*
 * The lease cannot be parked in the fdstore when etcd grants it (wgd-fault fails the memfd that
 * holds its name, once): the node says so, and parks it at the lease's next renewal.
 */
static void test_lease_parked_later(void **state) {
        Fixture *f = FIXTURE(state);
        char path[400];

        node_stop_unleased(f, 2); /* the lease to park is one etcd grants */
        node_restart_faulty(
                f, 2, "memfd_create/wg-lease:1", (const char *const[]) { "--log-level=notice", NULL }, path);

        file_count_until(path, "<5>Parked the lease in the fdstore", 1);
        assert_int_equal(file_count(path, "<4>Cannot park the lease in the fdstore"), 1);
}

/* Run wgctl against node @i; its exit status. stdout goes to @out, stderr to @err (NULL: ours). */
static int wgctl_full(Fixture *f, size_t i, const char *out, const char *err, const char *const *args) {
        const char *argv[16] = { getenv("WG_WGCTL") };
        size_t n = 1;
        pid_t pid;

        assert_non_null(argv[0]);
        for (; args[n - 1] && n < ELEMENTSOF(argv) - 1; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
                    setenv("WGD_SOCKET", f->nodes[i].socket_path, 1) < 0)
                        _exit(120);
                if (err) {
                        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

                        if (e < 0 || dup2(e, STDERR_FILENO) < 0)
                                _exit(121);
                }
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        return reap(pid);
}

static int wgctl(Fixture *f, size_t i, const char *out, const char *const *args) {
        return wgctl_full(f, i, out, NULL, args);
}

/* The README's example: wgctl on three machines, one group. */
static void test_wgctl(void **state) {
        Fixture *f = FIXTURE(state);
        char out[400];
        pid_t waiter;

        snprintf(out, sizeof(out), "%s/out", f->nodes[0].dir);
        assert_int_equal(
                wgctl(f,
                      0,
                      NULL,
                      (const char *const[]) {
                              "create", "shards", "--cluster", "--count", "2", "--mode", "0666", NULL }),
                0);
        assert_int_equal(wgctl(f, 0, out, (const char *const[]) { "status", "shards", "--json", NULL }), 0);
        assert_true(file_has(out, "\"scope\":\"cluster\""));
        assert_true(file_has(out, "\"count\":2"));

        /* A wait on alpha, in the background, ended by dones on beta and gamma. */
        {
                int c = pc_connect(f->nodes[1].socket_path), d = pc_connect(f->nodes[2].socket_path);

                stat_until(c, "shards", 2, 0);
                stat_until(d, "shards", 2, 0);
                close(c);
                close(d);
        }
        waiter = fork();
        assert_true(waiter >= 0);
        if (waiter == 0)
                _exit(wgctl(
                        f, 0, NULL, (const char *const[]) { "wait", "shards", "--timeout", "60s", NULL }));
        assert_int_equal(wgctl(f, 1, NULL, (const char *const[]) { "done", "shards", NULL }), 0);
        assert_int_equal(wgctl(f, 2, NULL, (const char *const[]) { "done", "shards", NULL }), 0);
        assert_int_equal(reap(waiter), 0);
        /* Below zero, as etcd counts: the usage of a counter gone wrong, exit 125 as for a local group. */
        assert_int_equal(wgctl(f, 2, NULL, (const char *const[]) { "done", "shards", NULL }), 125);
        assert_int_equal(wgctl(f, 1, out, (const char *const[]) { "status", "shards", NULL }), 0);
        assert_true(file_has(out, "scope: cluster"));
        assert_true(file_has(out, "generation: 1"));
        assert_int_equal(wgctl(f, 1, NULL, (const char *const[]) { "delete", "shards", NULL }), 0);
}

/*
 * A three-member etcd, one member killed while three processes do their dones, one per node:
 * calls go on to the other members, watches are taken up again from where they stopped, and
 * every done counts once.
 */
static void test_etcd_member_killed(void **state) {
        enum { PER_NODE = 60 };
        Fixture *f = FIXTURE(state);
        pid_t pids[NODES];
        int report[2], c = pc_connect(f->nodes[0].socket_path);
        char byte;

        pc_expect(pc_create_cluster(c, "sturdy", 0666, NODES * PER_NODE), 0);
        stat_all_until(f, "sturdy", NODES * PER_NODE, 0);
        assert_int_equal(pipe2(report, O_CLOEXEC), 0);
        for (size_t i = 0; i < NODES; i++)
                pids[i] = done_worker(f, i, "sturdy", PER_NODE, report[1]);
        close(report[1]);
        /* A third in on one node: kill the member every node talks to first. */
        if (read(report[0], &byte, 1) != 1)
                fail_msg("a worker gave up before a third of its dones");
        etcd_member_signal(&f->etcd, 0, SIGKILL);
        /* Open until all are done: the other workers write their byte too. */
        reap_workers(f, pids, "sturdy");
        close(report[0]);
        stat_all_until(f, "sturdy", 0, 1);
        close(c);
}

/*
 * Members on three nodes, one generation: one that waits at a gate on alpha, one that succeeds
 * on beta, one that fails on gamma; a wait on beta exits 1 naming the failure and its node.
 */
static void test_members(void **state) {
        Fixture *f = FIXTURE(state);
        char gate[400], cmd[512], out[400], err[400];
        pid_t waiter, holder;
        int c = pc_connect(f->nodes[1].socket_path);

        snprintf(gate, sizeof(gate), "%s/gate", f->nodes[0].dir);
        snprintf(out, sizeof(out), "%s/out", f->nodes[1].dir);
        snprintf(err, sizeof(err), "%s/err", f->nodes[1].dir);
        assert_int_equal(mkfifo(gate, 0600), 0);
        snprintf(cmd, sizeof(cmd), "read _ <'%s'", gate);
        assert_int_equal(
                wgctl(f,
                      0,
                      NULL,
                      (const char *const[]) { "create", "jobs", "--cluster", "--mode", "0666", NULL }),
                0);
        for (size_t i = 1; i < NODES; i++) {
                int n = pc_connect(f->nodes[i].socket_path);

                stat_until(n, "jobs", 0, 0);
                close(n);
        }

        /* The holder joins on alpha and waits at the gate; beta sees the count. */
        holder = fork();
        assert_true(holder >= 0);
        if (holder == 0)
                _exit(wgctl(
                        f, 0, NULL, (const char *const[]) { "run", "jobs", "--", "sh", "-c", cmd, NULL }));
        stat_until(c, "jobs", 1, 0);
        waiter = fork();
        assert_true(waiter >= 0);
        if (waiter == 0)
                _exit(wgctl_full(
                        f,
                        1,
                        NULL,
                        err,
                        (const char *const[]) { "wait", "jobs", "--timeout", "60s", NULL }));

        assert_int_equal(wgctl(f, 1, NULL, (const char *const[]) { "run", "jobs", "--", "true", NULL }), 0);
        assert_int_equal(
                wgctl(f, 2, NULL, (const char *const[]) { "run", "jobs", "--", "sh", "-c", "exit 3", NULL }),
                3);
        stat_until(c, "jobs", 1, 0);
        assert_int_equal(wgctl(f, 1, out, (const char *const[]) { "status", "jobs", "--json", NULL }), 0);
        assert_true(file_has(out, "\"node\":\"alpha\""));

        {
                int fd = open(gate, O_WRONLY | O_CLOEXEC);

                assert_true(fd >= 0);
                assert_int_equal(write(fd, "\n", 1), 1);
                close(fd);
        }
        assert_int_equal(reap(holder), 0);
        assert_int_equal(reap(waiter), 1);
        assert_true(file_has(err, "failed with status 3"));
        assert_true(file_has(err, "on gamma"));
        stat_until(c, "jobs", 0, 1);
        close(c);
}

/* A member that joined through libwg on node @node, and leaves (status 0) when @go closes. */
static pid_t member_on(Fixture *f, size_t node, const char *name, int *ret_go) {
        int go[2], ready[2];
        pid_t pid;
        char byte;

        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                wg *g;

                close(go[1]);
                close(ready[0]);
                if (setenv("WGD_SOCKET", f->nodes[node].socket_path, 1) < 0 || wg_join(name, 0, &g) < 0)
                        _exit(10);
                if (write(ready[1], "J", 1) != 1)
                        _exit(11);
                (void) read(go[0], &byte, 1);
                _exit(wg_leave(g, 0) == 0 ? 0 : 12);
        }
        close(go[0]);
        close(ready[1]);
        if (read(ready[0], &byte, 1) != 1)
                fail_msg("the member on %s did not join: exit %d", node_names[node], reap(pid));
        close(ready[0]);
        *ret_go = go[1];
        return pid;
}

/*
 * A node's wgd killed with SIGKILL while one of its processes is a member: its lease expires,
 * another node abandons the member, and the waiters on the other nodes return once it has
 * expired (on an idle machine within the TTL and two seconds), told which member of which node
 * it was.
 */
static void test_node_killed(void **state) {
        Fixture *f = FIXTURE(state);
        int c = pc_connect(f->nodes[0].socket_path), w = pc_connect(f->nodes[2].socket_path), go;
        uint64_t t0, took, bound;
        Wg__V1__Response *r;
        pid_t member;

        pc_expect(pc_create_cluster(c, "held", 0666, 0), 0);
        {
                int n = pc_connect(f->nodes[1].socket_path);

                stat_until(n, "held", 0, 0);
                close(n);
        }
        member = member_on(f, 1, "held", &go);
        stat_until(c, "held", 1, 0);
        stat_until(w, "held", 1, 0);
        pc_wait_send(c, 61, "held", UINT64_MAX);
        pc_wait_send(w, 62, "held", UINT64_MAX);
        pc_expect(pc_stat(c, "held"), 0);
        pc_expect(pc_stat(w, "held"), 0);

        t0 = monotonic_usec();
        assert_int_equal(harness_stop(&f->nodes[1], SIGKILL), 128 + SIGKILL);
        r = pc_recv(c, NULL);
        took = monotonic_usec() - t0;
        assert_int_equal(r->id, 61);
        pc_expect(r, 0);
        r = pc_recv(w, NULL);
        assert_int_equal(r->id, 62);
        pc_expect(r, 0);
        printf("# the waiters returned %.2f s after beta's wgd was killed (lease %u s)\n",
               (double) took / 1e6,
               lease_ttl());
        /*
         * The lease's expiry ended it, not something much slower (a retry, a read of etcd backed
         * off). Only that: what it takes beyond the TTL (the issue's two seconds, printed above)
         * is the machine's, and a busy one, or valgrind's, takes several.
         */
        bound = (lease_ttl() + 10) * UINT64_C(1000000);
        if (took > bound)
                fail_msg("the waiters returned %.2f s after the node died", (double) took / 1e6);

        /* Every node says who it was: beta's member, abandoned. */
        {
                bool named = false;

                r = pc_stat_generation(w, "held", 0);
                assert_int_equal(pc_errnum(r), 0);
                assert_non_null(r->group->outcome);
                assert_int_equal(r->group->outcome->abandoned, 1);
                for (size_t i = 0; i < r->group->n_members; i++)
                        if (r->group->members[i]->state == WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED &&
                            r->group->members[i]->node && strcmp(r->group->members[i]->node, "beta") == 0)
                                named = true;
                assert_true(named);
                pc_free(r);
        }

        /* The member itself is still there; its leave finds no wgd on its node any more. */
        close(go);
        assert_int_not_equal(reap(member), 0);
        close(c);
        close(w);
}

/*
 * etcd with authentication on: a node given root's password (--etcd-user, --etcd-password-file)
 * creates and counts; a node without credentials is refused (EACCES), and says so.
 */
static void test_auth(void **state) {
        Fixture *f = FIXTURE(state);
        char password_file[400], user_arg[64], file_arg[450];
        int c, d;

        etcd_cluster_enable_auth(&f->etcd, "s3cret");
        snprintf(password_file, sizeof(password_file), "%s/password", f->nodes[0].dir);
        {
                int fd = open(password_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                assert_true(fd >= 0);
                assert_int_equal(write(fd, "s3cret\n", 7), 7);
                close(fd);
        }
        snprintf(user_arg, sizeof(user_arg), "--etcd-user=root");
        snprintf(file_arg, sizeof(file_arg), "--etcd-password-file=%s", password_file);
        assert_int_equal(harness_stop(&f->nodes[0], SIGTERM), 0);
        node_start_with(f, 0, (const char *const[]) { user_arg, file_arg, NULL });

        c = pc_connect(f->nodes[0].socket_path);
        pc_expect(pc_create_cluster(c, "guarded", 0666, 1), 0);
        pc_expect(pc_add(c, "guarded", -1), 0);
        stat_until(c, "guarded", 0, 1);

        d = pc_connect(f->nodes[1].socket_path);
        pc_expect(pc_create_cluster(d, "intruder", 0666, 1), EACCES);
        close(d);
        close(c);
}

/*
 * A node's wgd crashes and is restarted with its fdstore (the harness plays systemd) within its
 * lease: its cluster group's mirror, which a process there still maps and waits on, and its
 * member come back; the member leaves through the new wgd, counted as a success, not abandoned,
 * and the waiters on both nodes return.
 */
static void test_node_restarted(void **state) {
        /* Long, so that the restart needs no race with the lease (the test is not of its expiry). */
        const char *const long_lease[] = { "--lease-ttl=300", NULL };
        Fixture *f = FIXTURE(state);
        int c = pc_connect(f->nodes[0].socket_path), go, ready[2];
        Wg__V1__Response *r;
        pid_t member, holder;
        char byte;

        node_stop_unleased(f, 1); /* a lease granted with the long TTL, not the short one of before */
        node_start_with(f, 1, long_lease);
        pc_expect(pc_create_cluster(c, "kept", 0666, 0), 0);
        stat_all_until(f, "kept", 0, 0);
        member = member_on(f, 1, "kept", &go);
        stat_all_until(f, "kept", 1, 0);

        /* A process on beta that maps the mirror from before the restart, and waits on it. */
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        holder = fork();
        assert_true(holder >= 0);
        if (holder == 0) {
                wg *g;

                close(ready[0]);
                close(go); /* the member's: it leaves when the test closes its end, not ours */
                if (setenv("WGD_SOCKET", f->nodes[1].socket_path, 1) < 0 || wg_open("kept", 0, &g) < 0 ||
                    write(ready[1], "R", 1) != 1)
                        _exit(10);
                {
                        int k = wg_wait(g, 60 * UINT64_C(1000000));

                        if (k != 0)
                                fprintf(stderr, "holder: wg_wait: %s\n", strerror(-k));
                        _exit(k == 0 ? 0 : 11);
                }
        }
        close(ready[1]);
        assert_int_equal(read(ready[0], &byte, 1), 1);
        close(ready[0]);
        pc_wait_send(c, 71, "kept", UINT64_MAX);
        pc_expect(pc_stat(c, "kept"), 0);

        assert_int_equal(harness_stop(&f->nodes[1], SIGKILL), 128 + SIGKILL);
        node_start_with(f, 1, long_lease);
        {
                int n = pc_connect(f->nodes[1].socket_path);

                stat_until(n, "kept", 1, 0);
                close(n);
        }

        /* The member leaves through the new wgd (libwg says it again on a new connection). */
        close(go);
        assert_int_equal(reap(member), 0);
        r = pc_recv(c, NULL);
        assert_int_equal(r->id, 71);
        pc_expect(r, 0);
        {
                int n = pc_connect(f->nodes[1].socket_path);

                stat_until(n, "kept", 0, 1); /* beta's mirror, the one from before, ended it too */
                close(n);
        }
        assert_int_equal(reap(holder), 0);

        {
                r = pc_stat_generation(c, "kept", 0);
                assert_int_equal(pc_errnum(r), 0);
                assert_non_null(r->group->outcome);
                assert_int_equal(r->group->outcome->succeeded, 1);
                assert_int_equal(r->group->outcome->abandoned, 0);
                pc_free(r);
        }
        close(c);
}

int main(void) {

        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_three_nodes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_dones, setup, teardown),
                cmocka_unit_test_setup_teardown(test_etcd_stopped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_etcd_member_killed, setup3, teardown),
                cmocka_unit_test_setup_teardown(test_wgctl, setup, teardown),
                cmocka_unit_test_setup_teardown(test_members, setup, teardown),
                cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
                cmocka_unit_test_setup_teardown(test_node_killed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_node_restarted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_etcd, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mirror_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_creates_in_flight, setup, teardown),
                cmocka_unit_test_setup_teardown(test_joins_in_flight, setup, teardown),
                cmocka_unit_test_setup_teardown(test_etcd_away_quietly, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lost_change_read_again, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hidden_group_appears, setup, teardown),
                cmocka_unit_test_setup_teardown(test_room_read_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lease_parked_later, setup, teardown),
                cmocka_unit_test_setup_teardown(test_create_unmirrored, setup, teardown),
        };

        if (getenv("WG_TEST_FILTER"))
                cmocka_set_test_filter(getenv("WG_TEST_FILTER"));
        return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
