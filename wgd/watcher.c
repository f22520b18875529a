/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Threads here touch nothing of wgd but the watcher's own fields, under its mutex, and the
 * watched words, which they only read (futex_waitv() compares them). Everything that acts on a
 * change runs in the event loop.
 *
 * Each thread owns a table of up to SLOTS watches and a private control word. It sleeps in
 * futex_waitv() on its control word and, for each armed watch, on both 32-bit halves of the
 * state word: the upper half is the futex word that a completion wakes, and the lower half
 * (the count) is there so that the kernel's compare sees a change of any of the 64 bits. With
 * the upper half alone, a peer that changes only the lower half (a corrupt count, say) and wakes
 * before the thread is asleep would never be noticed. Only wakes on the futex half reach us:
 * nobody wakes the lower half, so adds and dones that end nothing cost the thread nothing.
 *
 * The handshake with the loop: every change to a thread's table (a watch armed, freed, placed)
 * is made under the mutex and bumps that thread's control word, which wakes it to rebuild its
 * vector; nothing else is told. A thread that finds a watch fired (its word woken, or one of its
 * halves different) marks it fired and disarmed, puts it on the fired list, and writes to the
 * eventfd; the loop takes watches off that list and hands each to its handler, which looks at
 * that one group and arms the watch again. A fired watch is not in any vector until then, so a
 * word that stays changed cannot make a thread spin. A thread decides "fired" only while its
 * control word still holds the value it slept with, that is, while its table is the one it
 * built its vector from: every word it reads then is still mapped (the loop frees a watch, under
 * the mutex, before it unmaps the segment).
 *
 * Without futex_waitv() (Linux before 5.16, or valgrind, which does not know it), each thread
 * has one slot and sleeps on its watch's futex half alone (FUTEX_SHARED), or on its control word
 * (FUTEX_PRIVATE) while it has nothing armed. A change to its table then wakes it on the word it
 * sleeps on, with the scope that word was slept on: a shared wake of the state word, which any
 * libwg waiter on it takes as a spurious wakeup and goes back to sleep. The full 64-bit word is
 * compared before sleeping; a slice of a second bounds what the 32-bit compare cannot see.
 *
 * When no thread can start (pthread_create() fails), a watch is homeless: a timer in the loop
 * compares homeless watches' words every POLL_USEC and tries to start a thread again. Slower,
 * but no Wait is ever left without somebody looking at its word.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "futex.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "segment.h"
#include "time-util.h"
#include "watcher.h"

/* futex_waitv() takes at most 128 words: the control word, then two per watch. */
#define SLOTS ((FUTEX_WAITV_MAX - 1) / 2)
#define FALLBACK_SLICE_USEC (1000 * 1000)
#define POLL_USEC (50 * 1000)

typedef struct WatchThread WatchThread;

struct Watch {
        Watcher *watcher;
        uint64_t *state;
        watch_handler_t handler;
        void *userdata;

        uint64_t snapshot; /* under mutex */
        bool armed;        /* under mutex */
        bool fired;        /* under mutex: on Watcher.fired */
        LIST_FIELDS(Watch, fired);

        WatchThread *thread; /* NULL: homeless; set by the loop under mutex */
        unsigned slot;
        LIST_FIELDS(Watch, homeless); /* loop only */
};

struct WatchThread {
        Watcher *watcher;
        pthread_t thread;
        uint32_t control;                /* FUTEX_PRIVATE; bumped under mutex when the table changes */
        uint32_t *sleeping_on;           /* fallback: the shared word it sleeps on, under mutex */
        Watch *slots[SLOTS];             /* under mutex */
        unsigned n_used;                 /* loop only */
        LIST_FIELDS(WatchThread, roomy); /* loop only: in Watcher.roomy while a slot is free */
};

struct Watcher {
        pthread_mutex_t mutex;
        bool stopping; /* under mutex */
        Watch *fired;  /* under mutex */
        unsigned n_fired;

        WatchThread **threads; /* loop only */
        size_t n_threads;
        WatchThread *roomy;
        unsigned per_thread; /* SLOTS, or 1 without futex_waitv() */
        Watch *homeless;

        int eventfd;
        sd_event_source *eventfd_source;
        sd_event_source *poll_timer; /* made up front, enabled while watches are homeless */
};

/* Under mutex. */
static void fire(Watcher *w, Watch *x) {
        x->armed = false;
        if (x->fired)
                return;
        x->fired = true;
        LIST_PREPEND(fired, w->fired, x);
        w->n_fired++;
}

static void unfire(Watcher *w, Watch *x) {
        if (!x->fired)
                return;
        LIST_REMOVE(fired, w->fired, x);
        w->n_fired--;
        x->fired = false;
}

/* Under mutex: make @t rebuild its vector, waking it wherever it sleeps. */
static void kick(WatchThread *t) {
        __atomic_add_fetch(&t->control, 1, __ATOMIC_SEQ_CST);
        futex_wake_all(&t->control, FUTEX_PRIVATE);
        if (t->sleeping_on)
                futex_wake_all(t->sleeping_on, FUTEX_SHARED);
}

static void tell_loop(Watcher *w) {
        uint64_t one = 1;

        /* Fails only when the counter is at its maximum, and then the loop has been told. */
        (void) write(w->eventfd, &one, sizeof(one));
}

/* Take the mutex for a thread's next round; false (and not held) when the watcher stops. */
static bool lock_unless_stopping(Watcher *w) {
        pthread_mutex_lock(&w->mutex);
        if (!w->stopping)
                return true;
        pthread_mutex_unlock(&w->mutex);
        return false;
}

static void *thread_waitv(WatchThread *t) {
        Watcher *w = t->watcher;
        struct futex_waitv v[FUTEX_WAITV_MAX];
        unsigned slot_of[FUTEX_WAITV_MAX];

        for (;;) {
                uint32_t control;
                unsigned n = 0;
                bool fired = false;
                int r;

                if (!lock_unless_stopping(w))
                        return NULL;
                control = __atomic_load_n(&t->control, __ATOMIC_SEQ_CST);
                v[n++] = futex_waitv_entry(&t->control, control, FUTEX_PRIVATE);
                for (unsigned i = 0; i < SLOTS; i++) {
                        Watch *x = t->slots[i];

                        if (!x || !x->armed)
                                continue;
                        slot_of[n] = i;
                        v[n++] = futex_waitv_entry(
                                wg_state_futex(x->state), (uint32_t) (x->snapshot >> 32), FUTEX_SHARED);
                        slot_of[n] = i;
                        v[n++] = futex_waitv_entry(
                                wg_state_count_word(x->state), (uint32_t) x->snapshot, FUTEX_SHARED);
                }
                pthread_mutex_unlock(&w->mutex);

                r = futex_waitv(v, n);
                if (r == 0 || r == -EINTR)
                        continue; /* our control word: the table changed (or nothing did) */

                pthread_mutex_lock(&w->mutex);
                if (__atomic_load_n(&t->control, __ATOMIC_SEQ_CST) == control)
                        for (unsigned e = 1; e < n; e++) {
                                Watch *x = t->slots[slot_of[e]];

                                /* -EAGAIN: some word differed, which one is not said: compare. */
                                if (x->armed &&
                                    ((int) e == r || (r < 0 && r != -EAGAIN) ||
                                     __atomic_load_n(
                                             (uint32_t *) (uintptr_t) v[e].uaddr, __ATOMIC_ACQUIRE) !=
                                             v[e].val)) {
                                        fire(w, x);
                                        fired = true;
                                }
                        }
                pthread_mutex_unlock(&w->mutex);
                if (fired)
                        tell_loop(w);
        }
}

static void *thread_fallback(WatchThread *t) {
        Watcher *w = t->watcher;

        for (;;) {
                uint32_t control, *word = NULL, expected = 0;
                bool fired = false;
                int r;

                if (!lock_unless_stopping(w))
                        return NULL;
                control = __atomic_load_n(&t->control, __ATOMIC_SEQ_CST);
                if (t->slots[0] && t->slots[0]->armed) {
                        Watch *x = t->slots[0];

                        if (__atomic_load_n(x->state, __ATOMIC_ACQUIRE) != x->snapshot) {
                                fire(w, x);
                                fired = true;
                        } else {
                                word = wg_state_futex(x->state);
                                expected = (uint32_t) (x->snapshot >> 32);
                        }
                }
                t->sleeping_on = word;
                pthread_mutex_unlock(&w->mutex);

                if (fired) {
                        tell_loop(w);
                        continue;
                }
                if (!word) {
                        (void) futex_wait_until(&t->control, control, NULL, FUTEX_PRIVATE);
                        continue;
                } else {
                        struct timespec slice = usec_to_timespec(now_usec() + FALLBACK_SLICE_USEC);

                        r = futex_wait_until(word, expected, &slice, FUTEX_SHARED);
                }

                pthread_mutex_lock(&w->mutex);
                t->sleeping_on = NULL;
                if (__atomic_load_n(&t->control, __ATOMIC_SEQ_CST) == control && r != -ETIMEDOUT &&
                    r != -EINTR && t->slots[0] && t->slots[0]->armed) {
                        /* Woken on the word, or it differed: either way the loop looks. */
                        fire(w, t->slots[0]);
                        fired = true;
                }
                pthread_mutex_unlock(&w->mutex);
                if (fired)
                        tell_loop(w);
        }
}

static void *watch_thread(void *p) {
        WatchThread *t = p;

        return t->watcher->per_thread == SLOTS ? thread_waitv(t) : thread_fallback(t);
}

/* Hand every fired watch to its handler: those fired before we looked, so that none waits long. */
static void drain(Watcher *w) {
        unsigned n;

        pthread_mutex_lock(&w->mutex);
        n = w->n_fired;
        pthread_mutex_unlock(&w->mutex);

        while (n-- > 0) {
                Watch *x;

                pthread_mutex_lock(&w->mutex);
                x = w->fired;
                if (x)
                        unfire(w, x);
                pthread_mutex_unlock(&w->mutex);
                if (!x)
                        break;
                /* The handler may free @x, or any other watch: none is held across this call. */
                x->handler(x, x->userdata);
        }
}

static int on_eventfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Watcher *w = userdata;
        uint64_t n;

        (void) read(fd, &n, sizeof(n));
        drain(w);
        return 0; /* never an error: that would disable this source, and every Wait with it */
}

static int thread_start(Watcher *w) {
        WatchThread **threads;
        _cleanup_free_ WatchThread *t = NULL;
        sigset_t all, old;
        int r;

        threads = realloc(w->threads, (w->n_threads + 1) * sizeof(*threads));
        if (!threads)
                return -ENOMEM;
        w->threads = threads;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->watcher = w;

        /* Signals belong to the event loop's signalfd: no thread of ours may take one. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&t->thread, NULL, watch_thread, t);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0)
                return -r;

        LIST_PREPEND(roomy, w->roomy, t);
        w->threads[w->n_threads++] = TAKE_PTR(t);
        return 0;
}

/* Give @x a slot in a thread, starting one if none has room. */
static int place(Watcher *w, Watch *x) {
        WatchThread *t;
        unsigned i;
        int r;

        if (!w->roomy) {
                r = thread_start(w);
                if (r < 0)
                        return r;
        }
        t = w->roomy;
        for (i = 0; i < w->per_thread && t->slots[i]; i++)
                ;
        assert(i < w->per_thread);

        pthread_mutex_lock(&w->mutex);
        t->slots[i] = x;
        x->thread = t;
        x->slot = i;
        if (x->armed)
                kick(t);
        pthread_mutex_unlock(&w->mutex);

        if (++t->n_used == w->per_thread)
                LIST_REMOVE(roomy, w->roomy, t);
        return 0;
}

static void homeless_add(Watcher *w, Watch *x) {
        LIST_PREPEND(homeless, w->homeless, x);
        (void) sd_event_source_set_enabled(w->poll_timer, SD_EVENT_ON);
}

/*
 * The degraded mode: look at the homeless watches ourselves, and give them a thread if one
 * starts now.
 */
static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        Watcher *w = userdata;
        bool fired = false;
        int r = 0;

        LIST_FOREACH (homeless, x, w->homeless) {
                if (r >= 0) {
                        r = place(w, x);
                        if (r >= 0) {
                                LIST_REMOVE(homeless, w->homeless, x);
                                continue;
                        }
                }
                pthread_mutex_lock(&w->mutex);
                if (x->armed && __atomic_load_n(x->state, __ATOMIC_ACQUIRE) != x->snapshot) {
                        fire(w, x);
                        fired = true;
                }
                pthread_mutex_unlock(&w->mutex);
        }
        if (r < 0)
                log_debug_errno(r, "Still no watcher thread, watching %s by polling: %m", "some groups");

        if (w->homeless)
                (void) sd_event_source_set_time_relative(s, POLL_USEC);
        else
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (fired)
                drain(w);
        return 0;
}

int watcher_new(sd_event *event, Watcher **ret) {
        _cleanup_(watcher_freep) Watcher *w = NULL;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        pthread_mutex_init(&w->mutex, NULL);
        w->eventfd = -EBADF;
        /* $WGD_WATCHER_FALLBACK: the kernels without futex_waitv(), on one that has it (tests). */
        w->per_thread = futex_waitv_supported() && !getenv("WGD_WATCHER_FALLBACK") ? SLOTS : 1;
        if (w->per_thread == 1)
                log_notice("Watching groups with a thread each (futex_waitv() is not available, or "
                           "$WGD_WATCHER_FALLBACK is set).");

        w->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->eventfd < 0)
                return negative_errno();
        r = sd_event_add_io(event, &w->eventfd_source, w->eventfd, EPOLLIN, on_eventfd, w);
        if (r < 0)
                return r;
        /* Made now, so that going into the degraded mode needs nothing that could fail. */
        r = sd_event_add_time_relative(
                event, &w->poll_timer, CLOCK_MONOTONIC, POLL_USEC, POLL_USEC / 5, on_poll, w);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(w->poll_timer, SD_EVENT_OFF);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(w);
        return 0;
}

Watcher *watcher_free(Watcher *w) {
        if (!w)
                return NULL;

        pthread_mutex_lock(&w->mutex);
        w->stopping = true;
        for (size_t i = 0; i < w->n_threads; i++)
                kick(w->threads[i]);
        pthread_mutex_unlock(&w->mutex);

        for (size_t i = 0; i < w->n_threads; i++) {
                pthread_join(w->threads[i]->thread, NULL);
                for (unsigned j = 0; j < SLOTS; j++)
                        if (w->threads[i]->slots[j])
                                w->threads[i]->slots[j]->thread = NULL;
                free(w->threads[i]);
        }
        free(w->threads);
        /* Watches belong to their groups, which let go of them first; any left are forgotten. */
        sd_event_source_disable_unref(w->poll_timer);
        sd_event_source_disable_unref(w->eventfd_source);
        safe_close(w->eventfd);
        pthread_mutex_destroy(&w->mutex);
        free(w);
        return NULL;
}

int watch_new(Watcher *w, uint64_t *state, watch_handler_t handler, void *userdata, Watch **ret) {
        Watch *x;
        int r;

        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        *x = (Watch) {
                .watcher = w,
                .state = state,
                .handler = handler,
                .userdata = userdata,
        };

        r = place(w, x);
        if (r < 0) {
                log_warning_errno(r, "Failed to start a watcher thread, watching by polling for now: %m");
                homeless_add(w, x);
        }
        *ret = x;
        return 0;
}

void watch_arm(Watch *x, uint64_t snapshot) {
        Watcher *w = x->watcher;

        pthread_mutex_lock(&w->mutex);
        unfire(w, x);
        x->snapshot = snapshot;
        x->armed = true;
        if (x->thread)
                kick(x->thread);
        pthread_mutex_unlock(&w->mutex);
}

Watch *watch_free(Watch *x) {
        Watcher *w;
        WatchThread *t;

        if (!x)
                return NULL;
        w = x->watcher;
        t = x->thread;

        pthread_mutex_lock(&w->mutex);
        unfire(w, x);
        x->armed = false;
        if (t) {
                t->slots[x->slot] = NULL;
                kick(t);
                /* The word may be unmapped once we return: no later kick may touch it. */
                t->sleeping_on = NULL;
        }
        pthread_mutex_unlock(&w->mutex);

        if (t) {
                if (t->n_used-- == w->per_thread)
                        LIST_PREPEND(roomy, w->roomy, t);
        } else
                LIST_REMOVE(homeless, w->homeless, x);
        free(x);
        return NULL;
}

unsigned watcher_threads(const Watcher *w) {
        return (unsigned) w->n_threads;
}
