/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The server owns everything the daemon holds: the listening socket, every Client, every Group
 * (a tree by name), the Watcher and the per-uid Accounts. It admits connections (credentials,
 * limits), and it ends what a client or a group leaves behind when it goes: the one place that
 * knows how the objects below hang together.
 *
 *   main.c      options, sd-event, signals, sd_notify; owns the Server
 *   dispatch.c  one function per wg.v1 request: checks, then calls the objects below
 *   server.c    the tables; admission; teardown of clients and groups; restore after a restart
 *   member.c    one membership: linked into its group and its client, plus a pidfd
 *   wait.c      one pending Wait: linked into its group and its client, plus a timer
 *   reply.c     answers built from groups and members
 *   group.c     a named group: segment, owner and mode, fdstore name
 *   client.c    a connection: read, queue answers, close; tells its owner through handlers
 *   peer.c      credentials of a connection
 *   account.c   per-uid counters
 *   fdstore.c   systemd's fdstore: park, and remove (again later if it fails)
 *   watcher.c   threads in futex_waitv(); says which watched word changed
 *
 * Each file calls only the files below it; news goes up through handlers and return values.
 *
 * The rule for event handlers (every callback sd-event runs): never hand an error back to
 * sd-event, which would disable the source for good (a listening socket that no longer accepts,
 * a watcher whose reports nobody reads). A temporary failure fails the one request with an errno
 * the protocol documents, or is retried (a timer), or degrades (a watch without a thread is
 * polled); only a broken invariant may stop the loop, with sd_event_exit() and an error, so that
 * wgd exits non-zero and systemd restarts it with the fdstore.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "account.h"
#include "client.h"
#include "group.h"
#include "watcher.h"

typedef struct ServerLimits {
        unsigned groups; /* in all: keep it within the unit's FileDescriptorStoreMax= */
        unsigned groups_per_uid;
        unsigned connections_per_uid;
        unsigned connections;
        unsigned waits_per_connection;
        unsigned members_per_uid;
        unsigned members;            /* in all: each holds a pidfd */
        size_t queued_bytes_per_uid; /* answers queued for clients that do not read */
        size_t queued_bytes;
        unsigned passes_per_uid; /* segment fds sent (or queued) and not yet read */
        unsigned passes;         /* in all: keep it well under wgd's RLIMIT_NOFILE */
} ServerLimits;

typedef void (*server_record_handler_t)(Client *c, const uint8_t *buf, size_t len, int error);

typedef struct Server {
        sd_event *event;
        ServerLimits limits;
        ClientHandlers client_handlers;

        int listen_fd;
        sd_event_source *listen_source;
        sd_event_source *accept_pause; /* out of fds: a timer to listen again */
        char *bound_path; /* the socket we bound ourselves, to unlink at exit; NULL if passed in */
        int lock_fd;      /* flock() on bound_path.lock, while we serve it */
        bool socket_activated;

        void *groups; /* tsearch() tree of Group, by name */
        unsigned n_groups;
        unsigned n_creating; /* Creates of cluster groups waiting for etcd (server_reserve_group()) */

        Client *clients;
        unsigned n_clients;
        AccountTable accounts;

        Watcher *watcher;
        struct Cluster *cluster; /* NULL: not a node of a cluster (no --etcd); main.c's */
        /*
         * Told when room is made under the limits for @owner's groups (a group goes, a Create's
         * reservation is let go), and when a local group gives up its name (@local_name, else
         * NULL): the cluster's groups that it passed over may fit now. NULL: nobody asks.
         */
        void (*room_made)(uid_t owner, const char *local_name, void *userdata);
        void *room_made_userdata;
        /*
         * What the fdstore handed back that only the cluster can place, once it has read etcd:
         * mirrors (wc1.), the lease (wl1.), members of cluster groups (wm1. of a group not here).
         */
        struct StashedFd *stash;

        bool stopping; /* members outlive wgd's own exit: they are not abandoned then */

        uint64_t idle_usec; /* exit after this long with no group and no client; 0: never */
        sd_event_source *idle_timer;
} Server;

/* A server whose clients' records go to @record (dispatch_record()). */
int server_new(sd_event *event, const ServerLimits *limits, server_record_handler_t record, Server **ret);
Server *server_free(Server *s);
static inline void server_freep(Server **s) {
        server_free(*s);
}

int server_listen_fd(Server *s, int fd);
int server_listen_path(Server *s, const char *path);

/*
 * Keep @fd under @fdname for the cluster to claim: server_unstash(). 0 (@fd taken), or -ENOMEM
 * (@fd still the caller's).
 */
int server_stash(Server *s, const char *fdname, int fd);
/* The fd stashed under @fdname (NULL: the first whose name starts with @prefix), taken; or -1,
 * and *ret_name (if not NULL, to free) its name. */
int server_unstash(Server *s, const char *fdname, const char *prefix, char **ret_name);
/* Whatever is left: out of the fdstore, and closed. */
void server_stash_drop(Server *s);

/*
 * Take back what the fdstore kept for us: groups first, then members. Returns 0, or -errno for
 * a failure that may pass (memory): then wgd should exit and be restarted with the store intact.
 * What cannot be read is dropped from the store.
 */
int server_restore_group(Server *s, const char *fdname, int fd);
int server_restore_member(Server *s, const char *fdname, int fd);

void server_update_idle(Server *s);
void server_update_status(Server *s);

/*
 * A client of @s, charged to its peer's account; @fd < 0: one without a connection (fuzzer).
 * On success it owns @fd and @peer's groups (peer_move()); on failure the caller still does.
 */
int server_add_client(Server *s, int fd, Peer *peer, Client **ret);
/* The connection is gone: its Waits go, its members are abandoned (kept if wgd stops). */
void server_drop_client(Server *s, Client *c);

Group *server_find_group(Server *s, const char *name);
/* Visit every group in name order. @f must not add or remove groups. */
void server_foreach_group(Server *s, void (*f)(Group *g, void *userdata), void *userdata);
/*
 * Whether this wgd may hold one more group owned by @owner: 0, or -ENOSPC (--max-groups) or
 * -EDQUOT (the owner's --max-groups-per-user), counting local groups, mirrors and the groups
 * reserved for Creates in flight alike.
 */
int server_may_add_group(Server *s, uid_t owner);
/*
 * Count a group to come for @owner (a cluster Create that waits for etcd) against the limits
 * until server_unreserve_group(); the account it is charged to, or NULL (out of memory).
 */
Account *server_reserve_group(Server *s, uid_t owner);
void server_unreserve_group(Server *s, Account *a); /* NULL-safe */
/*
 * A new group owned by @f->owner (charged to its account), on a new segment, in the fdstore;
 * or, for a cluster group, the mirror kept in the fdstore across a restart, if there is one.
 * With @within_limits, a group that server_may_add_group() refuses is not made (a mirror taken
 * back from the fdstore always is: processes here may map it).
 */
int server_add_group(Server *s, const GroupFields *f, bool within_limits, Group **ret);
/* Forget @g in this process (wgd stops): Waits answered ESHUTDOWN; it stays in the fdstore. */
void server_forget_group(Server *s, Group *g);
/* Delete for good: Waits answered EIDRM, members forgotten, the segment marked. */
void server_delete_group(Server *s, Group *g);
