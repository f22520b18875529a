/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Members: processes that joined a group, so that wgd does their done for them when they die.
 *
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "macro.h"
#include "segment.h"
#include "time-util.h"
#include "wg-private.h"
#include "wgd.h"

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
         * the one still talking to us; the check below makes sure it is still there.
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
static int member_fdname(const Member *m, char *buf, size_t size) {
        int n = snprintf(buf, size, MEMBER_FDNAME_PREFIX "%" PRIx64 ".%" PRIu64 ".%" PRIu64 ".%d.%u.%s", m->id,
                         m->generation, m->joined_usec, (int) m->pid, (unsigned) m->account->uid, m->group->name);

        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Member *m = userdata;

        log_info("Member %d of %s died without leaving.", (int) m->pid, m->group->name);
        member_end(m, WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED, 0);
        return 0;
}

/* The common part of a join and of a restore: @m gets its group, lists, pidfd watch. */
static int member_attach(Member *m, Group *g) {
        int r;

        if (m->pidfd >= 0) {
                r = sd_event_add_io(g->server->event, &m->pidfd_source, m->pidfd, EPOLLIN, on_pidfd, m);
                if (r < 0)
                        return r;
        }

        m->group = g;
        LIST_PREPEND(by_group, g->members, m);
        g->n_members++;
        return 0;
}

int member_join(Client *c, Group *g, const char *description, Member **ret) {
        Server *s = c->server;
        uint64_t old;
        Member *m;
        int r;

        if (c->account->n_members >= s->limits.members_per_uid)
                return -EDQUOT;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        *m = (Member) {
                .server = s,
                .client = c,
                .pid = c->peer.pid,
                .pidfd = -EBADF,
                .joined_usec = now_realtime_usec(),
        };
        if (getrandom(&m->id, sizeof(m->id), GRND_NONBLOCK) != sizeof(m->id))
                m->id = m->joined_usec ^ ((uint64_t) m->pid << 40);

        m->pidfd = peer_pidfd(c);
        if (m->pidfd == -ENOSYS)
                /* No pidfds at all: the connection alone holds the membership (and no restart does). */
                log_debug("No pidfd for member %d: watching its connection only.", (int) m->pid);
        else if (m->pidfd < 0 || !pidfd_alive(m->pidfd)) {
                r = m->pidfd < 0 ? m->pidfd : -ESRCH;
                safe_close(m->pidfd);
                free(m);
                return r;
        }
        m->description = describe(m->pid, description);
        if (!m->description) {
                safe_close(m->pidfd);
                free(m);
                return -ENOMEM;
        }

        /* The add is wgd's; the state word before it names the generation the member is in. */
        r = wg__add(g->handle, 1, UINT64_MAX, &old);
        if (r < 0) {
                free(m->description);
                safe_close(m->pidfd);
                free(m);
                return r;
        }
        m->generation = wg_state_generation(old);

        m->account = c->account;
        m->account->n_members++;
        r = member_attach(m, g);
        if (r < 0) {
                /* Undo the add: nobody else can have ended the generation, the member holds it. */
                (void) wg__add(g->handle, -1, m->generation, NULL);
                member_free(m);
                return r;
        }
        LIST_PREPEND(by_client, c->members, m);

        if (m->pidfd >= 0) {
                char fdname[256], msg[300];

                if (member_fdname(m, fdname, sizeof(fdname)) >= 0) {
                        /* FDPOLL=0: a pidfd polls readable when its process dies; keep it anyway. */
                        snprintf(msg, sizeof(msg), "FDSTORE=1\nFDPOLL=0\nFDNAME=%s", fdname);
                        r = sd_pid_notify_with_fds(0, 0, msg, &m->pidfd, 1);
                        if (r < 0)
                                log_warning_errno(r, "Failed to park member %d of %s in the fdstore: %m",
                                                  (int) m->pid, g->name);
                }
        }

        *ret = m;
        return 0;
}

Member *member_free(Member *m) {
        Group *g;

        if (!m)
                return NULL;
        g = m->group;

        if (g) {
                LIST_REMOVE(by_group, g->members, m);
                g->n_members--;
        }
        if (m->client)
                LIST_REMOVE(by_client, m->client->members, m);
        if (m->account) {
                m->account->n_members--;
                server_account_release(m->server, m->account);
        }
        sd_event_source_disable_unref(m->pidfd_source);
        safe_close(m->pidfd);
        free(m->description);
        free(m);
        return NULL;
}

static void record(Member *m, Wg__V1__MemberState state, int32_t status) {
        Group *g = m->group;
        MemberRecord *r;

        /* Most groups never have a member: their ring is allocated when one first ends. */
        if (!g->records) {
                g->records = calloc(GROUP_RECORDS, sizeof(MemberRecord));
                if (!g->records)
                        return; /* the counts, in the segment, are what matter */
        }
        r = &g->records[g->n_records++ % GROUP_RECORDS];

        *r = (MemberRecord) {
                .id = m->id,
                .pid = m->pid,
                .state = state,
                .status = status,
                .joined_usec = m->joined_usec,
                .ended_usec = now_realtime_usec(),
                .generation = m->generation,
        };
        snprintf(r->description, sizeof(r->description), "%s", m->description);
}

void member_end(Member *m, Wg__V1__MemberState state, int32_t status) {
        Group *g = m->group;
        Server *s = m->server;
        uint64_t st;
        int r;

        record(m, state, status);

        st = wg__state(g->handle);
        if (wg_state_generation(st) == m->generation && wg_state_check(st) == 0) {
                WgOutcomeKind kind = state == WG__V1__MEMBER_STATE__MEMBER_STATE_SUCCEEDED ? WG_OUTCOME_SUCCEEDED :
                                     state == WG__V1__MEMBER_STATE__MEMBER_STATE_FAILED    ? WG_OUTCOME_FAILED :
                                                                                             WG_OUTCOME_ABANDONED;

                /* Counted first: the done below may end the generation, and its waiters read this. */
                wg__outcome_count(g->handle, m->generation, kind);
                if (kind == WG_OUTCOME_ABANDONED && g->on_abandon == WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK) {
                        log_notice("Group %s is broken: member %d died without leaving.", g->name, (int) m->pid);
                        wg__mark_broken(g->handle);
                } else {
                        /* Only within its own generation: a reset (or a stray done) moved on. */
                        r = wg__add(g->handle, -1, m->generation, NULL);
                        if (r < 0 && r != -ESTALE)
                                log_warning_errno(r, "Group %s: the done of member %d failed: %m", g->name,
                                                  (int) m->pid);
                }
        }

        member_forget(m);

        if (g->waits)
                (void) server_rearm_watch(s);
}

void member_forget(Member *m) {
        char fdname[256];

        if (member_fdname(m, fdname, sizeof(fdname)) >= 0)
                (void) sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", fdname);
        member_free(m);
}

Member *member_find(Group *g, uint64_t id) {
        LIST_FOREACH(by_group, m, g->members)
                if (m->id == id)
                        return m;
        return NULL;
}

/* A member's pidfd handed back by the fdstore after a restart: still there, or abandoned now. */
int member_restore(Server *s, const char *fdname, int pidfd) {
        const char *p = fdname + strlen(MEMBER_FDNAME_PREFIX);
        uint64_t id, generation, joined, pid, uid;
        Group *g;
        Member *m;
        int r;

        if (fdname_field(&p, 16, UINT64_MAX, &id) < 0 || fdname_field(&p, 10, WG_STATE_GEN_MASK, &generation) < 0 ||
            fdname_field(&p, 10, UINT64_MAX, &joined) < 0 || fdname_field(&p, 10, INT32_MAX, &pid) < 0 || pid == 0 ||
            fdname_field(&p, 10, UINT32_MAX - 1, &uid) < 0 || !group_name_valid(p)) {
                log_warning("Dropping stored fd with unexpected name '%s'.", fdname);
                goto drop;
        }
        g = group_find(s, p);
        if (!g) {
                log_warning("Dropping stored member of group %s, which is gone.", p);
                goto drop;
        }

        m = calloc(1, sizeof(*m));
        if (!m)
                goto drop;
        *m = (Member) {
                .server = s,
                .id = id,
                .pid = (pid_t) pid,
                .pidfd = pidfd,
                .joined_usec = joined,
                .generation = generation,
                .description = describe((pid_t) pid, NULL),
        };
        m->account = server_account(s, (uid_t) uid);
        if (!m->description || !m->account) {
                m->pidfd = -EBADF;
                member_free(m);
                goto drop;
        }
        m->account->n_members++;
        r = member_attach(m, g);
        if (r < 0) {
                m->pidfd = -EBADF;
                member_free(m);
                goto drop;
        }

        if (!pidfd_alive(pidfd)) {
                log_info("Member %d of %s died while wgd was away.", (int) m->pid, g->name);
                member_end(m, WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED, 0);
        } else
                log_info("Member %d of %s is still there.", (int) m->pid, g->name);
        return 0;

drop:
        (void) sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", fdname);
        safe_close(pidfd);
        return -EINVAL;
}

void member_info(const Member *m, Wg__V1__Member *info) {
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

void member_record_info(const MemberRecord *r, Wg__V1__Member *info) {
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
