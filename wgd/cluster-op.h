/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A request on a cluster group (cluster.h), pending until etcd answers. It is linked into its
 * client's list, so that a connection that goes away can let go of its requests without calling
 * up into cluster.c: they are carried out all the same, unanswered, as a local request that was
 * read is carried out.
 */

#include <stdint.h>

#include "client.h"
#include "list.h"

typedef enum ClusterOpKind {
        CLUSTER_OP_ADD,
        CLUSTER_OP_RESET,
        CLUSTER_OP_CREATE,
        CLUSTER_OP_DELETE,
        CLUSTER_OP_JOIN,    /* a member of this node joins: alone in its transaction */
        CLUSTER_OP_END,     /* a member of this node ends (Leave, death): alone too */
        CLUSTER_OP_ABANDON, /* a member whose node's lease is gone: alone too */
} ClusterOpKind;

typedef struct ClusterOp {
        ClusterOpKind kind;
        Client *client; /* NULL once the connection is gone */
        uint64_t id;
        int64_t delta;
        int result;            /* in the transaction being tried: 0, or the errno it will be answered */
        struct Member *member; /* JOIN: not linked anywhere yet, the op's; END: its group's */
        char *key;             /* JOIN, END, ABANDON: the member's "NODE.ID" */
        struct RemoteMember *remote; /* ABANDON: the member as etcd has it */
        int state;                   /* END, ABANDON: how it ended (Wg__V1__MemberState) */
        int32_t status;
        LIST_FIELDS(struct ClusterOp, by_client);
        LIST_FIELDS(struct ClusterOp, by_owner); /* its group's queue, or the cluster's calls */
} ClusterOp;

static inline void cluster_op_link(ClusterOp *op, Client *c) {
        op->client = c;
        LIST_PREPEND(by_client, c->cluster_ops, op);
        c->n_cluster_ops++;
}

/* The op's client, unlinked from it: to answer, or NULL if it went away. */
static inline Client *cluster_op_unlink(ClusterOp *op) {
        Client *c = op->client;

        if (c) {
                LIST_REMOVE(by_client, c->cluster_ops, op);
                c->n_cluster_ops--;
                op->client = NULL;
        }
        return c;
}

/* The connection of @c is gone: its pending requests are carried out without an answer. */
static inline void cluster_ops_detach(Client *c) {
        while (c->cluster_ops)
                (void) cluster_op_unlink(c->cluster_ops);
}
