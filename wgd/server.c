/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The server: the listening socket, admission of connections (credentials and per-uid limits),
 * the watch over groups that have Wait requests pending, and exit on idle.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "macro.h"
#include "segment.h"
#include "watcher.h"
#include "wg-private.h"
#include "wgd.h"

/* sd-event idle timers need no precision: a second of slack lets the kernel batch wakeups. */
#define IDLE_ACCURACY_USEC (1000 * 1000)
/* How long to stop accepting when out of fds. */
#define ACCEPT_PAUSE_USEC (100 * 1000)

Account *server_account(Server *s, uid_t uid) {
        Account *a;

        LIST_FOREACH(accounts, i, s->accounts)
                if (i->uid == uid)
                        return i;

        a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->uid = uid;
        LIST_PREPEND(accounts, s->accounts, a);
        return a;
}

void server_account_release(Server *s, Account *a) {
        if (a->n_connections > 0 || a->n_groups > 0 || a->n_members > 0)
                return;
        LIST_REMOVE(accounts, s->accounts, a);
        free(a);
}

static int on_watch(sd_event_source *source, void *userdata) {
        return server_rearm_watch(userdata);
}

int server_new(sd_event *event, const ServerLimits *limits, Server **ret) {
        Server *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (Server) {
                .event = sd_event_ref(event),
                .limits = *limits,
                .listen_fd = -EBADF,
                .lock_fd = -EBADF,
        };

        r = watcher_new(event, on_watch, s, &s->watcher);
        if (r < 0) {
                server_free(s);
                return r;
        }

        *ret = s;
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;

        s->stopping = true;

        /*
         * Groups first, so that their pending Waits are answered (ESHUTDOWN) while the clients
         * are still there. Groups stay in the fdstore: a restarted wgd takes them back. (The
         * root of a tsearch() tree points to a node whose first member is the key.)
         */
        while (s->groups)
                group_free(*(Group **) s->groups);
        while (s->clients)
                client_free(s->clients);

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

static int peer_read(int fd, Peer *ret) {
        struct ucred uc;
        socklen_t len = sizeof(uc);
        gid_t *groups = NULL;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return negative_errno();

        /* SO_PEERGROUPS tells how much room it needs with ERANGE: ask, then fetch. */
        len = 0;
        for (unsigned attempt = 0; attempt < 4; attempt++) {
                gid_t *n;

                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) >= 0)
                        break;
                if (errno != ERANGE) {
                        free(groups);
                        return negative_errno();
                }
                n = realloc(groups, len > 0 ? len : sizeof(gid_t));
                if (!n) {
                        free(groups);
                        return -ENOMEM;
                }
                groups = n;
        }

        *ret = (Peer) {
                .uid = uc.uid,
                .gid = uc.gid,
                .pid = uc.pid,
                .groups = groups,
                .n_groups = len / sizeof(gid_t),
        };
        return 0;
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

        return sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
}

/*
 * Out of fds (or memory) to accept with: the listening socket stays readable, and accepting
 * again at once would spin. Stop listening for a moment; the backlog holds the connections, and
 * the fds that clients, groups and members give back in the meantime are what they wait for.
 * The timer exists from the start (listen_start()): making it now would need the fd we lack.
 */
static void accept_pause(Server *s, int error) {
        log_warning_errno(error, "Failed to accept a connection, pausing for %u ms: %m",
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
                safe_close(fd);
                return 0;
        }

        a = server_account(s, peer.uid);
        if (s->n_clients >= s->limits.connections ||
            (a && a->n_connections >= s->limits.connections_per_uid)) {
                bool all = s->n_clients >= s->limits.connections;

                log_notice("Refusing a connection of uid %u (pid %d): too many connections%s.", (unsigned) peer.uid,
                           (int) peer.pid, all ? "" : " for this user");
                refuse(fd, -EUSERS, all ? "wgd has as many connections as it may take." :
                                          "Too many connections to wgd for this user.");
                if (a)
                        server_account_release(s, a);
                free(peer.groups);
                return 0;
        }

        r = client_new(s, fd, &peer, &c);
        free(peer.groups);
        if (a)
                server_account_release(s, a);
        if (r < 0) {
                log_warning_errno(r, "Failed to set up a connection: %m");
                safe_close(fd);
        }
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
        r = sd_event_add_time_relative(s->event, &s->accept_pause, CLOCK_MONOTONIC, ACCEPT_PAUSE_USEC,
                                       ACCEPT_PAUSE_USEC / 10, on_accept_resume, s);
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
        safe_close(fd);
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
        bool idle = s->idle_usec > 0 && s->n_groups == 0 && s->n_clients == 0;
        int r;

        if (!idle) {
                s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
                return;
        }
        if (s->idle_timer)
                return;
        r = sd_event_add_time_relative(s->event, &s->idle_timer, CLOCK_MONOTONIC, s->idle_usec, IDLE_ACCURACY_USEC,
                                       on_idle, s);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the idle timer, ignoring: %m");
}

void server_update_status(Server *s) {
        (void) sd_notifyf(0, "STATUS=%u groups, %u clients", s->n_groups, s->n_clients);
}

/*
 * Answer the Waits whose generation ended, and watch the state words of the groups that still
 * have some. Registering WAITERS before watching is what makes the completer of a generation
 * call FUTEX_WAKE, exactly as for a waiter in libwg; the expected value handed to the watcher is
 * the word as it was after that registration, so a completion in between is seen by the kernel's
 * compare. Runs after every change to the set of Waits and after every watcher wakeup.
 */
int server_rearm_watch(Server *s) {
        WatchEntry *entries = NULL;
        size_t n = 0, allocated = 0;
        int r;

        LIST_FOREACH(waiting, g, s->waiting) {
                uint64_t st = __atomic_load_n(g->handle->state, __ATOMIC_ACQUIRE);

                for (;;) {
                        int check = wg_state_check(st);

                        LIST_FOREACH(by_group, w, g->waits)
                                if (check == -EIDRM)
                                        wait_complete(w, -EIDRM);
                                else if (wg_state_generation(st) != w->generation || wg_state_count(st) == 0)
                                        wait_complete(w, 0);
                                else if (check < 0)
                                        wait_complete(w, check);
                        if (!g->waits)
                                break; /* wait_complete() took g off the waiting list */
                        if (st & WG_STATE_WAITERS)
                                break;
                        if (__atomic_compare_exchange_n(g->handle->state, &st, st | WG_STATE_WAITERS, false,
                                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                                st |= WG_STATE_WAITERS;
                                break;
                        }
                }
                if (!g->waits)
                        continue;

                if (n == allocated) {
                        WatchEntry *e = realloc(entries, (allocated = allocated * 2 + 16) * sizeof(*e));

                        if (!e) {
                                free(entries);
                                return log_error_errno(-ENOMEM, "Failed to watch groups: %m");
                        }
                        entries = e;
                }
                entries[n++] = (WatchEntry) {
                        .word = wg_state_futex(g->handle->state),
                        .expected = (uint32_t) (st >> 32),
                };
        }

        r = watcher_set(s->watcher, entries, n);
        free(entries);
        return r;
}
