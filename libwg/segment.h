/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The segment: the one page of shared memory that every process of a group maps. Its layout is a
 * contract between every version of libwg (and wgd) on a machine, so it is fixed here, field by
 * field, and checked at compile time. Native byte order: a segment never leaves its machine.
 * docs/segment.md specifies it for clients that map a segment without libwg; the two must agree.
 *
 *   offset   0  struct wg_header    read-mostly, validated on every attach
 *   offset  64  state word          the only hot word, alone on its cache line
 *   offset 128  struct wg_outcome[4] how members of recent generations ended; written by wgd only
 *   offset 192  ...                 zero in version 1.0; room for more
 */

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WG_SEGMENT_SIZE 4096u

/* The bytes "wgseg\0\1\1" in memory; written last by the creator. */
#define WG_SEGMENT_MAGIC UINT64_C(0x0101006765736777)

#define WG_VERSION_MAJOR 1u
#define WG_VERSION_MINOR 0u

/*
 * Flag bits of the header. MIRROR (1.1): the counter lives elsewhere (a cluster group, kept in
 * etcd): wgd alone writes this page, mirroring the group's state into it, and hands it out
 * read-only; add and done go to wgd as requests, and waiters sleep on the futex as ever, woken
 * by wgd after each change it mirrors. A reader that does not know the flag refuses the segment,
 * as it must: it would count on a page nobody else reads.
 */
#define WG_HEADER_FLAG_MIRROR 1u
#define WG_HEADER_FLAGS_KNOWN WG_HEADER_FLAG_MIRROR

/* 1.1: a mirror's group name, NUL-terminated, in the bytes that are zero in 1.0. */
#define WG_NAME_OFFSET 192u
#define WG_NAME_SIZE 65u

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
 *   bit   34     BROKEN: a member died and the group's policy is to break: every operation fails
 *                with EOWNERDEAD until wgd resets the group
 *   bits 35..63  generation, +1 at each return of the counter to zero, wrapping at 2^29
 *
 * Futex words are 32 bits, so waiters sleep on the upper half (generation and WAITERS): the CAS
 * that brings the counter to zero changes that half, which is what makes sleeping on it safe.
 */
#define WG_STATE_COUNT_MASK UINT64_C(0x7fffffff)
#define WG_STATE_COUNT_BAD UINT64_C(0x80000000)
#define WG_STATE_WAITERS (UINT64_C(1) << 32)
#define WG_STATE_DELETED (UINT64_C(1) << 33)
#define WG_STATE_BROKEN (UINT64_C(1) << 34)
#define WG_STATE_GEN_SHIFT 35
#define WG_STATE_GEN_ONE (UINT64_C(1) << WG_STATE_GEN_SHIFT)
#define WG_STATE_GEN_MASK (UINT64_C(0x1fffffff))
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

/* The bits that stop every operation; testing them together keeps the fast path one branch. */
#define WG_STATE_STOP (WG_STATE_DELETED | WG_STATE_BROKEN | WG_STATE_INVALID)

/* 0 if the state word may be used, else the error every operation reports. */
static inline int wg_state_check(uint64_t s) {
        if (s & WG_STATE_DELETED)
                return -EIDRM;
        if (s & WG_STATE_BROKEN)
                return -EOWNERDEAD;
        if (!wg_state_valid(s))
                return -EUCLEAN;
        return 0;
}

/*
 * How the members of one generation ended, kept in slot generation % WG_OUTCOME_SLOTS. Only wgd
 * writes it, before the CAS that ends the generation, so a waiter that has seen the generation
 * end (an acquire load of the state word) reads the final counts. A slot whose generation is not
 * the one asked about holds nothing for it: no member ended in it, or it is too long ago.
 */
struct wg_outcome {
        uint32_t generation;
        uint32_t succeeded;
        uint32_t failed;
        uint32_t abandoned;
};

#define WG_OUTCOME_OFFSET 128u
#define WG_OUTCOME_SLOTS 4u

static_assert(sizeof(struct wg_outcome) == 16, "outcome slot layout");
static_assert(WG_OUTCOME_OFFSET >= WG_STATE_OFFSET + 64, "outcomes off the state word's cache line");

/* The futex word: the upper 32 bits of the state word, wherever they sit in memory. */
static inline uint32_t *wg_state_futex(uint64_t *state) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return (uint32_t *) state + 1;
#else
        return (uint32_t *) state;
#endif
}

/* The other half of the state word: the counter's 32 bits, for a watcher that compares all 64. */
static inline uint32_t *wg_state_count_word(uint64_t *state) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return (uint32_t *) state;
#else
        return (uint32_t *) state + 1;
#endif
}

/*
 * Create a new, initialised and sealed segment; returns the memfd or -errno. With @mirror_name
 * not NULL, a mirror of the cluster group of that name (format 1.1, WG_HEADER_FLAG_MIRROR).
 */
int wg__segment_create(const char *mirror_name);

/*
 * Validate the segment behind @fd and map it. On success *ret_map is the mapping
 * (WG_SEGMENT_SIZE bytes, MAP_SHARED; read-write, or read-only for a mirror's fd opened
 * read-only), and *ret_mirror whether it is a mirror, whose name is then at WG_NAME_OFFSET,
 * checked. Returns 0 or -errno; see wg_from_fd().
 */
int wg__segment_map(int fd, void **ret_map, bool *ret_mirror);
