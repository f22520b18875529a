/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A waiter's watch on wgd. 'wgctl wait' sleeps on the segment's futex, which wgd's death does
 * not touch: without systemd to restart it, a wgd killed by SIGKILL would leave the waiter
 * asleep for ever, since nobody is left to do the done of the members. So the waiter keeps the
 * connection it opened the group on, and a thread sleeps in poll() on it: the connection ends
 * exactly when wgd does, with no periodic wake-up and no delay.
 *
 * When it ends, the thread asks again, once, without starting a wgd of its own. Under systemd
 * the socket outlives wgd, and the wgd it restarts takes every group back from the fdstore: if
 * the name still leads to our segment, the thread watches the new connection and the wait goes
 * on. Otherwise the waiter has nothing left to wait for, and the thread ends the process with
 * exit code 125, unless the generation ended meanwhile (a done by somebody else who maps the
 * segment): then, or once the main thread has its result, the outcome is the main thread's.
 */

#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "segment.h"
#include "wg-private.h"
#include "wgctl.h"

static struct {
        /* Held by whoever decides how the process ends: the main thread, or the watcher. */
        pthread_mutex_t lock;
        bool decided; /* the main thread has its result */

        const char *name;
        wg *g;
        uint64_t generation;
        int sock;
        bool newline; /* a progress bar is on the line: end it before saying anything */

        /* The thread, joined by watch_end(), which wakes it through the pipe. */
        pthread_t thread;
        bool started;
        int wake[2];
} watch = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .sock = -EBADF,
        .wake = { -EBADF, -EBADF },
};

/* Sleep until the connection @sock ends (wgd closed it, by dying or stopping), or watch_end(). */
static void wait_for_hangup(int sock) {
        for (;;) {
                struct pollfd p[2] = {
                        { .fd = sock, .events = POLLIN | POLLRDHUP },
                        { .fd = watch.wake[0], .events = POLLIN },
                };
                char byte;
                ssize_t n;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return; /* cannot watch: as good as lost, and asking again tells */
                }
                if (p[1].revents)
                        return;
                if (p[0].revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))
                        return;

                /*
                 * A record nobody asked for: a notice that wgd turns the connection away, which
                 * a hang-up follows. One byte reads past all of it (SOCK_SEQPACKET).
                 */
                n = recv(sock, &byte, 1, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                        return;
        }
}

/* Whether the generation we wait for can still end: else the main thread wakes, or woke. */
static bool generation_pending(void) {
        uint64_t s = wg__state(watch.g);

        return wg_state_check(s) >= 0 && wg_state_generation(s) == watch.generation && wg_state_count(s) > 0;
}

static void *watch_thread(void *userdata) {
        int r;

        for (;;) {
                bool decided;

                wait_for_hangup(watch.sock);
                watch.sock = safe_close(watch.sock);
                pthread_mutex_lock(&watch.lock);
                decided = watch.decided;
                pthread_mutex_unlock(&watch.lock);
                if (decided)
                        return NULL; /* watch_end(): the main thread has its result */

                r = daemon_reopen(watch.name, watch.g, &watch.sock);
                if (r < 0)
                        break;
                /* The same group, from a wgd that systemd restarted: watch that one now. */
        }

        pthread_mutex_lock(&watch.lock);
        if (!watch.decided && generation_pending()) {
                if (watch.newline)
                        fputc('\n', stderr);
                /* With the lock held: the main thread cannot report another outcome meanwhile. */
                exit(daemon_died(watch.name, r));
        }
        pthread_mutex_unlock(&watch.lock);
        return NULL;
}

int watch_wgd(const char *name, wg *g, uint64_t generation, int sock, bool newline) {
        int r;

        assert(sock >= 0);

        /* Ours for good (and @name is argv's): the main thread may drop its reference first. */
        watch.name = name;
        watch.g = wg_ref(g);
        watch.generation = generation;
        watch.sock = sock;
        watch.newline = newline;

        if (pipe2(watch.wake, O_CLOEXEC) < 0) {
                watch.sock = safe_close(watch.sock);
                return negative_errno();
        }
        r = pthread_create(&watch.thread, NULL, watch_thread, NULL);
        if (r != 0) {
                watch.sock = safe_close(watch.sock);
                return -r;
        }
        watch.started = true;
        return 0;
}

void watch_end(void) {
        pthread_mutex_lock(&watch.lock);
        watch.decided = true;
        pthread_mutex_unlock(&watch.lock);

        /* Wake the thread and wait for it: no thread is left running when the process exits. */
        if (watch.started && write(watch.wake[1], "", 1) == 1)
                (void) pthread_join(watch.thread, NULL);
}
