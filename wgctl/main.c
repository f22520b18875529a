/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wgctl: the verb table, argument checks every verb shares, and how failures are reported: one
 * line on stderr, "wgctl: VERB: what went wrong", and an exit code from wgctl.h. The line is
 * escaped (text.c) as a whole: it may quote a member's description, or wgd's words.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group-name.h"
#include "macro.h"
#include "wgctl.h"

const char *program_verb = NULL;

const Verb verbs[] = {
        { "create", "NAME [--count N] [--mode MODE] [--exist-ok] [--on-abandon done|break]", "Create a group",
          verb_create },
        { "add", "NAME [N]", "Add N (default 1) pieces of work", verb_add },
        { "done", "NAME [N]", "Mark N (default 1) pieces of work done", verb_done },
        { "wait", "NAME [--timeout DURATION] [--progress|--quiet]", "Wait until the counter is zero", verb_wait },
        { "run", "NAME -- CMD [ARG...]", "Run CMD in the foreground as a member of the group", verb_run },
        { "spawn", "NAME -- CMD [ARG...]", "Start CMD detached as a member of the group", verb_spawn },
        { "status", "NAME [--json]", "Show a group", verb_status },
        { "list", "[--json]", "List the groups you may read", verb_list },
        { "delete", "NAME", "Delete a group", verb_delete },
        { "reset", "NAME", "End the current generation at once; mend a broken group", verb_reset },
        {},
};

static void vreport(const char *format, va_list ap) {
        _cleanup_free_ char *line = NULL;

        /* Formatted first, while errno is still the one a %m means. */
        if (vasprintf(&line, format, ap) < 0)
                line = NULL; /* undefined after a failure */

        fputs("wgctl: ", stderr);
        if (program_verb)
                fprintf(stderr, "%s: ", program_verb);
        fputs_escaped(line ?: "(out of memory to say more)", stderr);
        fputc('\n', stderr);
}

void notice(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vreport(format, ap);
        va_end(ap);
}

int usage_error(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vreport(format, ap);
        va_end(ap);
        return EXIT_USAGE;
}

int failure(int error, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vreport(format, ap);
        va_end(ap);
        return error == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_FAILED;
}

void verb_help(const char *name, const char *options) {
        const Verb *v = verbs;

        while (v->name && strcmp(v->name, name) != 0)
                v++;
        if (!v->name)
                abort();
        printf("Usage: wgctl %s %s\n\n%s.\n", v->name, v->usage, v->summary);
        if (options)
                printf("\n%s", options);
        printf("\nSee wgctl(1).\n");
}

int parse_name(const char *s, const char **ret) {
        if (!group_name_valid(s))
                return usage_error("'%s' is not a group name: " WG_NAME_RULES ".", s);
        *ret = s;
        return 0;
}

int parse_count(const char *s, int64_t *ret) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || s[0] == '+' || v < 1 || v > WG_COUNT_MAX)
                return usage_error("'%s' is not a count: a whole number from 1 to %lld.", s, (long long) WG_COUNT_MAX);
        *ret = v;
        return 0;
}

/* 250ms, 30s, 5m, 1h, or a bare number of seconds; decimals allowed (1.5s, 0.25). */
int parse_duration(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *suffix;
                double usec;
        } units[] = {
                { "ms", 1e3 }, { "s", 1e6 }, { "m", 60e6 }, { "h", 3600e6 }, { "", 1e6 },
        };
        char *end;
        double v;

        if (s[0] < '0' || s[0] > '9')
                goto bad;
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || !isfinite(v))
                goto bad;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (strcmp(end, units[i].suffix) == 0) {
                        double usec = v * units[i].usec;

                        if (usec >= 9.2e18)
                                goto bad;
                        *ret_usec = (uint64_t) usec;
                        return 0;
                }
bad:
        return usage_error("'%s' is not a duration: a number with ms, s, m or h after it (seconds if none).", s);
}

static void help(void) {
        printf("Usage: wgctl [--help] [--version] VERB ...\n\n"
               "Wait groups (Go's sync.WaitGroup) for shell pipelines: add work to a named group,\n"
               "mark it done from any process, and wait until none is left.\n\n");
        for (const Verb *v = verbs; v->name; v++)
                printf("  %-8s %s\n", v->name, v->summary);
        printf("\n'wgctl VERB --help' shows a verb's arguments. Exit codes: 0 success, 1 a member failed,\n"
               "2 usage, 124 timed out, 125 wgctl failed; run: the command's own. See wgctl(1).\n");
}

int main(int argc, char **argv) {
        if (argc < 2)
                return usage_error("a verb is missing; try 'wgctl --help'.");
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
                help();
                return EXIT_OK;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("wgctl %s\n", WG_VERSION);
                return EXIT_OK;
        }

        for (const Verb *v = verbs; v->name; v++)
                if (strcmp(argv[1], v->name) == 0) {
                        program_verb = v->name;
                        return v->run(argc - 1, argv + 1);
                }

        return usage_error("unknown verb '%s'; try 'wgctl --help'.", argv[1]);
}
