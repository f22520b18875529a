/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A named group: its segment (a libwg handle), who owns it and who may use it, and its name in
 * systemd's fdstore, which carries that metadata across a restart of wgd. The segment itself is
 * writable by every member, so nothing that decides permissions may live in it.
 *
 * A Group is owned by the Server's table. The Waits and Members linked to it are owned by their
 * own files (wait.c, member.c); whoever frees a Group first ends those (server.c).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "account.h"
#include "group-name.h"
#include "peer.h"
#include "watcher.h"
#include "wg.h"
#include "wg.pb-c.h"

struct Wait;
struct Member;

/* How one member ended, for reports (the counts are in the segment, see segment.h). */
typedef struct MemberRecord {
        uint64_t id;
        pid_t pid;
        Wg__V1__MemberState state;
        int32_t status;
        uint64_t joined_usec, ended_usec;
        uint64_t generation;
        char description[96];
        char node[WG_NAME_MAX + 1]; /* of a cluster group's member; empty for a local group's */
} MemberRecord;

/* A member of a cluster group on another node (or on this one before a restart), from etcd. */
typedef struct RemoteMember {
        char key[WG_NAME_MAX * 2 + 24]; /* "NODE.ID" */
        char node[WG_NAME_MAX + 1];
        uint64_t id;
        pid_t pid;
        uint64_t joined_usec, generation;
        char description[96];
        bool present;    /* its presence key (tied to its node's lease) is there */
        bool abandoning; /* its presence is gone: an abandon is on its way to etcd */
        struct RemoteMember *remote_next, *remote_prev;
} RemoteMember;

#define GROUP_RECORDS 64

typedef struct Group {
        char name[WG_NAME_MAX + 1]; /* first: a table that compares names may read a Group as one */
        wg *handle;
        /*
         * A cluster group's: its state lives in etcd (cluster.c), @handle is a mirror that wgd
         * alone writes, and clients get @shared, the same segment opened read-only. For a local
         * group @shared is @handle.
         */
        struct ClusterGroup *cluster;
        bool mirror; /* a cluster group's: its segment is a mirror (even before cluster is set) */
        wg *shared;
        /*
         * A cluster group's: how a member's end goes to etcd (member_end() hands it over; with a
         * client, a Leave to answer); the members of other nodes, as etcd has them; this node's name.
         */
        void (*cluster_member_end)(
                struct Member *m,
                Wg__V1__MemberState state,
                int32_t status,
                struct Client *client,
                uint64_t id);
        struct RemoteMember *remote;
        unsigned n_remote;
        const char *node;
        uid_t owner;
        gid_t gid;
        uint32_t mode;
        uint64_t created_usec;
        Wg__V1__AbandonPolicy on_abandon;
        Account *account; /* the owner's: charged by whoever made the group */

        /* Pending Wait requests, and the watch on the state word while there are any (wait.c). */
        Watcher *watcher;
        struct Wait *waits;
        unsigned n_waits;
        Watch *watch;
        uint64_t watch_generation; /* the generation the watch is registered in */

        struct Member *members; /* member.c */
        unsigned n_members;
        MemberRecord *records; /* a ring of GROUP_RECORDS: how the last members ended; on first use */
        unsigned n_records;    /* ever recorded; the ring holds the last few */
} Group;

#define ACCESS_READ 04
#define ACCESS_WRITE 02

/* The prefix of the fdstore names of group segments; the number is the format's version. */
#define GROUP_FDNAME_PREFIX "wg1."
/* A cluster group's mirror: "wc1.NAME" (the rest is etcd's); the node's lease: "wl1.NODE.ID". */
#define MIRROR_FDNAME_PREFIX "wc1."
#define LEASE_FDNAME_PREFIX "wl1."

/* What an fdstore name says of a group. */
typedef struct GroupFields {
        uid_t owner;
        gid_t gid;
        uint32_t mode;
        uint64_t created_usec;
        Wg__V1__AbandonPolicy on_abandon;
        const char *name; /* points into the fdstore name */
        bool cluster;     /* a mirror of a cluster group (never from the fdstore, yet) */
} GroupFields;

/*
 * Make a group: with @fd < 0 on a new segment; else on the segment behind @fd (a restored one,
 * validated by libwg like any other; @fd stays the caller's).
 */
int group_new(const GroupFields *f, Watcher *watcher, int fd, Group **ret);

/*
 * Park a new group's segment in the fdstore, so that a restart keeps it. 0 or -errno: a group
 * that a restart would lose is not made at all. (Without systemd, sd_notify() does nothing: 0.)
 */
int group_park(Group *g);

/* Keep @r in @g's ring of how its members ended (allocated on first use). */
void group_add_record(Group *g, const MemberRecord *r);

/* Free the group in this process only: a restarted wgd finds it in the fdstore. Nothing may be
 * linked to it any more (waits, members). NULL-safe. */
Group *group_free(Group *g);
static inline void group_freep(Group **g) {
        group_free(*g);
}

/* Delete for good: every holder of the segment learns it (EIDRM), and it leaves the fdstore. */
void group_mark_deleted(Group *g);

bool group_may(const Group *g, const Peer *p, uint32_t access);
void group_info(const Group *g, Wg__V1__GroupInfo *info);

int group_fdname(const Group *g, char *buf, size_t size);
/* Parse "wg1.UID.GID.MODE.CREATED.POLICY.NAME". 0 or -EINVAL. */
int group_fdname_parse(const char *fdname, GroupFields *ret);

/* One number of an fdstore name, in @base, at most @max, followed by a '.': *p moves past it. */
int fdname_field(const char **p, int base, uint64_t max, uint64_t *ret);
