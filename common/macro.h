/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Small helpers shared by every part of wg: cleanup attributes, ownership transfer, argument
 * checks for the public API. Internal only; never installed.
 */

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _public_ __attribute__((visibility("default")))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* @n rounded up to a multiple of @a; the caller sees to it that this does not overflow. */
#define ALIGN_TO(n, a) (((n) + (a) - 1) / (a) * (a))

/* Public functions check their arguments with this: a caller's mistake is an error, never an abort. */
#define assert_return(expr, r)                                                                           \
        do {                                                                                             \
                if (_unlikely_(!(expr)))                                                                 \
                        return (r);                                                                      \
        } while (0)

/* Take ownership away from a _cleanup_ variable: the value is returned, the variable reset. */
#define TAKE_GENERIC(var, type, nullvalue)                                                               \
        ({                                                                                               \
                type *_pvar_ = &(var);                                                                   \
                type _var_ = *_pvar_;                                                                    \
                type _nullvalue_ = nullvalue;                                                            \
                *_pvar_ = _nullvalue_;                                                                   \
                _var_;                                                                                   \
        })
#define TAKE_PTR(ptr) TAKE_GENERIC(ptr, __typeof__(ptr), NULL)
#define TAKE_FD(fd) TAKE_GENERIC(fd, int, -EBADF)

/* Close an fd if it is one, keeping errno, and return the invalid value: fd = safe_close(fd); */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved_errno = errno;
                (void) close(fd);
                errno = saved_errno;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        (void) safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* free() that returns NULL: p = mfree(p); */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* -errno from a libc call that failed; never 0, even if libc forgot to set errno. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
