/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The futex operations of wg, each with its scope spelled out at the call.
 *
 * FUTEX_SHARED for a word in MAP_SHARED memory (every state word): a shared futex is keyed by
 * the page, so sleepers and wakers in different processes meet. FUTEX_PRIVATE for a word that
 * only threads of one process touch (wgd's watcher control words): keyed by the address space,
 * cheaper. A sleeper and its waker must use the same scope, or the kernel keys them differently
 * and the wake finds nobody: that is why the scope is an argument, not a habit of the caller.
 */

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef enum FutexScope {
        FUTEX_SHARED = 0,
        FUTEX_PRIVATE = FUTEX_PRIVATE_FLAG,
} FutexScope;

/*
 * Sleep while *word == expected, until the absolute CLOCK_MONOTONIC @deadline (NULL: forever).
 * Returns 0 when woken (possibly spuriously), else -EAGAIN (the word differed), -ETIMEDOUT,
 * -EINTR, or -EFAULT for a word that is not mapped.
 */
static inline int
futex_wait_until(uint32_t *word, uint32_t expected, const struct timespec *deadline, FutexScope scope) {
        long r =
                syscall(SYS_futex,
                        word,
                        FUTEX_WAIT_BITSET | (int) scope,
                        expected,
                        deadline,
                        NULL,
                        FUTEX_BITSET_MATCH_ANY);

        return r < 0 ? -errno : 0;
}

/*
 * Wake every sleeper on @word. The result is ignored on purpose: the only failures are EFAULT
 * and EINVAL for a word that is no longer mapped, and a wake has nobody to report them to.
 */
static inline void futex_wake_all(uint32_t *word, FutexScope scope) {
        (void) syscall(SYS_futex, word, FUTEX_WAKE | (int) scope, INT_MAX, NULL, NULL, 0);
}

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
#endif
#ifndef FUTEX_WAITV_MAX
#define FUTEX_WAITV_MAX 128
#endif

/*
 * One entry of a futex_waitv() vector: sleep while *word == expected. The kernel's struct
 * futex_waitv, filled here so that the scope is explicit: FUTEX_PRIVATE_FLAG is the only flag
 * besides the size, and its absence means shared.
 */
static inline struct futex_waitv futex_waitv_entry(uint32_t *word, uint32_t expected, FutexScope scope) {
        return (struct futex_waitv) {
                .uaddr = (uintptr_t) word,
                .val = expected,
                .flags = FUTEX_32 | (unsigned) scope,
        };
}

/*
 * Sleep on @n words at once (Linux 5.16) until one is woken or differs, forever. Returns the
 * index of the entry that was woken, or -EAGAIN (one differed, which one is not said), -EINTR,
 * -EFAULT, or -ENOSYS where the call does not exist.
 */
static inline int futex_waitv(struct futex_waitv *v, unsigned n) {
        long r = syscall(SYS_futex_waitv, v, n, 0, NULL, CLOCK_MONOTONIC);

        return r < 0 ? -errno : (int) r;
}

/* Whether this kernel has futex_waitv(): an empty vector is EINVAL where the call exists. */
static inline int futex_waitv_supported(void) {
        return syscall(SYS_futex_waitv, NULL, 0, 0, NULL, CLOCK_MONOTONIC) < 0 && errno == EINVAL;
}
