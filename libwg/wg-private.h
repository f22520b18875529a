/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The handle behind the opaque wg type, shared by the files of libwg. */

#include <stdbool.h>
#include <stdint.h>

#include "wg.h"

struct wg {
        unsigned n_ref;  /* atomic: handles may be shared between threads */
        int fd;          /* the segment's memfd, close-on-exec */
        void *map;       /* WG_SEGMENT_SIZE bytes, MAP_SHARED */
        uint64_t *state; /* the state word inside map */

        /* A cluster group's mirror (segment.h): add and done go to wgd, by the group's name. */
        bool mirror;
        char name[65];

        /* A member's handle (wg_join()): the connection that holds the membership. */
        int member_sock;
        uint64_t member_id;
        char *member_name;
};

struct wg_outcome;

typedef enum WgOutcomeKind {
        WG_OUTCOME_SUCCEEDED,
        WG_OUTCOME_FAILED,
        WG_OUTCOME_ABANDONED,
} WgOutcomeKind;

/*
 * wg_add() for wgd: only while the generation is @generation (ANY: UINT64_MAX; else -ESTALE),
 * and *ret_old (if not NULL) is the state word it changed.
 */
int wg__add(wg *g, int64_t delta, uint64_t generation, uint64_t *ret_old);

/* wgd: count one member's end in @generation's outcome slot, before its done. */
void wg__outcome_count(wg *g, uint64_t generation, WgOutcomeKind kind);

/* Read @generation's outcome slot; -ENODATA if it holds another generation, or counts nobody. */
int wg__outcome(wg *g, uint64_t generation, struct wg_outcome *ret);

/* wgd's policy for abandoned members: break the group; every operation fails until a reset. */
void wg__mark_broken(wg *g);

/* wgd's Reset: counter to zero, next generation, BROKEN cleared. *ret_old: the word before. */
int wg__reset(wg *g, uint64_t *ret_old);

/*
 * Mark the group deleted (wgd's Delete): every operation on the segment fails with -EIDRM from
 * now on, in every process, and every sleeper is woken to learn it.
 */
void wg__mark_deleted(wg *g);

/*
 * Begin a wait: which generation is there to wait for? 1 and *ret_generation the current one
 * (its count is not zero), 0 and *ret_generation the one that ended last (nothing outstanding),
 * or the error of a word that stops every operation (-EIDRM, -EOWNERDEAD, -EUCLEAN).
 */
int wg__wait_begin(wg *g, uint64_t *ret_generation);

/*
 * Register as a waiter of generation @gen without sleeping, for a process that watches the
 * futex word by other means (wgd's watcher): the completer of @gen will then FUTEX_WAKE it.
 * Returns 1 with *ret_state the state word as registered (sleep on its futex half while it holds
 * that value), 0 if @gen has ended, or -EIDRM, -EOWNERDEAD, -EUCLEAN.
 */
int wg__watch_arm(wg *g, uint64_t gen, uint64_t *ret_state);

/*
 * Wait until generation @gen has ended (or the counter is zero), until the absolute
 * CLOCK_MONOTONIC @deadline_usec (UINT64_MAX: forever). What wg_wait() does once it has seen the
 * generation; for callers that wait in slices (wgctl's progress) and must not lose a generation
 * that ended, and was reused, between two slices. Errors as wg_wait().
 */
int wg__wait_generation(wg *g, uint64_t gen, uint64_t deadline_usec);

/*
 * Cluster groups (wgd only). A new mirror segment for group @name, mapped read-write for wgd,
 * which alone writes it; and an fd of it opened read-only, for clients (close it).
 */
int wg__new_mirror(const char *name, wg **ret);
int wg__mirror_fd_read_only(wg *g);

/*
 * Mirror the group's state: @generation's outcome slot first (if @outcome is not NULL), then the
 * state word (WAITERS always set, so that no reader ever writes it), then wake every sleeper,
 * who looks again.
 */
void wg__mirror_store(
        wg *g,
        uint64_t count,
        uint64_t generation,
        bool broken,
        bool deleted,
        const struct wg_outcome *outcome);

/* wg_add() of a mirror: an Add request to wgd, by the group's name. */
int wg__remote_add(wg *g, int64_t delta);

/* One acquire load of the state word (see segment.h for its fields). */
uint64_t wg__state(wg *g);

/*
 * Where the state word is, for a watcher that sleeps on its futex halves (wgd's watcher) and
 * compares them with what wg__watch_arm() registered. Nothing writes through it.
 */
uint64_t *wg__state_word(wg *g);
