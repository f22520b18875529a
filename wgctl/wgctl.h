/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * wgctl: wait groups for shell pipelines. One verb per subcommand (verb-*.c), the daemon
 * connection with its start on demand (daemon.c), and what they share.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "wg.h"
#include "wg.pb-c.h"

/* Exit codes, as timeout(1) and env(1) users expect; wgctl(1), EXIT CODES, is their contract. */
enum {
        EXIT_OK = 0,
        EXIT_MEMBER_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_TIMEOUT = 124,
        EXIT_FAILED = 125,
        EXIT_CANNOT_EXECUTE = 126,
        EXIT_NOT_FOUND = 127,
};

typedef struct Verb {
        const char *name;
        const char *usage;   /* after "wgctl NAME " */
        const char *summary; /* one line for wgctl --help */
        int (*run)(int argc, char **argv);
} Verb;

/* main.c */
extern const char *program_verb;
int usage_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
int failure(int error, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* A line on stderr like failure()'s, for what is told without failing (a member that failed). */
void notice(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Print the help of verb @name, with its @options lines (or NULL). */
void verb_help(const char *name, const char *options);
int parse_name(const char *s, const char **ret);
int parse_count(const char *s, int64_t *ret);
int parse_duration(const char *s, uint64_t *ret_usec);

/* daemon.c: requests to wgd, starting a user wgd first if none runs and none is activatable. */
int daemon_call(Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd);
/*
 * Report that a request to wgd (daemon_call(), daemon_join()) failed with @error, which is not
 * the daemon's answer: for -ECONNREFUSED, why the wgd we tried to start does not listen, if we
 * tried; else that wgd cannot be reached. Returns the exit code.
 */
int daemon_failure(int error);
/*
 * The group's segment, through wgd. Reports errors itself, with the daemon's words, and returns
 * the exit code to leave with; but with @allow_eacces, a permission error is returned quietly
 * as -EACCES, for a caller that has another way. With @ret_sock, the connection that asked is
 * kept open there, for a caller that must notice when wgd goes away.
 */
int daemon_open(const char *name, bool allow_eacces, wg **ret, int *ret_sock);
/*
 * Open @name again on a new connection, after wgd went away, without ever starting a wgd, and
 * check that it is still the group of @g (the same segment). Returns 0 with the connection in
 * *ret_sock; -ECONNREFUSED if no wgd answers, -ESTALE if the name is another group's now, or
 * another -errno, wgd's (-ENOENT: no such group) or the connection's. Reports nothing.
 */
int daemon_reopen(const char *name, wg *g, int *ret_sock);
/* From now on, never start a wgd on demand (a waiter's wgd died: a new one would not help). */
void daemon_forbid_start(void);
/*
 * Report that the wgd we waited with on @name went away, and that asking again failed with
 * @error (as daemon_reopen() returns, or a request's). Returns the exit code: 125.
 */
int daemon_died(const char *name, int error);
/* wg_join(), with a description, and wgd started on demand. Returns 0 or -errno, silently. */
int daemon_join(const char *name, const char *description, wg **ret);
/* A line on stderr for each member of @info that failed or was abandoned in @generation. */
void report_failed_members(const char *name, const Wg__V1__GroupInfo *info, uint64_t generation);
/* The exit code for a wait whose generation @generation ended: 0, or 1 with the failures told. */
int wait_outcome(const char *name, wg *g, uint64_t generation);
/* The daemon's own words for an Error response. */
const char *response_message(const Wg__V1__Response *r);

/*
 * watch.c: while 'wgctl wait' sleeps on the segment of @name's generation @generation, watch
 * the connection @sock (taken, even on failure) to wgd, and end the process with exit code 125
 * and a message if wgd goes away for good (see there). @newline: a progress bar is on stderr's
 * line. Returns 0, or -errno if no watch could be started.
 */
int watch_wgd(const char *name, wg *g, uint64_t generation, int sock, bool newline);
/* The wait has its result: from now on, the watch never ends the process. */
void watch_end(void);

/*
 * text.c: printing text that others chose. Human-readable output escapes, C-style, every byte
 * that is not part of a printable character (\n, \\, \033 ...): controls, C1 controls, the
 * characters that reorder text, invalid UTF-8, and outside a UTF-8 locale all but ASCII.
 * Returns the number of bytes written.
 */
size_t fputs_escaped(const char *s, FILE *f);
/*
 * @s (NULL: empty) as a JSON string: controls as \u00XX (C1 and the ones that reorder text
 * too), and each byte of invalid UTF-8 as U+FFFD.
 */
void json_string(const char *s, FILE *f);

/* verb-*.c */
int verb_create(int argc, char **argv);
int verb_add(int argc, char **argv);
int verb_done(int argc, char **argv);
int verb_wait(int argc, char **argv);
int verb_run(int argc, char **argv);
int verb_spawn(int argc, char **argv);
int verb_status(int argc, char **argv);
int verb_list(int argc, char **argv);
int verb_delete(int argc, char **argv);
int verb_reset(int argc, char **argv);

extern const Verb verbs[];
