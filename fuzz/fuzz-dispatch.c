/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz wgd's request handling: records from several clients with different credentials go
 * through dispatch_record() of a real Server, exactly as they would from sockets, except that
 * the clients have no socket, so their answers are dropped (client_reply() with fd < 0).
 *
 * Other processes that hold a group's segment are played here too: they add and done through
 * libwg, or write anything into the state word, behind wgd's back.
 *
 * Besides the sanitizers, the oracles are wgd's own bookkeeping and promises: after every
 * record the Server's lists, counters and accounts must agree with each other and with the
 * limits, no Wait may be pending whose generation ended, and a generation ended by another
 * process must reach wgd through its watcher; after every input nothing may be left behind
 * (groups, Waits, timers, descriptors).
 *
 * The input format is in fuzz-dispatch.h.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "dispatch.h"
#include "fuzz-dispatch.h"
#include "log.h"
#include "segment.h"
#include "server.h"
#include "wait.h"
#include "wg-private.h"

/*
 * Descriptors that may appear after setup and stay: sd-event opens its timerfd with the first
 * timer. Anything beyond this is a leak.
 */
#define FD_SLACK 8

/* How often one "run the event loop" may dispatch: enough to drain, bounded against a loop. */
#define EVENT_RUNS_MAX 64

/* How long the watcher may take to report a wake: forever, for a thread that is runnable. */
#define SETTLE_USEC (3 * UINT64_C(1000000))
/* How long to give it for a report that is likely but not certain (see peer_write()). */
#define SETTLE_SOFT_USEC (100 * UINT64_C(1000))
/* How long the watcher threads may take to go back to sleep before a peer writes. */
#define QUIESCE_USEC (100 * UINT64_C(1000))

static gid_t bob_groups[] = { 1000 };
static gid_t stranger_groups[] = { 3000, 3001 };

/*
 * Every client is this process (the pid is set at setup): a Join takes a pidfd of its peer's
 * process, which must be one that lives as long as the fuzzer, and no other.
 */
static Peer peers[FUZZ_N_CLIENTS] = {
        [FUZZ_ROOT] = { .uid = 0, .gid = 0 },
        [FUZZ_ALICE] = { .uid = 1000, .gid = 1000 },
        [FUZZ_BOB] = { .uid = 1001, .gid = 1001, .groups = bob_groups, .n_groups = 1 },
        [FUZZ_ALICE2] = { .uid = 1000, .gid = 1000 },
        [FUZZ_STRANGER] = { .uid = 2000, .gid = 2000, .groups = stranger_groups, .n_groups = 2 },
};

static sd_event *event;
static Server *server;
static Client *clients[FUZZ_N_CLIENTS];
static int fd_baseline = -1;
/* A peer wrote into a segment in this input: its state word may hold anything now. */
static bool segments_scribbled;
/*
 * A Wait may have ended without wgd knowing yet: after a peer's write that woke nobody, which
 * wgd learns of only at its next look, or where the watcher cannot see (below).
 */
static bool waits_unsettled;
/*
 * wgd's watcher sleeps in futex_waitv(), whose behaviour settle() relies on. Without it
 * (valgrind 3.19, Linux before 5.16) wgd falls back to slices of FUTEX_WAIT, and the
 * lost-wakeup oracle is off.
 */
static bool watcher_works;

static void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *format, ...) {
        va_list ap;

        fputs("fuzz-dispatch: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        abort();
}

/* The lowest free descriptor: grows if descriptors leak, whichever they are. */
static int lowest_free_fd(void) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                die("Cannot open /dev/null: %s", strerror(errno));
        (void) close(fd);
        return fd;
}

static void client_connect(unsigned i) {
        Peer peer;
        int r = peer_copy(&peer, &peers[i]);

        if (r >= 0)
                r = server_add_client(server, -EBADF, &peer, &clients[i]);
        if (r < 0)
                die("server_add_client(): %s", strerror(-r));
}

/* What wgd does on end of file: the connection goes, with its Waits unanswered. */
static void client_hang_up(unsigned i) {
        server_drop_client(server, clients[i]);
        client_connect(i);
}

static void run_events(void) {
        for (unsigned i = 0; i < EVENT_RUNS_MAX; i++) {
                int r = sd_event_run(event, 0);

                if (r < 0)
                        die("sd_event_run(): %s", strerror(-r));
                if (r == 0)
                        break;
        }
}

static bool is_our_client(const Client *c) {
        for (unsigned i = 0; i < FUZZ_N_CLIENTS; i++)
                if (clients[i] == c)
                        return true;
        return false;
}

/* What waits_check() answers a Wait for, seen in the state word @st of its group. */
static bool wait_ended(const Wait *w, uint64_t st) {
        return wg_state_check(st) < 0 || wg_state_generation(st) != w->generation || wg_state_count(st) == 0;
}

static bool group_has_ended_wait(const Group *g) {
        uint64_t st = __atomic_load_n(g->handle->state, __ATOMIC_ACQUIRE);

        LIST_FOREACH (by_group, w, g->waits)
                if (wait_ended(w, st))
                        return true;
        return false;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                die("clock_gettime(): %s", strerror(errno));
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/*
 * Run the event loop until the watcher's report has answered every Wait on @g that ended, or
 * @usec passed. Waiting for the report keeps inputs deterministic, where the report is certain.
 * Groups are only freed by requests, never by events: @g stays.
 */
static bool settle(const Group *g, uint64_t usec) {
        uint64_t deadline = now_usec() + usec;

        while (group_has_ended_wait(g)) {
                uint64_t now = now_usec();
                int r;

                if (now >= deadline)
                        return false;
                r = sd_event_run(event, deadline - now);
                if (r < 0)
                        die("sd_event_run(): %s", strerror(-r));
        }
        return true;
}

/*
 * Whether every thread but this one sleeps in a system call, as /proc shows it ("running" is
 * anything else): the watcher's threads then sleep on their words or on their control word.
 * Without /proc, pretend they do.
 */
static bool other_threads_asleep(void) {
        DIR *d = opendir("/proc/self/task");
        bool asleep = true;
        struct dirent *de;
        pid_t self = gettid();

        if (!d)
                return true;
        while (asleep && (de = readdir(d))) {
                char path[NAME_MAX + sizeof("/syscall")], buf[16] = {};
                ssize_t n;
                int fd;

                if (de->d_name[0] == '.' || atoi(de->d_name) == self)
                        continue;
                (void) snprintf(path, sizeof(path), "%s/syscall", de->d_name);
                fd = openat(dirfd(d), path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue; /* the thread is gone */
                n = read(fd, buf, sizeof(buf) - 1);
                (void) close(fd);
                asleep = n <= 0 || strncmp(buf, "running", 7) != 0;
        }
        (void) closedir(d);
        return asleep;
}

/*
 * Before a peer writes: let the watcher finish what it was doing (re-reading its words after
 * a change, reporting one) and go to sleep, so that whether the write reaches it is decided by
 * the write, not by the scheduler.
 */
static void quiesce(void) {
        uint64_t deadline = now_usec() + QUIESCE_USEC;

        if (!watcher_works)
                return;
        for (;;) {
                bool dispatched = false;

                while (!other_threads_asleep() && now_usec() < deadline)
                        (void) sched_yield();
                for (unsigned i = 0; i < EVENT_RUNS_MAX; i++) {
                        int r = sd_event_run(event, 0);

                        if (r < 0)
                                die("sd_event_run(): %s", strerror(-r));
                        if (r == 0)
                                break;
                        dispatched = true;
                }
                if (!dispatched || now_usec() >= deadline)
                        return;
        }
}

static bool futex_waitv_works(void) {
        /* The same test as the watcher's: an empty vector is EINVAL where the call exists. */
        return syscall(SYS_futex_waitv, NULL, 0, 0, NULL, CLOCK_MONOTONIC) < 0 && errno == EINVAL;
}

struct group_tally {
        unsigned n;
        uid_t owner;
        unsigned n_owned;
};

static void check_group(Group *g, void *userdata) {
        struct group_tally *t = userdata;
        uint64_t st = __atomic_load_n(g->handle->state, __ATOMIC_ACQUIRE);
        unsigned n_waits = 0;

        t->n++;
        if (g->owner == t->owner)
                t->n_owned++;

        if (!group_name_valid(g->name) || server_find_group(server, g->name) != g)
                die("Group '%s' is not where the server has it.", g->name);
        if (!g->account || g->account->uid != g->owner)
                die("Group '%s' is not charged to its owner %u.", g->name, (unsigned) g->owner);
        if ((g->mode & ~0666u) || (g->mode & 0600) != 0600)
                die("Group '%s' has mode %04o.", g->name, g->mode);
        /*
         * Unless a peer wrote nonsense into it, wgd never corrupts or half-deletes a segment
         * (a broken one, after an abandoned member, is a state like any other).
         */
        if (!segments_scribbled && (st & (WG_STATE_DELETED | WG_STATE_INVALID)))
                die("Group '%s' has state word %#llx.", g->name, (unsigned long long) st);
        /*
         * wgd looks again after every change it makes and after every wake: between records, no
         * Wait is left whose generation ended, and every watched word asks its completer to wake.
         */
        if (!waits_unsettled && g->waits && !(st & WG_STATE_WAITERS))
                die("Group '%s' has Waits but no WAITERS in state word %#llx.",
                    g->name,
                    (unsigned long long) st);

        LIST_FOREACH (by_group, w, g->waits) {
                if (w->group != g || !is_our_client(w->client))
                        die("A Wait of group '%s' belongs elsewhere.", g->name);
                if (!waits_unsettled && wait_ended(w, st))
                        die("A Wait of group '%s' for generation %llu is still pending in state word %#llx.",
                            g->name,
                            (unsigned long long) w->generation,
                            (unsigned long long) st);
                n_waits++;
        }
        if (n_waits != g->n_waits)
                die("Group '%s' counts %u Waits, has %u.", g->name, g->n_waits, n_waits);
        if (!!g->waits != !!g->watch)
                die("Group '%s' has %u Waits but %s watch.", g->name, n_waits, g->watch ? "a" : "no");
}

struct group_pick {
        unsigned index;
        Group *group;
};

static void pick_group(Group *g, void *userdata) {
        struct group_pick *p = userdata;

        if (p->index-- == 0)
                p->group = g;
}

/* Another process that holds a group's segment writes to it (see fuzz-dispatch.h). */
static void peer_write(const uint8_t *p, size_t len) {
        uint8_t b[FUZZ_PEER_SIZE] = {};
        struct group_pick pick = {};
        uint64_t value = 0, before, after;
        long woken;
        Group *g;

        memcpy(b, p, len < sizeof(b) ? len : sizeof(b));
        if (server->n_groups == 0)
                return;
        pick.index = b[1] % server->n_groups;
        server_foreach_group(server, pick_group, &pick);
        g = pick.group;
        if (!g)
                die("Group %u of %u is not there.", (unsigned) b[1] % server->n_groups, server->n_groups);
        for (unsigned i = 0; i < 8; i++)
                value |= (uint64_t) b[2 + i] << (8 * i);
        quiesce();
        before = __atomic_load_n(g->handle->state, __ATOMIC_ACQUIRE);

        switch (b[0] % FUZZ_PEER_N) {
        case FUZZ_PEER_ADD:
                /* Through libwg, which refuses what a correct holder may not do: the word stays sane. */
                if (wg_add(g->handle, (int64_t) value) < 0)
                        break;
                after = __atomic_load_n(g->handle->state, __ATOMIC_ACQUIRE);
                if (!g->waits || wg_state_generation(after) == wg_state_generation(before))
                        break;
                if (!watcher_works) {
                        waits_unsettled = true;
                        break;
                }
                /*
                 * libwg wakes when the add that ends a generation takes WAITERS away, and wgd set
                 * WAITERS on every word it watches. Unless a peer scribbled on words in this input,
                 * the watcher slept on exactly the word before this add, so its report is
                 * certain: this is the oracle for lost wakeups between processes.
                 */
                if (!settle(g, segments_scribbled ? SETTLE_SOFT_USEC : SETTLE_USEC) && !segments_scribbled)
                        die("Lost wakeup: a holder's add ended generation %llu of '%s', which wgd waits "
                            "for, and after %llu ms the Wait is still pending.",
                            (unsigned long long) wg_state_generation(before),
                            g->name,
                            (unsigned long long) (SETTLE_USEC / 1000));
                break;
        case FUZZ_PEER_STORE:
                /* quiesce() put the watcher to sleep: without a wake, wgd learns at its next look. */
                __atomic_store_n(g->handle->state, value, __ATOMIC_RELEASE);
                segments_scribbled = waits_unsettled = true;
                break;
        case FUZZ_PEER_STORE_WAKE:
                __atomic_store_n(g->handle->state, value, __ATOMIC_RELEASE);
                segments_scribbled = waits_unsettled = true;
                /* Shared, like libwg's: the watcher sleeps on the word's page, not on our address. */
                woken = syscall(
                        SYS_futex, wg_state_futex(g->handle->state), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
                if (woken < 0)
                        die("FUTEX_WAKE: %s", strerror(errno));
                /*
                 * Nothing else sleeps on our segments, so a woken sleeper is the watcher, which
                 * reports. Else it was between two sleeps after all (quiesce() gives up after a
                 * while), and reports if the futex word (the upper half) differs from what it last
                 * watched, likely what it was before this write. Likely, not certain: wait a
                 * little, for determinism only.
                 */
                if (watcher_works && g->waits && (woken > 0 || (value >> 32) != (before >> 32)))
                        (void) settle(g, SETTLE_SOFT_USEC);
                break;
        }
}

/* Everything the Server keeps about groups, clients and accounts must add up. */
static void check_invariants(void) {
        struct group_tally all = { .owner = (uid_t) -1 };
        unsigned n = 0;

        server_foreach_group(server, check_group, &all);
        if (all.n != server->n_groups || all.n > server->limits.groups)
                die("The server counts %u groups, has %u (limit %u).",
                    server->n_groups,
                    all.n,
                    server->limits.groups);

        LIST_FOREACH (clients, c, server->clients) {
                unsigned n_waits = 0;

                if (!is_our_client(c))
                        die("The server has a client that is not ours.");
                if (c->dead || c->n_out > 0 || c->out_head)
                        die("Client of uid %u has output or is dead without a socket.",
                            (unsigned) c->peer.uid);
                if (!c->account || c->account->uid != c->peer.uid)
                        die("Client of uid %u is charged elsewhere.", (unsigned) c->peer.uid);
                LIST_FOREACH (by_client, w, c->waits) {
                        if (w->client != c || server_find_group(server, w->group->name) != w->group)
                                die("A Wait of client uid %u belongs elsewhere.", (unsigned) c->peer.uid);
                        n_waits++;
                }
                if (n_waits != c->n_waits || n_waits > server->limits.waits_per_connection)
                        die("Client of uid %u counts %u Waits, has %u (limit %u).",
                            (unsigned) c->peer.uid,
                            c->n_waits,
                            n_waits,
                            server->limits.waits_per_connection);
                n++;
        }
        if (n != FUZZ_N_CLIENTS || server->n_clients != FUZZ_N_CLIENTS)
                die("The server has %u clients (counts %u), not %u.", n, server->n_clients, FUZZ_N_CLIENTS);

        LIST_FOREACH (accounts, a, server->accounts.accounts) {
                struct group_tally owned = { .owner = a->uid };
                unsigned n_connections = 0;

                for (unsigned i = 0; i < FUZZ_N_CLIENTS; i++)
                        if (clients[i]->peer.uid == a->uid)
                                n_connections++;
                server_foreach_group(server, check_group, &owned);
                if (owned.n_owned != a->n_groups || a->n_groups > server->limits.groups_per_uid)
                        die("Uid %u is charged %u groups, owns %u (limit %u).",
                            (unsigned) a->uid,
                            a->n_groups,
                            owned.n_owned,
                            server->limits.groups_per_uid);
                if (n_connections != a->n_connections)
                        die("Uid %u is charged %u connections, has %u.",
                            (unsigned) a->uid,
                            a->n_connections,
                            n_connections);
                if (a->n_groups == 0 && a->n_connections == 0)
                        die("Uid %u has an account with nothing in it.", (unsigned) a->uid);
        }
}

/* Back to the state after setup: no group, no Wait, no timer, no descriptor of this input. */
static void reset(void) {
        int fd;

        /* The root of a tsearch() tree points to a node whose first member is the key. */
        while (server->groups)
                server_forget_group(server, *(Group **) server->groups);
        run_events();

        segments_scribbled = waits_unsettled = false;
        check_invariants();
        if (server->n_groups > 0)
                die("Groups left after reset.");

        fd = lowest_free_fd();
        if (fd > fd_baseline + FD_SLACK)
                die("Descriptors leak: the lowest free one is %d, it was %d after setup.", fd, fd_baseline);
}

/*
 * One Create through the whole path, at setup: a change elsewhere (a new limit left at 0, say)
 * that made every request fail would otherwise leave the fuzzer exploring error paths only.
 */
static void self_test(void) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Create create = WG__V1__CREATE__INIT;
        uint8_t buf[64];
        size_t len;

        create.name = (char *) "self-test";
        req.has_version = true;
        req.version = 1;
        req.op_case = WG__V1__REQUEST__OP_CREATE;
        req.create = &create;
        len = wg__v1__request__get_packed_size(&req);
        if (len > sizeof(buf))
                die("Self-test request of %zu bytes.", len);
        (void) wg__v1__request__pack(&req, buf);

        dispatch_record(clients[FUZZ_ALICE], buf, len, 0);
        if (!server_find_group(server, "self-test"))
                die("Self-test: a Create from uid 1000 did not create the group: check the limits here.");
        reset();
}

static void teardown(void) {
        if (!server)
                return;
        reset();
        /* server_free() frees the clients too. */
        for (unsigned i = 0; i < FUZZ_N_CLIENTS; i++)
                clients[i] = NULL;
        server = server_free(server);
        event = sd_event_unref(event);
}

static void setup(void) {
        static const ServerLimits limits = {
                .groups = FUZZ_GROUPS,
                .groups_per_uid = FUZZ_GROUPS_PER_UID,
                .connections_per_uid = FUZZ_N_CLIENTS,
                .connections = FUZZ_N_CLIENTS,
                .waits_per_connection = FUZZ_WAITS_PER_CONNECTION,
                .members_per_uid = FUZZ_MEMBERS_PER_UID,
                .members = FUZZ_N_CLIENTS * FUZZ_MEMBERS_PER_UID,
                .queued_bytes_per_uid = 1 << 20,
                .queued_bytes = 1 << 20,
        };
        const char *level;
        int r;

        /* Groups go to systemd's fdstore through $NOTIFY_SOCKET: not from a fuzzer. */
        if (unsetenv("NOTIFY_SOCKET") < 0)
                die("unsetenv(): %s", strerror(errno));

        /* Quiet by default: wgd logs every create and delete, which would drown the fuzzer's output. */
        level = getenv("WG_FUZZ_LOG_LEVEL");
        r = level ? log_parse_level(level) : LOG_ERR;
        if (r < 0)
                die("Unknown $WG_FUZZ_LOG_LEVEL '%s'.", level);
        log_set_max_level(r);

        for (unsigned i = 0; i < FUZZ_N_CLIENTS; i++)
                peers[i].pid = getpid();

        r = sd_event_new(&event);
        if (r < 0)
                die("sd_event_new(): %s", strerror(-r));
        r = server_new(event, &limits, dispatch_record, &server);
        if (r < 0)
                die("server_new(): %s", strerror(-r));
        for (unsigned i = 0; i < FUZZ_N_CLIENTS; i++)
                client_connect(i);

        watcher_works = futex_waitv_works();
        fd_baseline = lowest_free_fd();
        if (atexit(teardown) != 0)
                die("atexit() failed.");
        self_test();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (!server)
                setup();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!server)
                setup();

        while (size >= FUZZ_HEADER_SIZE) {
                unsigned control = data[0], who = (control & FUZZ_CLIENT_MASK) % FUZZ_N_CLIENTS;
                size_t declared = (size_t) data[1] | (size_t) data[2] << 8, len;

                data += FUZZ_HEADER_SIZE;
                size -= FUZZ_HEADER_SIZE;
                len = declared < size ? declared : size;

                if (control & FUZZ_RUN_EVENTS)
                        run_events();

                if (control & FUZZ_PEER)
                        peer_write(data, len);
                else if (declared == 0)
                        client_hang_up(who);
                else if (len > 0) {
                        /* A copy of exactly the record, so that reading past its end is caught. */
                        uint8_t *record = malloc(len);

                        if (!record)
                                die("Out of memory.");
                        memcpy(record, data, len);
                        dispatch_record(clients[who], record, len, 0);
                        free(record);
                        /* The last request (Request.last): wgd closes the connection after it. */
                        if (clients[who]->hung_up)
                                client_hang_up(who);
                }
                data += len;
                size -= len;

                check_invariants();
        }

        run_events();
        check_invariants();
        reset();
        return 0;
}
