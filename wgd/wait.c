/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How a Wait learns that its generation ended. The group's state word is registered (WAITERS,
 * through libwg's wg__watch_arm()) in the generation the Waits wait for, exactly as a waiter in
 * libwg registers before it sleeps: so the process whose done ends the generation calls
 * FUTEX_WAKE, which wakes the watcher's thread. The watch is armed with the word as it was right
 * after the registration; any change since (a completion in between included) makes the
 * kernel's compare fail, and the watch fires at once. Either way the loop comes back here.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "reply.h"
#include "segment.h"
#include "wait.h"
#include "wg-private.h"

/* Accuracy 0 would be sd-event's default of 250 ms: far too loose for a timeout. */
#define WAIT_ACCURACY_USEC 1000

static void on_watch(Watch *watch, void *userdata) {
        waits_check(userdata);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        wait_complete(userdata, -ETIMEDOUT);
        return 0;
}

/* Watch @g's word for @generation, which its Waits wait for. 0, or -errno for a word that stops. */
static int watch(Group *g, uint64_t generation) {
        uint64_t st;
        int r;

        r = wg__watch_arm(g->handle, generation, &st);
        if (r <= 0)
                return r == 0 ? 1 : r; /* 1: the generation ended already */
        watch_arm(g->watch, st);
        g->watch_generation = generation;
        return 0;
}

int wait_new(Client *c, Group *g, uint64_t id, uint64_t generation, uint64_t timeout_usec) {
        _cleanup_(wait_freep) Wait *w = NULL;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (Wait) {
                .id = id,
                .generation = generation,
        };
        if (timeout_usec != UINT64_MAX) {
                r = sd_event_add_time_relative(
                        c->event,
                        &w->timer,
                        CLOCK_MONOTONIC,
                        timeout_usec,
                        WAIT_ACCURACY_USEC,
                        on_timeout,
                        w);
                if (r < 0)
                        return r;
        }
        if (!g->watch) {
                r = watch_new(g->watcher, wg__state_word(g->handle), on_watch, g, &g->watch);
                if (r < 0)
                        return r;
                g->watch_generation = UINT64_MAX; /* not armed yet */
        }

        /* Linked last: nothing can fail from here on. */
        w->client = c;
        LIST_PREPEND(by_client, c->waits, w);
        c->n_waits++;
        w->group = g;
        LIST_PREPEND(by_group, g->waits, w);
        g->n_waits++;
        TAKE_PTR(w); /* its lists hold it now; waits_check() may complete it at once */

        /* Already watched in this generation (the common case): its report will come here too. */
        if (g->watch_generation != generation)
                waits_check(g);
        return 0;
}

Wait *wait_free(Wait *w) {
        Group *g;

        if (!w)
                return NULL;
        g = w->group;

        if (w->client) {
                LIST_REMOVE(by_client, w->client->waits, w);
                w->client->n_waits--;
        }
        if (g) {
                LIST_REMOVE(by_group, g->waits, w);
                g->n_waits--;
                if (!g->waits)
                        g->watch = watch_free(g->watch);
        }
        sd_event_source_disable_unref(w->timer);
        free(w);
        return NULL;
}

void wait_complete(Wait *w, int error) {
        if (error == 0)
                reply_group_full(w->client, w->id, w->group, w->generation);
        else if (error == -ETIMEDOUT)
                reply_error(w->client, w->id, error, "Timed out waiting for '%s'.", w->group->name);
        else if (error == -EIDRM)
                reply_error(w->client, w->id, error, "Group '%s' was deleted.", w->group->name);
        else if (error == -ESHUTDOWN)
                reply_error(w->client, w->id, error, "wgd is stopping.");
        else
                reply_error(w->client, w->id, error, "Group '%s': %s.", w->group->name, strerror(-error));
        wait_free(w);
}

void waits_check(Group *g) {
        uint64_t st = wg__state(g->handle), current = wg_state_generation(st);
        int check = wg_state_check(st), r;

        /*
         * Waits came in the generation that was running then: those of a generation that ended
         * are answered, whatever happened to the group since; the others are all in @current.
         *
         * Every pending Wait is of the generation the watch was armed in (one that came in a
         * later generation ran this check, which answered the older ones). So a wakeup that finds
         * that generation running, nothing stopping it, answers nobody: re-arm without walking the
         * Waits, so that a writer of the group who wakes its futex in a loop costs wgd O(1) a
         * wakeup, however many Waits the group has.
         */
        if (g->waits && current == g->watch_generation && wg_state_count(st) != 0 && check == 0)
                goto rearm;

        LIST_FOREACH (by_group, w, g->waits)
                if (w->generation != current || wg_state_count(st) == 0)
                        wait_complete(w, 0);
                else if (check < 0)
                        wait_complete(w, check);
        if (!g->waits)
                return; /* and the watch went with the last one */

rearm:
        r = watch(g, current);
        if (r > 0)
                /* It ended between our look and the registration: look again (it cannot recur forever: a
                 * generation ends once). */
                waits_check(g);
        else if (r < 0)
                waits_fail(g, r);
}

void waits_fail(Group *g, int error) {
        LIST_FOREACH (by_group, w, g->waits)
                wait_complete(w, error);
}
