/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the tests share: starting the helper program as a real, unrelated process (exec'd, with
 * chosen fds inherited), reaping it, watching it sleep, and reading a segment's raw state word
 * through a mapping of our own.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "wg.h"

/* CLOCK_MONOTONIC in microseconds, and a sleep that signals do not cut short. */
uint64_t monotonic_usec(void);
void sleep_usec(uint64_t usec);

/*
 * The pause between two looks at a condition that a test polls (with a deadline of its own):
 * short at first, longer as *@round (0 at the first look) grows.
 */
void poll_pause(unsigned *round);

/* The counter and the generation of @g, asserting that they can be read. */
uint64_t count_of(wg *g);
uint64_t generation_of(wg *g);

/* Scale a loop count down when the tests run under valgrind (WG_TEST_SLOW=1). */
unsigned test_scale(unsigned n);

/*
 * Spawn the helper (tests/wg-helper, found via $WG_HELPER) with @argv (NULL-terminated, without
 * the program name). @fds[i] becomes fd 3+i in the child; every other fd of ours is
 * close-on-exec or closed. Returns the pid; aborts the test on failure.
 */
pid_t spawn_helper(const int *fds, size_t n_fds, const char *const *argv);

/* Reap @pid and return its exit code, or 128+signal if a signal killed it. */
int reap(pid_t pid);

/* Wait (bounded by 20 s, then abort) until @pid sleeps in a futex system call. */
void wait_until_futex_sleep(pid_t pid);

/*
 * Read one byte from @fd and require it to be @expected: how a test learns that another process
 * got somewhere. (Not /proc/PID/syscall: a program under valgrind or the dynamic loader makes
 * system calls of its own, and a read() there looks like the one a test waits for.)
 */
void expect_byte(int fd, char expected);

/* Whether the peer of socket @fd has read all we sent on it (SIOCOUTQ is 0), or hung up. */
bool sent_all_read(int fd);

/* Wait (bounded, then abort) until sent_all_read(@fd). */
void wait_until_sent_all_read(int fd);

/* Same for a thread of ours. */
void wait_until_thread_futex_sleep(pid_t tid);

/* Wait (bounded) until thread @tid of ours sleeps in system call @syscall_nr (SYS_...). */
void wait_until_thread_syscall(pid_t tid, long syscall_nr);

/* The raw 64-bit state word of @g's segment, read through our own mapping. */
uint64_t raw_state(wg *g);

/* Write the state word of @g's segment directly, as a misbehaving peer could. */
void raw_state_set(wg *g, uint64_t s);

/* A fresh memfd holding @size bytes of @data, sealed with @seals (0 for none). */
int memfd_with(const void *data, size_t size, unsigned seals);

/*
 * cmocka setup and teardown that check a test leaves no fd behind: every failed attach must
 * close what it opened.
 */
int fds_setup(void **state);
int fds_teardown(void **state);
#define fd_checked_test(f) cmocka_unit_test_setup_teardown(f, fds_setup, fds_teardown)

/*
 * Leave a test that cannot run here, as passed, saying why on stderr. (cmocka 1.1's skip() prints
 * "not ok ... # SKIP", which meson counts as a failure.)
 */
#define skip_test(why)                                                                                   \
        do {                                                                                             \
                fprintf(stderr, "skipped: %s\n", why);                                                  \
                return;                                                                                  \
        } while (0)

/* How many times @text is in the file at @path (which must be there). */
unsigned file_count(const char *path, const char *text);
/* Poll until @text is in the file at @path at least @n times (bounded, then fail). */
void file_count_until(const char *path, const char *text, unsigned n);
bool file_has(const char *path, const char *text);
