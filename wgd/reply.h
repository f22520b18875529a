/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Answers: wg.v1 Responses built from wgd's objects, handed to a client to send. */

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "group.h"

void reply_error(Client *c, uint64_t id, int error, const char *format, ...)
        __attribute__((format(printf, 4, 5)));

/* The answer to a Join: the membership, and the segment. */
void reply_joined(Client *c, uint64_t id, Group *g, uint64_t member_id);

/* The answer to a Delete. */
void reply_deleted(Client *c, uint64_t id);

/* The group's info, with its segment's fd attached if @with_segment (Open, Join). */
void reply_group(Client *c, uint64_t id, Group *g, bool with_segment);

/*
 * The info of a cluster group that etcd created at @count but that is not here (this node cannot
 * mirror it yet): what @f and @count say, as a Create answers it, without a segment.
 */
void reply_group_unmirrored(Client *c, uint64_t id, const GroupFields *f, uint64_t count);

/*
 * The group's info with its members: those of the current generation, and the failed or
 * abandoned ones of @outcome_generation, with that generation's outcome from the segment.
 */
void reply_group_full(Client *c, uint64_t id, Group *g, uint64_t outcome_generation);
