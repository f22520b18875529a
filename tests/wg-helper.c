/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wg-helper: the unrelated process of the tests. The tests exec it with segment fds inherited
 * (or a unix socket to receive one from) and a script of operations; it knows nothing of the
 * test but what its arguments say, like any program that links libwg.
 *
 *   wg-helper ops FD[,FD...] OP...      attach to the segments at the FDs, run OPs in order on
 *                                       the first one (use:I switches to the I-th)
 *   wg-helper recv SOCK OP...           receive a segment fd over unix socket SOCK, then run OPs
 *   wg-helper named NAME FLAGS OP...    wg_open(NAME, FLAGS) through wgd ($WGD_SOCKET), then run
 *                                       OPs; FLAGS is a number, or NAME=ERRNO to expect failure
 *   wg-helper member NAME STATUS USEC [FD [GO]]
 *                                       wg_join(NAME), sleep USEC, wg_leave(STATUS); with FD,
 *                                       write 'J' to it once joined and 'L' once left; with GO,
 *                                       leave only once a byte (or EOF) can be read from it
 *
 * The stress test's roles (tests/test-stress.c is the coordinator; BOARD is the fd of its
 * shared page, tests/stress-board.h; RESTART 1 installs the SIGUSR1 handler with SA_RESTART):
 *
 *   wg-helper stress-worker BOARD WORK G0 G1 INDEX TIMED RESTART
 *                                       rounds of done(WORK), then wait for gate G[round % 2],
 *                                       with short random timeouts if TIMED, else forever,
 *                                       until the board says stop; checks every release
 *   wg-helper stress-churn BOARD WORK   add(WORK, 1), done(WORK) until the board says stop
 *   wg-helper stress-watch BOARD WORK RESTART
 *                                       wait on WORK with timeouts from none to forever until
 *                                       the board says stop, checking every return
 *
 * An OP is NAME[:ARG][=EXPECT]: add:N, done, wait[:USEC], count:N (the counter must be N),
 * tally:FD (writes one byte to FD), block:FD (reads one byte, or end of file, from FD),
 * sleep:USEC, use:I. EXPECT is the errno name the operation
 * must fail with (ETIMEDOUT, ERANGE, ...); without it, it must succeed. Exit status: 0 when
 * every operation did what was expected, 1 otherwise (with a line on stderr), 2 for bad
 * arguments.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "seqpacket.h"
#include "stress-board.h"
#include "wg.h"

static const struct {
        const char *name;
        int value;
} errnos[] = {
        { "EINTR", EINTR },           { "ETIMEDOUT", ETIMEDOUT }, { "ERANGE", ERANGE },
        { "EOVERFLOW", EOVERFLOW },   { "EUCLEAN", EUCLEAN },     { "EINVAL", EINVAL },
        { "EBADMSG", EBADMSG },       { "EMEDIUMTYPE", EMEDIUMTYPE }, { "EIDRM", EIDRM },
        { "EACCES", EACCES },         { "ENOENT", ENOENT },         { "EEXIST", EEXIST },
        { "EPERM", EPERM },           { "ECONNREFUSED", ECONNREFUSED }, { "EDQUOT", EDQUOT },
        { "EUSERS", EUSERS },         { "EOWNERDEAD", EOWNERDEAD }, { "ENOTCONN", ENOTCONN },
};

static int die_usage(const char *what) {
        fprintf(stderr, "wg-helper: bad arguments: %s\n", what);
        exit(2);
}

static long long parse_ll(const char *s) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end)
                die_usage(s);
        return v;
}

static int parse_errno(const char *s) {
        for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
                if (strcmp(errnos[i].name, s) == 0)
                        return errnos[i].value;
        die_usage(s);
        return 0;
}

static wg *attach(int fd) {
        wg *g;
        int r = wg_from_fd(fd, &g);

        if (r < 0) {
                fprintf(stderr, "wg-helper: attach fd %d: %s\n", fd, strerror(-r));
                exit(1);
        }
        /* The handle holds its own copy: drop the inherited one, as a tidy program would. */
        (void) close(fd);
        return g;
}

static int recv_fd(int sock) {
        char byte;
        int fd;

        if (seqpacket_recv(sock, &byte, 1, &fd, 0) != 1 || fd < 0) {
                fprintf(stderr, "wg-helper: no fd received\n");
                exit(1);
        }
        (void) close(sock);
        return fd;
}

static void sleep_usec(long long usec) {
        struct timespec ts = { .tv_sec = usec / 1000000, .tv_nsec = usec % 1000000 * 1000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

#define MAX_GROUPS 8

static int run_op(wg **groups, size_t n_groups, wg **current, const char *op) {
        wg *g = *current;
        char name[32] = {}, arg[32] = {};
        const char *colon, *eq;
        int expect = 0, r;
        size_t len;

        eq = strchr(op, '=');
        if (eq)
                expect = -parse_errno(eq + 1);
        len = eq ? (size_t) (eq - op) : strlen(op);
        colon = memchr(op, ':', len);
        if (colon) {
                if ((size_t) (colon - op) >= sizeof(name) || len - (size_t) (colon - op) - 1 >= sizeof(arg))
                        die_usage(op);
                memcpy(name, op, (size_t) (colon - op));
                memcpy(arg, colon + 1, len - (size_t) (colon - op) - 1);
        } else {
                if (len >= sizeof(name))
                        die_usage(op);
                memcpy(name, op, len);
        }

        if (strcmp(name, "add") == 0)
                r = wg_add(g, parse_ll(arg));
        else if (strcmp(name, "done") == 0)
                r = wg_done(g);
        else if (strcmp(name, "wait") == 0)
                r = wg_wait(g, colon ? (uint64_t) parse_ll(arg) : WG_USEC_INFINITY);
        else if (strcmp(name, "count") == 0) {
                uint64_t c;

                r = wg_get_count(g, &c);
                if (r == 0 && c != (uint64_t) parse_ll(arg)) {
                        fprintf(stderr, "wg-helper: count is %" PRIu64 ", expected %s\n", c, arg);
                        return -1;
                }
        } else if (strcmp(name, "use") == 0) {
                long long i = parse_ll(arg);

                if (i < 0 || (size_t) i >= n_groups)
                        die_usage(op);
                *current = groups[i];
                r = 0;
        } else if (strcmp(name, "tally") == 0)
                r = write((int) parse_ll(arg), "x", 1) == 1 ? 0 : -errno;
        else if (strcmp(name, "block") == 0) {
                char byte;
                ssize_t n;

                /* Until the test says so: a byte, or end of file. */
                while ((n = read((int) parse_ll(arg), &byte, 1)) < 0 && errno == EINTR)
                        ;
                r = n >= 0 ? 0 : -errno;
        }
        else if (strcmp(name, "sleep") == 0) {
                sleep_usec(parse_ll(arg));
                r = 0;
        } else
                die_usage(op);

        if (r != expect) {
                fprintf(stderr, "wg-helper[%d]: %s returned %d (%s), expected %d\n", (int) getpid(), op, r,
                        r < 0 ? strerror(-r) : "success", expect);
                return -1;
        }
        return 0;
}

static int run_ops(wg **groups, size_t n_groups, char **ops, int n) {
        wg *current = groups[0];

        for (int i = 0; i < n; i++)
                if (run_op(groups, n_groups, &current, ops[i]) < 0)
                        return 1;
        return 0;
}

/* The stress roles: see tests/test-stress.c for the coordinator, stress-board.h for the board. */
static struct stress_board *board;

static struct stress_board *board_map(int fd) {
        void *p = mmap(NULL, sizeof(struct stress_board), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

        if (p == MAP_FAILED) {
                fprintf(stderr, "wg-helper: cannot map the board: %m\n");
                exit(1);
        }
        (void) close(fd);
        return p;
}

static bool stopping(void) {
        return __atomic_load_n(&board->stop, __ATOMIC_ACQUIRE) != 0;
}

/* Count an unexpected result, say what it was (the first few times), and tell the caller. */
static int stress_error(const char *what, int r) {
        static unsigned said;

        stress_count(&board->errors);
        if (said++ < 5)
                fprintf(stderr,
                        "wg-helper[%d]: %s returned %d (%s)\n",
                        (int) getpid(),
                        what,
                        r,
                        r < 0 ? strerror(-r) : "unexpected");
        return -1;
}

static void on_signal(int sig) {
        stress_count(&board->signals);
}

/* SIGUSR1 interrupts our waits: with SA_RESTART or without, wg_wait() reports EINTR. */
static void catch_signals(bool restart) {
        struct sigaction sa = { .sa_handler = on_signal, .sa_flags = restart ? SA_RESTART : 0 };

        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGUSR1, &sa, NULL) < 0) {
                fprintf(stderr, "wg-helper: sigaction: %m\n");
                exit(1);
        }
}

/* xorshift64: cheap randomness for the timeouts, seeded per process. */
static uint64_t next_random(uint64_t *x) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        return *x;
}

/*
 * A worker of the rounds: done(work), then through gate[round % 2], and again, until the
 * coordinator's last round. A release by the gate must find the gate opened (else premature);
 * a timeout of a wait that began after the gate was opened is a release that was lost.
 */
static int stress_worker(wg *work, wg *gate[2], unsigned idx, bool timed) {
        uint64_t x = (uint64_t) getpid() * UINT64_C(0x9e3779b97f4a7c15) | 1;

        for (uint64_t round = 0;; round++) {
                int r;

                __atomic_store_n(&board->arrived[idx], round + 1, __ATOMIC_RELEASE);
                r = wg_done(work);
                if (r < 0)
                        return stress_error("done(work)", r);

                for (;;) {
                        uint64_t opened_before = __atomic_load_n(&board->gate_done, __ATOMIC_ACQUIRE);
                        uint64_t timeout = timed ? next_random(&x) % 64 : WG_USEC_INFINITY;

                        stress_count(&board->waits);
                        if (timed)
                                stress_count(&board->timed_waits);
                        r = wg_wait(gate[round % 2], timeout);
                        if (r == 0)
                                break;
                        if (r == -EINTR) {
                                stress_count(&board->interrupted);
                                continue;
                        }
                        if (r != -ETIMEDOUT || !timed)
                                return stress_error("wait(gate)", r);
                        stress_count(&board->timeouts);
                        if (opened_before >= round + 1) {
                                stress_count(&board->lost_wakeups);
                                fprintf(stderr,
                                        "wg-helper[%d]: round %" PRIu64 ": timed out on an open gate\n",
                                        (int) getpid(),
                                        round);
                        }
                }

                if (__atomic_load_n(&board->opened, __ATOMIC_ACQUIRE) < round + 1) {
                        stress_count(&board->premature);
                        fprintf(stderr,
                                "wg-helper[%d]: round %" PRIu64 ": through a gate not opened\n",
                                (int) getpid(),
                                round);
                }
                if (stopping())
                        return 0;
        }
}

/*
 * Adds and dones of our own on the work group, in the middle of the rounds: the pairs change
 * the word under the waiters' feet, and end generations of their own between rounds. A pause
 * after each pair keeps the churner from taking a whole CPU from the rounds.
 */
static int stress_churn(wg *work) {
        while (!stopping()) {
                int r = wg_add(work, 1);

                if (r < 0)
                        return stress_error("add(work)", r);
                r = wg_done(work);
                if (r < 0)
                        return stress_error("done(work)", r);
                stress_count(&board->churns);
                sleep_usec(STRESS_PAUSE_USEC);
        }
        return 0;
}

/*
 * Wait on the work group again and again, with timeouts from none to forever. A release is
 * premature if the counter was not zero before the wait and the generation did not move.
 */
static int stress_watch(wg *work) {
        static const uint64_t timeouts[] = { 0, 1, 20, 100, 1000, WG_USEC_INFINITY };

        for (unsigned i = 0; !stopping(); i++) {
                uint64_t timeout = timeouts[i % 6], gen, count, gen_after;
                int r;

                r = wg_get_generation(work, &gen);
                if (r >= 0)
                        r = wg_get_count(work, &count);
                if (r < 0)
                        return stress_error("get(work)", r);

                stress_count(&board->waits);
                if (timeout != WG_USEC_INFINITY)
                        stress_count(&board->timed_waits);
                r = wg_wait(work, timeout);
                if (r == -EINTR) {
                        stress_count(&board->interrupted);
                        continue;
                }
                if (r == -ETIMEDOUT && timeout != WG_USEC_INFINITY) {
                        stress_count(&board->timeouts);
                        continue;
                }
                if (r != 0)
                        return stress_error("wait(work)", r);
                r = wg_get_generation(work, &gen_after);
                if (r < 0)
                        return stress_error("generation(work)", r);
                if (count != 0 && gen_after == gen) {
                        stress_count(&board->premature);
                        fprintf(stderr,
                                "wg-helper[%d]: released in generation %" PRIu64 ", which was running\n",
                                (int) getpid(),
                                gen);
                }
                /* Nothing was outstanding: pause, rather than spin while the rounds want the CPU. */
                if (count == 0)
                        sleep_usec(STRESS_PAUSE_USEC);
        }
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 3)
                die_usage("need a mode and an fd");

        if (strcmp(argv[1], "ops") == 0 || strcmp(argv[1], "recv") == 0) {
                wg *groups[MAX_GROUPS];
                size_t n = 0;
                int r;

                if (strcmp(argv[1], "recv") == 0)
                        groups[n++] = attach(recv_fd((int) parse_ll(argv[2])));
                else
                        for (char *tok = strtok(argv[2], ","); tok; tok = strtok(NULL, ",")) {
                                if (n >= MAX_GROUPS)
                                        die_usage("too many fds");
                                groups[n++] = attach((int) parse_ll(tok));
                        }
                if (n == 0)
                        die_usage("no fd");

                r = run_ops(groups, n, argv + 3, argc - 3);
                for (size_t i = 0; i < n; i++)
                        wg_unref(groups[i]);
                return r;
        }

        if (strcmp(argv[1], "named") == 0 && argc >= 4) {
                char *expect = strchr(argv[3], '=');
                wg *g = NULL;
                int r;

                if (expect)
                        *expect++ = 0;
                r = wg_open(argv[2], (uint64_t) parse_ll(argv[3]), &g);
                if (expect) {
                        if (r != -parse_errno(expect)) {
                                fprintf(stderr, "wg-helper: wg_open(%s) returned %d, expected -%s\n", argv[2], r,
                                        expect);
                                return 1;
                        }
                        return 0;
                }
                if (r < 0) {
                        fprintf(stderr, "wg-helper: wg_open(%s): %s\n", argv[2], strerror(-r));
                        return 1;
                }
                r = run_ops(&g, 1, argv + 4, argc - 4);
                wg_unref(g);
                return r;
        }

        if (strcmp(argv[1], "member") == 0 && argc >= 5 && argc <= 7) {
                int report = argc >= 6 ? (int) parse_ll(argv[5]) : -1, go = argc == 7 ? (int) parse_ll(argv[6]) : -1, r;
                char byte;
                wg *g;

                r = wg_join(argv[2], 0, &g);
                if (r < 0) {
                        fprintf(stderr, "wg-helper: wg_join(%s): %s\n", argv[2], strerror(-r));
                        return 1;
                }
                if (report >= 0 && write(report, "J", 1) != 1)
                        return 1;
                sleep_usec(parse_ll(argv[4]));
                while (go >= 0 && read(go, &byte, 1) < 0 && errno == EINTR)
                        ;
                r = wg_leave(g, (int) parse_ll(argv[3]));
                if (r < 0) {
                        fprintf(stderr, "wg-helper: wg_leave(%s): %s\n", argv[2], strerror(-r));
                        return 1;
                }
                if (report >= 0 && write(report, "L", 1) != 1)
                        return 1;
                wg_unref(g);
                return 0;
        }

        if (strcmp(argv[1], "stress-worker") == 0 && argc == 9) {
                wg *work, *gate[2];
                long long idx = parse_ll(argv[6]);
                int r;

                if (idx < 0 || idx >= STRESS_MAX_WORKERS)
                        die_usage(argv[6]);
                board = board_map((int) parse_ll(argv[2]));
                catch_signals(parse_ll(argv[8]) != 0);
                work = attach((int) parse_ll(argv[3]));
                gate[0] = attach((int) parse_ll(argv[4]));
                gate[1] = attach((int) parse_ll(argv[5]));
                stress_count(&board->started);
                r = stress_worker(work, gate, (unsigned) idx, parse_ll(argv[7]) != 0);
                wg_unref(work);
                wg_unref(gate[0]);
                wg_unref(gate[1]);
                return r < 0 ? 1 : 0;
        }

        if (strcmp(argv[1], "stress-churn") == 0 && argc == 4) {
                wg *work;
                int r;

                board = board_map((int) parse_ll(argv[2]));
                work = attach((int) parse_ll(argv[3]));
                stress_count(&board->started);
                r = stress_churn(work);
                wg_unref(work);
                return r < 0 ? 1 : 0;
        }

        if (strcmp(argv[1], "stress-watch") == 0 && argc == 5) {
                wg *work;
                int r;

                board = board_map((int) parse_ll(argv[2]));
                catch_signals(parse_ll(argv[4]) != 0);
                work = attach((int) parse_ll(argv[3]));
                stress_count(&board->started);
                r = stress_watch(work);
                wg_unref(work);
                return r < 0 ? 1 : 0;
        }

        return die_usage(argv[1]);
}
