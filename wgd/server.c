/* SPDX-License-Identifier: LGPL-2.1-or-later */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "cluster-op.h"
#include "fdstore.h"
#include "log.h"
#include "macro.h"
#include "member.h"
#include "segment.h"
#include "server.h"
#include "wait.h"
#include "wg-private.h"

/* sd-event idle timers need no precision: a second of slack lets the kernel batch wakeups. */
#define IDLE_ACCURACY_USEC (1000 * 1000)
/* How long to stop accepting when out of fds. */
#define ACCEPT_PAUSE_USEC (100 * 1000)

/* The tree compares names; a Group starts with its name, so a lookup's key is the name itself. */
static int compare_groups(const void *a, const void *b) {
        return strcmp((const char *) a, (const char *) b);
}

Group *server_find_group(Server *s, const char *name) {
        void *found = tfind(name, &s->groups, compare_groups);

        return found ? *(Group **) found : NULL;
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

void server_foreach_group(Server *s, void (*f)(Group *g, void *userdata), void *userdata) {
        struct foreach_context ctx = { .f = f, .userdata = userdata };

        twalk_r(s->groups, foreach_action, &ctx);
}

/* A failure that another try may not meet: then what the fdstore holds stays there for it. */
static bool error_is_temporary(int r) {
        return r == -ENOMEM || r == -EMFILE || r == -ENFILE || r == -EAGAIN;
}

/* Make a group and enter it in the table and its owner's account; @fd as group_new(). */
static int group_add(Server *s, const GroupFields *f, int fd, Group **ret) {
        _cleanup_(group_freep) Group *g = NULL;
        _cleanup_(account_releasep) Account *a = NULL;
        int r;

        assert(!server_find_group(s, f->name));

        a = account_get(&s->accounts, f->owner);
        if (!a)
                return -ENOMEM;
        r = group_new(f, s->watcher, fd, &g);
        if (r < 0)
                return r;
        if (!tsearch(g, &s->groups, compare_groups))
                return -ENOMEM;
        s->n_groups++;
        a->n_groups++;
        g->account = TAKE_PTR(a);

        server_update_idle(s);
        *ret = TAKE_PTR(g);
        return 0;
}

/* Take @g out of the table and free it: its Waits and members must be gone. */
static void group_drop(Server *s, Group *g) {
        if (tdelete(g, &s->groups, compare_groups))
                s->n_groups--;
        if (g->account) {
                g->account->n_groups--;
                account_release(g->account);
                g->account = NULL;
        }
        if (s->room_made && !s->stopping)
                s->room_made(g->owner, g->cluster ? NULL : g->name, s->room_made_userdata);
        group_free(g);
        server_update_idle(s);
}

int server_may_add_group(Server *s, uid_t owner) {
        Account *a;

        if (s->n_groups + s->n_creating >= s->limits.groups)
                return -ENOSPC;
        a = account_find(&s->accounts, owner);
        if (a && a->n_groups + a->n_creating >= s->limits.groups_per_uid)
                return -EDQUOT;
        return 0;
}

Account *server_reserve_group(Server *s, uid_t owner) {
        Account *a = account_get(&s->accounts, owner);

        if (!a)
                return NULL;
        a->n_creating++;
        s->n_creating++;
        return a;
}

void server_unreserve_group(Server *s, Account *a) {
        if (!a)
                return;
        assert(a->n_creating > 0 && s->n_creating > 0);
        a->n_creating--;
        s->n_creating--;
        if (s->room_made && !s->stopping)
                s->room_made(a->uid, NULL, s->room_made_userdata);
        account_release(a);
}

int server_add_group(Server *s, const GroupFields *f, bool within_limits, Group **ret) {
        Group *g;
        int r;

        if (f->cluster) {
                /* A mirror from before a restart: its local processes map it still. */
                char fdname[256];
                int fd;

                snprintf(fdname, sizeof(fdname), MIRROR_FDNAME_PREFIX "%s", f->name);
                fd = server_unstash(s, fdname, NULL, NULL);
                if (fd >= 0) {
                        r = group_add(s, f, fd, &g);
                        safe_close(fd);
                        if (r >= 0) {
                                log_info("Restored the mirror of cluster group %s.", f->name);
                                *ret = g;
                                return 0;
                        }
                        log_warning_errno(r, "Dropping the stored mirror of cluster group %s: %m", f->name);
                        fdstore_remove(fdname);
                }
        }
        if (within_limits) {
                r = server_may_add_group(s, f->owner);
                if (r < 0)
                        return r;
        }
        r = group_add(s, f, -EBADF, &g);
        if (r < 0)
                return r;
        r = group_park(g);
        if (r < 0) {
                group_drop(s, g);
                return r;
        }
        *ret = g;
        return 0;
}

void server_forget_group(Server *s, Group *g) {
        waits_fail(g, -ESHUTDOWN);
        while (g->members)
                member_free(g->members);
        group_drop(s, g);
}

void server_delete_group(Server *s, Group *g) {
        waits_fail(g, -EIDRM);
        while (g->members)
                member_forget(g->members);
        group_mark_deleted(g);
        log_info("Deleted group %s", g->name);
        group_drop(s, g);
}

struct StashedFd {
        char *name;
        int fd;
        LIST_FIELDS(struct StashedFd, stash);
};

int server_stash(Server *s, const char *fdname, int fd) {
        struct StashedFd *x = calloc(1, sizeof(*x));

        if (!x || !(x->name = strdup(fdname))) {
                free(x);
                return -ENOMEM;
        }
        x->fd = fd;
        LIST_PREPEND(stash, s->stash, x);
        return 0;
}

int server_unstash(Server *s, const char *fdname, const char *prefix, char **ret_name) {
        LIST_FOREACH (stash, x, s->stash)
                if (fdname ? strcmp(x->name, fdname) == 0 : strncmp(x->name, prefix, strlen(prefix)) == 0) {
                        int fd = x->fd;

                        LIST_REMOVE(stash, s->stash, x);
                        if (ret_name)
                                *ret_name = x->name;
                        else
                                free(x->name);
                        free(x);
                        return fd;
                }
        return -1;
}

void server_stash_drop(Server *s) {
        while (s->stash) {
                struct StashedFd *x = s->stash;

                log_info("Dropping stored fd '%s', which nothing claimed.", x->name);
                fdstore_remove(x->name);
                safe_close(x->fd);
                LIST_REMOVE(stash, s->stash, x);
                free(x->name);
                free(x);
        }
}

int server_restore_group(Server *s, const char *fdname, int fd) {
        GroupFields f;
        Group *g;
        int r;

        if (group_fdname_parse(fdname, &f) < 0) {
                log_warning("Dropping stored fd with unexpected name '%s'.", fdname);
                goto drop;
        }
        if (server_find_group(s, f.name)) {
                log_warning("Dropping second stored segment of group %s.", f.name);
                goto drop;
        }

        r = group_add(s, &f, fd, &g);
        if (error_is_temporary(r)) {
                safe_close(fd);
                return log_error_errno(r, "Failed to restore group %s: %m", f.name);
        }
        if (r < 0) {
                log_warning_errno(r, "Dropping stored segment of group %s: %m", f.name);
                goto drop;
        }
        if (wg_state_check(wg__state(g->handle)) == -EIDRM) {
                log_warning("Dropping stored segment of group %s: it was deleted.", f.name);
                group_drop(s, g);
                goto drop;
        }

        safe_close(fd);
        log_info("Restored group %s", g->name);
        return 0;

drop:
        fdstore_remove(fdname);
        safe_close(fd);
        return 0;
}

int server_restore_member(Server *s, const char *fdname, int pidfd) {
        MemberFields f;
        Account *a;
        Group *g;
        int r;

        if (member_fdname_parse(fdname, &f) < 0) {
                log_warning("Dropping stored fd with unexpected name '%s'.", fdname);
                goto drop;
        }
        g = server_find_group(s, f.group);
        if (!g) {
                /* Maybe a cluster group's, which the cluster brings back once it has read etcd. */
                r = server_stash(s, fdname, pidfd);
                if (r < 0) {
                        safe_close(pidfd);
                        /* As below: the fdstore keeps it for the next try. */
                        return log_error_errno(
                                r, "Failed to keep member fd '%s' for the cluster: %m", fdname);
                }
                return 0;
        }

        a = account_get(&s->accounts, f.uid);
        r = a ? member_restore(s->event, g, a, &f, pidfd) : -ENOMEM;
        if (r < 0) {
                account_release(a);
                safe_close(pidfd);
                /* Dropping it would lose its done, and hang its group: keep it for the next try. */
                return log_error_errno(r, "Failed to restore member %d of %s: %m", (int) f.pid, f.group);
        }
        return 0;

drop:
        fdstore_remove(fdname);
        safe_close(pidfd);
        return 0;
}

static void on_client_closed(Client *c) {
        server_drop_client(c->userdata, c);
}

int server_new(sd_event *event, const ServerLimits *limits, server_record_handler_t record, Server **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (Server) {
                .event = sd_event_ref(event),
                .limits = *limits,
                .client_handlers = {
                        .record = record,
                        .closed = on_client_closed,
                },
                .listen_fd = -EBADF,
                .lock_fd = -EBADF,
                .accounts = {
                        .queued_bytes_max = limits->queued_bytes,
                        .queued_bytes_per_uid_max = limits->queued_bytes_per_uid,
                        .passes_max = limits->passes,
                        .passes_per_uid_max = limits->passes_per_uid,
                },
        };

        r = watcher_new(event, &s->watcher);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;

        s->stopping = true;

        /*
         * Groups first, so that their pending Waits are answered (ESHUTDOWN) while the clients
         * are still there. Groups and members stay in the fdstore: a restarted wgd takes them
         * back. (The root of a tsearch() tree points to a node whose first member is the key.)
         */
        while (s->groups)
                server_forget_group(s, *(Group **) s->groups);
        while (s->clients)
                server_drop_client(s, s->clients);
        /* Unclaimed, but still the store's: a restarted wgd may claim them. */
        while (s->stash) {
                struct StashedFd *x = s->stash;

                safe_close(x->fd);
                LIST_REMOVE(stash, s->stash, x);
                free(x->name);
                free(x);
        }

        watcher_free(s->watcher);
        sd_event_source_disable_unref(s->idle_timer);
        sd_event_source_disable_unref(s->accept_pause);
        sd_event_source_disable_unref(s->listen_source);
        safe_close(s->listen_fd);
        if (s->bound_path) {
                (void) unlink(s->bound_path);
                free(s->bound_path);
        }
        safe_close(s->lock_fd); /* after the unlink: the next wgd binds a fresh socket */
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int server_add_client(Server *s, int fd, Peer *peer, Client **ret) {
        _cleanup_(account_releasep) Account *a = NULL;
        Client *c;
        int r;

        a = account_get(&s->accounts, peer->uid);
        if (!a)
                return -ENOMEM;
        r = client_new(s->event, fd, peer, &s->client_handlers, s, &c);
        if (r < 0)
                return r;
        a->n_connections++;
        c->account = TAKE_PTR(a);
        LIST_PREPEND(clients, s->clients, c);
        s->n_clients++;

        server_update_idle(s);
        *ret = c;
        return 0;
}

void server_drop_client(Server *s, Client *c) {
        Account *a;

        LIST_FOREACH (by_client, w, c->waits)
                wait_free(w);
        /*
         * The connection that held a membership is gone, without a Leave: the member died (or
         * let go of it), so it is abandoned. Unless wgd itself is stopping: then the member
         * lives on in the fdstore, for the next wgd.
         */
        cluster_ops_detach(c);
        while (c->members) {
                Member *m = c->members;

                if (s->stopping)
                        member_detach(m);
                else {
                        log_info("Member %d of %s went away without leaving.", (int) m->pid, m->group->name);
                        member_end(m, WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED, 0);
                }
        }

        LIST_REMOVE(clients, s->clients, c);
        s->n_clients--;
        a = c->account;
        client_free(c); /* gives back what its queue had charged */
        a->n_connections--;
        account_release(a);
        server_update_idle(s);
}

/* Turn a connection away with a notice (a Response with id 0) saying why. */
static void refuse(int fd, int error, const char *message) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__Error err = WG__V1__ERROR__INIT;
        uint8_t buf[512];
        size_t len;

        err.has_errnum = true;
        err.errnum = -error;
        err.message = (char *) message;
        resp.has_id = true;
        resp.id = 0;
        resp.result_case = WG__V1__RESPONSE__RESULT_ERROR;
        resp.error = &err;
        len = wg__v1__response__get_packed_size(&resp);
        if (len <= sizeof(buf)) {
                wg__v1__response__pack(&resp, buf);
                (void) send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        safe_close(fd);
}

static int on_accept_resume(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        int r;

        r = sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
        if (r >= 0)
                return 0;
        /* Try again after another pause; only if even that cannot be arranged, stop. */
        log_warning_errno(
                r,
                "Failed to listen again, trying again in %u ms: %m",
                (unsigned) (ACCEPT_PAUSE_USEC / 1000));
        if (sd_event_source_set_time_relative(source, ACCEPT_PAUSE_USEC) >= 0 &&
            sd_event_source_set_enabled(source, SD_EVENT_ONESHOT) >= 0)
                return 0;
        return sd_event_exit(s->event, -EIO);
}

/*
 * Out of fds (or memory) to accept with: the listening socket stays readable, and accepting
 * again at once would spin. Stop listening for a moment; the backlog holds the connections, and
 * the fds that clients, groups and members give back in the meantime are what they wait for.
 * The timer exists from the start (listen_start()): making it now would need the fd we lack.
 */
static void accept_pause(Server *s, int error) {
        log_warning_errno(
                error,
                "Failed to accept a connection, pausing for %u ms: %m",
                (unsigned) (ACCEPT_PAUSE_USEC / 1000));
        if (sd_event_source_set_time_relative(s->accept_pause, ACCEPT_PAUSE_USEC) < 0 ||
            sd_event_source_set_enabled(s->accept_pause, SD_EVENT_ONESHOT) < 0)
                return; /* cannot pause: better to spin than to stop serving */
        (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
}

static int on_accept(sd_event_source *source, int lfd, uint32_t revents, void *userdata) {
        Server *s = userdata;
        Peer peer;
        Account *a;
        Client *c;
        int fd, r;

        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
                if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                        return 0;
                accept_pause(s, negative_errno());
                return 0;
        }

        r = peer_read(fd, &peer);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the credentials of a connection: %m");
                refuse(fd,
                       r == -ENOMEM ? -ENOMEM : -EIO,
                       "wgd could not read this connection's credentials.");
                return 0;
        }

        a = account_find(&s->accounts, peer.uid);
        if (s->n_clients >= s->limits.connections ||
            (a && a->n_connections >= s->limits.connections_per_uid)) {
                bool all = s->n_clients >= s->limits.connections;

                log_notice(
                        "Refusing a connection of uid %u (pid %d): too many connections%s.",
                        (unsigned) peer.uid,
                        (int) peer.pid,
                        all ? "" : " for this user");
                refuse(fd,
                       -EUSERS,
                       all ? "wgd has as many connections as it may take." :
                             "Too many connections to wgd for this user.");
                peer_done(&peer);
                return 0;
        }

        r = server_add_client(s, fd, &peer, &c);
        peer_done(&peer);
        if (r < 0) {
                log_warning_errno(r, "Failed to set up a connection: %m");
                refuse(fd, r, "wgd could not set up this connection.");
                return 0;
        }
        client_serve_now(c);
        return 0;
}

static int listen_start(Server *s, int fd) {
        int r;

        r = fcntl(fd, F_GETFL);
        if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0)
                return negative_errno();
        r = sd_event_add_io(s->event, &s->listen_source, fd, EPOLLIN, on_accept, s);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(
                s->event,
                &s->accept_pause,
                CLOCK_MONOTONIC,
                ACCEPT_PAUSE_USEC,
                ACCEPT_PAUSE_USEC / 10,
                on_accept_resume,
                s);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(s->accept_pause, SD_EVENT_OFF);
        if (r < 0)
                return r;
        s->listen_fd = fd;
        return 0;
}

/* Serve on a socket passed in by systemd (or a harness that plays its part). */
int server_listen_fd(Server *s, int fd) {
        if (sd_is_socket_unix(fd, SOCK_SEQPACKET, /* listening= */ 1, NULL, 0) <= 0)
                return -ENOTSOCK;
        s->socket_activated = true;
        return listen_start(s, fd);
}

/*
 * Bind @path ourselves. A stale socket (nobody answers on it) is replaced; a live one is not.
 *
 * Two wgds started at once (two wgctl starting one on demand) must not both decide the socket
 * is stale and replace each other's: PATH.lock, held for as long as we serve, decides. The lock
 * file stays behind, harmlessly; nothing but flock() ever looks at it.
 */
int server_listen_path(Server *s, const char *path) {
        _cleanup_close_ int fd = -EBADF, lock = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char lock_path[sizeof(sa.sun_path) + 8];
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
        lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lock < 0)
                return negative_errno();
        if (flock(lock, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EADDRINUSE : negative_errno();

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();

        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) >= 0)
                return -EADDRINUSE;
        if (errno != ECONNREFUSED && errno != ENOENT)
                return negative_errno();
        fd = safe_close(fd);
        (void) unlink(path);

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        /* Everybody may connect: wgd decides per request, from the peer's credentials. */
        if (chmod(path, 0666) < 0 || listen(fd, SOMAXCONN) < 0) {
                r = negative_errno();
                (void) unlink(path);
                return r;
        }

        s->bound_path = strdup(path);
        if (!s->bound_path) {
                (void) unlink(path);
                return -ENOMEM;
        }
        r = listen_start(s, fd);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        s->lock_fd = TAKE_FD(lock);
        return 0;
}

static int on_idle(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;

        log_info("No groups and no clients for a while, exiting.");
        return sd_event_exit(s->event, 0);
}

/* Idle: no group (which exit would lose from the fdstore) and nobody connected. */
void server_update_idle(Server *s) {
        bool idle = s->idle_usec > 0 && s->n_groups == 0 && s->n_clients == 0 && !s->stopping;
        int r;

        if (!idle) {
                s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
                return;
        }
        if (s->idle_timer)
                return;
        r = sd_event_add_time_relative(
                s->event, &s->idle_timer, CLOCK_MONOTONIC, s->idle_usec, IDLE_ACCURACY_USEC, on_idle, s);
        if (r < 0)
                /* Not idling is safe: wgd only stays when it could have gone. */
                log_warning_errno(r, "Failed to arm the idle timer, ignoring: %m");
}

void server_update_status(Server *s) {
        (void) sd_notifyf(0, "STATUS=%u groups, %u clients", s->n_groups, s->n_clients);
}
