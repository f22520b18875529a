/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wg.pml: a Promela model of the state word of libwg/counter.c, for spin.
 *
 * Modelled: every access of counter.c to the state word (its loads and CAS loops), the futex
 * (the kernel's queue of sleepers on the word's upper half), and the processes that use them:
 * two workers (add, then done; one does a stray done as well), two waiters (one without a
 * deadline that suffers a spurious wake-up and a signal, and waits again after EINTR as wgctl
 * does; one with a deadline), and wgd (a member's add and its generation-checked done, or the
 * member's death that breaks the group; a reset; the delete). docs/model.md maps each
 * statement to the lines of counter.c it stands for, and says what is left out and why.
 *
 * Only the word and the futex queue are shared. Each access to the word is one atomic step (a
 * load, a CAS, the kernel's compare-and-sleep); the local work around it (the checks of a loop
 * turn, the next word) is folded into that step, which no other process can tell apart.
 *
 * Properties, as assertions checked in every reachable state or at the step they are about:
 *   - no lost wakeup: a waiter never sleeps in the futex past the end of its generation (or a
 *     stop of the group) unless a FUTEX_WAKE is already owed to it (the monitor); and every
 *     waiter returns (spin's invalid end states: in every run all work ends);
 *   - no premature release: a waiter returns 0 only if the word it decided on showed its
 *     generation ended;
 *   - the counter never goes below zero (the monitor), and a done refused with ERANGE was
 *     decided on a zero counter and wrote nothing;
 *   - a waiter of a deleted group returns -EIDRM, of a broken one -EOWNERDEAD: every error is
 *     the one of the word it decided on, and a deletion during the wait of the waiter without a
 *     deadline ends its wait with -EIDRM;
 *   - add and done issue FUTEX_WAKE only when their CAS took WAITERS away;
 *   - wgd's member done lands in the member's own generation, or nowhere (-ESTALE).
 *
 * Known bugs, selected with -D, must each make spin report an error (see model/check.sh):
 *   BUG_CLEAR_EARLY   the completer clears WAITERS with an atomic and first, decides on the
 *                     wake from that, then does the counting CAS
 *   BUG_WAKE_EARLY    the completer wakes before its CAS
 *   BUG_COUNT_ONLY    waiters look at the counter only, not at the generation
 *   BUG_NO_RANGE      done does not refuse to go below zero
 *   BUG_WAKE_ALWAYS   every completion wakes, WAITERS or not
 *   BUG_ANY_GEN       wgd's member done is not generation-checked
 *   BUG_MARK_NO_WAKE  DELETED and BROKEN are set without a wake
 *   GEN_BITS=1        a generation field so small that it wraps within one wait
 */

/*
 * Which processes run: -D selects a configuration (model/check.sh runs several, each
 * exhaustively). Defaults: two workers (one with a stray done), two waiters, and a wgd that
 * deletes the group.
 */
#ifndef WORKERS
#define WORKERS 2
#endif
#ifndef STRAY
#define STRAY 1
#endif
#ifndef WAITERS_RUN
#define WAITERS_RUN 2
#endif
#ifndef SPURIOUS
#define SPURIOUS 1
#endif
#ifndef SIGNALS
#define SIGNALS 1
#endif
#ifndef MEMBER
#define MEMBER 0
#endif
#ifndef RESET
#define RESET 0
#endif

/*
 * The word, laid out as in segment.h but narrower: the counter in the low bits (C: bits 0..30),
 * then WAITERS, DELETED, BROKEN (C: bits 32, 33, 34) and the generation above them (C: 35..63).
 * FUTEX() is the upper half that waiters sleep on (C: s >> 32). The generation is the top field
 * and wraps by carrying out of the word, as in C: WORD_MASK stands for the word's width.
 */
#ifndef GEN_BITS
#define GEN_BITS 3
#endif
#define COUNT_MASK 7
#define WAITERS 8
#define DELETED 16
#define BROKEN 32
#define GEN_SHIFT 6
#define GEN_ONE 64
#define GEN_MASK ((1 << GEN_BITS) - 1)
#define WORD_MASK ((1 << (GEN_SHIFT + GEN_BITS)) - 1)
#define STOP (DELETED | BROKEN)

#define COUNT(s) ((s) & COUNT_MASK)
#define GEN(s) (((s) >> GEN_SHIFT) & GEN_MASK)
#define FUTEX(s) ((s) >> 3)

/* Results: 0 and the errnos of counter.c, and the model's own markers. */
#define OK 0
#define EAGAIN 1
#define ETIMEDOUT 2
#define EINTR 3
#define EIDRM 4
#define EOWNERDEAD 5
#define ERANGE 6
#define ESTALE 7
#define EOVERFLOW 8
#define TRY 20        /* go round the loop again */
#define REGISTERED 21 /* waiter_register() returned 1 */
#define SLEEPING 22   /* in the futex, until woken */
#define ANY 255       /* ANY_GENERATION */
#define NEVER 255

/*
 * Probes, to show that the checks are not vacuous: with -DPROBE=n, probe n asserts that its
 * situation never happens, and spin must find a run where it does (model/check.sh lists them).
 */
#ifdef PROBE
byte probe = PROBE;
#define REACHED(n, cond) assert(!(probe == n && (cond)))
#else
#define REACHED(n, cond) skip
#endif

/* wg_state_check() */
#define CHECK(s) (((s) & DELETED) -> EIDRM : (((s) & BROKEN) -> EOWNERDEAD : OK))

#define NADDS 3 /* two workers and one member add 1 each: the counter never exceeds it */

int word = GEN_MASK << GEN_SHIFT; /* generation 2^GEN_BITS - 1: the first completion wraps */

/* The kernel's futex queue: which waiters sleep on the word's upper half. */
bool asleep[2];

/* Ghosts: what the properties talk about. They never steer the protocol. */
byte ended;             /* generations ended so far (each +1 of the field); never wraps */
byte wgen[2];           /* the generation each waiter waits for, as a value of `ended` */
byte owed;              /* processes that decided on a FUTEX_WAKE and have not issued it */
byte del_ended = NEVER; /* `ended` when DELETED was set */
byte brk_ended = NEVER; /* `ended` when BROKEN was set */

/*
 * Each property has a flag that is set where it fails, and asserted clear at once: spin's
 * report then names the property ("assertion violated !(lost_wakeup)").
 */
bool lost_wakeup, below_zero, waiters_astray, premature_release, wrong_answer, wake_without_waiters,
        member_done_astray;

/* A waiter asleep although its generation ended (or the group stopped), with no wake coming. */
#define STUCK(i) (asleep[i] && (ended > wgen[i] || (word & STOP) != 0) && owed == 0)

/* WAITERS only while a generation runs: with a count, and the group not stopped. */
#define WAITERS_OK ((word & WAITERS) == 0 || (COUNT(word) > 0 && (word & STOP) == 0))

/* The counter has room for 7 but never holds more than NADDS: below zero would wrap to 7. */
#define INVARIANT (!STUCK(0) && !STUCK(1) && COUNT(word) <= NADDS && WAITERS_OK)

/* Checks INVARIANT in every state: its guard becomes executable in the first state that fails. */
active proctype monitor() {
end_monitor:
        atomic {
                !INVARIANT ->
                        lost_wakeup = (STUCK(0) || STUCK(1));
                        below_zero = (COUNT(word) > NADDS);
                        waiters_astray = !WAITERS_OK;
                        assert(!lost_wakeup);
                        assert(!below_zero);
                        assert(!waiters_astray)
        }
}

/* futex_wake_all(): FUTEX_WAKE with INT_MAX, every sleeper leaves the queue. */
inline futex_wake_all() {
        d_step {
                REACHED(10, !asleep[0] && !asleep[1]);
                asleep[0] = false;
                asleep[1] = false;
                owed--;
                wake = false
        }
}

/*
 * The checks of counter_add() (counter.c:70-98) on the word s, for delta +1 or -1: r is an
 * error, or TRY with next the word to write.
 */
#define ADD_CHECKS(delta, egen)                                                                  \
        if                                                                                       \
        :: (s & STOP) != 0 ->                                                                    \
                r = CHECK(s)                                                                     \
        :: (s & STOP) == 0 && egen != ANY && GEN(s) != egen ->                                   \
                r = ESTALE                                                                       \
        :: else ->                                                                               \
                r = TRY;                                                                         \
                if                                                                               \
                :: delta > 0 && COUNT(s) + delta > COUNT_MASK ->                                 \
                        r = EOVERFLOW                                                            \
                :: delta > 0 && COUNT(s) + delta <= COUNT_MASK ->                                \
                        next = s + delta                                                         \
                :: delta < 0 && COUNT(s) == 0 ->                                                 \
                        BELOW_ZERO                                                               \
                :: delta < 0 && COUNT(s) == 1 ->                                                 \
                        next = ((s & ~(COUNT_MASK | WAITERS)) + GEN_ONE) & WORD_MASK            \
                :: delta < 0 && COUNT(s) > 1 ->                                                  \
                        next = s - 1                                                             \
                fi                                                                               \
        fi

#ifdef BUG_NO_RANGE
#define BELOW_ZERO next = (s - 1) & WORD_MASK
#else
#define BELOW_ZERO r = ERANGE
#endif

#if defined(BUG_WAKE_ALWAYS)
#define WAKE_DECISION (GEN(next) != GEN(s))
#elif defined(BUG_CLEAR_EARLY)
#define WAKE_DECISION false /* set from took below */
#elif defined(BUG_WAKE_EARLY)
#define WAKE_DECISION false
#else
/* counter.c:109: only the completing CAS clears WAITERS, so wake if it did. */
#define WAKE_DECISION ((s & WAITERS) != 0 && (next & WAITERS) == 0)
#endif

/*
 * counter_add(delta, egen): wg_add(), wg_done() and wgd's wg__add() (counter.c:65-115). The CAS
 * loop is one atomic step: every turn is a pure function of the word it loaded, and its CAS
 * succeeds only on that very word, so a run of the loop is a load and a write at the instant
 * of the CAS that succeeds (or a load, for an error). ret_gen gets the generation of the word
 * it replaced (*ret_old), ret_at the generation (ghost) it landed in; `_` for neither. The
 * wake is a step of its own.
 */
inline counter_add(delta, egen, ret_gen, ret_at) {
#ifdef BUG_CLEAR_EARLY
        /* took = fetch_and(~WAITERS) & WAITERS, when the done will complete; then the CAS. */
        d_step {
                s = word;
                ADD_CHECKS(delta, egen);
                if
                :: r == TRY && GEN(next) != GEN(s) ->
                        took = ((s & WAITERS) != 0);
                        owed = owed + (took -> 1 : 0);
                        word = word & ~WAITERS
                :: else
                fi;
                next = 0
        }
#endif
#ifdef BUG_WAKE_EARLY
        /* The wake first, when the done will complete a generation somebody waits for. */
        d_step {
                s = word;
                ADD_CHECKS(delta, egen);
                if
                :: r == TRY && GEN(next) != GEN(s) && (s & WAITERS) != 0 ->
                        wake = true;
                        owed++
                :: else
                fi;
                next = 0
        }
        if
        :: wake ->
                futex_wake_all()
        :: else
        fi;
#endif
        d_step {
                s = word;
                ADD_CHECKS(delta, egen);
                if
                :: r == TRY ->
                        word = next;
                        r = OK;
                        ret_gen = GEN(s);
                        ret_at = ended;
                        if
                        :: GEN(next) != GEN(s) ->
                                ended++
                        :: else
                        fi;
                        wake = WAKE_DECISION;
                        REACHED(9, GEN(next) != GEN(s) && !wake);
                        owed = owed + (wake -> 1 : 0);
                        /* The fast path's promise: no FUTEX_WAKE unless the CAS took WAITERS away. */
                        wake_without_waiters = (wake && (s & WAITERS) == 0);
                        assert(!wake_without_waiters)
                :: r == ERANGE ->
                        /* Decided on a word whose counter was zero; nothing written. */
                        assert(COUNT(s) == 0);
                        REACHED(8, true)
                :: else
                fi;
#ifdef BUG_CLEAR_EARLY
                wake = took;
                took = false;
#endif
                s = 0;
                next = 0
        }
        if
        :: wake ->
                futex_wake_all()
        :: else
        fi
}

#ifdef BUG_CLEAR_EARLY
#define BUG_LOCALS bool took
#else
#define BUG_LOCALS skip
#endif

/* A worker: wg_add(g, 1), later wg_done(g); the second worker does a stray wg_done() too. */
proctype worker(bool stray) {
        int s, next;
        byte r;
        bool wake;
        BUG_LOCALS;

        counter_add(1, ANY, _, _);
        assert(r == OK || r == EIDRM || r == EOWNERDEAD);
        counter_add(-1, ANY, _, _);
        if
        :: stray ->
                counter_add(-1, ANY, _, _)
        :: else
        fi;
        r = 0
}

/*
 * How a waiter decides that its generation ended: before it sleeps (counter.c:215, 270) and
 * after (counter.c:291). BUG_COUNT_ONLY looks at the counter instead, as Go's WaitGroup does.
 */
#ifdef BUG_COUNT_ONLY
#define MINE_ENDED (COUNT(s) == 0)
#define GEN_MOVED (COUNT(s) == 0)
#else
#define MINE_ENDED (GEN(s) != gen || COUNT(s) == 0)
#define GEN_MOVED (GEN(s) != gen)
#endif

/*
 * Return 0 on the word s just loaded: it must show the waiter's generation ended (the ghost
 * `ended` has moved past the generation the waiter began in).
 */
#define RETURN_OK                                                                                \
        premature_release = (ended <= wgen[me]);                                                 \
        assert(!premature_release);                                                              \
        REACHED(4, COUNT(s) > 0);                                                                \
        REACHED(6, gen == GEN_MASK && GEN(s) == 0);                                              \
        r = OK

/*
 * waiter_register() (counter.c:211-227) on the word s of the step it is part of: 0 (ended), an
 * error, REGISTERED with WAITERS already in s, or the CAS that sets it. Its CAS loop is folded
 * into the load before it, as counter_add()'s is.
 */
#define REGISTER                                                                                 \
        if                                                                                       \
        :: MINE_ENDED ->                                                                         \
                RETURN_OK                                                                        \
        :: else ->                                                                               \
                r = CHECK(s);                                                                    \
                if                                                                               \
                :: r == OK && (s & WAITERS) != 0 ->                                              \
                        r = REGISTERED                                                           \
                :: r == OK && (s & WAITERS) == 0 ->                                              \
                        s = s | WAITERS;                                                         \
                        word = s;                                                                \
                        r = REGISTERED                                                           \
                :: else                                                                          \
                fi                                                                               \
        fi

/*
 * The deadline passes at some moment and stays passed (CLOCK_MONOTONIC). A step of its own,
 * just before the load that precedes the code's look at the clock: no other process sees the
 * clock, so it passing a little earlier is the same run.
 */
#define TIME_PASSES                                                                              \
        if                                                                                       \
        :: timed && !expired ->                                                                  \
                expired = true                                                                   \
        :: skip                                                                                  \
        fi

/*
 * Look again after the futex (counter.c:290-314): the generation first, then the stop bits,
 * then what the futex said (k); on 0, or EAGAIN before the deadline, register again
 * (counter.c:284).
 */
#define LOOK_AGAIN                                                                               \
        s = word;                                                                                \
        if                                                                                       \
        :: GEN_MOVED ->                                                                          \
                RETURN_OK                                                                        \
        :: else ->                                                                               \
                r = CHECK(s);                                                                    \
                if                                                                               \
                :: r == OK && (k == ETIMEDOUT || k == EINTR) ->                                  \
                        r = k                                                                    \
                :: r == OK && k == EAGAIN && expired ->                                          \
                        r = ETIMEDOUT                                                            \
                :: r == OK && (k == OK || (k == EAGAIN && !expired)) ->                          \
                        REGISTER                                                                 \
                :: else                                                                          \
                fi                                                                               \
        fi;                                                                                      \
        k = 0

/*
 * A waiter: wg_wait() (counter.c:317-335), that is wg__wait_begin() and wg__wait_generation();
 * after EINTR it calls wg__wait_generation() again for the same generation, as wgctl does.
 */
proctype waiter(byte me; bool timed; byte spurious; byte signals) {
        int s;
        byte gen, r, k;
        bool expired, waited;

        /* wg__wait_begin() (counter.c:229-245): check; nothing outstanding; or the generation. */
        d_step {
                s = word;
                r = CHECK(s);
                if
                :: r == OK && COUNT(s) == 0 ->
                        skip /* returns at once: the generation that counts has ended */
                :: r == OK && COUNT(s) != 0 ->
                        gen = GEN(s);
                        wgen[me] = ended;
                        waited = true;
                        r = TRY
                :: else
                fi
        }
        if
        :: r != TRY ->
                goto out
        :: else
        fi;

enter: /* wg__wait_generation(gen, deadline) (counter.c:259-316) */
        TIME_PASSES;
        d_step {
                s = word;
                /* The generation first, as in the loop: an ended generation is a success. */
                if
                :: MINE_ENDED ->
                        RETURN_OK
                :: else ->
                        r = CHECK(s);
                        if
                        :: r == OK && expired ->
                                r = ETIMEDOUT
                        :: r == OK && !expired ->
                                REGISTER
                        :: else
                        fi
                fi
        }

        do
        :: r != REGISTERED ->
                break
        :: r == REGISTERED ->
                /* futex_wait_until(): sleep only while the upper half still is FUTEX(s). */
                d_step {
                        if
                        :: FUTEX(word) == FUTEX(s) ->
                                asleep[me] = true;
                                k = SLEEPING;
                                REACHED(13, me == 0 && spurious == 0 && SPURIOUS > 0)
                        :: else ->
                                k = EAGAIN
                        fi
                }
                if
                :: k == SLEEPING ->
                        if
                        :: d_step {
                                /*
                                 * Woken by a FUTEX_WAKE. Noticing it and looking again are one
                                 * step: !asleep[me] stays true once it is, so looking later is
                                 * the same as noticing later.
                                 */
                                !asleep[me] ->
                                        k = OK;
                                        LOOK_AGAIN;
                                        REACHED(1, r == OK);
                                        REACHED(2, r == EIDRM);
                                        REACHED(3, r == EOWNERDEAD)
                                }
                        :: d_step {
                                asleep[me] && spurious > 0 ->
                                        asleep[me] = false;
                                        spurious--;
                                        k = OK
                                }
                                d_step {
                                        LOOK_AGAIN
                                }
                        :: d_step {
                                asleep[me] && signals > 0 ->
                                        asleep[me] = false;
                                        signals--;
                                        k = EINTR
                                }
                                d_step {
                                        LOOK_AGAIN
                                }
                        :: d_step {
                                asleep[me] && timed ->
                                        asleep[me] = false;
                                        expired = true;
                                        k = ETIMEDOUT
                                }
                                d_step {
                                        LOOK_AGAIN;
                                        REACHED(11, r == ETIMEDOUT)
                                }
                        fi
                :: else ->
                        TIME_PASSES;
                        d_step {
                                LOOK_AGAIN;
                                REACHED(5, r == OK)
                        }
                fi
        od;

out:
        skip;
        d_step {
                wrong_answer = asleep[me] ||
                        /* a timeout only past the deadline, never on a word that shows a stop */
                        (r == ETIMEDOUT && !(timed && expired && (s & STOP) == 0)) ||
                        /* errors are the word's: deleted is EIDRM, broken (only) EOWNERDEAD */
                        (r == EIDRM && (s & DELETED) == 0) ||
                        (r == EOWNERDEAD && ((s & BROKEN) == 0 || (s & DELETED) != 0));
                assert(!wrong_answer)
        }
        if
        :: r == EINTR ->
                goto enter
        :: else
        fi;
        /*
         * Deleted while its generation ran: the waiter without a deadline returns EIDRM (or
         * EOWNERDEAD, if it saw the group broken before).
         */
        d_step {
                wrong_answer = !timed && waited && del_ended != NEVER && del_ended <= wgen[me] &&
                        r != EIDRM && !(r == EOWNERDEAD && brk_ended <= del_ended);
                assert(!wrong_answer);
                REACHED(12, me == 0 && SIGNALS > 0 && signals == 0 && r == OK)
        }
        d_step {
                s = 0;
                r = 0;
                gen = 0;
                expired = false
        }
}

/* mark(): set @bits and clear WAITERS in one CAS, then wake everybody. */
inline mark(bits) {
        d_step {
                word = (word | bits) & ~WAITERS;
                if
                :: bits == DELETED ->
                        del_ended = ended
                :: else ->
                        brk_ended = ended
                fi;
#ifndef BUG_MARK_NO_WAKE
                owed++;
                wake = true
#endif
        }
        if
        :: wake ->
                futex_wake_all()
        :: else
        fi
}

/*
 * wgd: one thread, so its operations on the group come one at a time, in any order: a member
 * joins (wg__add(+1), which names its generation) and later leaves (the done, only within that
 * generation) or dies in a group whose policy is to break (wg__mark_broken()); a Reset
 * (wg__reset()); the Delete (wg__mark_deleted()), after which wgd forgets the group. It stops
 * only once the member ended: a member that never leaves would keep its generation open.
 */
proctype wgd() {
        int s, next;
        byte r, at, mgen, mG;
        bool wake, joined, member_ended, reset_done;
        BUG_LOCALS;

#if !MEMBER
        joined = true;
        member_ended = true;
#endif
#if !RESET
        reset_done = true;
#endif
        do
        :: !joined ->
                /* member_new(): wg__add(g, 1, UINT64_MAX, &old), the generation of old. */
                counter_add(1, ANY, mgen, mG);
                joined = true;
                if
                :: r == OK
                :: else ->
                        member_ended = true
                fi
        :: joined && !member_ended ->
                /* member_end(): its done only if the word is still in the member's generation. */
                member_ended = true;
                s = word;
                if
                :: GEN(s) == mgen && CHECK(s) == OK ->
                        if
                        :: mark(BROKEN)
                        :: at = NEVER;
#ifdef BUG_ANY_GEN
                                counter_add(-1, ANY, _, at);
#else
                                counter_add(-1, mgen, _, at);
#endif
                                /* The done landed in the member's own generation, or nowhere. */
                                member_done_astray = (r == OK && at != mG);
                                assert(!member_done_astray);
                                REACHED(7, r == ESTALE)
                        fi
                :: else
                fi
        :: !reset_done ->
                /* wg__reset(): counter to zero, next generation, BROKEN and WAITERS cleared. */
                reset_done = true;
                d_step {
                        s = word;
                        if
                        :: (s & DELETED) != 0 ->
                                r = EIDRM
                        :: else ->
                                word = ((s & ~(COUNT_MASK | WAITERS | BROKEN)) + GEN_ONE) & WORD_MASK;
                                ended++;
                                wake = ((s & WAITERS) != 0);
                                owed = owed + (wake -> 1 : 0);
                                REACHED(14, wake);
                                r = OK
                        fi
                }
                if
                :: wake ->
                        futex_wake_all()
                :: else
                fi
        :: mark(DELETED);
                break
        :: !joined || member_ended ->
                break
        od
}

init {
        atomic {
#if WORKERS >= 1
                run worker(false);
#endif
#if WORKERS >= 2
                run worker(STRAY);
#endif
#if WAITERS_RUN >= 1
                run waiter(0, false, SPURIOUS, SIGNALS);
#endif
#if WAITERS_RUN >= 2
                run waiter(1, true, 0, 0);
#endif
                run wgd()
        }
}
