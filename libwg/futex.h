/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The two futex operations libwg needs, on a word in MAP_SHARED memory. Never
 * FUTEX_PRIVATE_FLAG: the word is shared between processes, and a private futex is keyed by
 * the address space, so a waker in another process would never find the sleeper.
 */

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * Sleep while *word == expected, until the absolute CLOCK_MONOTONIC @deadline. Returns 0 when
 * woken (possibly spuriously), else -EAGAIN (the word differed), -ETIMEDOUT or -EINTR.
 */
static inline int futex_wait_until(uint32_t *word, uint32_t expected, const struct timespec *deadline) {
        long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline, NULL, FUTEX_BITSET_MATCH_ANY);

        return r < 0 ? -errno : 0;
}

/*
 * Wake every sleeper on @word. The result is ignored on purpose: the only failures are EFAULT
 * and EINVAL for a word that is no longer mapped, and a wake has nobody to report them to.
 */
static inline void futex_wake_all(uint32_t *word) {
        (void) syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
