/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The watcher: how wgd learns that a group's generation ended, when the add or done that ended
 * it was an atomic in some other process's mapping, with no message to wgd. A few threads sleep
 * in futex_waitv() on the state words of all groups that have Wait requests pending (127 per
 * thread), and tell the event loop through an eventfd when one of them changes. No thread per
 * waiter, no polling.
 */

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

typedef struct Watcher Watcher;

typedef struct WatchEntry {
        uint32_t *word;    /* a futex word in a MAP_SHARED segment */
        uint32_t expected; /* sleep while it holds this */
} WatchEntry;

/*
 * @callback runs in the event loop after one of the watched words changed (or was woken). The
 * watcher then stays quiet until the next watcher_set(), which the callback must call (with the
 * entries that still need watching, possibly none).
 */
int watcher_new(sd_event *event, sd_event_handler_t callback, void *userdata, Watcher **ret);
Watcher *watcher_free(Watcher *w);

/* Replace the set of watched words. Returns 0 or -errno (-ENOMEM, or no thread could start). */
int watcher_set(Watcher *w, const WatchEntry *entries, size_t n);
