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
 *   wg-helper rounds WORK G0 G1 N       N rounds of: done(WORK), wait(G[round % 2])
 *   wg-helper churn FD N                N times: add(FD, 1), done(FD)
 *   wg-helper watch FD STOP TALLY       wait on FD with mixed timeouts until STOP's count is 0,
 *                                       checking every return; write the number of waits that
 *                                       returned 0 to TALLY as a decimal line
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "seqpacket.h"
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

static int must(const char *what, int r) {
        if (r < 0) {
                fprintf(stderr, "wg-helper[%d]: %s: %s\n", (int) getpid(), what, strerror(-r));
                exit(1);
        }
        return r;
}

/* The worker side of the rounds stress: see tests/test-stress.c for the coordinator. */
static int rounds(wg *work, wg *gate[2], long long n) {
        for (long long i = 0; i < n; i++) {
                must("done(work)", wg_done(work));
                must("wait(gate)", wg_wait(gate[i % 2], WG_USEC_INFINITY));
        }
        return 0;
}

static int churn(wg *g, long long n) {
        for (long long i = 0; i < n; i++) {
                must("add", wg_add(g, 1));
                must("done", wg_done(g));
        }
        return 0;
}

/*
 * Wait again and again while adders and doers run, with timeouts from none to forever. Every
 * successful return must be justified: either the counter was zero when we looked, or a
 * generation ended since.
 */
static int watch(wg *g, wg *stop, int tally) {
        static const uint64_t timeouts[] = { 0, 1, 20, 100, WG_USEC_INFINITY };
        unsigned long long ok = 0;
        char line[32];
        int len;

        for (unsigned i = 0;; i++) {
                uint64_t stop_count, count, gen, gen_after;
                int r;

                must("count(stop)", wg_get_count(stop, &stop_count));
                if (stop_count == 0)
                        break;

                must("generation", wg_get_generation(g, &gen));
                must("count", wg_get_count(g, &count));
                r = wg_wait(g, timeouts[i % 5]);
                if (r == -ETIMEDOUT && timeouts[i % 5] != WG_USEC_INFINITY)
                        continue;
                must("wait", r);
                ok++;
                must("generation", wg_get_generation(g, &gen_after));
                if (count != 0 && gen_after == gen) {
                        fprintf(stderr, "wg-helper: wait returned in generation %" PRIu64 " it waited for\n", gen);
                        return 1;
                }
        }

        len = snprintf(line, sizeof(line), "%llu\n", ok);
        return write(tally, line, (size_t) len) == len ? 0 : 1;
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

        if (strcmp(argv[1], "rounds") == 0 && argc == 6) {
                wg *work = attach((int) parse_ll(argv[2]));
                wg *gate[2] = { attach((int) parse_ll(argv[3])), attach((int) parse_ll(argv[4])) };
                int r = rounds(work, gate, parse_ll(argv[5]));

                wg_unref(work);
                wg_unref(gate[0]);
                wg_unref(gate[1]);
                return r;
        }

        if (strcmp(argv[1], "churn") == 0 && argc == 4) {
                wg *g = attach((int) parse_ll(argv[2]));
                int r = churn(g, parse_ll(argv[3]));

                wg_unref(g);
                return r;
        }

        if (strcmp(argv[1], "watch") == 0 && argc == 5) {
                wg *g = attach((int) parse_ll(argv[2]));
                wg *stop = attach((int) parse_ll(argv[3]));
                int r = watch(g, stop, (int) parse_ll(argv[4]));

                wg_unref(g);
                wg_unref(stop);
                return r;
        }

        return die_usage(argv[1]);
}
