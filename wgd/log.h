/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * wgd's logging: one line per message on stderr. Under systemd (stderr is the journal) or any
 * other non-terminal, each line starts with its sd-daemon level prefix ("<3>" ...), which the
 * journal turns into a priority; on a terminal the prefix is left out.
 */

#include <syslog.h>

void log_setup(void);
void log_set_max_level(int level);
int log_parse_level(const char *s);

void log_full(int level, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Log with errno set to -@error (for %m), and return @error. */
int log_full_errno(int level, int error, const char *format, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(r, ...) log_full_errno(LOG_DEBUG, r, __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_WARNING, r, __VA_ARGS__)
#define log_error_errno(r, ...) log_full_errno(LOG_ERR, r, __VA_ARGS__)
