/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The watcher: how wgd learns that a group's state word changed, when the add or done that
 * changed it was an atomic in some other process's mapping, with no message to wgd.
 *
 * A Watch is one state word that wgd waits on (a group with Wait requests pending). Threads
 * sleep in futex_waitv() on many watches at once and tell the event loop, through an eventfd,
 * which watch fired; the loop then looks at that one group only. A fired watch stays quiet until
 * it is armed again, so a word that stays changed cannot make a thread spin. Adding, arming or
 * freeing a watch touches one thread's table: O(1), whatever else is watched.
 */

#include <stdint.h>

#include <systemd/sd-event.h>

typedef struct Watcher Watcher;
typedef struct Watch Watch;

/*
 * Runs in the event loop when @watch fired: its word differs from what it was armed with, or
 * somebody woke it. The watch is disarmed; the handler arms it again (watch_arm()) or frees it.
 */
typedef void (*watch_handler_t)(Watch *watch, void *userdata);

int watcher_new(sd_event *event, Watcher **ret);
Watcher *watcher_free(Watcher *w);
static inline void watcher_freep(Watcher **w) {
        watcher_free(*w);
}

/*
 * A new watch on the 64-bit state word @state, disarmed. Fails only with -ENOMEM; a watch that
 * finds no thread (none could start) is looked at by a timer in the loop instead, and moves to a
 * thread when one starts.
 */
int watch_new(Watcher *w, uint64_t *state, watch_handler_t handler, void *userdata, Watch **ret);

/* Fire when the word differs from @snapshot (any of its 64 bits), or when it is woken. */
void watch_arm(Watch *watch, uint64_t snapshot);

/* Stop watching; no handler runs for @watch after this. Returns NULL. */
Watch *watch_free(Watch *watch);

/* How many threads watch, and whether futex_waitv() is used: for tests and the status line. */
unsigned watcher_threads(const Watcher *w);
