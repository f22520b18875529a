/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The segment: the one page of shared memory that every process of a group maps. Its layout is a
 * contract between every version of libwg (and wgd) on a machine, so it is fixed here, field by
 * field, and checked at compile time. Native byte order: a segment never leaves its machine.
 *
 *   offset  0  struct wg_header   read-mostly, validated on every attach
 *   offset 64  state word         the only hot word, alone on its cache line
 *   offset 128 ...                zero in version 1.0; room for statistics and member records
 */

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define WG_SEGMENT_SIZE 4096u

/* The bytes "wgseg\0\1\1" in memory; written last by the creator. */
#define WG_SEGMENT_MAGIC UINT64_C(0x0101006765736777)

#define WG_VERSION_MAJOR 1u
#define WG_VERSION_MINOR 0u

/* Flag bits of the header that this version defines: none yet. */
#define WG_HEADER_FLAGS_KNOWN 0u

struct wg_header {
        uint64_t magic;
        uint16_t version_major; /* a different major is refused */
        uint16_t version_minor; /* a newer minor only adds what an older reader may ignore */
        uint32_t header_size;   /* sizeof(struct wg_header) */
        uint32_t segment_size;  /* WG_SEGMENT_SIZE, and the file's size */
        uint32_t state_offset;  /* WG_STATE_OFFSET */
        uint32_t flags;         /* only WG_HEADER_FLAGS_KNOWN bits */
        uint32_t reserved0;     /* zero */
        uint8_t reserved[32];   /* zero */
};

#define WG_STATE_OFFSET 64u

static_assert(sizeof(struct wg_header) == 64, "header is one cache line");
static_assert(offsetof(struct wg_header, reserved) == 32, "header layout");
static_assert(WG_STATE_OFFSET >= sizeof(struct wg_header), "state after header");

/*
 * The state word, 64 bits:
 *
 *   bits  0..30  counter, 0 .. WG_COUNT_MAX
 *   bit   31     zero (a set bit means corruption: the counter never gets there)
 *   bit   32     WAITERS: somebody may sleep in the current generation
 *   bit   33     DELETED: wgd deleted the group; final, every operation fails with EIDRM
 *   bits 34..63  generation, +1 at each return of the counter to zero, wrapping at 2^30
 *
 * Futex words are 32 bits, so waiters sleep on the upper half (generation and WAITERS): the CAS
 * that brings the counter to zero changes that half, which is what makes sleeping on it safe.
 */
#define WG_STATE_COUNT_MASK UINT64_C(0x7fffffff)
#define WG_STATE_COUNT_BAD UINT64_C(0x80000000)
#define WG_STATE_WAITERS (UINT64_C(1) << 32)
#define WG_STATE_DELETED (UINT64_C(1) << 33)
#define WG_STATE_GEN_SHIFT 34
#define WG_STATE_GEN_ONE (UINT64_C(1) << WG_STATE_GEN_SHIFT)
#define WG_STATE_GEN_MASK (UINT64_C(0x3fffffff))
#define WG_STATE_INVALID WG_STATE_COUNT_BAD

static inline uint64_t wg_state_count(uint64_t s) {
        return s & WG_STATE_COUNT_MASK;
}

static inline uint64_t wg_state_generation(uint64_t s) {
        return (s >> WG_STATE_GEN_SHIFT) & WG_STATE_GEN_MASK;
}

static inline int wg_state_valid(uint64_t s) {
        return (s & WG_STATE_INVALID) == 0;
}

/* 0 if the state word may be used, else the error every operation reports. */
static inline int wg_state_check(uint64_t s) {
        if (s & WG_STATE_DELETED)
                return -EIDRM;
        if (!wg_state_valid(s))
                return -EUCLEAN;
        return 0;
}

/* The futex word: the upper 32 bits of the state word, wherever they sit in memory. */
static inline uint32_t *wg_state_futex(uint64_t *state) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return (uint32_t *) state + 1;
#else
        return (uint32_t *) state;
#endif
}

/* Create a new, initialised and sealed segment; returns the memfd or -errno. */
int wg__segment_create(void);

/*
 * Validate the segment behind @fd and map it. On success *ret_map is the mapping
 * (WG_SEGMENT_SIZE bytes, MAP_SHARED, read-write). Returns 0 or -errno; see wg_from_fd().
 */
int wg__segment_map(int fd, void **ret_map);
