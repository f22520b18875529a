/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Named groups. The segment is parked in systemd's fdstore under a name that carries the
 * metadata (owner, gid, mode, creation time, policy, group name).
 */

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdstore.h"
#include "group.h"
#include "log.h"
#include "macro.h"
#include "segment.h"
#include "wg-private.h"

static_assert(offsetof(Group, name) == 0, "Group starts with its name");

/*
 * "wg1.UID.GID.MODE.CREATED.POLICY.NAME", MODE in octal, POLICY the AbandonPolicy's number: the
 * fixed fields first, so that the name, which may itself contain dots, is simply the rest.
 * Within FDNAME's rules (printable, no ':', < 256).
 */
int group_fdname(const Group *g, char *buf, size_t size) {
        int n = snprintf(
                buf,
                size,
                GROUP_FDNAME_PREFIX "%u.%u.%o.%" PRIu64 ".%d.%s",
                (unsigned) g->owner,
                (unsigned) g->gid,
                (unsigned) g->mode,
                g->created_usec,
                (int) g->on_abandon,
                g->name);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

int group_park(Group *g) {
        char fdname[256];
        int r;

        /*
         * A cluster group lives in etcd, but its mirror is mapped by local processes: kept, a
         * restarted wgd mirrors into the same segment, and they go on.
         */
        if (g->mirror) {
                snprintf(fdname, sizeof(fdname), MIRROR_FDNAME_PREFIX "%s", g->name);
                return fdstore_push(fdname, wg_fd(g->handle), /* poll= */ true, LOG_WARNING);
        }

        r = group_fdname(g, fdname, sizeof(fdname));
        if (r < 0)
                return r;
        return fdstore_push(fdname, wg_fd(g->handle), /* poll= */ true, LOG_WARNING);
}

int group_new(const GroupFields *f, Watcher *watcher, int fd, Group **ret) {
        _cleanup_(group_freep) Group *g = NULL;
        int r;

        assert(group_name_valid(f->name));

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        *g = (Group) {
                .owner = f->owner,
                .gid = f->gid,
                .mode = f->mode,
                .on_abandon = f->on_abandon,
                .created_usec = f->created_usec,
                .watcher = watcher,
        };
        strcpy(g->name, f->name);

        if (f->cluster) {
                _cleanup_close_ int ro = -EBADF;

                g->mirror = true;
                /* A restored mirror (@fd, from the fdstore) is the mirror still: libwg checks. */
                r = fd < 0 ? wg__new_mirror(f->name, &g->handle) : wg_from_fd(fd, &g->handle);
                if (r < 0)
                        return r;
                ro = wg__mirror_fd_read_only(g->handle);
                if (ro < 0)
                        return ro;
                r = wg_from_fd(ro, &g->shared);
                if (r < 0)
                        return r;
        } else {
                r = fd < 0 ? wg_new(&g->handle) : wg_from_fd(fd, &g->handle);
                if (r < 0)
                        return r;
                g->shared = wg_ref(g->handle);
        }

        *ret = TAKE_PTR(g);
        return 0;
}

Group *group_free(Group *g) {
        if (!g)
                return NULL;

        assert(!g->waits && !g->watch && !g->members);
        wg_unref(g->shared);
        wg_unref(g->handle);
        free(g->records);
        free(g);
        return NULL;
}

void group_add_record(Group *g, const MemberRecord *r) {
        unsigned held = g->n_records < GROUP_RECORDS ? g->n_records : GROUP_RECORDS;

        /* Once: a cluster node records an end when etcd has it, and again when its watch brings it. */
        for (unsigned i = 0; g->records && i < held; i++)
                if (g->records[i].id == r->id && strcmp(g->records[i].node, r->node) == 0)
                        return;

        /* Most groups never have a member: their ring is allocated when one first ends. */
        if (!g->records) {
                g->records = calloc(GROUP_RECORDS, sizeof(MemberRecord));
                if (!g->records)
                        return; /* the counts, in the segment, are what matter */
        }
        g->records[g->n_records++ % GROUP_RECORDS] = *r;
}

void group_mark_deleted(Group *g) {
        char fdname[256];

        wg__mark_deleted(g->handle);
        if (g->mirror) {
                snprintf(fdname, sizeof(fdname), MIRROR_FDNAME_PREFIX "%s", g->name);
                fdstore_remove(fdname);
        } else if (group_fdname(g, fdname, sizeof(fdname)) >= 0)
                fdstore_remove(fdname);
}

bool group_may(const Group *g, const Peer *p, uint32_t access) {
        uint32_t bits;

        if (p->uid == 0)
                return true;
        if (p->uid == g->owner)
                bits = (g->mode >> 6) & 07;
        else
                bits = peer_in_group(p, g->gid) ? (g->mode >> 3) & 07 : g->mode & 07;
        return (bits & access) == access;
}

void group_info(const Group *g, Wg__V1__GroupInfo *info) {
        uint64_t s = wg__state(g->handle);

        info->name = (char *) g->name;
        info->has_count = true;
        info->count = wg_state_count(s);
        info->has_generation = true;
        info->generation = wg_state_generation(s);
        info->has_waiters = true;
        info->waiters = g->n_waits;
        info->has_futex_waiters = true;
        info->futex_waiters = !!(s & WG_STATE_WAITERS);
        info->has_owner = true;
        info->owner = (uint32_t) g->owner;
        info->has_gid = true;
        info->gid = (uint32_t) g->gid;
        info->has_mode = true;
        info->mode = g->mode;
        info->has_created_usec = true;
        info->created_usec = g->created_usec;
        info->has_broken = true;
        info->broken = !!(s & WG_STATE_BROKEN);
        info->has_on_abandon = true;
        info->on_abandon = g->on_abandon;
        if (g->cluster) {
                info->has_cluster = true;
                info->cluster = true;
        }
}

int fdname_field(const char **p, int base, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        char *end;

        /* strtoull() would take leading space and a sign: only digits here. */
        if (!(base == 16 ? isxdigit((unsigned char) **p) : isdigit((unsigned char) **p)))
                return -EINVAL;
        errno = 0;
        v = strtoull(*p, &end, base);
        if (errno != 0 || *end != '.' || v > max)
                return -EINVAL;
        *p = end + 1;
        *ret = v;
        return 0;
}

int group_fdname_parse(const char *fdname, GroupFields *ret) {
        uint64_t owner, gid, mode, created, policy;
        const char *p = fdname + strlen(GROUP_FDNAME_PREFIX);

        if (strncmp(fdname, GROUP_FDNAME_PREFIX, strlen(GROUP_FDNAME_PREFIX)) != 0 ||
            fdname_field(&p, 10, UINT32_MAX - 1, &owner) < 0 ||
            fdname_field(&p, 10, UINT32_MAX - 1, &gid) < 0 || fdname_field(&p, 8, 0666, &mode) < 0 ||
            fdname_field(&p, 10, UINT64_MAX, &created) < 0 ||
            fdname_field(&p, 10, WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK, &policy) < 0 || policy == 0 ||
            !group_name_valid(p) || (mode & 0600) != 0600)
                return -EINVAL;

        *ret = (GroupFields) {
                .owner = (uid_t) owner,
                .gid = (gid_t) gid,
                .mode = (uint32_t) mode,
                .created_usec = created,
                .on_abandon = (Wg__V1__AbandonPolicy) policy,
                .name = p,
        };
        return 0;
}
