/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Cluster groups: groups whose state lives in etcd, shared by every wgd started with the same
 * --etcd (each a node of the cluster). Each node mirrors every cluster group into a local
 * segment (a mirror: segment.h), which its local processes map read-only and wait on as on any
 * segment; adds, dones, resets, creates and deletes go to etcd as transactions, and every node
 * learns of them through one watch on etcd's key space and mirrors them, waking its waiters.
 *
 * The keys, under /wg/v1/g/NAME/ (values are JSON):
 *   meta       owner, gid, mode, created_usec, on_abandon: written once, by the Create
 *   state      count, generation, broken: every change is one transaction that compares its
 *              mod_revision with the one the node last saw, so that changes apply one after the
 *              other, each to the state the previous one left, wherever they come from
 *   op/NODE    the sequence number of the node's last change of the group, written in the same
 *              transaction: after an answer that got lost, the node tells whether its change
 *              took effect (it is there) or not, and so counts every add and done exactly once
 *
 * Requests on cluster groups are answered when etcd has answered: after the requests that came
 * after them on the same connection, maybe (wg.proto says so). A node sends one transaction per
 * group at a time, with every add and done that came for the group meanwhile.
 */

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "cluster-op.h"
#include "group.h"
#include "server.h"

typedef struct Cluster Cluster;
typedef struct ClusterGroup ClusterGroup;

typedef struct ClusterOptions {
        const char *const *endpoints; /* NULL-terminated etcd client URLs */
        const char *node;             /* this node's name; NULL: the host name */
        uint64_t timeout_usec;        /* of one call to etcd */
        uint64_t lease_ttl_usec;      /* how long a dead node's members hold their groups */
        const char *user, *password;  /* etcd's authentication, or NULL */
        const char *ca_file, *cert_file, *key_file;
} ClusterOptions;

int cluster_new(Server *s, const ClusterOptions *o, Cluster **ret);
/* Fail every pending request (ESHUTDOWN) and let go of etcd. NULL-safe. */
Cluster *cluster_free(Cluster *k);
static inline void cluster_freep(Cluster **k) {
        cluster_free(*k);
}

const char *cluster_node(const Cluster *k);

/*
 * Create (or, with @open, Open with create) cluster group @f->name at @count, checked by the
 * caller like a local one; answered with the group (and the segment, with @open), or, if it
 * exists in the cluster, as Create or Open would a local one (@exist_ok).
 */
void cluster_create(
        Cluster *k, Client *c, uint64_t id, const GroupFields *f, uint64_t count, bool exist_ok, bool open);

/* Add @delta (Add, Done), or Reset; answered with the group after the change. */
void cluster_add(Cluster *k, Client *c, uint64_t id, Group *g, int64_t delta);
void cluster_reset(Cluster *k, Client *c, uint64_t id, Group *g);

/*
 * Join cluster group @g as a member of @c's peer: answered with Joined and the segment once etcd
 * has counted it; its end (a Leave, its death) is another transaction (member_end()).
 */
void cluster_join(Cluster *k, Client *c, uint64_t id, Group *g, const char *description);

/* Delete the group in the cluster: every node's waiters learn it (EIDRM). */
void cluster_delete(Cluster *k, Client *c, uint64_t id, Group *g);
