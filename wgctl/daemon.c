/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Talking to wgd, and starting one when none runs: a fresh machine needs no set-up. Where systemd
 * listens on the socket (socket activation), connecting starts wgd by itself and nothing here
 * is needed; where nothing listens, wgctl starts a wgd of the caller's own, detached from
 * everything (like gpg-agent), which exits once it has had no group and no client for a while.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "group-name.h"
#include "macro.h"
#include "wgctl.h"

#ifndef WGD_PATH
#error "WGD_PATH: where wgd is installed"
#endif

/* How long a wgd started on demand lives without groups and clients. */
#define AUTOSTART_IDLE "--idle-timeout=30"
/* How long to wait for it to listen. */
#define AUTOSTART_PATIENCE_MSEC 5000

const char *response_message(const Wg__V1__Response *r) {
        if (r->result_case == WG__V1__RESPONSE__RESULT_ERROR && r->error && r->error->message && *r->error->message)
                return r->error->message;
        return "(no message)";
}

/* Start wgd in a session of its own, with nothing of ours but the environment. */
static int start_wgd(const char *socket_path) {
        const char *wgd = getenv("WGCTL_WGD");
        char socket_arg[sizeof(((struct sockaddr_un *) 0)->sun_path) + 16];
        pid_t pid;
        int status;

        if (!wgd || !*wgd)
                wgd = WGD_PATH;
        snprintf(socket_arg, sizeof(socket_arg), "--socket=%s", socket_path);

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                /* The middle process exits at once, so wgd is nobody's child and no shell's job. */
                if (setsid() < 0)
                        _exit(1);
                pid = fork();
                if (pid != 0)
                        _exit(pid < 0 ? 1 : 0);

                int null = open("/dev/null", O_RDWR | O_CLOEXEC);

                if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
                        _exit(1);
                closefrom(3);
                if (chdir("/") < 0)
                        _exit(1);
                execl(wgd, wgd, socket_arg, AUTOSTART_IDLE, (char *) NULL);
                _exit(127);
        }

        if (waitpid(pid, &status, 0) < 0)
                return negative_errno();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -ECHILD;
        return 0;
}

static bool autostart_allowed(void) {
        const char *e = getenv("WGCTL_NO_AUTOSTART");

        return !e || !*e || strcmp(e, "0") == 0;
}

static void sleep_msec(unsigned msec) {
        struct timespec ts = { .tv_sec = msec / 1000, .tv_nsec = (long) (msec % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Try @attempt; if nobody listens, start a wgd and try again until it does. */
static int with_autostart(int (*attempt)(void *userdata), void *userdata) {
        char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        unsigned waited = 0, step = 2;
        int r;

        r = attempt(userdata);
        if (r != -ECONNREFUSED || !autostart_allowed())
                return r;

        r = wg_socket_path(path, sizeof(path));
        if (r < 0)
                return r;
        r = start_wgd(path);
        if (r < 0)
                return r;

        /* It takes a few milliseconds to listen. (Two wgctl racing start two; one wins the lock.) */
        for (;;) {
                r = attempt(userdata);
                if (r != -ECONNREFUSED || waited >= AUTOSTART_PATIENCE_MSEC)
                        return r;
                sleep_msec(step);
                waited += step;
                step = step < 100 ? step * 2 : 100;
        }
}

struct call_args {
        Wg__V1__Request *req;
        Wg__V1__Response **ret;
        int *ret_fd;
};

static int call_attempt(void *userdata) {
        struct call_args *a = userdata;

        return wg__call_full(a->req, a->ret, a->ret_fd);
}

int daemon_call(Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd) {
        struct call_args a = { .req = req, .ret = ret, .ret_fd = ret_fd };

        return with_autostart(call_attempt, &a);
}

struct join_args {
        const char *name, *description;
        wg **ret;
};

static int join_attempt(void *userdata) {
        struct join_args *a = userdata;

        return wg__join(a->name, 0, a->description, a->ret);
}

int daemon_join(const char *name, const char *description, wg **ret) {
        struct join_args a = { .name = name, .description = description, .ret = ret };

        return with_autostart(join_attempt, &a);
}

int daemon_open(const char *name, bool allow_eacces, wg **ret) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        _cleanup_close_ int fd = -EBADF;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Open open = WG__V1__OPEN__INIT;
        int r;

        open.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_OPEN;
        req.open = &open;

        r = daemon_call(&req, &resp, &fd);
        if (r < 0)
                return failure(r == -ETIMEDOUT ? -EIO : r, "cannot reach wgd: %s", strerror(-r));
        if (resp->result_case == WG__V1__RESPONSE__RESULT_ERROR) {
                if (allow_eacces && resp->error->errnum == EACCES)
                        return -EACCES;
                return failure(-resp->error->errnum, "%s", response_message(resp));
        }
        if (fd < 0)
                return failure(-EPROTO, "wgd answered without the group's segment.");

        r = wg_from_fd(fd, ret);
        if (r < 0)
                return failure(r, "the segment of '%s' is not valid: %s", name, strerror(-r));
        return 0;
}
