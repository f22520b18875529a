/* SPDX-License-Identifier: LGPL-2.1-or-later */

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "member.h"
#include "reply.h"
#include "segment.h"
#include "wg-private.h"

void reply_error(Client *c, uint64_t id, int error, const char *format, ...) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__Error err = WG__V1__ERROR__INIT;
        char message[256];
        va_list ap;

        assert(error < 0);

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);

        err.has_errnum = true;
        err.errnum = -error;
        err.message = message;
        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_ERROR;
        resp.error = &err;
        client_reply(c, &resp, NULL);
}

void reply_joined(Client *c, uint64_t id, Group *g, uint64_t member_id) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__Joined joined = WG__V1__JOINED__INIT;
        Wg__V1__GroupInfo info = WG__V1__GROUP_INFO__INIT;

        group_info(g, &info);
        joined.has_member_id = true;
        joined.member_id = member_id;
        joined.group = &info;
        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_JOINED;
        resp.joined = &joined;
        client_reply(c, &resp, g->shared);
}

void reply_deleted(Client *c, uint64_t id) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__Deleted deleted = WG__V1__DELETED__INIT;

        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_DELETED;
        resp.deleted = &deleted;
        client_reply(c, &resp, NULL);
}

/* A Response with @info, and @segment's fd if not NULL. */
static void reply_info(Client *c, uint64_t id, Wg__V1__GroupInfo *info, wg *segment) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;

        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_GROUP;
        resp.group = info;
        client_reply(c, &resp, segment);
}

void reply_group(Client *c, uint64_t id, Group *g, bool with_segment) {
        Wg__V1__GroupInfo info = WG__V1__GROUP_INFO__INIT;

        group_info(g, &info);
        reply_info(c, id, &info, with_segment ? g->shared : NULL);
}

void reply_group_unmirrored(Client *c, uint64_t id, const GroupFields *f, uint64_t count) {
        Wg__V1__GroupInfo info = WG__V1__GROUP_INFO__INIT;

        /* As group_info() says of a group just made: generation 0, nobody waiting, not broken. */
        info.name = (char *) f->name;
        info.has_count = info.has_generation = info.has_waiters = info.has_futex_waiters = true;
        info.count = count;
        info.has_owner = info.has_gid = info.has_mode = info.has_created_usec = true;
        info.owner = (uint32_t) f->owner;
        info.gid = (uint32_t) f->gid;
        info.mode = f->mode;
        info.created_usec = f->created_usec;
        info.has_broken = info.has_on_abandon = info.has_cluster = true;
        info.on_abandon = f->on_abandon;
        info.cluster = true;
        reply_info(c, id, &info, NULL);
}

/* Room for one GroupInfo with its members, kept well under the record cap. */
#define INFO_MEMBERS_MAX 128

typedef struct FullInfo {
        Wg__V1__GroupInfo info;
        Wg__V1__Outcome outcome;
        size_t room; /* of members and pointers: sized to the group, at most INFO_MEMBERS_MAX */
        Wg__V1__Member *members;
        Wg__V1__Member **pointers;
} FullInfo;

static void member_info(const Member *m, Wg__V1__Member *info) {
        info->has_id = true;
        info->id = m->id;
        info->has_pid = true;
        info->pid = (uint32_t) m->pid;
        info->description = m->description;
        info->has_state = true;
        info->state = WG__V1__MEMBER_STATE__MEMBER_STATE_JOINED;
        info->has_joined_usec = true;
        info->joined_usec = m->joined_usec;
        info->has_generation = true;
        info->generation = m->generation;
}

static void record_info(const MemberRecord *r, Wg__V1__Member *info) {
        info->has_id = true;
        info->id = r->id;
        info->has_pid = true;
        info->pid = (uint32_t) r->pid;
        info->description = (char *) r->description;
        info->has_state = true;
        info->state = r->state;
        info->has_status = true;
        info->status = r->status;
        info->has_joined_usec = true;
        info->joined_usec = r->joined_usec;
        info->has_ended_usec = true;
        info->ended_usec = r->ended_usec;
        info->has_generation = true;
        info->generation = r->generation;
}

static void remote_info(const RemoteMember *rm, Wg__V1__Member *info) {
        info->has_id = true;
        info->id = rm->id;
        info->has_pid = true;
        info->pid = (uint32_t) rm->pid;
        info->description = (char *) rm->description;
        info->has_state = true;
        info->state = WG__V1__MEMBER_STATE__MEMBER_STATE_JOINED;
        info->has_joined_usec = true;
        info->joined_usec = rm->joined_usec;
        info->has_generation = true;
        info->generation = rm->generation;
        info->node = (char *) rm->node;
}

static void full_info_add(FullInfo *f, const Member *m, const MemberRecord *r, const RemoteMember *rm) {
        Wg__V1__Member *info;

        if (f->info.n_members >= f->room) {
                f->info.has_members_omitted = true;
                f->info.members_omitted++;
                return;
        }
        info = &f->members[f->info.n_members];
        wg__v1__member__init(info);
        if (m)
                member_info(m, info);
        else if (r) {
                record_info(r, info);
                if (r->node[0])
                        info->node = (char *) r->node;
        } else
                remote_info(rm, info);
        f->pointers[f->info.n_members++] = info;
}

static void full_info(Group *g, uint64_t outcome_generation, FullInfo *f) {
        uint64_t current = wg_state_generation(wg__state(g->handle));
        struct wg_outcome o;
        unsigned first;

        wg__v1__group_info__init(&f->info);
        group_info(g, &f->info);
        f->info.members = f->pointers;

        if (g->cluster)
                /* Every node's members, as etcd has them: this node's among them. */
                for (const RemoteMember *rm = g->remote; rm; rm = rm->remote_next) {
                        if (rm->generation == current)
                                full_info_add(f, NULL, NULL, rm);
                }
        else
                LIST_FOREACH (by_group, m, g->members)
                        if (m->generation == current)
                                full_info_add(f, m, NULL, NULL);
        first = g->n_records > GROUP_RECORDS ? g->n_records - GROUP_RECORDS : 0;
        for (unsigned i = first; g->records && i < g->n_records; i++) {
                const MemberRecord *r = &g->records[i % GROUP_RECORDS];

                if (r->generation == current ||
                    (r->generation == outcome_generation &&
                     r->state != WG__V1__MEMBER_STATE__MEMBER_STATE_SUCCEEDED))
                        full_info_add(f, NULL, r, NULL);
        }

        if (outcome_generation <= WG_STATE_GEN_MASK && wg__outcome(g->handle, outcome_generation, &o) >= 0) {
                wg__v1__outcome__init(&f->outcome);
                f->outcome.has_generation = true;
                f->outcome.generation = outcome_generation;
                f->outcome.has_succeeded = f->outcome.has_failed = f->outcome.has_abandoned = true;
                f->outcome.succeeded = o.succeeded;
                f->outcome.failed = o.failed;
                f->outcome.abandoned = o.abandoned;
                f->info.outcome = &f->outcome;
        }
}

void reply_group_full(Client *c, uint64_t id, Group *g, uint64_t outcome_generation) {
        FullInfo f = {};

        /* Room for every member and record there may be to show, and no allocation for none. */
        f.room = g->n_members + g->n_remote + (g->records ? GROUP_RECORDS : 0);
        if (f.room > INFO_MEMBERS_MAX)
                f.room = INFO_MEMBERS_MAX;
        if (f.room > 0) {
                f.members = calloc(f.room, sizeof(*f.members));
                f.pointers = calloc(f.room, sizeof(*f.pointers));
                if (!f.members || !f.pointers) {
                        free(f.members);
                        free(f.pointers);
                        reply_error(c, id, -ENOMEM, "Out of memory.");
                        return;
                }
        }
        full_info(g, outcome_generation, &f);
        reply_info(c, id, &f.info, NULL);
        free(f.members);
        free(f.pointers);
}
