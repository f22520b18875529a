/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Requests: decode, check (version, names, ranges, permissions, limits), carry out, answer.
 * Every record a client sends ends in exactly one answer (now, or later for a Wait), and a bad
 * one changes nothing. The record is untrusted from the first byte: protobuf-c checks the wire
 * format, everything else is checked here.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "seqpacket.h"
#include "segment.h"
#include "time-util.h"
#include "wg-private.h"
#include "wgd.h"

#define PROTOCOL_VERSION 1
#define WAIT_ACCURACY_USEC 1000

/* GroupInfo is under 200 bytes packed; a List answer stops well below the record cap. */
#define LIST_BUDGET (WG_RECORD_MAX - 1024)

static void request_freep(Wg__V1__Request **r) {
        if (*r)
                wg__v1__request__free_unpacked(*r, NULL);
}

static void reply_group(Client *c, uint64_t id, Group *g, int fd) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__GroupInfo info = WG__V1__GROUP_INFO__INIT;

        group_info(g, &info);
        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_GROUP;
        resp.group = &info;
        client_reply(c, &resp, fd);
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

static void full_info_add(FullInfo *f, const Member *m, const MemberRecord *r) {
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
        else
                member_record_info(r, info);
        f->pointers[f->info.n_members++] = info;
}

/*
 * A group with its members: those of the current generation, and the failed or abandoned ones
 * of @outcome_generation, whose counts come from the segment, as every waiter sees them.
 */
static void full_info(Group *g, uint64_t outcome_generation, FullInfo *f) {
        uint64_t current = wg_state_generation(wg__state(g->handle));
        struct wg_outcome o;
        unsigned first;

        wg__v1__group_info__init(&f->info);
        group_info(g, &f->info);
        f->info.members = f->pointers;

        LIST_FOREACH(by_group, m, g->members)
                if (m->generation == current)
                        full_info_add(f, m, NULL);
        first = g->n_records > GROUP_RECORDS ? g->n_records - GROUP_RECORDS : 0;
        for (unsigned i = first; g->records && i < g->n_records; i++) {
                const MemberRecord *r = &g->records[i % GROUP_RECORDS];

                if (r->generation == current ||
                    (r->generation == outcome_generation && r->state != WG__V1__MEMBER_STATE__MEMBER_STATE_SUCCEEDED))
                        full_info_add(f, NULL, r);
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

static void reply_group_full(Client *c, uint64_t id, Group *g, uint64_t outcome_generation) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        FullInfo f = {};

        /* Room for every member and record there may be to show, and no allocation for none. */
        f.room = g->n_members + (g->records ? GROUP_RECORDS : 0);
        if (f.room > INFO_MEMBERS_MAX)
                f.room = INFO_MEMBERS_MAX;
        if (f.room > 0) {
                f.members = calloc(f.room, sizeof(*f.members));
                f.pointers = calloc(f.room, sizeof(*f.pointers));
                if (!f.members || !f.pointers) {
                        free(f.members);
                        free(f.pointers);
                        client_reply_error(c, id, -ENOMEM, "Out of memory.");
                        return;
                }
        }
        full_info(g, outcome_generation, &f);
        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_GROUP;
        resp.group = &f.info;
        client_reply(c, &resp, -EBADF);
        free(f.members);
        free(f.pointers);
}

/* The generation that ended last, modulo 2^29 as libwg counts it (its slot tells if any did). */
static uint64_t last_completed(Group *g) {
        return (wg_state_generation(wg__state(g->handle)) - 1) & WG_STATE_GEN_MASK;
}

static bool peer_in_group(const Peer *p, gid_t gid) {
        if (p->uid == 0 || p->gid == gid)
                return true;
        for (size_t i = 0; i < p->n_groups; i++)
                if (p->groups[i] == gid)
                        return true;
        return false;
}

/* Look a group up by a name from a request; answers the error itself when there is none. */
static Group *find_or_reply(Client *c, uint64_t id, const char *name, uint32_t access) {
        Group *g;

        if (!group_name_valid(name)) {
                client_reply_error(c, id, -EINVAL, "Invalid group name: " WG_NAME_RULES ".");
                return NULL;
        }
        g = group_find(c->server, name);
        if (!g) {
                client_reply_error(c, id, -ENOENT, "No group '%s'.", name);
                return NULL;
        }
        if (!group_may(g, &c->peer, access)) {
                client_reply_error(c, id, -EACCES, "Group '%s' (owner %u, mode %04o) does not allow uid %u to %s it.",
                                   name, (unsigned) g->owner, g->mode, (unsigned) c->peer.uid,
                                   access == ACCESS_WRITE ? "write" : "read");
                return NULL;
        }
        return g;
}

/* Create with the checks shared by Create and Open. Answers errors itself; NULL then. */
static Group *create_group(Client *c, uint64_t id, const char *name, bool has_mode, uint32_t mode, bool has_gid,
                           uint32_t gid, uint64_t count, bool has_policy, Wg__V1__AbandonPolicy policy) {
        Server *s = c->server;
        Group *g;
        int r;

        if (has_mode && (mode & ~0666u)) {
                client_reply_error(c, id, -EINVAL, "Mode %#o has bits other than 0666.", mode);
                return NULL;
        }
        mode = (has_mode ? mode : 0) | 0600;
        if (!has_gid)
                gid = (uint32_t) c->peer.gid;
        else if (gid == (uint32_t) -1) {
                client_reply_error(c, id, -EINVAL, "Invalid gid.");
                return NULL;
        } else if (!peer_in_group(&c->peer, (gid_t) gid)) {
                client_reply_error(c, id, -EPERM, "Not a member of group %u.", gid);
                return NULL;
        }
        if (!has_policy || policy == WG__V1__ABANDON_POLICY__ABANDON_POLICY_UNSPECIFIED)
                policy = WG__V1__ABANDON_POLICY__ABANDON_POLICY_COUNT_AS_DONE;
        else if (policy != WG__V1__ABANDON_POLICY__ABANDON_POLICY_COUNT_AS_DONE &&
                 policy != WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK) {
                client_reply_error(c, id, -EINVAL, "Unknown abandon policy %d.", (int) policy);
                return NULL;
        }
        if (count > WG_STATE_COUNT_MASK) {
                client_reply_error(c, id, -EOVERFLOW, "Count %llu is above the maximum, %llu.",
                                   (unsigned long long) count, (unsigned long long) WG_STATE_COUNT_MASK);
                return NULL;
        }
        if (s->n_groups >= s->limits.groups) {
                client_reply_error(c, id, -ENOSPC, "wgd holds %u groups, the most it may.", s->n_groups);
                return NULL;
        }
        if (c->account->n_groups >= s->limits.groups_per_uid) {
                client_reply_error(c, id, -EDQUOT, "Uid %u owns %u groups, the most allowed.",
                                   (unsigned) c->peer.uid, c->account->n_groups);
                return NULL;
        }

        r = group_new(s, name, c->peer.uid, (gid_t) gid, mode, policy, now_realtime_usec(), -EBADF, &g);
        if (r < 0) {
                log_warning_errno(r, "Failed to create group %s: %m", name);
                client_reply_error(c, id, r, "Could not create the group: %s.", strerror(-r));
                return NULL;
        }
        r = wg_add(g->handle, (int64_t) count);
        if (r < 0) {
                /* A fresh segment at zero takes any count up to the maximum: this is a bug. */
                group_delete(g);
                client_reply_error(c, id, r, "Could not set the count: %s.", strerror(-r));
                return NULL;
        }

        log_info("Created group %s (owner %u, gid %u, mode %04o)", name, (unsigned) g->owner, (unsigned) g->gid,
                 g->mode);
        server_update_status(s);
        return g;
}

static void op_create(Client *c, uint64_t id, const Wg__V1__Create *m) {
        Group *g;

        if (!group_name_valid(m->name)) {
                client_reply_error(c, id, -EINVAL, "Invalid group name: " WG_NAME_RULES ".");
                return;
        }
        g = group_find(c->server, m->name);
        if (g) {
                if (m->has_exist_ok && m->exist_ok && group_may(g, &c->peer, ACCESS_READ))
                        reply_group(c, id, g, -EBADF);
                else
                        client_reply_error(c, id, -EEXIST, "Group '%s' exists.", m->name);
                return;
        }

        g = create_group(c, id, m->name, m->has_mode, m->mode, m->has_gid, m->gid, m->has_count ? m->count : 0,
                         m->has_on_abandon, m->on_abandon);
        if (g)
                reply_group(c, id, g, -EBADF);
}

static void op_open(Client *c, uint64_t id, const Wg__V1__Open *m) {
        bool create = m->has_create && m->create, exclusive = m->has_exclusive && m->exclusive;
        Group *g;

        if (!group_name_valid(m->name)) {
                client_reply_error(c, id, -EINVAL, "Invalid group name: " WG_NAME_RULES ".");
                return;
        }
        if (exclusive && !create) {
                client_reply_error(c, id, -EINVAL, "'exclusive' needs 'create'.");
                return;
        }

        g = group_find(c->server, m->name);
        if (g && create && exclusive) {
                client_reply_error(c, id, -EEXIST, "Group '%s' exists.", m->name);
                return;
        }
        if (!g && create)
                g = create_group(c, id, m->name, m->has_mode, m->mode, m->has_gid, m->gid, 0, m->has_on_abandon,
                                 m->on_abandon);
        else
                g = find_or_reply(c, id, m->name, ACCESS_WRITE);
        if (!g)
                return;

        reply_group(c, id, g, wg_fd(g->handle));
}

static void op_delete(Client *c, uint64_t id, const Wg__V1__Delete *m) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__Deleted deleted = WG__V1__DELETED__INIT;
        Group *g;

        g = find_or_reply(c, id, m->name, ACCESS_READ);
        if (!g)
                return;
        if (c->peer.uid != 0 && c->peer.uid != g->owner) {
                client_reply_error(c, id, -EPERM, "Only the owner of '%s' (uid %u) or root may delete it.", g->name,
                                   (unsigned) g->owner);
                return;
        }

        group_delete(g);
        server_update_status(c->server);
        server_update_idle(c->server);

        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_DELETED;
        resp.deleted = &deleted;
        client_reply(c, &resp, -EBADF);
}

struct list_context {
        const Peer *peer;
        const char *after;
        Wg__V1__GroupInfo *infos;
        Wg__V1__GroupInfo **pointers;
        size_t n, allocated, budget;
        bool more, failed;
};

static void list_one(Group *g, void *userdata) {
        struct list_context *ctx = userdata;
        Wg__V1__GroupInfo *info;
        size_t size;

        if (ctx->failed || ctx->more)
                return;
        if (ctx->after && strcmp(g->name, ctx->after) <= 0)
                return;
        if (!group_may(g, ctx->peer, ACCESS_READ))
                return;

        if (ctx->n == ctx->allocated) {
                size_t a = ctx->allocated * 2 + 16;
                Wg__V1__GroupInfo *infos = realloc(ctx->infos, a * sizeof(*infos));

                if (!infos) {
                        ctx->failed = true;
                        return;
                }
                ctx->infos = infos;
                ctx->allocated = a;
        }
        info = &ctx->infos[ctx->n];
        wg__v1__group_info__init(info);
        group_info(g, info);

        /* The packed size plus the field's tag and length prefix. */
        size = wg__v1__group_info__get_packed_size(info) + 4;
        if (size > ctx->budget) {
                ctx->more = true;
                return;
        }
        ctx->budget -= size;
        ctx->n++;
}

static void op_list(Client *c, uint64_t id, const Wg__V1__List *m) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__GroupList list = WG__V1__GROUP_LIST__INIT;
        struct list_context ctx = {
                .peer = &c->peer,
                .after = m->after,
                .budget = LIST_BUDGET,
        };

        if (ctx.after && *ctx.after && !group_name_valid(ctx.after)) {
                client_reply_error(c, id, -EINVAL, "Invalid group name in 'after': " WG_NAME_RULES ".");
                return;
        }

        group_foreach(c->server, list_one, &ctx);
        if (ctx.failed) {
                free(ctx.infos);
                client_reply_error(c, id, -ENOMEM, "Out of memory.");
                return;
        }

        /* Pointers last: the infos array may have moved while it grew. */
        ctx.pointers = malloc((ctx.n > 0 ? ctx.n : 1) * sizeof(*ctx.pointers));
        if (!ctx.pointers) {
                free(ctx.infos);
                client_reply_error(c, id, -ENOMEM, "Out of memory.");
                return;
        }
        for (size_t i = 0; i < ctx.n; i++)
                ctx.pointers[i] = &ctx.infos[i];

        list.n_groups = ctx.n;
        list.groups = ctx.pointers;
        list.has_more = true;
        list.more = ctx.more;
        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_LIST;
        resp.list = &list;
        client_reply(c, &resp, -EBADF);

        free(ctx.pointers);
        free(ctx.infos);
}

static void op_stat(Client *c, uint64_t id, const Wg__V1__Stat *m) {
        Group *g = find_or_reply(c, id, m->name, ACCESS_READ);

        if (g)
                reply_group_full(c, id, g, m->has_generation ? m->generation : last_completed(g));
}

static void op_add(Client *c, uint64_t id, const char *name, int64_t delta) {
        Group *g = find_or_reply(c, id, name, ACCESS_WRITE);
        int r;

        if (!g)
                return;

        r = wg_add(g->handle, delta);
        if (r == -ERANGE)
                client_reply_error(c, id, r, "The counter of '%s' would drop below zero.", g->name);
        else if (r == -EOVERFLOW)
                client_reply_error(c, id, r, "The counter of '%s' would exceed %llu.", g->name,
                                   (unsigned long long) WG_STATE_COUNT_MASK);
        else if (r < 0)
                client_reply_error(c, id, r, "Group '%s': %s.", g->name, strerror(-r));
        else {
                reply_group(c, id, g, -EBADF);
                /* Our own add may have ended a generation that Waits in wgd wait for. */
                if (g->waits)
                        (void) server_rearm_watch(c->server);
        }
}

void wait_free(Wait *w) {
        Group *g = w->group;
        Client *c = w->client;
        Server *s = g->server;

        LIST_REMOVE(by_group, g->waits, w);
        g->n_waits--;
        if (!g->waits)
                LIST_REMOVE(waiting, s->waiting, g);
        LIST_REMOVE(by_client, c->waits, w);
        c->n_waits--;
        sd_event_source_disable_unref(w->timer);
        free(w);
}

void wait_complete(Wait *w, int error) {
        if (error == 0)
                reply_group_full(w->client, w->id, w->group, w->generation);
        else if (error == -ETIMEDOUT)
                client_reply_error(w->client, w->id, error, "Timed out waiting for '%s'.", w->group->name);
        else if (error == -EIDRM)
                client_reply_error(w->client, w->id, error, "Group '%s' was deleted.", w->group->name);
        else if (error == -ESHUTDOWN)
                client_reply_error(w->client, w->id, error, "wgd is stopping.");
        else
                client_reply_error(w->client, w->id, error, "Group '%s': %s.", w->group->name, strerror(-error));
        wait_free(w);
}

static int on_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Wait *w = userdata;
        Server *server = w->group->server;

        wait_complete(w, -ETIMEDOUT);
        return server_rearm_watch(server);
}

static void op_wait(Client *c, uint64_t id, const Wg__V1__Wait *m) {
        uint64_t timeout = m->has_timeout_usec ? m->timeout_usec : UINT64_MAX, st;

        /* Past what sd-event can arm (centuries): forever. */
        if (timeout >= UINT64_MAX / 2)
                timeout = UINT64_MAX;
        Group *g;
        Wait *w;
        int r;

        g = find_or_reply(c, id, m->name, ACCESS_READ);
        if (!g)
                return;

        st = __atomic_load_n(g->handle->state, __ATOMIC_ACQUIRE);
        r = wg_state_check(st);
        if (r < 0) {
                client_reply_error(c, id, r, "Group '%s': %s.", g->name, strerror(-r));
                return;
        }
        if (wg_state_count(st) == 0) {
                reply_group_full(c, id, g, last_completed(g));
                return;
        }
        if (m->has_generation && m->generation != wg_state_generation(st)) {
                reply_group_full(c, id, g, m->generation);
                return;
        }
        if (timeout == 0) {
                client_reply_error(c, id, -ETIMEDOUT, "The counter of '%s' is not zero.", g->name);
                return;
        }
        if (c->n_waits >= c->server->limits.waits_per_connection) {
                client_reply_error(c, id, -EBUSY, "This connection has %u Waits pending, the most allowed.",
                                   c->n_waits);
                return;
        }

        w = calloc(1, sizeof(*w));
        if (!w) {
                client_reply_error(c, id, -ENOMEM, "Out of memory.");
                return;
        }
        *w = (Wait) {
                .client = c,
                .group = g,
                .id = id,
                .generation = wg_state_generation(st),
        };
        if (timeout != UINT64_MAX) {
                /* Accuracy 0 would be sd-event's default of 250 ms: far too loose for a timeout. */
                r = sd_event_add_time_relative(c->server->event, &w->timer, CLOCK_MONOTONIC, timeout,
                                               WAIT_ACCURACY_USEC, on_wait_timeout, w);
                if (r < 0) {
                        free(w);
                        client_reply_error(c, id, r, "Could not arm the timeout: %s.", strerror(-r));
                        return;
                }
        }
        if (!g->waits)
                LIST_PREPEND(waiting, c->server->waiting, g);
        LIST_PREPEND(by_group, g->waits, w);
        g->n_waits++;
        LIST_PREPEND(by_client, c->waits, w);
        c->n_waits++;

        /* Registers with the segment, and answers at once if the generation ended meanwhile. */
        (void) server_rearm_watch(c->server);
}

static void op_join(Client *c, uint64_t id, const Wg__V1__Join *m) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__Joined joined = WG__V1__JOINED__INIT;
        Wg__V1__GroupInfo info = WG__V1__GROUP_INFO__INIT;
        Member *member;
        Group *g;
        int r;

        g = find_or_reply(c, id, m->name, ACCESS_WRITE);
        if (!g)
                return;

        r = member_join(c, g, m->description, &member);
        if (r == -EDQUOT) {
                client_reply_error(c, id, r, "Uid %u has %u memberships, the most allowed.", (unsigned) c->peer.uid,
                                   c->account->n_members);
                return;
        }
        if (r < 0) {
                client_reply_error(c, id, r, "Cannot join '%s': %s.", g->name,
                                   r == -EOWNERDEAD ? "the group is broken; reset it first" : strerror(-r));
                return;
        }
        log_debug("Member %d joined %s in generation %" PRIu64 ".", (int) member->pid, g->name, member->generation);

        group_info(g, &info);
        joined.has_member_id = true;
        joined.member_id = member->id;
        joined.group = &info;
        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_JOINED;
        resp.joined = &joined;
        client_reply(c, &resp, wg_fd(g->handle));
}

/* A member may leave on the connection that joined, or, after a restart, as the same process. */
static Member *find_member(Client *c, Group *g, bool has_id, uint64_t member_id) {
        Member *m;

        LIST_FOREACH(by_client, i, c->members)
                if (i->group == g && (!has_id || i->id == member_id))
                        return i;

        if (!has_id)
                return NULL;
        m = member_find(g, member_id);
        /*
         * The pid from SO_PEERCRED is the caller's; the member's pidfd proves that process is
         * still the one that joined (it would poll readable had it died, its pid free for reuse).
         */
        if (!m || m->pid != c->peer.pid || c->peer.pid <= 0)
                return NULL;
        return m;
}

static void op_leave(Client *c, uint64_t id, const Wg__V1__Leave *m) {
        Wg__V1__MemberState state;
        Member *member;
        Group *g;

        g = find_or_reply(c, id, m->name, ACCESS_READ);
        if (!g)
                return;
        member = find_member(c, g, m->has_member_id, m->member_id);
        if (!member) {
                client_reply_error(c, id, -ENOTCONN, "Not a member of '%s'.", g->name);
                return;
        }

        state = !m->has_status || m->status == 0 ? WG__V1__MEMBER_STATE__MEMBER_STATE_SUCCEEDED :
                                                   WG__V1__MEMBER_STATE__MEMBER_STATE_FAILED;
        log_debug("Member %d left %s with status %d.", (int) member->pid, g->name, m->has_status ? m->status : 0);
        member_end(member, state, m->has_status ? m->status : 0);
        reply_group(c, id, g, -EBADF);
}

static void op_reset(Client *c, uint64_t id, const Wg__V1__Reset *m) {
        Group *g = find_or_reply(c, id, m->name, ACCESS_WRITE);
        uint64_t old;
        int r;

        if (!g)
                return;
        r = wg__reset(g->handle, &old);
        if (r < 0) {
                client_reply_error(c, id, r, "Cannot reset '%s': %s.", g->name, strerror(-r));
                return;
        }
        log_info("Reset group %s%s.", g->name, old & WG_STATE_BROKEN ? ", which was broken" : "");
        reply_group(c, id, g, -EBADF);
        if (g->waits)
                (void) server_rearm_watch(c->server);
}

void dispatch_record(Client *c, const uint8_t *buf, size_t len) {
        _cleanup_(request_freep) Wg__V1__Request *req = NULL;
        uint64_t id;

        req = wg__v1__request__unpack(NULL, len, buf);
        if (!req) {
                client_reply_error(c, 0, -EBADMSG, "Not a wg.v1.Request.");
                return;
        }
        /*
         * protobuf-c cuts a string at its first NUL, so "ab\0cd" would name group "ab". Packed
         * again, such a request comes out shorter than it came in: refuse it. (So does one with a
         * field twice, or a varint longer than it needs to be, which no protobuf library writes.)
         */
        if (wg__v1__request__get_packed_size(req) != len) {
                client_reply_error(c, req->has_id ? req->id : 0, -EBADMSG,
                                   "A string of the request holds a NUL, or the request is not in canonical form.");
                return;
        }
        id = req->has_id ? req->id : 0;

        if (!req->has_version || req->version != PROTOCOL_VERSION) {
                client_reply_error(c, id, -EPROTO, "Protocol version %u is not spoken here; this is wg.v1 (version 1).",
                                   req->has_version ? req->version : 0);
                return;
        }

        switch (req->op_case) {
        case WG__V1__REQUEST__OP_CREATE:
                op_create(c, id, req->create);
                break;
        case WG__V1__REQUEST__OP_OPEN:
                op_open(c, id, req->open);
                break;
        case WG__V1__REQUEST__OP_DELETE:
                op_delete(c, id, req->delete_);
                break;
        case WG__V1__REQUEST__OP_LIST:
                op_list(c, id, req->list);
                break;
        case WG__V1__REQUEST__OP_STAT:
                op_stat(c, id, req->stat);
                break;
        case WG__V1__REQUEST__OP_ADD:
                if (!req->add->has_delta)
                        client_reply_error(c, id, -EINVAL, "Add needs a delta.");
                else
                        op_add(c, id, req->add->name, req->add->delta);
                break;
        case WG__V1__REQUEST__OP_DONE:
                op_add(c, id, req->done->name, -1);
                break;
        case WG__V1__REQUEST__OP_WAIT:
                op_wait(c, id, req->wait);
                break;
        case WG__V1__REQUEST__OP_JOIN:
                op_join(c, id, req->join);
                break;
        case WG__V1__REQUEST__OP_LEAVE:
                op_leave(c, id, req->leave);
                break;
        case WG__V1__REQUEST__OP_RESET:
                op_reset(c, id, req->reset);
                break;
        default:
                client_reply_error(c, id, -EOPNOTSUPP, "No operation, or one this wgd does not know.");
                break;
        }
}
