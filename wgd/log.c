/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;
static bool prefix = true;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_setup(void) {
        prefix = !isatty(STDERR_FILENO);
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_parse_level(const char *s) {
        for (int i = 0; i <= LOG_DEBUG; i++)
                if (strcmp(s, level_names[i]) == 0)
                        return i;
        return -EINVAL;
}

/*
 * Text in a message may come from a client (a name, an fdstore name, one day a description): a
 * control character in it must not reach whoever reads the log on a terminal (an escape
 * sequence), nor start a line of its own in the journal. Each is written as \xNN, and so is a
 * backslash that would otherwise read as the start of one.
 */
static void escape(const char *in, char *out, size_t size) {
        static const char hex[] = "0123456789abcdef";
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *) in; *p && n + 5 <= size; p++)
                if (*p < 0x20 || *p == 0x7f || *p == '\\') {
                        out[n++] = '\\';
                        out[n++] = 'x';
                        out[n++] = hex[*p >> 4];
                        out[n++] = hex[*p & 0xf];
                } else
                        out[n++] = (char) *p;
        out[n] = 0;
}

static void log_va(int level, const char *format, va_list ap) {
        char line[1024], safe[sizeof(line) * 4];
        int n;

        n = vsnprintf(line, sizeof(line), format, ap);
        if (n < 0)
                return;
        escape(line, safe, sizeof(safe));
        if (prefix)
                fprintf(stderr, "<%d>%s\n", level, safe);
        else
                fprintf(stderr, "wgd: %s\n", safe);
}

void log_full(int level, const char *format, ...) {
        va_list ap;
        int saved_errno = errno;

        if (level > max_level)
                return;
        va_start(ap, format);
        log_va(level, format, ap);
        va_end(ap);
        errno = saved_errno;
}

int log_full_errno(int level, int error, const char *format, ...) {
        va_list ap;

        if (level > max_level)
                return error;
        errno = error < 0 ? -error : error;
        va_start(ap, format);
        log_va(level, format, ap);
        va_end(ap);
        return error;
}
