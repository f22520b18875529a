/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wg-demo-worker: the programs that wg-demo starts. They share nothing with it but a segment
 * fd, which arrives the way it would between unrelated programs:
 *
 *   wg-demo-worker work FD NAME MSEC   attach to the group at inherited fd FD, work for MSEC
 *                                      milliseconds, then mark one piece done
 *   wg-demo-worker watch SOCK          receive the group's fd over the unix socket SOCK, wait
 *                                      for it to complete, and say so
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wg.h"

static int fail(const char *what, int r) {
        fprintf(stderr, "wg-demo-worker[%d]: %s: %s\n", (int) getpid(), what, strerror(-r));
        return EXIT_FAILURE;
}

static int receive_fd(int sock) {
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct cmsghdr *c;
        int fd;

        if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) <= 0)
                return -errno;
        c = CMSG_FIRSTHDR(&mh);
        if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
                return -EBADMSG;
        memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        return fd;
}

static int work(int fd, const char *name, long msec) {
        struct timespec ts = { .tv_sec = msec / 1000, .tv_nsec = msec % 1000 * 1000000L };
        wg *g;
        int r;

        r = wg_from_fd(fd, &g);
        if (r < 0)
                return fail("attach", r);
        close(fd);

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        printf("  worker %-8s pid %-7d finished after %4ld ms, done\n", name, (int) getpid(), msec);
        fflush(stdout);

        r = wg_done(g);
        wg_unref(g);
        return r < 0 ? fail("done", r) : EXIT_SUCCESS;
}

static int watch(int sock) {
        uint64_t gen;
        int fd, r;
        wg *g;

        fd = receive_fd(sock);
        if (fd < 0)
                return fail("receive", fd);
        r = wg_from_fd(fd, &g);
        close(fd);
        if (r < 0)
                return fail("attach", r);

        r = wg_wait(g, WG_USEC_INFINITY);
        if (r < 0) {
                wg_unref(g);
                return fail("wait", r);
        }
        (void) wg_get_generation(g, &gen);
        printf("  watcher         pid %-7d saw the group complete (generation %llu)\n", (int) getpid(),
               (unsigned long long) gen);
        wg_unref(g);
        return EXIT_SUCCESS;
}

int main(int argc, char **argv) {
        if (argc == 5 && strcmp(argv[1], "work") == 0)
                return work(atoi(argv[2]), argv[3], atol(argv[4]));
        if (argc == 3 && strcmp(argv[1], "watch") == 0)
                return watch(atoi(argv[2]));

        fprintf(stderr, "usage: wg-demo-worker work FD NAME MSEC | watch SOCK\n");
        return 2;
}
