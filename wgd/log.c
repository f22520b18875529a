/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

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
 * Text in a message may come from a client (a name, an fdstore name, a member's description): a
 * control character in it must not reach whoever reads the log on a terminal (an escape
 * sequence, C1's 8-bit ones included), nor start a line of its own in the journal. Each byte of
 * one, and each byte that is not well-formed UTF-8, is written as \xNN, and so is a backslash
 * that would otherwise read as the start of one. The same characters as wgctl escapes (utf8.h).
 */
static void escape(const char *in, char *out, size_t size) {
        static const char hex[] = "0123456789abcdef";
        size_t n = 0;

        while (*in && n + 5 <= size) {
                uint32_t c;
                size_t len = utf8_decode(in, &c);

                if (len > 0 && c != '\\' && !unichar_is_control(c) && n + len < size) {
                        memcpy(out + n, in, len);
                        n += len;
                        in += len;
                        continue;
                }
                for (len = len > 0 ? len : 1; len > 0 && n + 5 <= size; len--, in++) {
                        unsigned char b = (unsigned char) *in;

                        out[n++] = '\\';
                        out[n++] = 'x';
                        out[n++] = hex[b >> 4];
                        out[n++] = hex[b & 0xf];
                }
        }
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
