/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Requests: decode, check (version, strings, names, ranges, permissions, limits), carry out,
 * answer. Every record a client sends ends in exactly one answer (now, or later for a Wait), and
 * a bad one changes nothing. The record is untrusted from the first byte: protobuf-c checks the
 * wire format, everything else is checked here. The answer carries the request's id whenever
 * the record can be read as a Request, even to say that it is refused; id 0 only when it cannot.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "dispatch.h"
#include "log.h"
#include "macro.h"
#include "member.h"
#include "reply.h"
#include "segment.h"
#include "seqpacket.h"
#include "server.h"
#include "time-util.h"
#include "wait.h"
#include "wg-private.h"

#define PROTOCOL_VERSION 1

/* GroupInfo is under 200 bytes packed; a List answer stops well below the record cap. */
#define LIST_BUDGET (WG_RECORD_MAX - 1024)

/*
 * Strings with a NUL byte. On the wire a string field is a length and bytes, NULs allowed;
 * protobuf-c hands it over as a C string, which ends at the first NUL: "ab\0cd" would name group
 * "ab". wg.proto makes such a string invalid (EINVAL), so it has to be seen, and the C string
 * alone cannot show it. protobuf-c allocates each string it unpacks as its length on the wire
 * plus one, for the terminator it adds; so requests are unpacked with an allocator that keeps
 * each block's size in front of it, and a string whose strlen() + 1 falls short of its block held
 * a NUL.
 *
 * This checks what wgd will use, after protobuf-c applied the wire format's rules (a field given
 * twice: the last one; one oneof member replacing another; a message given twice, which
 * protobuf-c 1.4 does not quite merge as protobuf's rules say). A scan of the wire format would
 * be a second parser that has to agree with protobuf-c on every one of those rules. And it
 * accepts every encoding protobuf-c accepts: which one a client's library chose (over-long
 * varints, a field twice) is its own business. (wgd used to pack each request again and refuse
 * it if the size differed: that caught NULs, but refused those encodings too.)
 */
typedef union BlockHeader {
        size_t size;
        max_align_t align; /* the block after it is aligned as malloc()'s are */
} BlockHeader;

/*
 * Requests are unpacked into an arena: protobuf-c allocates the message, each string and each
 * sub-message on its own, and a request lives only while it is dispatched, so the blocks are
 * carved one after the other from a static area that is rewound when the request is freed
 * (request_freep()). What does not fit (a request of a few KiB of strings or unknown fields:
 * the wire allows 64 KiB) comes from malloc(). One request at a time in the whole process, as
 * dispatch_record() is never entered again before it returns.
 */
#define ARENA_BYTES 8192

/* Under ASan the rewound arena is poisoned, so that a block used after its request is caught. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ARENA_POISON(p, n) ((void) (p), (void) (n))
#define ARENA_UNPOISON(p, n) ((void) (p), (void) (n))
#endif

static struct {
        size_t used;
        max_align_t data[ARENA_BYTES / sizeof(max_align_t)];
} arena;

static bool in_arena(const void *p) {
        return (const uint8_t *) p >= (const uint8_t *) arena.data &&
                (const uint8_t *) p < (const uint8_t *) arena.data + sizeof(arena.data);
}

static void *sized_alloc(void *userdata, size_t size) {
        bool *failed = userdata;
        size_t need;
        BlockHeader *h;

        if (size > SIZE_MAX - 2 * sizeof(BlockHeader))
                return NULL;
        need = sizeof(BlockHeader) + ALIGN_TO(size, sizeof(BlockHeader));
        if (need <= sizeof(arena.data) - arena.used) {
                h = (BlockHeader *) ((uint8_t *) arena.data + arena.used);
                ARENA_UNPOISON(h, need);
                arena.used += need;
        } else {
                h = malloc(sizeof(BlockHeader) + size);
                if (!h) {
                        /* Out of memory is not the client's fault: say so, not "not a Request". */
                        if (failed)
                                *failed = true;
                        return NULL;
                }
        }
        h->size = size;
        return h + 1;
}

static void sized_free(void *userdata, void *p) {
        if (p && !in_arena(p))
                free((BlockHeader *) p - 1);
}

static size_t sized_size(const void *p) {
        return ((const BlockHeader *) p - 1)->size;
}

static ProtobufCAllocator sized_allocator = {
        .alloc = sized_alloc,
        .free = sized_free,
};

static void request_freep(Wg__V1__Request **r) {
        if (*r)
                wg__v1__request__free_unpacked(*r, &sized_allocator);
        ARENA_POISON(arena.data, arena.used);
        arena.used = 0; /* also after an unpack that failed half-way */
}

/*
 * The first string field in @m, or in a message under it, whose string held a NUL; NULL if
 * none. *ret_message is the message that holds it. Walks the descriptors, so that a field added
 * to wg.proto is checked without a change here; wg.proto's messages do not nest recursively, so
 * neither does this, deeper than the schema.
 */
static const ProtobufCFieldDescriptor *
find_nul(const ProtobufCMessage *m, const ProtobufCMessage **ret_message) {
        const ProtobufCMessageDescriptor *d = m->descriptor;

        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                const uint8_t *base = (const uint8_t *) m;
                const void *const *values = (const void *const *) (base + f->offset);
                size_t n = 1;

                if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
                        continue;
                /* A oneof's members share their storage: only the one set is a string or message. */
                if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    *(const uint32_t *) (base + f->quantifier_offset) != f->id)
                        continue;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        n = *(const size_t *) (base + f->quantifier_offset);
                        values = *(const void *const *const *) values;
                }

                for (size_t j = 0; j < n; j++) {
                        const void *v = values[j];
                        const ProtobufCFieldDescriptor *found;

                        /* Absent (NULL), or the schema's default, which protobuf-c did not allocate. */
                        if (!v || v == f->default_value)
                                continue;
                        if (f->type == PROTOBUF_C_TYPE_STRING) {
                                if (strlen(v) + 1 != sized_size(v)) {
                                        *ret_message = m;
                                        return f;
                                }
                        } else {
                                found = find_nul(v, ret_message);
                                if (found)
                                        return found;
                        }
                }
        }
        return NULL;
}

static Server *server_of(Client *c) {
        return c->userdata;
}

/* The generation that ended last, modulo 2^29 as libwg counts it (its slot tells if any did). */
static uint64_t last_completed(Group *g) {
        return (wg_state_generation(wg__state(g->handle)) - 1) & WG_STATE_GEN_MASK;
}

/* Look a group up by a name from a request; answers the error itself when there is none. */
static Group *find_or_reply(Client *c, uint64_t id, const char *name, uint32_t access) {
        Group *g;

        if (!group_name_valid(name)) {
                reply_error(c, id, -EINVAL, "Invalid group name: " WG_NAME_RULES ".");
                return NULL;
        }
        g = server_find_group(server_of(c), name);
        if (!g) {
                reply_error(c, id, -ENOENT, "No group '%s'.", name);
                return NULL;
        }
        if (!group_may(g, &c->peer, access)) {
                reply_error(
                        c,
                        id,
                        -EACCES,
                        "Group '%s' (owner %u, mode %04o) does not allow uid %u to %s it.",
                        name,
                        (unsigned) g->owner,
                        g->mode,
                        (unsigned) c->peer.uid,
                        access == ACCESS_WRITE ? "write" : "read");
                return NULL;
        }
        return g;
}

/* Create with the checks shared by Create and Open. Answers errors itself; NULL then. */
static Group *create_group(
        Client *c,
        uint64_t id,
        const char *name,
        bool has_mode,
        uint32_t mode,
        bool has_gid,
        uint32_t gid,
        uint64_t count,
        bool has_policy,
        Wg__V1__AbandonPolicy policy,
        bool cluster,
        bool exist_ok,
        bool open) {
        Server *s = server_of(c);
        GroupFields f;
        Group *g;
        int r;

        if (has_mode && (mode & ~0666u)) {
                reply_error(c, id, -EINVAL, "Mode %#o has bits other than 0666.", mode);
                return NULL;
        }
        mode = (has_mode ? mode : 0) | 0600;
        if (!has_gid)
                gid = (uint32_t) c->peer.gid;
        else if (gid == (uint32_t) -1) {
                reply_error(c, id, -EINVAL, "Invalid gid.");
                return NULL;
        } else if (!peer_in_group(&c->peer, (gid_t) gid)) {
                reply_error(c, id, -EPERM, "Not a member of group %u.", gid);
                return NULL;
        }
        if (!has_policy || policy == WG__V1__ABANDON_POLICY__ABANDON_POLICY_UNSPECIFIED)
                policy = WG__V1__ABANDON_POLICY__ABANDON_POLICY_COUNT_AS_DONE;
        else if (
                policy != WG__V1__ABANDON_POLICY__ABANDON_POLICY_COUNT_AS_DONE &&
                policy != WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK) {
                reply_error(c, id, -EINVAL, "Unknown abandon policy %d.", (int) policy);
                return NULL;
        }
        if (cluster && !s->cluster) {
                reply_error(c, id, -EOPNOTSUPP, "This wgd is not a node of a cluster (it has no --etcd).");
                return NULL;
        }
        if (count > WG_STATE_COUNT_MASK) {
                reply_error(
                        c,
                        id,
                        -EOVERFLOW,
                        "Count %llu is above the maximum, %llu.",
                        (unsigned long long) count,
                        (unsigned long long) WG_STATE_COUNT_MASK);
                return NULL;
        }
        r = server_may_add_group(s, c->peer.uid);
        if (r == -ENOSPC) {
                reply_error(c, id, r, "wgd holds %u groups, the most it may.", s->n_groups);
                return NULL;
        }
        if (r < 0) {
                reply_error(
                        c,
                        id,
                        r,
                        "Uid %u owns %u groups, the most allowed.",
                        (unsigned) c->peer.uid,
                        c->account->n_groups);
                return NULL;
        }

        f = (GroupFields) {
                .owner = c->peer.uid,
                .gid = (gid_t) gid,
                .mode = mode,
                .created_usec = now_realtime_usec(),
                .on_abandon = policy,
                .name = name,
                .cluster = cluster,
        };
        if (cluster) {
                /* Answered once etcd has made it (or said that it exists). */
                cluster_create(s->cluster, c, id, &f, count, exist_ok, open);
                return NULL;
        }
        r = server_add_group(s, &f, /* within_limits= */ false, &g); /* checked above */
        if (r < 0) {
                log_warning_errno(r, "Failed to create group %s: %m", name);
                reply_error(c, id, r, "Could not create the group: %s.", strerror(-r));
                return NULL;
        }
        r = wg_add(g->handle, (int64_t) count);
        if (r < 0) {
                /* A fresh segment at zero takes any count up to the maximum: this is a bug. */
                server_delete_group(s, g);
                reply_error(c, id, r, "Could not set the count: %s.", strerror(-r));
                return NULL;
        }

        log_info(
                "Created group %s (owner %u, gid %u, mode %04o)",
                name,
                (unsigned) g->owner,
                (unsigned) g->gid,
                g->mode);
        server_update_status(s);
        return g;
}

static void op_create(Client *c, uint64_t id, const Wg__V1__Create *m) {
        Group *g;

        if (!group_name_valid(m->name)) {
                reply_error(c, id, -EINVAL, "Invalid group name: " WG_NAME_RULES ".");
                return;
        }
        g = server_find_group(server_of(c), m->name);
        if (g) {
                if (m->has_exist_ok && m->exist_ok && group_may(g, &c->peer, ACCESS_READ))
                        reply_group(c, id, g, false);
                else
                        reply_error(c, id, -EEXIST, "Group '%s' exists.", m->name);
                return;
        }

        g = create_group(
                c,
                id,
                m->name,
                m->has_mode,
                m->mode,
                m->has_gid,
                m->gid,
                m->has_count ? m->count : 0,
                m->has_on_abandon,
                m->on_abandon,
                m->has_cluster && m->cluster,
                m->has_exist_ok && m->exist_ok,
                /* open= */ false);
        if (g)
                reply_group(c, id, g, false);
}

/* Open and Join pass a segment: refuse them, before anything changes, past the limits of passes. */
static bool may_pass_or_reply(Client *c, uint64_t id) {
        const Account *a = c->account;

        if (client_may_pass(c) >= 0)
                return true;
        if (a->n_passes >= a->table->passes_per_uid_max)
                reply_error(
                        c,
                        id,
                        -ETOOMANYREFS,
                        "Uid %u has %u segments passed to it and not read yet, the most allowed: read the "
                        "answers first.",
                        (unsigned) a->uid,
                        a->n_passes);
        else
                reply_error(
                        c,
                        id,
                        -ETOOMANYREFS,
                        "wgd has %u segments passed and not read yet, the most it may.",
                        a->table->n_passes);
        return false;
}

static void op_open(Client *c, uint64_t id, const Wg__V1__Open *m) {
        bool create = m->has_create && m->create, exclusive = m->has_exclusive && m->exclusive;
        Group *g;

        if (!group_name_valid(m->name)) {
                reply_error(c, id, -EINVAL, "Invalid group name: " WG_NAME_RULES ".");
                return;
        }
        if (exclusive && !create) {
                reply_error(c, id, -EINVAL, "'exclusive' needs 'create'.");
                return;
        }

        if (!may_pass_or_reply(c, id))
                return;

        g = server_find_group(server_of(c), m->name);
        if (g && create && exclusive) {
                reply_error(c, id, -EEXIST, "Group '%s' exists.", m->name);
                return;
        }
        if (!g && create)
                g = create_group(
                        c,
                        id,
                        m->name,
                        m->has_mode,
                        m->mode,
                        m->has_gid,
                        m->gid,
                        0,
                        m->has_on_abandon,
                        m->on_abandon,
                        m->has_cluster && m->cluster,
                        /* exist_ok= */ !exclusive,
                        /* open= */ true);
        else
                g = find_or_reply(c, id, m->name, ACCESS_WRITE);
        if (!g)
                return;

        reply_group(c, id, g, true);
}

static void op_delete(Client *c, uint64_t id, const Wg__V1__Delete *m) {
        Group *g;

        g = find_or_reply(c, id, m->name, ACCESS_READ);
        if (!g)
                return;
        if (c->peer.uid != 0 && c->peer.uid != g->owner) {
                reply_error(
                        c,
                        id,
                        -EPERM,
                        "Only the owner of '%s' (uid %u) or root may delete it.",
                        g->name,
                        (unsigned) g->owner);
                return;
        }

        if (g->cluster) {
                cluster_delete(server_of(c)->cluster, c, id, g);
                return;
        }

        server_delete_group(server_of(c), g);
        server_update_status(server_of(c));
        reply_deleted(c, id);
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
                reply_error(c, id, -EINVAL, "Invalid group name in 'after': " WG_NAME_RULES ".");
                return;
        }

        server_foreach_group(server_of(c), list_one, &ctx);
        if (ctx.failed) {
                free(ctx.infos);
                reply_error(c, id, -ENOMEM, "Out of memory.");
                return;
        }

        /* Pointers last: the infos array may have moved while it grew. */
        ctx.pointers = malloc((ctx.n > 0 ? ctx.n : 1) * sizeof(*ctx.pointers));
        if (!ctx.pointers) {
                free(ctx.infos);
                reply_error(c, id, -ENOMEM, "Out of memory.");
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
        client_reply(c, &resp, NULL);

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
        if (g->cluster) {
                cluster_add(server_of(c)->cluster, c, id, g, delta);
                return;
        }

        r = wg_add(g->handle, delta);
        if (r == -ERANGE)
                reply_error(c, id, r, "The counter of '%s' would drop below zero.", g->name);
        else if (r == -EOVERFLOW)
                reply_error(
                        c,
                        id,
                        r,
                        "The counter of '%s' would exceed %llu.",
                        g->name,
                        (unsigned long long) WG_STATE_COUNT_MASK);
        else if (r < 0)
                reply_error(c, id, r, "Group '%s': %s.", g->name, strerror(-r));
        else {
                reply_group(c, id, g, false);
                /* Our own add may have ended a generation that Waits in wgd wait for. */
                waits_check(g);
        }
}

static void op_wait(Client *c, uint64_t id, const Wg__V1__Wait *m) {
        uint64_t timeout = m->has_timeout_usec ? m->timeout_usec : UINT64_MAX, generation;
        Group *g;
        int r;

        /* Past what sd-event can arm (centuries): forever. */
        if (timeout >= UINT64_MAX / 2)
                timeout = UINT64_MAX;

        g = find_or_reply(c, id, m->name, ACCESS_READ);
        if (!g)
                return;

        r = wg__wait_begin(g->handle, &generation);
        if (r < 0) {
                reply_error(c, id, r, "Group '%s': %s.", g->name, strerror(-r));
                return;
        }
        if (r == 0) {
                reply_group_full(c, id, g, generation);
                return;
        }
        if (m->has_generation && m->generation != generation) {
                reply_group_full(c, id, g, m->generation);
                return;
        }
        if (timeout == 0) {
                reply_error(c, id, -ETIMEDOUT, "The counter of '%s' is not zero.", g->name);
                return;
        }
        if (c->n_waits >= server_of(c)->limits.waits_per_connection) {
                reply_error(
                        c,
                        id,
                        -EBUSY,
                        "This connection has %u Waits pending, the most allowed.",
                        c->n_waits);
                return;
        }

        /* Registers with the segment, and answers at once if the generation ended meanwhile. */
        r = wait_new(c, g, id, generation, timeout);
        if (r < 0)
                reply_error(c, id, r, "Could not wait: %s.", strerror(-r));
}

static void op_join(Client *c, uint64_t id, const Wg__V1__Join *m) {
        Member *member;
        Group *g;
        int r;

        g = find_or_reply(c, id, m->name, ACCESS_WRITE);
        if (!g || !may_pass_or_reply(c, id))
                return;

        if (server_of(c)->accounts.n_members >= server_of(c)->limits.members) {
                reply_error(
                        c,
                        id,
                        -ENOSPC,
                        "wgd holds %u memberships, the most it may.",
                        server_of(c)->accounts.n_members);
                return;
        }
        if (c->account->n_members >= server_of(c)->limits.members_per_uid) {
                reply_error(
                        c,
                        id,
                        -EDQUOT,
                        "Uid %u has %u memberships, the most allowed.",
                        (unsigned) c->peer.uid,
                        c->account->n_members);
                return;
        }
        if (g->cluster) {
                cluster_join(server_of(c)->cluster, c, id, g, m->description);
                return;
        }
        r = member_join(c, g, m->description, &member);
        if (r < 0) {
                reply_error(
                        c,
                        id,
                        r,
                        "Cannot join '%s': %s.",
                        g->name,
                        r == -EOWNERDEAD ? "the group is broken; reset it first" : strerror(-r));
                return;
        }
        log_debug(
                "Member %d joined %s in generation %" PRIu64 ".",
                (int) member->pid,
                g->name,
                member->generation);

        reply_joined(c, id, g, member->id);
}

/* A member may leave on the connection that joined, or, after a restart, as the same process. */
static Member *find_member(Client *c, Group *g, bool has_id, uint64_t member_id) {
        Member *m;

        LIST_FOREACH (by_client, i, c->members)
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
                reply_error(c, id, -ENOTCONN, "Not a member of '%s'.", g->name);
                return;
        }

        state = !m->has_status || m->status == 0 ? WG__V1__MEMBER_STATE__MEMBER_STATE_SUCCEEDED :
                                                   WG__V1__MEMBER_STATE__MEMBER_STATE_FAILED;
        log_debug(
                "Member %d left %s with status %d.",
                (int) member->pid,
                g->name,
                m->has_status ? m->status : 0);
        if (g->cluster_member_end) {
                /* Answered once etcd has counted it. */
                g->cluster_member_end(member, state, m->has_status ? m->status : 0, c, id);
                return;
        }
        member_end(member, state, m->has_status ? m->status : 0);
        reply_group(c, id, g, false);
}

static void op_reset(Client *c, uint64_t id, const Wg__V1__Reset *m) {
        Group *g = find_or_reply(c, id, m->name, ACCESS_WRITE);
        uint64_t old;
        int r;

        if (!g)
                return;
        if (g->cluster) {
                cluster_reset(server_of(c)->cluster, c, id, g);
                return;
        }
        r = wg__reset(g->handle, &old);
        if (r < 0) {
                reply_error(c, id, r, "Cannot reset '%s': %s.", g->name, strerror(-r));
                return;
        }
        log_info("Reset group %s%s.", g->name, old & WG_STATE_BROKEN ? ", which was broken" : "");
        reply_group(c, id, g, false);
        waits_check(g);
}

/*
 * Whether @req (NULL: none could be read) is marked last: only a wg.v1 request can say so, since
 * what a field means in another version is not known here.
 */
static bool request_is_last(const Wg__V1__Request *req) {
        return req && req->has_version && req->version == PROTOCOL_VERSION && req->has_last && req->last;
}

void dispatch_record(Client *c, const uint8_t *buf, size_t len, int error) {
        _cleanup_(request_freep) Wg__V1__Request *req = NULL;
        ProtobufCAllocator allocator = sized_allocator;
        bool out_of_memory = false;
        const ProtobufCFieldDescriptor *nul;
        const ProtobufCMessage *holder;
        uint64_t id;

        if (error == -EMSGSIZE) {
                /* Discarded unread by the kernel: there is no id to answer with. */
                reply_error(c, 0, -EBADMSG, "Record larger than %d bytes.", WG_RECORD_MAX);
                return;
        }

        allocator.allocator_data = &out_of_memory;
        req = buf ? wg__v1__request__unpack(&allocator, len, buf) : NULL;
        id = req && req->has_id ? req->id : 0;
        if (error < 0) {
                /* Answer with the request's id if it can be read, so that a client can tell which. */
                reply_error(c, id, -EBADMSG, "Requests must not carry file descriptors.");
                if (request_is_last(req))
                        client_last_request(c);
                return;
        }
        if (!req && out_of_memory) {
                reply_error(c, 0, -ENOMEM, "Out of memory.");
                return;
        }
        if (!req) {
                reply_error(c, 0, -EBADMSG, "Not a wg.v1.Request.");
                return;
        }

        if (!req->has_version || req->version != PROTOCOL_VERSION) {
                reply_error(
                        c,
                        id,
                        -EPROTO,
                        "Protocol version %u is not spoken here; this is wg.v1 (version 1).",
                        req->has_version ? req->version : 0);
                return;
        }

        nul = find_nul(&req->base, &holder);
        if (nul) {
                reply_error(
                        c,
                        id,
                        -EINVAL,
                        "Field '%s' of %s holds a NUL byte: %s.",
                        nul->name,
                        holder->descriptor->short_name,
                        strcmp(nul->name, "name") == 0 || strcmp(nul->name, "after") == 0 ?
                                "an invalid group name, " WG_NAME_RULES :
                                "strings in wg.v1 never do");
                if (request_is_last(req))
                        client_last_request(c);
                return;
        }

        if (request_is_last(req) &&
            (req->op_case == WG__V1__REQUEST__OP_WAIT || req->op_case == WG__V1__REQUEST__OP_JOIN)) {
                reply_error(
                        c,
                        id,
                        -EINVAL,
                        "A Wait or a Join cannot be the last request: the close would end it.");
                client_last_request(c);
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
                        reply_error(c, id, -EINVAL, "Add needs a delta.");
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
                reply_error(c, id, -EOPNOTSUPP, "No operation, or one this wgd does not know.");
                break;
        }

        /* Only now: a cluster request answered at once must not find its connection ending. */
        if (request_is_last(req))
                client_last_request(c);
}
