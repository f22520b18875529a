/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * run and spawn: a command as a member of the group. The join (wgd's add) happens before the
 * command starts, so that a wait that follows can never miss it; the leave (wgd's done, with the
 * command's status) happens when the command ends, however it ends, from a process that stays to
 * see it end: wgctl itself for run, a detached supervisor for spawn. If that process dies
 * first, even by SIGKILL, wgd sees its connection and pidfd go and counts the member abandoned.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "wgctl.h"

static volatile pid_t child_pid = 0;

/*
 * A signal sent to wgctl itself (kill, systemd stopping a unit) goes on to the command; one the
 * terminal sends to the whole foreground process group has reached the command already.
 * Either way wgctl stays, to do the done when the command is gone.
 */
static void forward(int sig, siginfo_t *si, void *ctx) {
        if (child_pid > 0 && (si->si_code == SI_USER || si->si_code == SI_QUEUE))
                (void) kill(child_pid, sig);
}

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* "NAME -- CMD [ARG...]". Returns 0 with *cmd set, -1 after --help, or an exit code. */
static int parse_command(int argc, char **argv, const char *verb_name, const char **name, char ***cmd) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        verb_help(verb_name, NULL);
                        return -1;
                default:
                        return EXIT_USAGE;
                }

        if (optind >= argc)
                return usage_error("the group's NAME is missing.");
        r = parse_name(argv[optind], name);
        if (r != 0)
                return r;
        optind++;
        /* getopt stopped at NAME, so a '--' after it is still here: skip it. */
        if (optind < argc && strcmp(argv[optind], "--") == 0)
                optind++;
        if (optind >= argc)
                return usage_error("the command is missing: wgctl %s NAME -- CMD [ARG...]", verb_name);
        *cmd = argv + optind;
        return 0;
}

/*
 * Start @cmd with the signal state it would have from a shell (the signals we forward back to
 * their defaults, none blocked), with @null_stdin as its standard input if it is >= 0.
 * posix_spawnp(), that is clone(CLONE_VM | CLONE_VFORK) then exec: nothing of ours is copied
 * for a child that only execs, and an exec that fails comes back as its errno, with no child.
 *
 * Returns 0 with *ret_pid, or the exit code of a command that could not start (127 not found,
 * 126 otherwise, as a shell's) with *ret_errno saying why.
 */
static int start_command(char **cmd, int null_stdin, pid_t *ret_pid, int *ret_errno) {
        posix_spawn_file_actions_t actions, *a = NULL;
        posix_spawnattr_t attr;
        sigset_t defaults, none;
        int e;

        sigemptyset(&defaults);
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaddset(&defaults, forwarded[i]);
        sigemptyset(&none);

        e = posix_spawnattr_init(&attr);
        if (e == 0)
                e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        if (e == 0)
                e = posix_spawnattr_setsigdefault(&attr, &defaults);
        if (e == 0)
                e = posix_spawnattr_setsigmask(&attr, &none);
        if (e == 0 && null_stdin >= 0) {
                e = posix_spawn_file_actions_init(&actions);
                if (e == 0) {
                        a = &actions;
                        e = posix_spawn_file_actions_adddup2(a, null_stdin, STDIN_FILENO);
                }
        }
        if (e == 0)
                e = posix_spawnp(ret_pid, cmd[0], a, &attr, cmd, environ);
        if (a)
                posix_spawn_file_actions_destroy(a);
        posix_spawnattr_destroy(&attr);

        *ret_errno = e;
        if (e == 0)
                return 0;
        return e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
}

static int reap_command(pid_t pid) {
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return EXIT_FAILED;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
}

/* What a member reports about itself: its command line, for wgd's records. */
static void describe(char **cmd, char *buf, size_t size) {
        size_t n = 0;

        buf[0] = 0;
        for (; *cmd && n + 1 < size; cmd++) {
                int k = snprintf(buf + n, size - n, "%s%s", n > 0 ? " " : "", *cmd);

                if (k < 0)
                        break;
                n += (size_t) k;
        }
}

static int join_failure(const char *name, int r) {
        switch (r) {
        case -ENOENT:
                return failure(r, "No group '%s'.", name);
        case -EACCES:
                return failure(r, "Group '%s' does not allow you to join it.", name);
        case -EOWNERDEAD:
                return failure(r, "Group '%s' is broken: a member died without leaving; 'wgctl reset %s' mends it.",
                               name, name);
        case -EDQUOT:
                return failure(r, "You hold as many memberships as wgd allows.");
        case -ECONNREFUSED:
        case -ETIMEDOUT:
        case -ECONNRESET:
        case -EPROTO:
                return daemon_failure(r);
        default:
                return failure(r, "cannot join '%s': %s", name, strerror(-r));
        }
}

static int leave(wg *g, const char *name, int status, bool report) {
        int r = wg_leave(g, status);

        if (r < 0 && report)
                notice("'%s': the command ended, but leaving the group failed: %s", name,
                       r == -EOWNERDEAD ? "it is broken" : strerror(-r));
        return r;
}

int verb_run(int argc, char **argv) {
        _cleanup_(wg_unrefp) wg *g = NULL;
        struct sigaction sa = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
        char description[256];
        const char *name;
        char **cmd = NULL;
        int status, exec_errno, r;
        pid_t pid;

        r = parse_command(argc, argv, "run", &name, &cmd);
        if (r != 0)
                return r < 0 ? EXIT_OK : r;

        describe(cmd, description, sizeof(description));
        r = daemon_join(name, description, &g);
        if (r < 0)
                return join_failure(name, r);

        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaction(forwarded[i], &sa, NULL);

        status = start_command(cmd, -EBADF, &pid, &exec_errno);
        if (status != 0)
                notice("%s: %s", cmd[0], exec_errno == ENOENT ? "command not found" : strerror(exec_errno));
        else {
                child_pid = pid;
                status = reap_command(pid);
                child_pid = 0;
        }

        r = leave(g, name, status, true);
        return r < 0 ? EXIT_FAILED : status;
}

int verb_spawn(int argc, char **argv) {
        _cleanup_close_ int null = -EBADF;
        char description[256];
        const char *name;
        char **cmd = NULL;
        /* From the supervisor: the exit code of a failed join (reported there), the exec's errno. */
        int report[2], r, result[2] = { 0, 0 };
        pid_t pid;
        ssize_t n;

        r = parse_command(argc, argv, "spawn", &name, &cmd);
        if (r != 0)
                return r < 0 ? EXIT_OK : r;
        describe(cmd, description, sizeof(description));

        null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0)
                return failure(negative_errno(), "cannot open /dev/null: %m");
        if (pipe2(report, O_CLOEXEC) < 0)
                return failure(negative_errno(), "cannot make a pipe: %m");

        pid = fork();
        if (pid < 0)
                return failure(negative_errno(), "cannot fork: %m");
        if (pid == 0) {
                _cleanup_(wg_unrefp) wg *g = NULL;

                /* A new session, and the middle process gone: no shell's job, no terminal's. */
                safe_close(report[0]);
                if (setsid() < 0)
                        _exit(1);
                pid = fork();
                if (pid != 0)
                        _exit(pid < 0 ? 1 : 0);

                /*
                 * The supervisor: the member is this process, so it joins itself, and says so
                 * before wgctl returns: a 'wgctl wait' right after cannot miss the command. A
                 * join that fails is reported here, where we know why (a wgd we could not start,
                 * say), and only its exit code goes back.
                 */
                r = daemon_join(name, description, &g);
                if (r < 0)
                        result[0] = join_failure(name, r);
                else
                        r = start_command(cmd, null, &pid, &result[1]);
                (void) write(report[1], result, sizeof(result));
                safe_close(report[1]);
                if (result[0] != 0)
                        _exit(EXIT_FAILED);

                (void) leave(g, name, r != 0 ? r : reap_command(pid), true);
                _exit(0);
        }

        safe_close(report[1]);
        (void) waitpid(pid, NULL, 0);
        do
                n = read(report[0], result, sizeof(result));
        while (n < 0 && errno == EINTR);
        safe_close(report[0]);

        if (n != sizeof(result))
                return failure(-ECHILD, "the supervisor of %s died before it started it.", cmd[0]);
        if (result[0] != 0)
                return result[0];
        if (result[1] != 0) {
                notice("%s: %s", cmd[0], result[1] == ENOENT ? "command not found" : strerror(result[1]));
                return result[1] == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
        }
        return EXIT_OK;
}
