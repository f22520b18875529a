/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Members: processes that joined a group, so that wgd does their done for them when they die.
 * A Member has two parents, its Group and its Client (none while detached, after a restart of
 * wgd, until it leaves on a new connection or dies); member_free() unlinks it from both.
 */

#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "account.h"
#include "client.h"
#include "group.h"
#include "list.h"

typedef struct Member {
        Group *group;
        Client *client;   /* NULL: detached, since a restart of wgd, until it leaves or dies */
        Account *account; /* charged with this membership */
        uint64_t id;
        pid_t pid;
        int pidfd;
        sd_event_source *pidfd_source;
        char *description;
        uint64_t joined_usec; /* CLOCK_REALTIME */
        uint64_t generation;  /* the one it joined: its done counts only there */
        bool ending;          /* a cluster group's, whose end is on its way to etcd */
        LIST_FIELDS(struct Member, by_group);
        LIST_FIELDS(struct Member, by_client);
} Member;

/* What an fdstore name says of a member: "wm1.ID.GENERATION.JOINED.PID.UID.GROUP". */
typedef struct MemberFields {
        uint64_t id;
        uint64_t generation;
        uint64_t joined_usec;
        pid_t pid;
        uid_t uid;
        const char *group; /* points into the fdstore name */
} MemberFields;

/*
 * The prefix of the fdstore names of members' pidfds. The number is the format's version: a wgd
 * that changes the format takes the old one back too, and drops what it cannot read.
 */
#define MEMBER_FDNAME_PREFIX "wm1."

/*
 * The parts of a join, for a cluster group's (cluster.c), whose add is an etcd transaction: a
 * member of @c's peer, charged to @c's account already but not linked anywhere yet
 * (member_free() it if the join fails); watch its pidfd; link it into @g and @c.
 */
int member_new(Client *c, const char *description, Member **ret);
/* Park an attached member's pidfd in the fdstore, as member_join() does: a restart keeps it. */
int member_park(Member *m);
int member_watch(Member *m, sd_event *event);
void member_unwatch(Member *m);
void member_attach(Member *m, Group *g, Client *c);

/*
 * The peer of @c joins @g: wgd adds one to the counter for it, in the generation that runs now.
 * Charged to @c's account (the caller checks the limit). Returns 0 or -errno, the group unchanged.
 */
int member_join(Client *c, Group *g, const char *description, Member **ret);

/* End a membership: SUCCEEDED or FAILED (a Leave, with @status) or ABANDONED; frees @m. */
void member_end(Member *m, Wg__V1__MemberState state, int32_t status);

/* Forget @m without ending it (wgd stopping: it lives on in the fdstore). NULL-safe. */
Member *member_free(Member *m);

/* Forget @m and its place in the fdstore (its group is deleted). */
void member_forget(Member *m);

/* Let go of @m's connection, keeping the membership (wgd stopping: the fdstore keeps it). */
void member_detach(Member *m);

Member *member_find(Group *g, uint64_t id);

int member_fdname_parse(const char *fdname, MemberFields *ret);

/*
 * A member that the fdstore handed back after a restart, with its @pidfd (taken on success):
 * still there (detached until it leaves), or dead, and abandoned now.
 */
int member_restore(sd_event *event, Group *g, Account *a, const MemberFields *f, int pidfd);
