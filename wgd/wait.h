/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A pending Wait request. It has two parents, its Client and its Group, and is linked into a
 * list of each; wait_free() unlinks it from both, so that either parent's teardown may free it.
 * While a group has Waits pending, it has a Watch on its state word; the last Wait to go frees it.
 *
 * Costs: arming a Wait touches its group alone (O(1) when the group is watched already, in the
 * same generation), and so does a change of the group's word; a timeout or a close touches only
 * the Waits concerned.
 */

#include <stdint.h>

#include <systemd/sd-event.h>

#include "client.h"
#include "group.h"
#include "list.h"

typedef struct Wait {
        Client *client;
        Group *group;
        uint64_t id;
        uint64_t generation; /* the generation whose end this Wait waits for */
        sd_event_source *timer;
        LIST_FIELDS(struct Wait, by_group);
        LIST_FIELDS(struct Wait, by_client);
} Wait;

/*
 * A Wait of @c, with request @id, for the end of @generation of @g (its current one), answered
 * with ETIMEDOUT after @timeout_usec (UINT64_MAX: never). It may be answered before this
 * returns, if the generation ended meanwhile. Returns 0 or -errno (nothing was linked then).
 */
int wait_new(Client *c, Group *g, uint64_t id, uint64_t generation, uint64_t timeout_usec);

/* Free a Wait without an answer: unlinked from whatever it is linked to. Returns NULL. */
Wait *wait_free(Wait *w);
static inline void wait_freep(Wait **w) {
        wait_free(*w);
}

/* Answer a Wait (0: its generation ended; else the error) and free it. */
void wait_complete(Wait *w, int error);

/*
 * Look at @g's state word: answer the Waits whose generation ended (or that cannot go on), and
 * watch the word for the others. After anything that may have changed the word.
 */
void waits_check(Group *g);

/* Answer every Wait on @g with @error (EIDRM: deleted; ESHUTDOWN: wgd stops). */
void waits_fail(Group *g, int error);
