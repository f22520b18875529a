/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * add, done and wait on the state word (layout in segment.h).
 *
 * The argument, in short:
 *
 *  - Every change of the state word is one CAS, and the CAS that brings the counter to zero also
 *    bumps the generation and clears WAITERS. So "the counter reached zero" and "the generation
 *    changed" are one event: nobody can add in between and catch a waiter of the old generation
 *    in the new one.
 *
 *  - A waiter sets WAITERS with a CAS on the same word before it sleeps, and sleeps on the upper
 *    half (generation + WAITERS) with the exact value it saw. Both are read-modify-writes of one
 *    word, so they are totally ordered with the completing CAS: either the completer sees WAITERS
 *    and calls FUTEX_WAKE, or the waiter's CAS fails and it sees the new generation. If the
 *    completion lands between the waiter's CAS and its FUTEX_WAIT, the kernel's compare under the
 *    bucket lock sees a changed word and returns EAGAIN. No wakeup is lost.
 *
 *  - A waiter waits for the generation it observed, not for "counter == 0": a group reused at
 *    once (counter zero, then non-zero again before the waiter runs) still releases it. The
 *    generation has 29 bits, so a waiter is confused only if exactly 2^29 generations complete
 *    between two of its reads of the word.
 *
 *  - Nobody waiting means no system call at all: done is one CAS, and FUTEX_WAKE is issued only
 *    if the CAS took WAITERS away. A stale WAITERS (its waiter timed out or died) costs one wake.
 *
 *  - The state word is shared with every process of the group, honest or not. A word that no
 *    correct writer produces is refused with -EUCLEAN, and nothing is written back; all loops
 *    stay bounded by the caller's deadline.
 *
 *  - wgd deletes a named group by setting DELETED in the same word (and waking everybody), so a
 *    waiter learns of the deletion the same way it learns of a completion: its word changed.
 */

#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <limits.h>

#include "futex.h"
#include "macro.h"
#include "segment.h"
#include "time-util.h"
#include "wg-private.h"

static inline uint64_t state_load(wg *g) {
        return __atomic_load_n(g->state, __ATOMIC_ACQUIRE);
}

/* On failure *expected is reloaded with the current word. */
static inline int state_cas(wg *g, uint64_t *expected, uint64_t desired) {
        /* Release publishes the caller's work to the waiters we free; acquire pairs with theirs. */
        return __atomic_compare_exchange_n(
                g->state, expected, desired, /* weak= */ 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/*
 * wg_add() and wg_done() both come here directly: no second trip through the PLT. wgd comes here
 * too (wg__add()), to add only within the generation a member belongs to (@expect_gen, or
 * ANY_GENERATION) and to learn the word it changed (@ret_old); with constants for those, the
 * public calls compile to the plain loop.
 */
#define ANY_GENERATION UINT64_MAX

static inline int counter_add(wg *g, int64_t delta, uint64_t expect_gen, uint64_t *ret_old) {
        uint64_t s, next;

        s = __atomic_load_n(g->state, __ATOMIC_RELAXED);
        for (;;) {
                uint64_t count = wg_state_count(s);

                /* One test for every kind of trouble keeps the fast path a single branch. */
                if (_unlikely_(s & WG_STATE_STOP))
                        return wg_state_check(s);
                if (expect_gen != ANY_GENERATION && wg_state_generation(s) != expect_gen)
                        return -ESTALE;

                if (delta >= 0) {
                        if ((uint64_t) delta > WG_STATE_COUNT_MASK - count)
                                return -EOVERFLOW;
                        if (delta == 0) {
                                if (ret_old)
                                        *ret_old = s;
                                return 0;
                        }
                        next = s + (uint64_t) delta;
                } else {
                        /* -(delta + 1) + 1 is |delta| without overflowing at INT64_MIN. */
                        uint64_t n = (uint64_t) (-(delta + 1)) + 1;

                        if (n > count)
                                return -ERANGE;
                        if (n == count)
                                /* Counter to zero, next generation, nobody waits on it yet. */
                                next = ((s & ~(WG_STATE_COUNT_MASK | WG_STATE_WAITERS)) + WG_STATE_GEN_ONE);
                        else
                                next = s - n;
                }

                if (state_cas(g, &s, next))
                        break;
        }

        /*
         * Only the completing CAS clears WAITERS, so this wakes exactly when a generation ended
         * with somebody registered in it. The word stays mapped for as long as we hold the
         * handle, so the wake cannot hit memory that went away.
         */
        if ((s & WG_STATE_WAITERS) && !(next & WG_STATE_WAITERS))
                futex_wake_all(wg_state_futex(g->state), FUTEX_SHARED);

        if (ret_old)
                *ret_old = s;
        return 0;
}

/* A mirror's counter is wgd's (and etcd's): ask it, unless there is nothing to ask. */
static int mirror_add(wg *g, int64_t delta) {
        int r = wg_state_check(state_load(g));

        if (r < 0 || delta == 0)
                return r;
        return wg__remote_add(g, delta);
}

_public_ int wg_add(wg *g, int64_t delta) {
        assert_return(g, -EINVAL);

        if (_unlikely_(g->mirror))
                return mirror_add(g, delta);
        return counter_add(g, delta, ANY_GENERATION, NULL);
}

_public_ int wg_done(wg *g) {
        assert_return(g, -EINVAL);

        if (_unlikely_(g->mirror))
                return mirror_add(g, -1);
        return counter_add(g, -1, ANY_GENERATION, NULL);
}

int wg__add(wg *g, int64_t delta, uint64_t generation, uint64_t *ret_old) {
        assert(g);

        return counter_add(g, delta, generation, ret_old);
}

static struct wg_outcome *outcome_slot(wg *g, uint64_t generation) {
        return (struct wg_outcome *) ((uint8_t *) g->map + WG_OUTCOME_OFFSET) +
                generation % WG_OUTCOME_SLOTS;
}

/*
 * The writer's side: wgd only, one thread, and always before the CAS that could end @generation,
 * whose release then publishes these stores to every waiter that sees the generation end.
 */
void wg__outcome_count(wg *g, uint64_t generation, WgOutcomeKind kind) {
        struct wg_outcome *o = outcome_slot(g, generation);
        uint32_t *counter;

        if (__atomic_load_n(&o->generation, __ATOMIC_RELAXED) != (uint32_t) generation) {
                __atomic_store_n(&o->succeeded, 0, __ATOMIC_RELAXED);
                __atomic_store_n(&o->failed, 0, __ATOMIC_RELAXED);
                __atomic_store_n(&o->abandoned, 0, __ATOMIC_RELAXED);
                __atomic_store_n(&o->generation, (uint32_t) generation, __ATOMIC_RELAXED);
        }
        counter = kind == WG_OUTCOME_SUCCEEDED ? &o->succeeded :
                kind == WG_OUTCOME_FAILED      ? &o->failed :
                                                 &o->abandoned;
        __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

int wg__outcome(wg *g, uint64_t generation, struct wg_outcome *ret) {
        struct wg_outcome *o = outcome_slot(g, generation), copy;

        /* Racy against a wgd that starts reusing the slot, four generations on: check the tag last. */
        copy.succeeded = __atomic_load_n(&o->succeeded, __ATOMIC_ACQUIRE);
        copy.failed = __atomic_load_n(&o->failed, __ATOMIC_ACQUIRE);
        copy.abandoned = __atomic_load_n(&o->abandoned, __ATOMIC_ACQUIRE);
        copy.generation = __atomic_load_n(&o->generation, __ATOMIC_ACQUIRE);
        /*
         * A slot that counts nobody holds no outcome: wgd tags a slot only to count a member in
         * it, and a fresh page's slots are zero, generation 0's tag included.
         */
        if (copy.generation != (uint32_t) generation ||
            (uint64_t) copy.succeeded + copy.failed + copy.abandoned == 0)
                return -ENODATA;
        *ret = copy;
        return 0;
}

void wg__mirror_store(
        wg *g,
        uint64_t count,
        uint64_t generation,
        bool broken,
        bool deleted,
        const struct wg_outcome *outcome) {
        uint64_t s;

        assert(g->mirror);

        if (outcome) {
                struct wg_outcome *o = outcome_slot(g, outcome->generation);

                __atomic_store_n(&o->succeeded, outcome->succeeded, __ATOMIC_RELAXED);
                __atomic_store_n(&o->failed, outcome->failed, __ATOMIC_RELAXED);
                __atomic_store_n(&o->abandoned, outcome->abandoned, __ATOMIC_RELAXED);
                __atomic_store_n(&o->generation, outcome->generation, __ATOMIC_RELAXED);
        }
        s = (count & WG_STATE_COUNT_MASK) | ((generation & WG_STATE_GEN_MASK) << WG_STATE_GEN_SHIFT) |
                WG_STATE_WAITERS | (broken ? WG_STATE_BROKEN : 0) | (deleted ? WG_STATE_DELETED : 0);
        /* Release: the outcome above is there for whoever sees this word. */
        __atomic_store_n(g->state, s, __ATOMIC_RELEASE);
        futex_wake_all(wg_state_futex(g->state), FUTEX_SHARED);
}

/* What wg_wait() returns for a generation that ended: how many of its members did not succeed. */
static int failures_of(wg *g, uint64_t generation) {
        struct wg_outcome o;
        uint64_t n;

        if (wg__outcome(g, generation, &o) < 0)
                return 0;
        n = (uint64_t) o.failed + o.abandoned;
        return n > INT_MAX ? INT_MAX : (int) n;
}

_public_ int wg_get_outcome(
        wg *g, uint64_t generation, uint64_t *ret_succeeded, uint64_t *ret_failed, uint64_t *ret_abandoned) {
        struct wg_outcome o;
        int r;

        assert_return(g, -EINVAL);
        assert_return(generation <= WG_STATE_GEN_MASK, -EINVAL);

        r = wg__outcome(g, generation, &o);
        if (r < 0)
                return r;
        if (ret_succeeded)
                *ret_succeeded = o.succeeded;
        if (ret_failed)
                *ret_failed = o.failed;
        if (ret_abandoned)
                *ret_abandoned = o.abandoned;
        return 0;
}

/*
 * Register as a waiter of generation @gen: make sure that whoever ends it will wake the futex.
 * Returns 1 with *s the word as registered (WAITERS set, @gen still running), 0 if @gen ended
 * (whatever the group did since: a waiter's generation that ended is a success), or the error
 * of a word that stops every operation. *s is the caller's last look at the word.
 */
static int waiter_register(wg *g, uint64_t gen, uint64_t *s) {
        for (;;) {
                int r;

                if (wg_state_generation(*s) != gen || wg_state_count(*s) == 0)
                        return 0;
                r = wg_state_check(*s);
                if (r < 0)
                        return r;
                /* A mirror is never written but by wgd, which wakes everybody at each change. */
                if ((*s & WG_STATE_WAITERS) || g->mirror)
                        return 1;
                if (state_cas(g, s, *s | WG_STATE_WAITERS)) {
                        *s |= WG_STATE_WAITERS;
                        return 1;
                }
        }
}

int wg__wait_begin(wg *g, uint64_t *ret_generation) {
        uint64_t s = state_load(g);
        int r;

        assert(g);

        r = wg_state_check(s);
        if (r < 0)
                return r;
        if (wg_state_count(s) == 0) {
                /* Nothing outstanding: the generation that counts is the one that ended last. */
                *ret_generation = (wg_state_generation(s) - 1) & WG_STATE_GEN_MASK;
                return 0;
        }
        *ret_generation = wg_state_generation(s);
        return 1;
}

int wg__watch_arm(wg *g, uint64_t gen, uint64_t *ret_state) {
        uint64_t s = state_load(g);
        int r;

        assert(g);

        r = waiter_register(g, gen, &s);
        if (r > 0)
                *ret_state = s;
        return r;
}

int wg__wait_generation(wg *g, uint64_t gen, uint64_t deadline) {
        struct timespec ts;
        uint64_t s;
        int r, k;

        assert(g);

        /* The generation first, as in the loop below: a waiter's generation that ended is a success. */
        s = state_load(g);
        if (wg_state_generation(s) != gen || wg_state_count(s) == 0)
                return 0;
        r = wg_state_check(s);
        if (r < 0)
                return r;
        if (deadline <= now_usec())
                return -ETIMEDOUT;

        /*
         * Forever is a deadline too (one the kernel clamps to never): a timed FUTEX_WAIT reports a
         * signal handler as EINTR whether or not it was installed with SA_RESTART, so callers see
         * the same thing in both cases.
         */
        ts = usec_to_timespec(deadline);

        for (;;) {
                r = waiter_register(g, gen, &s);
                if (r <= 0)
                        return r;

                k = futex_wait_until(wg_state_futex(g->state), (uint32_t) (s >> 32), &ts, FUTEX_SHARED);

                s = state_load(g);
                if (wg_state_generation(s) != gen)
                        return 0; /* our generation ended, whatever the group does now */
                r = wg_state_check(s);
                if (r < 0)
                        return r;

                switch (k) {
                case 0: /* woken, or spuriously: look again */
                        break;
                case -EAGAIN: /* the word changed under us: a new waiter, an add, or a peer's noise */
                        /*
                         * The kernel compares before it looks at the clock, so a peer that
                         * keeps changing the word could keep us here forever: look ourselves.
                         */
                        if (now_usec() >= deadline)
                                return -ETIMEDOUT;
                        break;
                case -ETIMEDOUT:
                case -EINTR:
                        return k;
                default:
                        /* EFAULT or EINVAL: the mapping is ours and aligned, so never; report it. */
                        return k;
                }
        }
}

_public_ int wg_wait(wg *g, uint64_t timeout_usec) {
        uint64_t gen;
        int r;

        assert_return(g, -EINVAL);

        r = wg__wait_begin(g, &gen);
        if (r <= 0)
                return r < 0 ? r : failures_of(g, gen);
        if (timeout_usec == 0)
                return -ETIMEDOUT;

        /* One absolute deadline for the whole wait, however often it wakes. */
        r = wg__wait_generation(
                g, gen, timeout_usec == WG_USEC_INFINITY ? UINT64_MAX : deadline_after(timeout_usec));
        if (r < 0)
                return r;
        return failures_of(g, gen);
}

uint64_t wg__state(wg *g) {
        return state_load(g);
}

uint64_t *wg__state_word(wg *g) {
        return g->state;
}

/* Set @bits and wake everybody, who will find them: for DELETED (final) and BROKEN. */
static void mark(wg *g, uint64_t bits) {
        uint64_t s = __atomic_load_n(g->state, __ATOMIC_RELAXED);

        /* Clearing WAITERS too keeps the word consistent: everybody registered is woken now. */
        while (!state_cas(g, &s, (s | bits) & ~WG_STATE_WAITERS))
                ;
        futex_wake_all(wg_state_futex(g->state), FUTEX_SHARED);
}

void wg__mark_deleted(wg *g) {
        assert(g);
        mark(g, WG_STATE_DELETED);
}

void wg__mark_broken(wg *g) {
        assert(g);
        mark(g, WG_STATE_BROKEN);
}

int wg__reset(wg *g, uint64_t *ret_old) {
        uint64_t s = __atomic_load_n(g->state, __ATOMIC_RELAXED), next;

        do {
                if (s & WG_STATE_DELETED)
                        return -EIDRM;
                if (!wg_state_valid(s))
                        return -EUCLEAN;
                /* Counter to zero and the generation on, as a completion does; whole again. */
                next = (s & ~(WG_STATE_COUNT_MASK | WG_STATE_WAITERS | WG_STATE_BROKEN)) + WG_STATE_GEN_ONE;
        } while (!state_cas(g, &s, next));

        if (s & WG_STATE_WAITERS)
                futex_wake_all(wg_state_futex(g->state), FUTEX_SHARED);
        if (ret_old)
                *ret_old = s;
        return 0;
}

/* The getters: one look at the state word, refused as every operation refuses it. */
static int state_get(wg *g, uint64_t (*field)(uint64_t s), uint64_t *ret) {
        uint64_t s = state_load(g);
        int r = wg_state_check(s);

        if (r < 0)
                return r;
        *ret = field(s);
        return 0;
}

_public_ int wg_get_count(wg *g, uint64_t *ret) {
        assert_return(g, -EINVAL);
        assert_return(ret, -EINVAL);

        return state_get(g, wg_state_count, ret);
}

_public_ int wg_get_generation(wg *g, uint64_t *ret) {
        assert_return(g, -EINVAL);
        assert_return(ret, -EINVAL);

        return state_get(g, wg_state_generation, ret);
}
