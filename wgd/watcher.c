/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Threads here touch nothing of wgd but the watcher's own fields, under its mutex, and the
 * watched words, read-only through futex_waitv(). Everything that acts on a change runs in the
 * event loop.
 *
 * Without futex_waitv() (Linux before 5.16, or valgrind, which does not know it), each thread
 * watches one word with FUTEX_WAIT and looks at its control word every FALLBACK_SLICE: a thread
 * per watched group, and a bounded delay before a thread notices that its set changed, but the
 * same immediate wakeup when a generation ends.
 *
 * The handshake: each thread sleeps on its private control word plus its share of the watched
 * words. watcher_set() bumps every control word and wakes the threads, which re-read the set.
 * When a watched word changes, the thread that saw it writes to the eventfd once and then sleeps
 * on its control word alone until watcher_set() is called again, so a word that stays changed
 * cannot make it spin.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "watcher.h"

/* futex_waitv() takes at most 128 words; one of them is the thread's control word. */
#define PER_THREAD (FUTEX_WAITV_MAX - 1)
#define FALLBACK_SLICE_NSEC (100 * 1000 * 1000L)

typedef struct WatchThread {
        Watcher *watcher;
        pthread_t thread;
        size_t index;
        uint32_t control; /* private futex: bumped by watcher_set() */
} WatchThread;

struct Watcher {
        pthread_mutex_t mutex;
        WatchEntry *entries; /* under mutex */
        size_t n_entries;    /* under mutex */
        bool stopping;       /* under mutex */

        WatchThread **threads; /* event loop only */
        size_t n_threads;
        size_t per_thread; /* PER_THREAD, or 1 without futex_waitv() */

        int eventfd;
        sd_event_source *source;
        sd_event_handler_t callback;
        void *userdata;
};

static long futex_waitv(struct futex_waitv *v, unsigned n) {
        return syscall(SYS_futex_waitv, v, n, 0, NULL, CLOCK_MONOTONIC);
}

static bool have_futex_waitv(void) {
        /* An empty vector is EINVAL where the call exists. */
        return syscall(SYS_futex_waitv, NULL, 0, 0, NULL, CLOCK_MONOTONIC) < 0 && errno == EINVAL;
}

/* The fallback's sleep: one shared word, and a slice after which the control word is read. */
static long futex_wait_slice(uint32_t *word, uint32_t expected) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += FALLBACK_SLICE_NSEC;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, &ts, NULL, FUTEX_BITSET_MATCH_ANY);
}

static void control_wait(uint32_t *word, uint32_t expected) {
        (void) syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void control_bump(uint32_t *word) {
        __atomic_add_fetch(word, 1, __ATOMIC_SEQ_CST);
        (void) syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void *watch_thread(void *p) {
        WatchThread *t = p;
        Watcher *w = t->watcher;
        struct futex_waitv v[FUTEX_WAITV_MAX];

        for (;;) {
                uint32_t control;
                size_t n = 0;
                long r;

                pthread_mutex_lock(&w->mutex);
                if (w->stopping) {
                        pthread_mutex_unlock(&w->mutex);
                        return NULL;
                }
                /* Read under the mutex: watcher_set() bumps it under the same mutex. */
                control = __atomic_load_n(&t->control, __ATOMIC_SEQ_CST);
                v[n++] = (struct futex_waitv) {
                        .uaddr = (uintptr_t) &t->control,
                        .val = control,
                        .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG,
                };
                for (size_t i = t->index * w->per_thread; i < w->n_entries && n <= w->per_thread; i++)
                        v[n++] = (struct futex_waitv) {
                                .uaddr = (uintptr_t) w->entries[i].word,
                                .val = w->entries[i].expected,
                                .flags = FUTEX_32, /* shared: the words live in MAP_SHARED segments */
                        };
                pthread_mutex_unlock(&w->mutex);

                if (w->per_thread == PER_THREAD)
                        r = futex_waitv(v, (unsigned) n);
                else if (n == 2) {
                        r = futex_wait_slice((uint32_t *) (uintptr_t) v[1].uaddr, (uint32_t) v[1].val);
                        if (r == 0)
                                r = 1; /* as futex_waitv() says: entry 1 was woken */
                } else
                        r = futex_wait_slice(&t->control, control);
                if (r < 0 && (errno == EINTR || errno == ETIMEDOUT))
                        continue;
                if (__atomic_load_n(&t->control, __ATOMIC_SEQ_CST) != control)
                        continue; /* a new set: the entries we slept on may be gone */
                if (r == 0)
                        continue; /* woken on the control word, which did not change: spurious */

                /*
                 * r > 0: a watched word was woken. EAGAIN: one differed already. Anything else
                 * (EFAULT for a word unmapped under us, should the loop ever fail to hand over a
                 * new set first): tell too, so that the loop looks and hands over a set that works,
                 * rather than this thread sleeping on nothing.
                 */
                {
                        uint64_t one = 1;

                        (void) write(w->eventfd, &one, sizeof(one));
                }
                while (__atomic_load_n(&t->control, __ATOMIC_SEQ_CST) == control)
                        control_wait(&t->control, control);
        }
}

static int on_eventfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Watcher *w = userdata;
        uint64_t n;

        (void) read(fd, &n, sizeof(n));
        return w->callback(s, w->userdata);
}

int watcher_new(sd_event *event, sd_event_handler_t callback, void *userdata, Watcher **ret) {
        Watcher *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        pthread_mutex_init(&w->mutex, NULL);
        w->per_thread = have_futex_waitv() ? PER_THREAD : 1;
        if (w->per_thread == 1)
                log_notice("futex_waitv() is not available: watching groups with a thread each.");
        w->callback = callback;
        w->userdata = userdata;

        w->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->eventfd < 0) {
                r = negative_errno();
                watcher_free(w);
                return r;
        }
        r = sd_event_add_io(event, &w->source, w->eventfd, EPOLLIN, on_eventfd, w);
        if (r < 0) {
                watcher_free(w);
                return r;
        }

        *ret = w;
        return 0;
}

static int thread_start(Watcher *w) {
        WatchThread **threads, *t;
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
        t->index = w->n_threads;

        /* Signals belong to the event loop's signalfd: no thread of ours may take one. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&t->thread, NULL, watch_thread, t);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0) {
                free(t);
                return -r;
        }
        w->threads[w->n_threads++] = t;
        return 0;
}

int watcher_set(Watcher *w, const WatchEntry *entries, size_t n) {
        WatchEntry *copy = NULL;
        int r;

        if (n > 0) {
                copy = malloc(n * sizeof(*copy));
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, entries, n * sizeof(*copy));
        }

        pthread_mutex_lock(&w->mutex);
        free(w->entries);
        w->entries = copy;
        w->n_entries = n;
        for (size_t i = 0; i < w->n_threads; i++)
                control_bump(&w->threads[i]->control);
        pthread_mutex_unlock(&w->mutex);

        while (w->n_threads * w->per_thread < n) {
                r = thread_start(w);
                if (r < 0)
                        return log_error_errno(r, "Failed to start a watcher thread: %m");
        }
        return 0;
}

Watcher *watcher_free(Watcher *w) {
        if (!w)
                return NULL;

        pthread_mutex_lock(&w->mutex);
        w->stopping = true;
        for (size_t i = 0; i < w->n_threads; i++)
                control_bump(&w->threads[i]->control);
        pthread_mutex_unlock(&w->mutex);

        for (size_t i = 0; i < w->n_threads; i++) {
                pthread_join(w->threads[i]->thread, NULL);
                free(w->threads[i]);
        }
        free(w->threads);
        free(w->entries);
        sd_event_source_disable_unref(w->source);
        safe_close(w->eventfd);
        pthread_mutex_destroy(&w->mutex);
        free(w);
        return NULL;
}
