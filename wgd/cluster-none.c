/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cluster groups in a wgd built without etcd (meson -Detcd=disabled): no --etcd, so no
 * cluster, and none of the requests below can come (dispatch.c asks for them only on a cluster
 * group, which only a cluster makes).
 */

#include <errno.h>
#include <stdlib.h>

#include "cluster.h"
#include "reply.h"

int cluster_new(Server *s, const ClusterOptions *o, Cluster **ret) {
        return -EOPNOTSUPP;
}

Cluster *cluster_free(Cluster *k) {
        return NULL;
}

const char *cluster_node(const Cluster *k) {
        return "";
}

void cluster_create(
        Cluster *k, Client *c, uint64_t id, const GroupFields *f, uint64_t count, bool exist_ok, bool open) {
        reply_error(c, id, -EOPNOTSUPP, "This wgd was built without cluster groups.");
}

void cluster_add(Cluster *k, Client *c, uint64_t id, Group *g, int64_t delta) {
        reply_error(c, id, -EOPNOTSUPP, "This wgd was built without cluster groups.");
}

void cluster_reset(Cluster *k, Client *c, uint64_t id, Group *g) {
        reply_error(c, id, -EOPNOTSUPP, "This wgd was built without cluster groups.");
}

void cluster_join(Cluster *k, Client *c, uint64_t id, Group *g, const char *description) {
        reply_error(c, id, -EOPNOTSUPP, "This wgd was built without cluster groups.");
}

void cluster_delete(Cluster *k, Client *c, uint64_t id, Group *g) {
        reply_error(c, id, -EOPNOTSUPP, "This wgd was built without cluster groups.");
}
