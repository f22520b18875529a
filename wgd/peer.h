/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who is on the other end of a connection, as the kernel says. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct Peer {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        gid_t *groups; /* supplementary, from SO_PEERGROUPS; owned */
        size_t n_groups;
} Peer;

/* SO_PEERCRED and SO_PEERGROUPS of connection @fd. Returns 0 or -errno; *ret untouched then. */
int peer_read(int fd, Peer *ret);

/* Copy @from into @to, with a list of groups of its own. 0 or -ENOMEM. */
int peer_copy(Peer *to, const Peer *from);

/* Move @from into @to: @to takes its groups, @from is left without. */
static inline void peer_move(Peer *to, Peer *from) {
        *to = *from;
        from->groups = NULL;
        from->n_groups = 0;
}

void peer_done(Peer *p);

/* Whether the peer is root, or has @gid as its primary or a supplementary group. */
bool peer_in_group(const Peer *p, gid_t gid);
