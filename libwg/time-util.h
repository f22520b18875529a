/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Microsecond time on CLOCK_MONOTONIC, the only clock libwg's deadlines use. */

#include <stdint.h>
#include <time.h>

#define USEC_PER_SEC UINT64_C(1000000)
#define NSEC_PER_USEC UINT64_C(1000)

static inline uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* Wall-clock time, for the timestamps wgd reports (creation, joins): never for deadlines. */
static inline uint64_t now_realtime_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static inline struct timespec usec_to_timespec(uint64_t usec) {
        return (struct timespec) {
                .tv_sec = (time_t) (usec / USEC_PER_SEC),
                .tv_nsec = (long) (usec % USEC_PER_SEC * NSEC_PER_USEC),
        };
}

/* now + @usec, saturating: a deadline so far away that it cannot be reached is UINT64_MAX. */
static inline uint64_t deadline_after(uint64_t usec) {
        uint64_t n = now_usec();

        return usec > UINT64_MAX - n ? UINT64_MAX : n + usec;
}
