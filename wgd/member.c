/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A member is held by its connection and by a pidfd of its process (SO_PEERPIDFD, or
 * pidfd_open() of the SO_PEERCRED pid on kernels before 6.5, taken right at the join while the
 * process is talking to us). Either one going away without a Leave means the member died:
 * abandoned. wgd itself does the add at Join and the done at Leave or abandonment, so there is
 * no moment at which a dying member leaves the counter half-changed or a waiter unwoken.
 *
 * How members ended goes two places, always before the done that could end the generation: the
 * counts into the segment's outcome slot, where every waiter reads them; the details (pid,
 * what it was doing, status) into the group's ring of records, for Stat.
 *
 * The pidfds are parked in the fdstore, so that after a restart of wgd every member is either
 * still there (detached from its old connection, until it leaves on a new one or dies) or found
 * dead, and abandoned then.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "fdstore.h"
#include "log.h"
#include "macro.h"
#include "member.h"
#include "segment.h"
#include "time-util.h"
#include "wait.h"
#include "wg-private.h"

/* How often a join tries again when the generation it meant to join ends under it. */
#define JOIN_ATTEMPTS 8

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* The pidfd of a connection's peer: race-free where the kernel offers it. */
static int peer_pidfd(Client *c) {
        socklen_t len;
        int fd = -EBADF;

        if (c->fd >= 0) {
                len = sizeof(fd);
                if (getsockopt(c->fd, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) >= 0 && fd >= 0)
                        return fd;
                if (errno != ENOPROTOOPT && errno != EINVAL)
                        return negative_errno();
        }
        /*
         * Before 6.5: the pid from SO_PEERCRED. It cannot have been reused yet if the process is
         * the one still talking to us; the check in member_join() makes sure it is still there.
         */
        fd = (int) syscall(SYS_pidfd_open, c->peer.pid, 0);
        if (fd < 0)
                return negative_errno(); /* ENOSYS: kernels before 5.3, and valgrind before 3.20 */
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                safe_close(fd);
                return negative_errno();
        }
        return fd;
}

static bool pidfd_alive(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };

        /* A pidfd polls readable once its process has exited. */
        return poll(&p, 1, 0) == 0;
}

/* What the member does, for reports: the client's words, or the process's command line. */
static char *describe(pid_t pid, const char *given) {
        char path[64], buf[256];
        ssize_t n;
        int fd;

        if (given && *given)
                return strndup(given, 255);

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return strdup("?");
        n = read(fd, buf, sizeof(buf) - 1);
        safe_close(fd);
        if (n <= 0)
                return strdup("?");
        while (n > 0 && buf[n - 1] == 0)
                n--;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == 0)
                        buf[i] = ' ';
        buf[n] = 0;
        return strdup(buf);
}

/* "wm1.ID.GENERATION.JOINED.PID.UID.GROUP": what a restarted wgd needs, besides the pidfd. */
static int member_fdname(const Member *m, const Group *g, uid_t uid, char *buf, size_t size) {
        int n = snprintf(
                buf,
                size,
                MEMBER_FDNAME_PREFIX "%" PRIx64 ".%" PRIu64 ".%" PRIu64 ".%d.%u.%s",
                m->id,
                m->generation,
                m->joined_usec,
                (int) m->pid,
                (unsigned) uid,
                g->name);

        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* Park @m's pidfd in the fdstore, so that a restart keeps the membership. 0 or -errno. */
static int fdstore_park(const Member *m, const Group *g, uid_t uid) {
        char fdname[256];
        int r;

        if (m->pidfd < 0)
                return 0; /* no pidfd: the connection alone holds it, and no restart does */
        r = member_fdname(m, g, uid, fdname, sizeof(fdname));
        if (r < 0)
                return r;
        /* A pidfd polls readable when its process dies: keep it anyway. */
        return fdstore_push(fdname, m->pidfd, /* poll= */ false, LOG_WARNING);
}

static void fdstore_unpark(const Member *m, const Group *g, uid_t uid) {
        char fdname[256];

        if (m->pidfd >= 0 && member_fdname(m, g, uid, fdname, sizeof(fdname)) >= 0)
                fdstore_remove(fdname);
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Member *m = userdata;

        log_info("Member %d of %s died without leaving.", (int) m->pid, m->group->name);
        member_end(m, WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED, 0);
        return 0;
}

static void member_freep(Member **m) {
        member_free(*m);
}

/* Count @m against @a's memberships and everybody's (member_free() takes it off). */
static void charge(Member *m, Account *a) {
        m->account = a;
        a->n_members++;
        a->table->n_members++;
}

/*
 * Link @m into @g, charged to @a if it is not yet: the last step of a join or a restore, which
 * cannot fail.
 */
static void attach(Member *m, Group *g, Account *a) {
        m->group = g;
        LIST_PREPEND(by_group, g->members, m);
        g->n_members++;
        if (!m->account)
                charge(m, a);
        assert(m->account == a);
}

int member_new(Client *c, const char *description, Member **ret) {
        _cleanup_(member_freep) Member *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        *m = (Member) {
                .pid = c->peer.pid,
                .pidfd = -EBADF,
                .joined_usec = now_realtime_usec(),
        };
        if (getrandom(&m->id, sizeof(m->id), GRND_NONBLOCK) != sizeof(m->id))
                m->id = m->joined_usec ^ ((uint64_t) m->pid << 40);

        r = peer_pidfd(c);
        if (r == -ENOSYS)
                /* No pidfds at all: the connection alone holds the membership (and no restart does). */
                log_debug("No pidfd for member %d: watching its connection only.", (int) m->pid);
        else if (r < 0)
                return r;
        else {
                m->pidfd = r;
                if (!pidfd_alive(m->pidfd))
                        return -ESRCH;
        }
        m->description = describe(m->pid, description);
        if (!m->description)
                return -ENOMEM;

        /*
         * Charged from now on, not once it is linked: a cluster Join waits for etcd meanwhile,
         * and those in flight count against the limits that the next Join is checked against.
         */
        charge(m, c->account);
        *ret = TAKE_PTR(m);
        return 0;
}

int member_watch(Member *m, sd_event *event) {
        if (m->pidfd < 0 || m->pidfd_source)
                return 0;
        return sd_event_add_io(event, &m->pidfd_source, m->pidfd, EPOLLIN, on_pidfd, m);
}

void member_unwatch(Member *m) {
        m->pidfd_source = sd_event_source_disable_unref(m->pidfd_source);
}

void member_attach(Member *m, Group *g, Client *c) {
        attach(m, g, c->account);
        m->client = c;
        LIST_PREPEND(by_client, c->members, m);
}

int member_join(Client *c, Group *g, const char *description, Member **ret) {
        _cleanup_(member_freep) Member *m = NULL;
        int r;

        r = member_new(c, description, &m);
        if (r < 0)
                return r;
        r = member_watch(m, c->event);
        if (r < 0)
                return r;

        /*
         * Parked under the generation it is about to join, then the add (wgd's) in exactly that
         * generation: a membership that a restart would lose is not made at all, and a failure
         * leaves the group as it was. A generation that ends in between is tried again, a few
         * times: a peer that ends them faster than wgd can join gets EAGAIN.
         */
        for (unsigned attempt = 0;; attempt++) {
                if (attempt == JOIN_ATTEMPTS)
                        return -EAGAIN;
                m->generation = wg_state_generation(wg__state(g->handle));
                r = fdstore_park(m, g, c->account->uid);
                if (r < 0)
                        return r;
                r = wg__add(g->handle, 1, m->generation, NULL);
                if (r >= 0)
                        break;
                fdstore_unpark(m, g, c->account->uid);
                if (r != -ESTALE)
                        return r;
        }

        member_attach(m, g, c);
        *ret = TAKE_PTR(m);
        return 0;
}

int member_park(Member *m) {
        return fdstore_park(m, m->group, m->account->uid);
}

Member *member_free(Member *m) {
        if (!m)
                return NULL;

        if (m->group) {
                LIST_REMOVE(by_group, m->group->members, m);
                m->group->n_members--;
        }
        member_detach(m);
        if (m->account) {
                m->account->n_members--;
                m->account->table->n_members--;
                account_release(m->account);
        }
        sd_event_source_disable_unref(m->pidfd_source);
        safe_close(m->pidfd);
        free(m->description);
        free(m);
        return NULL;
}

void member_detach(Member *m) {
        if (!m->client)
                return;
        LIST_REMOVE(by_client, m->client->members, m);
        m->client = NULL;
}

static void record(Member *m, Wg__V1__MemberState state, int32_t status) {
        MemberRecord r = {
                .id = m->id,
                .pid = m->pid,
                .state = state,
                .status = status,
                .joined_usec = m->joined_usec,
                .ended_usec = now_realtime_usec(),
                .generation = m->generation,
        };

        snprintf(r.description, sizeof(r.description), "%s", m->description);
        group_add_record(m->group, &r);
}

void member_end(Member *m, Wg__V1__MemberState state, int32_t status) {
        Group *g = m->group;
        uint64_t st;
        int r;

        if (g->cluster_member_end) {
                /* A cluster group's: its done is an etcd transaction (cluster.c), m's from now on. */
                g->cluster_member_end(m, state, status, /* client= */ NULL, 0);
                return;
        }

        record(m, state, status);

        st = wg__state(g->handle);
        if (wg_state_generation(st) == m->generation && wg_state_check(st) == 0) {
                WgOutcomeKind kind = state == WG__V1__MEMBER_STATE__MEMBER_STATE_SUCCEEDED ?
                        WG_OUTCOME_SUCCEEDED :
                        state == WG__V1__MEMBER_STATE__MEMBER_STATE_FAILED ? WG_OUTCOME_FAILED :
                                                                             WG_OUTCOME_ABANDONED;

                /* Counted first: the done below may end the generation, and its waiters read this. */
                wg__outcome_count(g->handle, m->generation, kind);
                if (kind == WG_OUTCOME_ABANDONED &&
                    g->on_abandon == WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK) {
                        log_notice(
                                "Group %s is broken: member %d died without leaving.",
                                g->name,
                                (int) m->pid);
                        wg__mark_broken(g->handle);
                } else {
                        /* Only within its own generation: a reset (or a stray done) moved on. */
                        r = wg__add(g->handle, -1, m->generation, NULL);
                        if (r < 0 && r != -ESTALE)
                                log_warning_errno(
                                        r,
                                        "Group %s: the done of member %d failed: %m",
                                        g->name,
                                        (int) m->pid);
                }
        }

        member_forget(m);
        waits_check(g);
}

void member_forget(Member *m) {
        fdstore_unpark(m, m->group, m->account->uid);
        member_free(m);
}

Member *member_find(Group *g, uint64_t id) {
        LIST_FOREACH (by_group, m, g->members)
                if (m->id == id && !m->ending)
                        return m;
        return NULL;
}

int member_fdname_parse(const char *fdname, MemberFields *ret) {
        const char *p = fdname + strlen(MEMBER_FDNAME_PREFIX);
        uint64_t id, generation, joined, pid, uid;

        if (strncmp(fdname, MEMBER_FDNAME_PREFIX, strlen(MEMBER_FDNAME_PREFIX)) != 0 ||
            fdname_field(&p, 16, UINT64_MAX, &id) < 0 ||
            fdname_field(&p, 10, WG_STATE_GEN_MASK, &generation) < 0 ||
            fdname_field(&p, 10, UINT64_MAX, &joined) < 0 || fdname_field(&p, 10, INT32_MAX, &pid) < 0 ||
            pid == 0 || fdname_field(&p, 10, UINT32_MAX - 1, &uid) < 0 || !group_name_valid(p))
                return -EINVAL;

        *ret = (MemberFields) {
                .id = id,
                .generation = generation,
                .joined_usec = joined,
                .pid = (pid_t) pid,
                .uid = (uid_t) uid,
                .group = p,
        };
        return 0;
}

int member_restore(sd_event *event, Group *g, Account *a, const MemberFields *f, int pidfd) {
        _cleanup_(member_freep) Member *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        *m = (Member) {
                .id = f->id,
                .pid = f->pid,
                .pidfd = -EBADF,
                .joined_usec = f->joined_usec,
                .generation = f->generation,
        };
        m->description = describe(f->pid, NULL);
        if (!m->description)
                return -ENOMEM;
        r = sd_event_add_io(event, &m->pidfd_source, pidfd, EPOLLIN, on_pidfd, m);
        if (r < 0)
                return r;
        m->pidfd = pidfd;

        attach(m, g, a);
        if (!pidfd_alive(pidfd)) {
                log_info("Member %d of %s died while wgd was away.", (int) m->pid, g->name);
                member_end(TAKE_PTR(m), WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED, 0);
        } else {
                log_info("Member %d of %s is still there.", (int) m->pid, g->name);
                TAKE_PTR(m);
        }
        return 0;
}
