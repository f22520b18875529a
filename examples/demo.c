/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wg-demo: one wait group, several unrelated programs.
 *
 * The demo creates an anonymous group and adds one piece of work per job. Each job is a
 * separate program (wg-demo-worker), exec'd with nothing but the group's fd inherited. A
 * watcher, another exec'd program, is handed the fd over a unix socket instead and waits for the
 * group on its own. The demo waits too, reporting what is left, and then runs a second round on
 * the same group to show that it can be reused at once.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wg.h"

extern char **environ;

static const struct {
        const char *name;
        long msec;
} jobs[] = {
        { "fetch", 300 }, { "resize", 700 }, { "index", 500 }, { "compress", 900 }, { "upload", 400 },
};
#define N_JOBS (sizeof(jobs) / sizeof(jobs[0]))

static char worker_path[4096];

static int fail(const char *what, int r) {
        fprintf(stderr, "wg-demo: %s: %s\n", what, strerror(r < 0 ? -r : r));
        return EXIT_FAILURE;
}

/* The worker program sits next to this one. */
static int find_worker(void) {
        ssize_t n = readlink("/proc/self/exe", worker_path, sizeof(worker_path) - 1);
        char *slash;

        if (n < 0)
                return -errno;
        worker_path[n] = 0;
        slash = strrchr(worker_path, '/');
        if (!slash || (size_t) (slash - worker_path) + sizeof("/wg-demo-worker") > sizeof(worker_path))
                return -ENAMETOOLONG;
        strcpy(slash + 1, "wg-demo-worker");
        return 0;
}

/* Start the worker program with @fd inherited as @fd (dup2 onto itself clears close-on-exec). */
static int spawn_with_fd(pid_t *ret, int fd, char **argv) {
        posix_spawn_file_actions_t fa;
        int r;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fd, fd);
        r = posix_spawn(ret, worker_path, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        return -r;
}

static int send_fd(int sock, int fd) {
        char byte = 'w';
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

        memset(&control, 0, sizeof(control));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static pid_t start_watcher(wg *g) {
        char sock_arg[16];
        char *argv[] = { (char *) "wg-demo-worker", (char *) "watch", sock_arg, NULL };
        int s[2], r;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s) < 0)
                return -errno;
        snprintf(sock_arg, sizeof(sock_arg), "%d", s[1]);
        r = spawn_with_fd(&pid, s[1], argv);
        close(s[1]);
        if (r == 0)
                r = send_fd(s[0], wg_fd(g));
        close(s[0]);
        return r < 0 ? r : pid;
}

static int round_of_jobs(wg *g, unsigned round) {
        pid_t pids[N_JOBS + 1];
        char fd_arg[16], msec_arg[16];
        unsigned n = 0, failed = 0;
        uint64_t left, gen;
        int r;

        printf("round %u: %zu jobs, each a separate program, one watcher\n", round, N_JOBS);

        /* Add before anything starts, so no waiter can see zero before the work exists. */
        r = wg_add(g, N_JOBS);
        if (r < 0)
                return fail("add", r);

        r = start_watcher(g);
        if (r < 0)
                return fail("start watcher", r);
        pids[n++] = r;

        snprintf(fd_arg, sizeof(fd_arg), "%d", wg_fd(g));
        for (size_t i = 0; i < N_JOBS; i++) {
                char *argv[] = {
                        (char *) "wg-demo-worker", (char *) "work", fd_arg, (char *) jobs[i].name, msec_arg, NULL,
                };

                snprintf(msec_arg, sizeof(msec_arg), "%ld", jobs[i].msec / round);
                r = spawn_with_fd(&pids[n], wg_fd(g), argv);
                if (r < 0)
                        return fail("start worker", r);
                n++;
        }

        /* Wait in slices, to say how much is left; the deadline of each slice is its own. */
        for (;;) {
                r = wg_wait(g, 250 * 1000);
                if (r == 0)
                        break;
                if (r != -ETIMEDOUT)
                        return fail("wait", r);
                if (wg_get_count(g, &left) == 0)
                        printf("  demo            waiting, %llu of %zu jobs left\n", (unsigned long long) left,
                               N_JOBS);
        }
        (void) wg_get_generation(g, &gen);
        printf("  demo            all jobs done (generation %llu)\n", (unsigned long long) gen);

        for (unsigned i = 0; i < n; i++) {
                int status;

                if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        failed++;
        }
        if (failed > 0) {
                fprintf(stderr, "wg-demo: %u programs failed\n", failed);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

int main(void) {
        wg *g;
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);

        r = find_worker();
        if (r < 0)
                return fail("find wg-demo-worker", r);

        r = wg_new(&g);
        if (r < 0)
                return fail("create group", r);

        r = round_of_jobs(g, 1);
        if (r == EXIT_SUCCESS)
                r = round_of_jobs(g, 2);

        wg_unref(g);
        if (r == EXIT_SUCCESS)
                printf("ok: %zu jobs in 2 rounds of one group, across %zu processes\n", 2 * N_JOBS,
                       2 * (N_JOBS + 1));
        return r;
}
