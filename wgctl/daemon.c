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
#include <limits.h>
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
#ifndef WGCTL_PATH
#error "WGCTL_PATH: where wgctl is installed"
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

/*
 * What went wrong the last time we started wgd, for daemon_failure(): "cannot reach wgd" would
 * hide it. Steps are numbered from 1, so that 0 means the start went well (or was not tried).
 */
typedef enum StartStep {
        START_OK,
        START_ENVIRONMENT,
        START_PIPE,
        START_FORK,
        START_SESSION,
        START_STDIO,
        START_CHDIR,
        START_EXEC,
        START_LISTEN, /* it started, but nobody listened in time */
} StartStep;

static struct {
        StartStep step;
        int error;
        const char *wgd;
        char socket[sizeof(((struct sockaddr_un *) 0)->sun_path)];
} start_failure;

/* The record a child sends back through the start pipe when a step fails: nothing means exec'd. */
typedef struct StartReport {
        int step;
        int error;
} StartReport;

static _Noreturn void start_fail(int fd, StartStep step) {
        StartReport report = { .step = step, .error = errno };

        /* One record, less than PIPE_BUF: written whole or not at all. Nothing else can be done. */
        (void) write(fd, &report, sizeof(report));
        _exit(1);
}

/*
 * The environment of a systemd service, which is the service's and not wgd's. Started from a
 * Type=notify unit with NotifyAccess=all, a wgd that kept NOTIFY_SOCKET would tell that unit
 * READY=1 and park its groups in that unit's fdstore. LISTEN_* and WATCHDOG_* are for the
 * service's main process: sd-daemon's pid checks keep wgd from acting on them, but a wgd of its
 * own should not carry them either.
 */
static const char *const service_environment[] = {
        "NOTIFY_SOCKET=", "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
};

/* Our environment without service_environment, for wgd: a new array of the same strings. */
static char **wgd_environment(void) {
        size_t n = 0, k = 0;
        char **env;

        while (environ[n])
                n++;
        env = calloc(n + 1, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                bool drop = false;

                for (size_t j = 0; j < ELEMENTSOF(service_environment) && !drop; j++) {
                        const char *v = service_environment[j];

                        drop = strncmp(environ[i], v, strlen(v)) == 0;
                }
                if (!drop)
                        env[k++] = environ[i];
        }
        return env;
}

/*
 * Start wgd in a session of its own, with nothing of ours but the environment (less that of a
 * service we may run in). Returns 0 once
 * wgd is exec'd, or -errno with start_failure saying which step failed.
 *
 * Every step of the two children is reported through a close-on-exec pipe (the classic fork and
 * exec error pipe): the exec closes it, so end of file with nothing read means wgd runs, and a
 * record read means it never will. Without it, a wgd that cannot run would look like one that
 * is slow to listen, and we would wait our whole patience for it to say nothing.
 */
static int start_wgd(const char *wgd, const char *socket_path) {
        char socket_arg[sizeof(((struct sockaddr_un *) 0)->sun_path) + 16];
        StartReport report = { .step = START_OK };
        _cleanup_free_ char **env = NULL;
        int p[2], status;
        ssize_t n;
        pid_t pid;

        snprintf(socket_arg, sizeof(socket_arg), "--socket=%s", socket_path);
        start_failure.wgd = wgd;

        /* Made here, not in the child: after a fork, only async-signal-safe calls. */
        env = wgd_environment();
        if (!env) {
                report = (StartReport) { .step = START_ENVIRONMENT, .error = ENOMEM };
                goto fail;
        }
        if (pipe2(p, O_CLOEXEC) < 0) {
                report = (StartReport) { .step = START_PIPE, .error = errno };
                goto fail;
        }

        pid = fork();
        if (pid < 0) {
                report = (StartReport) { .step = START_FORK, .error = errno };
                safe_close(p[0]);
                safe_close(p[1]);
                goto fail;
        }
        if (pid == 0) {
                int fd, null;

                /* The middle process exits at once, so wgd is nobody's child and no shell's job. */
                if (setsid() < 0)
                        start_fail(p[1], START_SESSION);
                pid = fork();
                if (pid < 0)
                        start_fail(p[1], START_FORK);
                if (pid > 0)
                        _exit(0);

                /*
                 * Keep the pipe's write end above the standard streams (we may have been started
                 * with some closed, so that it is one of them), then at 3, still close-on-exec,
                 * while everything else of ours goes.
                 */
                fd = fcntl(p[1], F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        start_fail(p[1], START_STDIO);
                null = open("/dev/null", O_RDWR);
                if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
                        start_fail(fd, START_STDIO);
                if (fd != 3 && dup3(fd, 3, O_CLOEXEC) < 0)
                        start_fail(fd, START_STDIO);
                closefrom(4);
                if (chdir("/") < 0)
                        start_fail(3, START_CHDIR);
                execve(wgd, (char *const[]) { (char *) wgd, socket_arg, (char *) AUTOSTART_IDLE, NULL },
                       env);
                start_fail(3, START_EXEC);
        }

        safe_close(p[1]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        status = 0; /* reaped by somebody else: the pipe tells all the same */
                        break;
                }
        do
                n = read(p[0], &report, sizeof(report));
        while (n < 0 && errno == EINTR);
        safe_close(p[0]);

        if (n == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (n == 0)
                /* The middle process died before it could fork, and without a word: a signal. */
                report = (StartReport) { .step = START_FORK, .error = ECHILD };
        else if (n != sizeof(report) || report.step <= START_OK || report.step > START_EXEC ||
                 report.error <= 0)
                /* A short read, or garbage: the pipe is ours alone, so never; but say something. */
                report = (StartReport) { .step = START_FORK, .error = n < 0 ? errno : EIO };
fail:
        start_failure.step = report.step;
        start_failure.error = report.error;
        return -report.error;
}

/* daemon_forbid_start() was called: a wgd we would start now would know nothing we need. */
static bool start_forbidden = false;

static bool autostart_allowed(void) {
        const char *e = getenv("WGCTL_NO_AUTOSTART");

        if (start_forbidden)
                return false;
        return !e || !*e || strcmp(e, "0") == 0;
}

static void sleep_msec(unsigned msec) {
        struct timespec ts = { .tv_sec = msec / 1000, .tv_nsec = (long) (msec % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/*
 * The wgd of the build tree this wgctl runs from, if it runs from one: BUILD/wgctl/wgctl starts
 * BUILD/wgd/wgd, so that a build works before (and without) an install, as the tests and the
 * README's demo use it. Found from /proc/self/exe, not from a path compiled in: the installed
 * wgctl must not carry (or depend on) the build directory, and a build tree may move.
 *
 * Only when this is not the installed wgctl, when it sits in a directory named wgctl, and when
 * the wgd found has the same owner as this wgctl: a copy of wgctl somewhere others may write
 * (/tmp/wgctl/wgctl) must not run their /tmp/wgd/wgd.
 */
static const char *build_tree_wgd(char *buf, size_t size) {
        static const char tail[] = "/wgctl/wgctl";
        struct stat st_exe, st_wgd;
        char exe[PATH_MAX];
        size_t k = strlen(tail);
        ssize_t n;

        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
                return NULL;
        exe[n] = 0;
        if (strcmp(exe, WGCTL_PATH) == 0)
                return NULL;
        if ((size_t) n < k || strcmp(exe + n - k, tail) != 0)
                return NULL;
        if (snprintf(buf, size, "%.*s/wgd/wgd", (int) ((size_t) n - k), exe) >= (int) size)
                return NULL;

        /* (A rebuilt wgctl is "... (deleted)": no stat, no build tree; the installed wgd then.) */
        if (stat(exe, &st_exe) < 0 || stat(buf, &st_wgd) < 0)
                return NULL;
        if (!S_ISREG(st_wgd.st_mode) || st_wgd.st_uid != st_exe.st_uid || access(buf, X_OK) < 0)
                return NULL;
        return buf;
}

/* The wgd to start: $WGCTL_WGD, else that of our build tree, else the installed one. */
static const char *wgd_program(char *buf, size_t size) {
        const char *e = getenv("WGCTL_WGD");

        if (e && *e)
                return e;
        return build_tree_wgd(buf, size) ?: WGD_PATH;
}

/* Try @attempt; if nobody listens, start a wgd and try again until it does. */
static int with_autostart(int (*attempt)(void *userdata), void *userdata) {
        char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        static char wgd_buf[PATH_MAX];
        const char *wgd;
        unsigned waited = 0, step = 2;
        int r;

        r = attempt(userdata);
        if (r != -ECONNREFUSED || !autostart_allowed())
                return r;

        r = wg_socket_path(path, sizeof(path));
        if (r < 0)
                return r;
        wgd = wgd_program(wgd_buf, sizeof(wgd_buf));
        start_failure.step = START_OK;
        r = start_wgd(wgd, path);
        if (r < 0)
                /* Still nobody listening: daemon_failure() tells why from start_failure. */
                return -ECONNREFUSED;

        /* It takes a few milliseconds to listen. (Two wgctl racing start two; one wins the lock.) */
        for (;;) {
                r = attempt(userdata);
                if (r != -ECONNREFUSED)
                        return r;
                if (waited >= AUTOSTART_PATIENCE_MSEC) {
                        start_failure.step = START_LISTEN;
                        start_failure.error = -r;
                        memcpy(start_failure.socket, path, sizeof(path));
                        return r;
                }
                sleep_msec(step);
                waited += step;
                step = step < 100 ? step * 2 : 100;
        }
}

int daemon_failure(int error) {
        static const char *const steps[] = {
                [START_ENVIRONMENT] = "cannot copy the environment",
                [START_PIPE] = "cannot make a pipe",
                [START_FORK] = "cannot fork",
                [START_SESSION] = "cannot make a session",
                [START_STDIO] = "cannot set up its standard streams",
                [START_CHDIR] = "cannot change to /",
        };
        int e = start_failure.error;

        switch (error == -ECONNREFUSED ? start_failure.step : START_OK) {
        case START_OK:
                return failure(error == -ETIMEDOUT ? -EIO : error, "cannot reach wgd: %s",
                               strerror(-error));
        case START_EXEC:
                return failure(error, "cannot start wgd: %s: %s (WGCTL_WGD names the wgd to start).",
                               start_failure.wgd, strerror(e));
        case START_LISTEN:
                return failure(error, "started %s, but it did not listen on %s within %u s: %s.",
                               start_failure.wgd, start_failure.socket, AUTOSTART_PATIENCE_MSEC / 1000,
                               strerror(e));
        default:
                return failure(error, "cannot start wgd %s: %s: %s.", start_failure.wgd,
                               steps[start_failure.step], strerror(e));
        }
}

struct call_args {
        Wg__V1__Request *req;
        Wg__V1__Response **ret;
        int *ret_fd;
        int *ret_sock; /* NULL: close the connection after the answer */
};

static int call_attempt(void *userdata) {
        struct call_args *a = userdata;
        _cleanup_close_ int sock = -EBADF;
        int r;

        if (!a->ret_sock)
                return wg__call_full(a->req, a->ret, a->ret_fd);

        sock = wg__connect();
        if (sock < 0)
                return sock;
        r = wg__request(sock, a->req, a->ret, a->ret_fd);
        if (r < 0)
                return r;
        *a->ret_sock = TAKE_FD(sock);
        return 0;
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

int daemon_open(const char *name, bool allow_eacces, wg **ret, int *ret_sock) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        _cleanup_close_ int fd = -EBADF, sock = -EBADF;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Open open = WG__V1__OPEN__INIT;
        struct call_args a = {
                .req = &req, .ret = &resp, .ret_fd = &fd, .ret_sock = ret_sock ? &sock : NULL,
        };
        int r;

        open.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_OPEN;
        req.open = &open;

        r = with_autostart(call_attempt, &a);
        if (r < 0)
                return daemon_failure(r);
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
        if (ret_sock)
                *ret_sock = TAKE_FD(sock);
        return 0;
}

int daemon_reopen(const char *name, wg *g, int *ret_sock) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        _cleanup_close_ int fd = -EBADF, sock = -EBADF;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Open open = WG__V1__OPEN__INIT;
        struct stat ours, theirs;
        int r;

        open.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_OPEN;
        req.open = &open;

        /* Never a wgd of our own here: it would know no group, least of all this one. */
        r = wg__call_keep(&req, &resp, &fd, &sock);
        if (r < 0)
                return r;
        if (fd < 0)
                return -EPROTO;

        /*
         * The same group is the same segment: the memfd that a restarted wgd took back from the
         * fdstore is the one we map. A group deleted and created again under the name is not.
         */
        if (fstat(fd, &theirs) < 0 || fstat(wg_fd(g), &ours) < 0)
                return negative_errno();
        if (theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino)
                return -ESTALE;

        *ret_sock = TAKE_FD(sock);
        return 0;
}

int daemon_died(const char *name, int error) {
        char path[sizeof(((struct sockaddr_un *) 0)->sun_path)] = "its socket";
        const char *what;

        switch (error) {
        case -ECONNREFUSED:
                (void) wg_socket_path(path, sizeof(path));
                return failure(error, "'%s': wgd died while we waited, and no wgd answers on %s.", name,
                               path);
        case -ENOENT:
                what = "the wgd that answers now has no such group";
                break;
        case -ESTALE:
                what = "the group of that name is another one now";
                break;
        default:
                /* (Never -ETIMEDOUT for failure(): that would read as our --timeout.) */
                return failure(error == -ETIMEDOUT ? -EIO : error,
                               "'%s': wgd died while we waited, and asking the wgd after it failed: %s.",
                               name, strerror(-error));
        }
        return failure(error, "'%s': wgd died while we waited, and %s.", name, what);
}

void daemon_forbid_start(void) {
        start_forbidden = true;
}
