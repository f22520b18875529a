/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * wgd's objects and how they own each other:
 *
 *   Server  owns the listening socket, every Client, every Group (a tree by name), the Watcher
 *           and the per-uid Accounts.
 *   Client  one connection; its peer's credentials; the Waits it asked for; its output queue.
 *   Group   one named group: its segment (a libwg handle), owner, gid, mode; the Waits on it.
 *   Wait    a pending Wait request: in its Client's list and its Group's list, with a timer.
 *   Member  a process that joined a Group: its connection (Client) and its pidfd; ends by
 *           leaving, or by dying (abandoned). A Group keeps records of how recent members ended.
 *
 * Everything runs in the sd-event loop of one thread, but for the Watcher's threads, which
 * only read futex words (watcher.c).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "group-name.h"
#include "list.h"
#include "wg.pb-c.h"
#include "wg.h"

typedef struct Server Server;
typedef struct Client Client;
typedef struct Group Group;
typedef struct Wait Wait;
typedef struct Account Account;
typedef struct Outgoing Outgoing;

/* How one member ended, for reports (the counts are in the segment, see segment.h). */
typedef struct MemberRecord {
        uint64_t id;
        pid_t pid;
        Wg__V1__MemberState state;
        int32_t status;
        uint64_t joined_usec, ended_usec;
        uint64_t generation;
        char description[96];
} MemberRecord;

#define GROUP_RECORDS 64
typedef struct Watcher Watcher;
typedef struct Member Member;

/* Who is on the other end of a connection, as the kernel says. */
typedef struct Peer {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        gid_t *groups; /* supplementary, from SO_PEERGROUPS */
        size_t n_groups;
} Peer;

struct Account {
        uid_t uid;
        unsigned n_connections;
        unsigned n_groups;
        unsigned n_members;
        LIST_FIELDS(Account, accounts);
};

struct Group {
        char name[WG_NAME_MAX + 1]; /* first: the tree's comparison reads a Group as its name */
        Server *server;
        wg *handle;
        uid_t owner;
        gid_t gid;
        uint32_t mode;
        uint64_t created_usec;
        Account *account;

        Wait *waits;
        unsigned n_waits;
        LIST_FIELDS(Group, waiting); /* in Server.waiting while n_waits > 0 */

        Wg__V1__AbandonPolicy on_abandon;
        Member *members;
        unsigned n_members;
        MemberRecord *records; /* a ring of GROUP_RECORDS: how the last members ended; on first use */
        unsigned n_records;    /* ever recorded; the ring holds the last few */
};

struct Member {
        Server *server;
        Group *group;
        Client *client; /* NULL: detached, since a restart of wgd, until it leaves or dies */
        Account *account;
        uint64_t id;
        pid_t pid;
        int pidfd;
        sd_event_source *pidfd_source;
        char *description;
        uint64_t joined_usec; /* CLOCK_REALTIME */
        uint64_t generation;  /* the one it joined: its done counts only there */
        LIST_FIELDS(Member, by_group);
        LIST_FIELDS(Member, by_client);
};

struct Wait {
        Client *client;
        Group *group;
        uint64_t id;
        uint64_t generation; /* the generation whose end this Wait waits for */
        sd_event_source *timer;
        LIST_FIELDS(Wait, by_group);
        LIST_FIELDS(Wait, by_client);
};

struct Outgoing {
        size_t len;
        int fd;
        LIST_FIELDS(Outgoing, queue);
        uint8_t data[];
};

struct Client {
        Server *server;
        int fd; /* -EBADF for a client without a connection (the fuzzer's) */
        sd_event_source *io;
        Peer peer;
        Account *account;

        Wait *waits;
        unsigned n_waits;
        Member *members;

        Outgoing *out_head, *out_tail;
        unsigned n_out;
        bool dead; /* failed or misbehaved: shut down, freed by its next event */

        LIST_FIELDS(Client, clients);
};

typedef struct ServerLimits {
        unsigned groups; /* in all: keep it within the unit's FileDescriptorStoreMax= */
        unsigned groups_per_uid;
        unsigned connections_per_uid;
        unsigned connections;
        unsigned waits_per_connection;
        unsigned members_per_uid;
} ServerLimits;

struct Server {
        sd_event *event;
        ServerLimits limits;

        int listen_fd;
        sd_event_source *listen_source;
        sd_event_source *accept_pause; /* out of fds: a timer to listen again */
        char *bound_path; /* the socket we bound ourselves, to unlink at exit; NULL if passed in */
        int lock_fd;      /* flock() on bound_path.lock, while we serve it */
        bool socket_activated;

        void *groups; /* tsearch() tree of Group, by name */
        unsigned n_groups;
        Group *waiting;

        Client *clients;
        unsigned n_clients;
        Account *accounts;

        Watcher *watcher;

        bool stopping; /* members outlive wgd's own exit: they are not abandoned then */

        uint64_t idle_usec; /* exit after this long with no group and no client; 0: never */
        sd_event_source *idle_timer;
};

/* server.c */
int server_new(sd_event *event, const ServerLimits *limits, Server **ret);
Server *server_free(Server *s);
int server_listen_fd(Server *s, int fd);
int server_listen_path(Server *s, const char *path);
void server_update_idle(Server *s);
void server_update_status(Server *s);
int server_rearm_watch(Server *s);
Account *server_account(Server *s, uid_t uid);
void server_account_release(Server *s, Account *a);

/* client.c */
int client_new(Server *s, int fd, const Peer *peer, Client **ret);
Client *client_free(Client *c);
void client_reply(Client *c, const Wg__V1__Response *resp, int fd);
void client_reply_error(Client *c, uint64_t id, int error, const char *format, ...)
        __attribute__((format(printf, 4, 5)));
void client_kill(Client *c);

/* dispatch.c: one record from a client, decoded, checked, carried out, answered. */
void dispatch_record(Client *c, const uint8_t *buf, size_t len);
/* Answer a pending Wait (0: its generation ended; else the error) and free it. */
void wait_complete(Wait *w, int error);
/* Free a pending Wait without an answer. */
void wait_free(Wait *w);

/* member.c */
int member_join(Client *c, Group *g, const char *description, Member **ret);
/* End a membership: SUCCEEDED or FAILED (a Leave, with @status) or ABANDONED; frees @m. */
void member_end(Member *m, Wg__V1__MemberState state, int32_t status);
/* Forget @m without ending it (wgd stopping: it lives on in the fdstore). */
Member *member_free(Member *m);
/* Forget @m and its place in the fdstore (its group is deleted). */
void member_forget(Member *m);
Member *member_find(Group *g, uint64_t id);
int member_restore(Server *s, const char *fdname, int pidfd);
void member_info(const Member *m, Wg__V1__Member *info);
void member_record_info(const MemberRecord *r, Wg__V1__Member *info);

/*
 * The prefix of the fdstore names of members' pidfds. The number is the format's version: a wgd
 * that changes the format takes the old one back too, and drops what it cannot read.
 */
#define MEMBER_FDNAME_PREFIX "wm1."

/* group.c */
int group_new(Server *s, const char *name, uid_t owner, gid_t gid, uint32_t mode,
              Wg__V1__AbandonPolicy on_abandon, uint64_t created_usec, int fd, Group **ret);
void group_delete(Group *g);
Group *group_free(Group *g);
Group *group_find(Server *s, const char *name);
bool group_may(const Group *g, const Peer *p, uint32_t access);
void group_info(const Group *g, Wg__V1__GroupInfo *info);
int group_fdname(const Group *g, char *buf, size_t size);
int group_restore(Server *s, const char *fdname, int fd);
/* One number of an fdstore name, in @base, at most @max, followed by a '.': *p moves past it. */
int fdname_field(const char **p, int base, uint64_t max, uint64_t *ret);
void group_foreach(Server *s, void (*f)(Group *g, void *userdata), void *userdata);

#define ACCESS_READ 04
#define ACCESS_WRITE 02

/* The prefix of the fdstore names of group segments; versioned as MEMBER_FDNAME_PREFIX is. */
#define GROUP_FDNAME_PREFIX "wg1."
