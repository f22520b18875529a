/* SPDX-License-Identifier: LGPL-2.1-or-later */

#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"
#include "peer.h"

/* SO_PEERGROUPS says how much room it needs with ERANGE; the groups cannot change, so twice is enough. */
#define PEERGROUPS_TRIES 3
/* Room for the groups of nearly every user, so that one getsockopt() is enough. */
#define PEERGROUPS_ON_STACK 64

int peer_read(int fd, Peer *ret) {
        _cleanup_free_ gid_t *groups = NULL;
        gid_t on_stack[PEERGROUPS_ON_STACK];
        struct ucred uc;
        socklen_t len = sizeof(uc);
        unsigned attempt;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return negative_errno();

        len = sizeof(on_stack);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, on_stack, &len) >= 0) {
                if (len > 0) {
                        groups = malloc(len);
                        if (!groups)
                                return -ENOMEM;
                        memcpy(groups, on_stack, len);
                }
        } else {
                if (errno != ERANGE)
                        return negative_errno();
                /* More than that: ask with what it said it needs. */
                for (attempt = 0; attempt < PEERGROUPS_TRIES; attempt++) {
                        gid_t *n = realloc(groups, len > 0 ? len : sizeof(gid_t));

                        if (!n)
                                return -ENOMEM;
                        groups = n;
                        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) >= 0)
                                break;
                        if (errno != ERANGE)
                                return negative_errno();
                }
                /* Never a list that was not filled: without the groups, group access would be wrong. */
                if (attempt == PEERGROUPS_TRIES)
                        return -ERANGE;
        }

        *ret = (Peer) {
                .uid = uc.uid,
                .gid = uc.gid,
                .pid = uc.pid,
                .groups = len > 0 ? TAKE_PTR(groups) : NULL,
                .n_groups = len / sizeof(gid_t),
        };
        return 0;
}

int peer_copy(Peer *to, const Peer *from) {
        *to = *from;
        to->groups = NULL;
        if (from->n_groups > 0) {
                to->groups = malloc(from->n_groups * sizeof(gid_t));
                if (!to->groups)
                        return -ENOMEM;
                memcpy(to->groups, from->groups, from->n_groups * sizeof(gid_t));
        }
        return 0;
}

void peer_done(Peer *p) {
        p->groups = mfree(p->groups);
        p->n_groups = 0;
}

bool peer_in_group(const Peer *p, gid_t gid) {
        if (p->uid == 0 || p->gid == gid)
                return true;
        for (size_t i = 0; i < p->n_groups; i++)
                if (p->groups[i] == gid)
                        return true;
        return false;
}
