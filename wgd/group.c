/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Named groups: the segment behind each name, who owns it and who may use it, and how it
 * survives a restart. The segment is parked in systemd's fdstore under a name that carries the
 * metadata (owner, gid, mode, creation time, group name): the segment itself is writable by
 * every member, so nothing that decides permissions may live in it.
 */

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <search.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "macro.h"
#include "segment.h"
#include "wg-private.h"
#include "wgd.h"

/*
 * A Group begins with its name, so the tree compares names, and a lookup's key is the name
 * itself: no Group to build (it is large) for every request.
 */
static_assert(offsetof(Group, name) == 0, "Group starts with its name");

static int compare_groups(const void *a, const void *b) {
        return strcmp((const char *) a, (const char *) b);
}

Group *group_find(Server *s, const char *name) {
        void *found = tfind(name, &s->groups, compare_groups);

        return found ? *(Group **) found : NULL;
}

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

static void fdstore_push(Group *g) {
        char fdname[256], msg[300];
        int fd = wg_fd(g->handle), r;

        if (group_fdname(g, fdname, sizeof(fdname)) < 0)
                return;
        snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", fdname);
        r = sd_pid_notify_with_fds(0, /* unset_environment= */ 0, msg, &fd, 1);
        if (r < 0)
                log_warning_errno(r, "Failed to park group %s in the fdstore, it will not survive a restart: %m", g->name);
}

static void fdstore_remove(const char *fdname) {
        int r = sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", fdname);

        if (r < 0)
                log_warning_errno(r, "Failed to remove %s from the fdstore, ignoring: %m", fdname);
}

static int group_insert(Server *s, Group *g) {
        void *node = tsearch(g, &s->groups, compare_groups);

        if (!node)
                return -ENOMEM;
        assert(*(Group **) node == g);
        s->n_groups++;
        return 0;
}

/*
 * Make a group. With @fd < 0, a new segment; else the segment behind @fd (a restored one),
 * validated by libwg like any other. The group joins the server and the fdstore.
 */
int group_new(Server *s, const char *name, uid_t owner, gid_t gid, uint32_t mode,
              Wg__V1__AbandonPolicy on_abandon, uint64_t created_usec, int fd, Group **ret) {
        Group *g;
        int r;

        assert(group_name_valid(name));
        assert(!group_find(s, name));

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        *g = (Group) {
                .server = s,
                .owner = owner,
                .gid = gid,
                .mode = mode,
                .on_abandon = on_abandon,
                .created_usec = created_usec,
        };
        strcpy(g->name, name);

        r = fd < 0 ? wg_new(&g->handle) : wg_from_fd(fd, &g->handle);
        if (r < 0) {
                free(g);
                return r;
        }

        r = group_insert(s, g);
        if (r < 0) {
                wg_unref(g->handle);
                free(g);
                return r;
        }

        g->account = server_account(s, owner);
        if (!g->account) {
                group_free(g);
                return -ENOMEM;
        }
        g->account->n_groups++;

        if (fd < 0)
                fdstore_push(g);

        server_update_idle(s);
        *ret = g;
        return 0;
}

/* Forget the group in this process (at shutdown it stays in the fdstore). */
Group *group_free(Group *g) {
        Server *s;

        if (!g)
                return NULL;
        s = g->server;

        if (g->waits) {
                LIST_FOREACH(by_group, w, g->waits)
                        wait_complete(w, -ESHUTDOWN);
                /*
                 * The watcher must let go of this segment's word before the segment is unmapped:
                 * a watcher thread that meets an unmapped word gets EFAULT, and the new set it is
                 * handed here is what tells it to look again (watcher.c).
                 */
                (void) server_rearm_watch(s);
        }
        /* Members stay in the fdstore: a restarted wgd finds them, alive or dead. */
        while (g->members)
                member_free(g->members);

        if (tdelete(g, &s->groups, compare_groups))
                s->n_groups--;
        if (g->account) {
                g->account->n_groups--;
                server_account_release(s, g->account);
        }
        wg_unref(g->handle);
        free(g->records);
        free(g);
        return NULL;
}

/* Delete for good: the segment is marked so that every holder learns it, and leaves the store. */
void group_delete(Group *g) {
        char fdname[256];

        LIST_FOREACH(by_group, w, g->waits)
                wait_complete(w, -EIDRM);
        (void) server_rearm_watch(g->server); /* before group_free() unmaps: see there */
        while (g->members)
                member_forget(g->members);

        wg__mark_deleted(g->handle);
        if (group_fdname(g, fdname, sizeof(fdname)) >= 0)
                fdstore_remove(fdname);

        log_info("Deleted group %s", g->name);
        group_free(g);
}

bool group_may(const Group *g, const Peer *p, uint32_t access) {
        uint32_t bits;

        if (p->uid == 0)
                return true;
        if (p->uid == g->owner)
                bits = (g->mode >> 6) & 07;
        else {
                bool member = p->gid == g->gid;

                for (size_t i = 0; !member && i < p->n_groups; i++)
                        member = p->groups[i] == g->gid;
                bits = member ? (g->mode >> 3) & 07 : g->mode & 07;
        }
        return (bits & access) == access;
}

void group_info(const Group *g, Wg__V1__GroupInfo *info) {
        uint64_t s = __atomic_load_n(g->handle->state, __ATOMIC_ACQUIRE);

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

/* A segment handed back by the fdstore after a restart: check its name, then adopt it. */
int group_restore(Server *s, const char *fdname, int fd) {
        uint64_t owner, gid, mode, created, policy;
        const char *p = fdname + strlen(GROUP_FDNAME_PREFIX);
        Group *g;
        int r;

        if (strncmp(fdname, GROUP_FDNAME_PREFIX, strlen(GROUP_FDNAME_PREFIX)) != 0 ||
            fdname_field(&p, 10, UINT32_MAX - 1, &owner) < 0 || fdname_field(&p, 10, UINT32_MAX - 1, &gid) < 0 ||
            fdname_field(&p, 8, 0666, &mode) < 0 || fdname_field(&p, 10, UINT64_MAX, &created) < 0 ||
            fdname_field(&p, 10, WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK, &policy) < 0 || policy == 0 ||
            !group_name_valid(p) || (mode & 0600) != 0600) {
                r = log_warning_errno(-EINVAL, "Dropping stored fd with unexpected name '%s'.", fdname);
                goto drop;
        }
        if (group_find(s, p)) {
                r = log_warning_errno(-EEXIST, "Dropping second stored segment of group %s.", p);
                goto drop;
        }

        r = group_new(s, p, (uid_t) owner, (gid_t) gid, (uint32_t) mode, (Wg__V1__AbandonPolicy) policy, created, fd,
                      &g);
        if (r < 0) {
                log_warning_errno(r, "Dropping stored segment of group %s: %m", p);
                goto drop;
        }
        if (wg_state_check(__atomic_load_n(g->handle->state, __ATOMIC_ACQUIRE)) == -EIDRM) {
                log_warning("Dropping stored segment of group %s: it was deleted.", p);
                group_free(g);
                r = -EIDRM;
                goto drop;
        }

        safe_close(fd);
        log_info("Restored group %s", g->name);
        return 0;

drop:
        fdstore_remove(fdname);
        safe_close(fd);
        return r;
}

struct foreach_context {
        void (*f)(Group *g, void *userdata);
        void *userdata;
};

static void foreach_action(const void *node, VISIT which, void *closure) {
        struct foreach_context *ctx = closure;

        if (which == postorder || which == leaf)
                ctx->f(*(Group **) node, ctx->userdata);
}

/* Visit every group in name order. @f must not add or remove groups. */
void group_foreach(Server *s, void (*f)(Group *g, void *userdata), void *userdata) {
        struct foreach_context ctx = { .f = f, .userdata = userdata };

        twalk_r(s->groups, foreach_action, &ctx);
}
