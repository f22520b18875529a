/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cluster groups on etcd (cluster.h says what lives where). The node's view of each cluster
 * group is its last known state key (value and mod_revision), taken from the answers to its own
 * transactions and from the watch, whichever is newer: a state is applied only if its
 * mod_revision is above the one applied, so the two sources never take the mirror backwards.
 *
 * Exactly once. A change is a transaction "if state's mod_revision is still R: put the new state
 * and op/NODE = SEQ; else read state and op/NODE". Two transactions that compare the same R
 * cannot both succeed. When the answer is lost (a timeout, a broken connection), the same
 * transaction is sent again: if the first took effect, the second's compare fails, and its reads
 * show op/NODE = SEQ, which says that the change is in; if not, at most the second takes effect.
 * Only a change that never got through (etcd unreachable until the deadline) is answered with an
 * error, and then etcd has not counted it, unless the error is a timeout: etcd may then have
 * counted it, as with any store that times out (wg.proto).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cluster.h"
#include "etcd.h"
#include "log.h"
#include "macro.h"
#include "reply.h"
#include "segment.h"
#include "time-util.h"
#include "wg-private.h"

#define KEY_PREFIX "/wg/v1/g/"
#define STREQ(a, b) (strcmp((a), (b)) == 0)
/* Changes of one group batched into one transaction, at most. */
#define BATCH_MAX 256
/* How long a change may take to get through to etcd, retries included. */
#define CHANGE_DEADLINE_USEC (15 * USEC_PER_SEC)
#define RETRY_USEC (200 * UINT64_C(1000))
#define RESYNC_USEC (1 * USEC_PER_SEC)

typedef struct State {
        uint64_t count, generation;
        bool broken;
} State;

struct ClusterGroup {
        Cluster *cluster;
        Group *group;

        /* The state as last applied, and its key's mod_revision. */
        int64_t state_revision;
        uint64_t count, generation;
        bool broken;

        ClusterOp *queue; /* waiting for the next transaction, oldest last */
        ClusterOp *batch; /* in the transaction in flight */
        EtcdCall *call;
        sd_event_source *retry;
        uint64_t seq;            /* op/NODE of the transaction in flight */
        State base;              /* the state it was worked out against: its answers' */
        int64_t base_revision;   /* and that state's mod_revision, which it compares */
        uint64_t batch_deadline; /* CLOCK_MONOTONIC: give up on it then */
        int last_error;          /* of the last try that got no answer */
        bool seen;               /* in the last full read of etcd */

        LIST_FIELDS(ClusterGroup, groups);
};

struct Cluster {
        Server *server;
        sd_event *event;
        Etcd *etcd;
        char *node;

        ClusterGroup *groups;
        uint64_t seq;

        ClusterOp *calls; /* creates and deletes waiting for etcd (CreateCall, DeleteCall) */
        EtcdCall *sync_call;
        EtcdWatch *watch;
        int64_t watch_from; /* where the watch (re)starts; 0: sync first */
        sd_event_source *resync;
};

/* ---- keys and values ------------------------------------------------------------------ */

static int group_key(const char *name, const char *what, char *buf, size_t size) {
        int n = snprintf(buf, size, KEY_PREFIX "%s/%s", name, what);

        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* "NAME" and "meta", "state" or "op/NODE" from a key under KEY_PREFIX; -EINVAL if it is not one. */
static int key_split(const char *key, size_t len, char name[static WG_NAME_MAX + 1], const char **ret_what) {
        const char *p, *slash;

        if (len < strlen(KEY_PREFIX) || memcmp(key, KEY_PREFIX, strlen(KEY_PREFIX)) != 0 ||
            strlen(key) != len)
                return -EINVAL;
        p = key + strlen(KEY_PREFIX);
        slash = strchr(p, '/');
        if (!slash || slash == p || (size_t) (slash - p) > WG_NAME_MAX)
                return -EINVAL;
        memcpy(name, p, (size_t) (slash - p));
        name[slash - p] = 0;
        if (!group_name_valid(name))
                return -EINVAL;
        *ret_what = slash + 1;
        return 0;
}

static json_object *meta_json(const GroupFields *f) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (json_object_object_add(o, "owner", json_object_new_int64(f->owner)) < 0 ||
            json_object_object_add(o, "gid", json_object_new_int64(f->gid)) < 0 ||
            json_object_object_add(o, "mode", json_object_new_int64(f->mode)) < 0 ||
            json_object_object_add(o, "created_usec", json_object_new_uint64(f->created_usec)) < 0 ||
            json_object_object_add(o, "on_abandon", json_object_new_int64(f->on_abandon)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int json_u64(json_object *o, const char *field, uint64_t max, uint64_t *ret) {
        json_object *v;
        int64_t i;

        if (!json_object_object_get_ex(o, field, &v) || !json_object_is_type(v, json_type_int))
                return -EBADMSG;
        errno = 0;
        i = json_object_get_int64(v);
        if (errno != 0 || i < 0 || (uint64_t) i > max)
                return -EBADMSG;
        *ret = (uint64_t) i;
        return 0;
}

/* A meta value from etcd: anybody with write access to etcd's keys could have written it. */
static int meta_parse(const char *value, size_t len, const char *name, GroupFields *ret) {
        json_object *o;
        uint64_t owner, gid, mode, created, policy;
        int r = -EBADMSG;

        o = json_tokener_parse(value);
        if (!o || strlen(value) != len)
                goto finish;
        if (json_u64(o, "owner", UINT32_MAX - 1, &owner) < 0 ||
            json_u64(o, "gid", UINT32_MAX - 1, &gid) < 0 || json_u64(o, "mode", 0666, &mode) < 0 ||
            (mode & 0600) != 0600 || json_u64(o, "created_usec", UINT64_MAX, &created) < 0 ||
            json_u64(o, "on_abandon", WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK, &policy) < 0 ||
            policy == 0)
                goto finish;
        *ret = (GroupFields) {
                .owner = (uid_t) owner,
                .gid = (gid_t) gid,
                .mode = (uint32_t) mode,
                .created_usec = created,
                .on_abandon = (Wg__V1__AbandonPolicy) policy,
                .name = name,
                .cluster = true,
        };
        r = 0;
finish:
        json_object_put(o);
        return r;
}

static json_object *state_json(const State *st) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (json_object_object_add(o, "count", json_object_new_int64((int64_t) st->count)) < 0 ||
            json_object_object_add(o, "generation", json_object_new_int64((int64_t) st->generation)) < 0 ||
            json_object_object_add(o, "broken", json_object_new_boolean(st->broken)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int state_parse(const char *value, size_t len, State *ret) {
        json_object *o, *b;
        int r = -EBADMSG;

        o = json_tokener_parse(value);
        if (!o || strlen(value) != len)
                goto finish;
        if (json_u64(o, "count", WG_STATE_COUNT_MASK, &ret->count) < 0 ||
            json_u64(o, "generation", WG_STATE_GEN_MASK, &ret->generation) < 0)
                goto finish;
        ret->broken = json_object_object_get_ex(o, "broken", &b) && json_object_get_boolean(b);
        r = 0;
finish:
        json_object_put(o);
        return r;
}

/* {"key": K, "value": V} for a put of @key to @value (a JSON value, serialized). */
static json_object *request_put(const char *key, json_object *value) {
        json_object *put = json_object_new_object(), *req = json_object_new_object();
        const char *text = value ? json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN) : NULL;

        if (!put || !req || !text || etcd_json_add_bytes(put, "key", key, strlen(key)) < 0 ||
            etcd_json_add_bytes(put, "value", text, strlen(text)) < 0 ||
            json_object_object_add(req, "request_put", TAKE_PTR(put)) < 0) {
                json_object_put(put);
                json_object_put(req);
                return NULL;
        }
        return req;
}

static json_object *request_range(const char *key) {
        json_object *range = json_object_new_object(), *req = json_object_new_object();

        if (!range || !req || etcd_json_add_bytes(range, "key", key, strlen(key)) < 0 ||
            json_object_object_add(req, "request_range", TAKE_PTR(range)) < 0) {
                json_object_put(range);
                json_object_put(req);
                return NULL;
        }
        return req;
}

/* A compare of @key's @target ("MOD", "CREATE", "VERSION") with @value, EQUAL or GREATER. */
static json_object *
compare(const char *key, const char *target, const char *field, int64_t value, bool greater) {
        json_object *c = json_object_new_object();

        if (!c || etcd_json_add_bytes(c, "key", key, strlen(key)) < 0 ||
            json_object_object_add(c, "target", json_object_new_string(target)) < 0 ||
            (greater && json_object_object_add(c, "result", json_object_new_string("GREATER")) < 0) ||
            etcd_json_add_int64(c, field, value) < 0) {
                json_object_put(c);
                return NULL;
        }
        return c;
}

static json_object *txn_new(json_object *cmp, json_object *success, json_object *failure) {
        json_object *t = json_object_new_object(), *a = json_object_new_array();

        if (!t || !a || !cmp || !success || !failure || json_object_array_add(a, cmp) < 0)
                goto fail;
        cmp = NULL;
        if (json_object_object_add(t, "compare", TAKE_PTR(a)) < 0 ||
            json_object_object_add(t, "success", TAKE_PTR(success)) < 0 ||
            json_object_object_add(t, "failure", TAKE_PTR(failure)) < 0)
                goto fail;
        return t;
fail:
        json_object_put(t);
        json_object_put(a);
        json_object_put(cmp);
        json_object_put(success);
        json_object_put(failure);
        return NULL;
}

static json_object *array_of(json_object *a, json_object *b, json_object *c) {
        json_object *arr = json_object_new_array();
        json_object *items[] = { a, b, c };
        bool ok = arr != NULL;

        for (size_t i = 0; i < ELEMENTSOF(items); i++) {
                if (!items[i])
                        continue;
                if (ok && json_object_array_add(arr, items[i]) == 0)
                        continue;
                ok = false;
                json_object_put(items[i]);
        }
        if (!ok) {
                json_object_put(arr);
                return NULL;
        }
        return arr;
}

/* The kv of the @i-th response of a txn answer, if it is a range that found one. */
static json_object *txn_range_kv(json_object *reply, size_t i) {
        json_object *responses, *resp, *range, *kvs;

        if (!json_object_object_get_ex(reply, "responses", &responses) ||
            !json_object_is_type(responses, json_type_array) || i >= json_object_array_length(responses))
                return NULL;
        resp = json_object_array_get_idx(responses, i);
        if (!json_object_object_get_ex(resp, "response_range", &range) &&
            !json_object_object_get_ex(resp, "responseRange", &range))
                return NULL;
        if (!json_object_object_get_ex(range, "kvs", &kvs) || !json_object_is_type(kvs, json_type_array) ||
            json_object_array_length(kvs) == 0)
                return NULL;
        return json_object_array_get_idx(kvs, 0);
}

static bool txn_succeeded(json_object *reply) {
        json_object *v;

        return json_object_object_get_ex(reply, "succeeded", &v) && json_object_get_boolean(v);
}

/* ---- the mirror ----------------------------------------------------------------------- */

/* Apply @st at @revision to the mirror, unless the mirror has a newer state already. */
static void apply_state(ClusterGroup *cg, const State *st, int64_t revision) {
        if (revision <= cg->state_revision)
                return;
        cg->state_revision = revision;
        cg->count = st->count;
        cg->generation = st->generation;
        cg->broken = st->broken;
        /* Waiters on the segment, and wgd's own watcher for protocol Waits, are woken by it. */
        wg__mirror_store(cg->group->handle, st->count, st->generation, st->broken, false, NULL);
}

static ClusterGroup *cluster_group_new(Cluster *k, Group *g) {
        ClusterGroup *cg = calloc(1, sizeof(*cg));

        if (!cg)
                return NULL;
        cg->cluster = k;
        cg->group = g;
        g->cluster = cg;
        LIST_PREPEND(groups, k->groups, cg);
        return cg;
}

static void op_answer(ClusterOp *op, Group *g, int error, const char *message) {
        Client *c = cluster_op_unlink(op);
        uint64_t id = op->id;

        free(op);
        if (!c)
                return;
        if (error == 0)
                reply_group(c, id, g, false);
        else
                reply_error(c, id, error, "Group '%s': %s.", g->name, message ? message : strerror(-error));
        client_pending_done(c);
}

static void ops_fail(ClusterOp **list, Group *g, int error, const char *message) {
        while (*list) {
                ClusterOp *op = *list;

                LIST_REMOVE(by_owner, *list, op);
                op_answer(op, g, error, message);
        }
}

/* Forget @cg: its requests are answered with @error; the Group stays, as the caller decides. */
static void cluster_group_free(ClusterGroup *cg, int error, const char *message) {
        if (!cg)
                return;
        etcd_call_cancel(cg->call);
        sd_event_source_disable_unref(cg->retry);
        ops_fail(&cg->batch, cg->group, error, message);
        ops_fail(&cg->queue, cg->group, error, message);
        LIST_REMOVE(groups, cg->cluster->groups, cg);
        cg->group->cluster = NULL;
        free(cg);
}

/* The group is gone from the cluster: its waiters here learn it, as those of a local Delete. */
static void group_gone(Cluster *k, Group *g) {
        cluster_group_free(g->cluster, -EIDRM, "deleted in the cluster");
        log_info("Cluster group %s was deleted.", g->name);
        server_delete_group(k->server, g);
        server_update_status(k->server);
}

/* Make the local mirror of cluster group @f->name, if it is not there yet. NULL: could not. */
static Group *mirror_group(Cluster *k, const GroupFields *f) {
        Group *g = server_find_group(k->server, f->name);
        int r;

        if (g)
                return g->cluster ? g : NULL; /* a local group of that name hides it here */
        r = server_add_group(k->server, f, &g);
        if (r < 0) {
                log_warning_errno(r, "Failed to mirror cluster group %s: %m", f->name);
                return NULL;
        }
        if (!cluster_group_new(k, g)) {
                server_delete_group(k->server, g);
                return NULL;
        }
        log_info("Mirroring cluster group %s (owner %u, mode %04o).", g->name, (unsigned) g->owner, g->mode);
        server_update_status(k->server);
        return g;
}

/* ---- changes: add, done, reset ---------------------------------------------------------- */

static void batch_send(ClusterGroup *cg, bool again);

/*
 * Work out each request of the batch against the state @st, in order, as the segment would: its
 * answer, and the state they leave. Returns how many of them change something.
 */
static unsigned batch_apply(ClusterGroup *cg, State *st) {
        unsigned changes = 0;

        /* The batch is linked newest first: apply from the tail. */
        ClusterOp *tail = cg->batch;
        while (tail && tail->by_owner_next)
                tail = tail->by_owner_next;

        for (ClusterOp *op = tail; op; op = op->by_owner_prev) {
                op->result = 0;
                if (op->kind == CLUSTER_OP_RESET) {
                        st->count = 0;
                        st->generation = (st->generation + 1) & WG_STATE_GEN_MASK;
                        st->broken = false;
                        changes++;
                        continue;
                }
                if (st->broken) {
                        op->result = -EOWNERDEAD;
                        continue;
                }
                if (op->delta >= 0) {
                        if ((uint64_t) op->delta > WG_STATE_COUNT_MASK - st->count) {
                                op->result = -EOVERFLOW;
                                continue;
                        }
                        if (op->delta == 0)
                                continue;
                        st->count += (uint64_t) op->delta;
                } else {
                        uint64_t n = (uint64_t) (-(op->delta + 1)) + 1;

                        if (n > st->count) {
                                op->result = -ERANGE;
                                continue;
                        }
                        st->count -= n;
                        if (st->count == 0)
                                st->generation = (st->generation + 1) & WG_STATE_GEN_MASK;
                }
                changes++;
        }
        return changes;
}

static void batch_answer(ClusterGroup *cg) {
        Group *g = cg->group;

        while (cg->batch) {
                ClusterOp *op = cg->batch;

                LIST_REMOVE(by_owner, cg->batch, op);
                op_answer(
                        op,
                        g,
                        op->result,
                        op->result == -ERANGE             ? "the counter would go below zero" :
                                op->result == -EOVERFLOW  ? "the counter would go above its maximum" :
                                op->result == -EOWNERDEAD ? "the group is broken; reset it first" :
                                                            NULL);
        }
}

/* The next batch, if requests are waiting and none is in flight. */
static void batch_next(ClusterGroup *cg) {
        unsigned n = 0;

        if (cg->batch || cg->call || cg->retry || !cg->queue)
                return;
        /* The oldest BATCH_MAX requests, oldest first: the queue is newest first. */
        while (cg->queue && n < BATCH_MAX) {
                ClusterOp *op = cg->queue;

                while (op->by_owner_next)
                        op = op->by_owner_next;
                LIST_REMOVE(by_owner, cg->queue, op);
                LIST_PREPEND(by_owner, cg->batch, op);
                n++;
        }
        cg->seq = ++cg->cluster->seq;
        cg->batch_deadline = now_usec() + CHANGE_DEADLINE_USEC;
        cg->last_error = 0;
        batch_send(cg, false);
}

static void batch_done(ClusterGroup *cg) {
        batch_answer(cg);
        batch_next(cg);
}

static void batch_fail(ClusterGroup *cg, int error, const char *message) {
        ops_fail(&cg->batch, cg->group, error, message);
        batch_next(cg);
}

static int on_batch_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        ClusterGroup *cg = userdata;

        cg->retry = sd_event_source_disable_unref(cg->retry);
        batch_send(cg, /* again= */ true);
        return 0;
}

/* An answer that did not come: try the same transaction again, until the batch's deadline. */
static void batch_again(ClusterGroup *cg, int error) {
        int r;

        cg->last_error = error;
        if (error == -EACCES || now_usec() + RETRY_USEC >= cg->batch_deadline) {
                batch_fail(
                        cg,
                        error == -EHOSTUNREACH   ? -EHOSTUNREACH :
                                error == -EACCES ? -EACCES :
                                                   -ETIMEDOUT,
                        error == -EHOSTUNREACH ?
                                "etcd cannot be reached" :
                                error == -EACCES ?
                                "etcd refused wgd's credentials" :
                                "etcd did not answer in time; the change may have been counted");
                return;
        }
        r = sd_event_add_time_relative(
                cg->cluster->event, &cg->retry, CLOCK_MONOTONIC, RETRY_USEC, 0, on_batch_retry, cg);
        if (r < 0)
                batch_fail(cg, r, NULL);
}

static void on_batch_reply(EtcdCall *call, int error, json_object *reply, void *userdata) {
        ClusterGroup *cg = userdata;
        char *value = NULL;
        size_t len;
        json_object *kv;
        int64_t revision, mod;
        State st;

        cg->call = NULL;
        if (error < 0) {
                log_debug_errno(error, "Change of cluster group %s got no answer: %m", cg->group->name);
                batch_again(cg, error);
                return;
        }
        if (etcd_json_get_revision(reply, &revision) < 0)
                goto bad;

        if (txn_succeeded(reply)) {
                /*
                 * What etcd now holds is the batch applied to the state it was sent against, not
                 * to the mirror's: the watch may have brought this very change already.
                 */
                st = cg->base;
                (void) batch_apply(cg, &st);
                apply_state(cg, &st, revision);
                batch_done(cg);
                return;
        }

        /* The state changed since we last saw it: its value now, and whether our change is in. */
        kv = txn_range_kv(reply, 0);
        if (!kv || etcd_json_get_bytes(kv, "value", (void **) &value, &len) < 0 ||
            etcd_json_get_int64(kv, "mod_revision", &mod) < 0 || state_parse(value, len, &st) < 0) {
                free(value);
                if (!kv) {
                        /* No state at all: the group was deleted meanwhile. */
                        group_gone(cg->cluster, cg->group);
                        return;
                }
                goto bad;
        }
        free(value);
        value = NULL;

        kv = txn_range_kv(reply, 1);
        if (kv && etcd_json_get_bytes(kv, "value", (void **) &value, &len) == 0) {
                char seq[32];

                snprintf(seq, sizeof(seq), "%" PRIu64, cg->seq);
                if (strcmp(value, seq) == 0) {
                        /*
                         * An earlier try of this very transaction took effect, and its answer got
                         * lost. The state read now may include changes after it: answer with what
                         * the batch did to the state it was sent against.
                         */
                        State mine = cg->base;

                        free(value);
                        (void) batch_apply(cg, &mine);
                        apply_state(cg, &st, mod);
                        batch_done(cg);
                        return;
                }
        }
        free(value);

        apply_state(cg, &st, mod);
        cg->seq = ++cg->cluster->seq; /* a new try, compared with the new state */
        batch_send(cg, false);
        return;

bad:
        log_warning("Unexpected answer of etcd to a change of cluster group %s.", cg->group->name);
        batch_fail(cg, -EBADMSG, "etcd's answer made no sense");
}

/*
 * Send the batch's transaction: worked out against the mirror's state, or, @again after an
 * answer that got lost, the very same transaction as before (the same state compared, the same
 * op/NODE): worked out against a newer state, which may be its own effect, it could count twice.
 */
static void batch_send(ClusterGroup *cg, bool again) {
        Cluster *k = cg->cluster;
        char state_key[128], op_key[256], seq[32];
        json_object *txn, *value;
        State st;
        int r;

        if (!again) {
                cg->base = (State) { cg->count, cg->generation, cg->broken };
                cg->base_revision = cg->state_revision;
        }
        st = cg->base;
        if (batch_apply(cg, &st) == 0) {
                /* Nothing changes: answer from the state as it is. */
                batch_done(cg);
                return;
        }

        snprintf(seq, sizeof(seq), "%" PRIu64, cg->seq);
        if (group_key(cg->group->name, "state", state_key, sizeof(state_key)) < 0 ||
            snprintf(op_key, sizeof(op_key), KEY_PREFIX "%s/op/%s", cg->group->name, k->node) >=
                    (int) sizeof(op_key)) {
                batch_fail(cg, -ENAMETOOLONG, NULL);
                return;
        }
        value = state_json(&st);
        txn =
                txn_new(compare(state_key, "MOD", "mod_revision", cg->base_revision, false),
                        array_of(
                                request_put(state_key, value),
                                request_put(op_key, json_object_new_string(seq)),
                                NULL),
                        array_of(request_range(state_key), request_range(op_key), NULL));
        json_object_put(value);
        if (!txn) {
                batch_fail(cg, -ENOMEM, NULL);
                return;
        }
        r = etcd_call(k->etcd, "kv/txn", txn, on_batch_reply, cg, &cg->call);
        if (r < 0)
                batch_fail(cg, r, NULL);
}

static void queue_op(Cluster *k, Client *c, uint64_t id, Group *g, ClusterOpKind kind, int64_t delta) {
        ClusterOp *op;

        assert(g->cluster);
        if (c->n_cluster_ops + c->n_waits >= k->server->limits.waits_per_connection) {
                reply_error(c, id, -EBUSY, "This connection has as many requests in flight as it may.");
                return;
        }
        op = calloc(1, sizeof(*op));
        if (!op) {
                reply_error(c, id, -ENOMEM, "Out of memory.");
                return;
        }
        *op = (ClusterOp) {
                .kind = kind,
                .id = id,
                .delta = delta,
        };
        cluster_op_link(op, c);
        LIST_PREPEND(by_owner, g->cluster->queue, op);
        batch_next(g->cluster);
}

void cluster_add(Cluster *k, Client *c, uint64_t id, Group *g, int64_t delta) {
        queue_op(k, c, id, g, CLUSTER_OP_ADD, delta);
}

void cluster_reset(Cluster *k, Client *c, uint64_t id, Group *g) {
        queue_op(k, c, id, g, CLUSTER_OP_RESET, 0);
}

/* ---- create and delete ------------------------------------------------------------------ */

/*
 * A Create or Delete waiting for etcd: its op is linked to its client (which may go meanwhile)
 * and to the cluster's calls, which cluster_free() cancels and frees.
 */
typedef struct CreateCall {
        ClusterOp op; /* first: the cluster's list holds the op */
        Cluster *cluster;
        EtcdCall *call;
        bool exist_ok, open;
        GroupFields fields;
        char name[WG_NAME_MAX + 1];
        State state;
} CreateCall;

static void call_link(Cluster *k, ClusterOp *op, Client *c, uint64_t id, ClusterOpKind kind) {
        op->kind = kind;
        op->id = id;
        cluster_op_link(op, c);
        LIST_PREPEND(by_owner, k->calls, op);
}

/* Done with a create's or delete's call: its client, if still there, to answer. */
static Client *call_unlink(Cluster *k, ClusterOp *op) {
        LIST_REMOVE(by_owner, k->calls, op);
        return cluster_op_unlink(op);
}

static void on_create_reply(EtcdCall *call, int error, json_object *reply, void *userdata) {
        CreateCall *cc = userdata;
        Cluster *k = cc->cluster;
        Client *c = call_unlink(k, &cc->op);
        char *value = NULL;
        size_t len;
        int64_t revision, mod;
        json_object *kv;
        GroupFields existing;
        State st;
        Group *g;

        if (error < 0) {
                if (c)
                        reply_error(
                                c,
                                cc->op.id,
                                error == -EHOSTUNREACH   ? -EHOSTUNREACH :
                                        error == -EACCES ? -EACCES :
                                                           -ETIMEDOUT,
                                "Could not create cluster group '%s': %s.",
                                cc->name,
                                error == -EHOSTUNREACH ? "etcd cannot be reached" : strerror(-error));
                goto finish;
        }
        if (etcd_json_get_revision(reply, &revision) < 0)
                goto bad;

        if (txn_succeeded(reply)) {
                g = mirror_group(k, &cc->fields);
                if (!g) {
                        if (c)
                                reply_error(
                                        c,
                                        cc->op.id,
                                        -EEXIST,
                                        "A local group '%s' exists on this node.",
                                        cc->name);
                        goto finish;
                }
                apply_state(g->cluster, &cc->state, revision);
                log_info(
                        "Created cluster group %s (owner %u, mode %04o)",
                        g->name,
                        (unsigned) g->owner,
                        g->mode);
                if (c)
                        reply_group(c, cc->op.id, g, cc->open);
                goto finish;
        }

        /* It exists: as the watch will tell, mirror it now, and answer as for a local one. */
        kv = txn_range_kv(reply, 0);
        if (!kv || etcd_json_get_bytes(kv, "value", (void **) &value, &len) < 0 ||
            meta_parse(value, len, cc->name, &existing) < 0)
                goto bad;
        free(value);
        value = NULL;
        g = mirror_group(k, &existing);
        kv = txn_range_kv(reply, 1);
        if (g && kv && etcd_json_get_bytes(kv, "value", (void **) &value, &len) == 0 &&
            etcd_json_get_int64(kv, "mod_revision", &mod) == 0 && state_parse(value, len, &st) == 0)
                apply_state(g->cluster, &st, mod);
        if (!c)
                goto finish;
        /* As Create and Open answer for a local group that exists. */
        if (!g || !cc->exist_ok)
                reply_error(c, cc->op.id, -EEXIST, "Group '%s' exists.", cc->name);
        else if (!cc->open)
                if (group_may(g, &c->peer, ACCESS_READ))
                        reply_group(c, cc->op.id, g, false);
                else
                        reply_error(c, cc->op.id, -EEXIST, "Group '%s' exists.", cc->name);
        else if (!group_may(g, &c->peer, ACCESS_WRITE))
                reply_error(c, cc->op.id, -EACCES, "Permission denied for group '%s'.", cc->name);
        else if (client_may_pass(c) < 0)
                reply_error(c, cc->op.id, -ETOOMANYREFS, "Too many segments passed and not read yet.");
        else
                reply_group(c, cc->op.id, g, true);
        goto finish;

bad:
        log_warning("Unexpected answer of etcd to the creation of cluster group %s.", cc->name);
        if (c)
                reply_error(c, cc->op.id, -EBADMSG, "etcd's answer made no sense.");
finish:
        free(value);
        free(cc);
        if (c)
                client_pending_done(c);
}

void cluster_create(
        Cluster *k, Client *c, uint64_t id, const GroupFields *f, uint64_t count, bool exist_ok, bool open) {
        char meta_key[128], state_key[128];
        json_object *meta, *state, *txn;
        CreateCall *cc;
        int r;

        cc = calloc(1, sizeof(*cc));
        if (!cc) {
                reply_error(c, id, -ENOMEM, "Out of memory.");
                return;
        }
        *cc = (CreateCall) {
                .cluster = k,
                .exist_ok = exist_ok,
                .open = open,
                .fields = *f,
                .state = { .count = count },
        };
        strcpy(cc->name, f->name);
        cc->fields.name = cc->name;
        cc->fields.cluster = true;

        if (group_key(f->name, "meta", meta_key, sizeof(meta_key)) < 0 ||
            group_key(f->name, "state", state_key, sizeof(state_key)) < 0) {
                free(cc);
                reply_error(c, id, -ENAMETOOLONG, "Name too long.");
                return;
        }
        meta = meta_json(&cc->fields);
        state = state_json(&cc->state);
        txn =
                txn_new(compare(meta_key, "CREATE", "create_revision", 0, false),
                        array_of(request_put(meta_key, meta), request_put(state_key, state), NULL),
                        array_of(request_range(meta_key), request_range(state_key), NULL));
        json_object_put(meta);
        json_object_put(state);
        r = txn ? etcd_call(k->etcd, "kv/txn", txn, on_create_reply, cc, &cc->call) : -ENOMEM;
        if (r < 0) {
                free(cc);
                reply_error(c, id, r, "Could not ask etcd: %s.", strerror(-r));
                return;
        }
        call_link(k, &cc->op, c, id, CLUSTER_OP_CREATE);
}

typedef struct DeleteCall {
        ClusterOp op; /* first, as in CreateCall */
        Cluster *cluster;
        EtcdCall *call;
        char name[WG_NAME_MAX + 1];
} DeleteCall;

static void on_delete_reply(EtcdCall *call, int error, json_object *reply, void *userdata) {
        DeleteCall *dc = userdata;
        Cluster *k = dc->cluster;
        Client *c = call_unlink(k, &dc->op);
        Group *g = server_find_group(k->server, dc->name);

        if (error < 0) {
                if (c)
                        reply_error(
                                c,
                                dc->op.id,
                                error == -EHOSTUNREACH ? -EHOSTUNREACH : -ETIMEDOUT,
                                "Could not delete cluster group '%s': %s.",
                                dc->name,
                                error == -EHOSTUNREACH ? "etcd cannot be reached" : strerror(-error));
        } else {
                /* Deleted now, or by somebody else before: gone either way. */
                if (g && g->cluster)
                        group_gone(k, g);
                if (c) {
                        if (txn_succeeded(reply))
                                reply_deleted(c, dc->op.id);
                        else
                                reply_error(c, dc->op.id, -ENOENT, "No group '%s'.", dc->name);
                }
        }
        free(dc);
        if (c)
                client_pending_done(c);
}

void cluster_delete(Cluster *k, Client *c, uint64_t id, Group *g) {
        char meta_key[128], prefix[128];
        void *end = NULL;
        size_t end_size;
        json_object *del = NULL, *req = NULL, *txn;
        DeleteCall *dc;
        int r;

        dc = calloc(1, sizeof(*dc));
        if (!dc) {
                reply_error(c, id, -ENOMEM, "Out of memory.");
                return;
        }
        *dc = (DeleteCall) {
                .cluster = k,
        };
        strcpy(dc->name, g->name);

        (void) group_key(g->name, "meta", meta_key, sizeof(meta_key));
        snprintf(prefix, sizeof(prefix), KEY_PREFIX "%s/", g->name);
        r = etcd_prefix_range_end(prefix, strlen(prefix), &end, &end_size);
        if (r >= 0) {
                del = json_object_new_object();
                req = json_object_new_object();
                if (!del || !req || etcd_json_add_bytes(del, "key", prefix, strlen(prefix)) < 0 ||
                    etcd_json_add_bytes(del, "range_end", end, end_size) < 0 ||
                    json_object_object_add(req, "request_delete_range", TAKE_PTR(del)) < 0) {
                        json_object_put(del);
                        json_object_put(req);
                        req = NULL;
                }
        }
        free(end);
        txn =
                txn_new(compare(meta_key, "VERSION", "version", 0, true),
                        array_of(req, NULL, NULL),
                        json_object_new_array());
        r = txn ? etcd_call(k->etcd, "kv/txn", txn, on_delete_reply, dc, &dc->call) : -ENOMEM;
        if (r < 0) {
                free(dc);
                reply_error(c, id, r, "Could not ask etcd: %s.", strerror(-r));
                return;
        }
        call_link(k, &dc->op, c, id, CLUSTER_OP_DELETE);
}

/* ---- the watch: every node learns every change ----------------------------------------- */

static void watch_start(Cluster *k);
static void sync_start(Cluster *k);

static int on_resync(sd_event_source *s, uint64_t usec, void *userdata) {
        Cluster *k = userdata;

        k->resync = sd_event_source_disable_unref(k->resync);
        if (k->watch_from > 0)
                watch_start(k);
        else
                sync_start(k);
        return 0;
}

/* Try again in a while: the watch from where it stopped, or everything, after @forget. */
static void resync_later(Cluster *k, bool forget) {
        int r;

        if (forget)
                k->watch_from = 0;
        if (k->resync)
                return;
        r = sd_event_add_time_relative(k->event, &k->resync, CLOCK_MONOTONIC, RESYNC_USEC, 0, on_resync, k);
        if (r < 0)
                log_error_errno(
                        r, "Failed to schedule a new watch of etcd, cluster groups stay as they are: %m");
}

/* One key-value of etcd, as the range of the sync or a PUT event gives it. */
static void apply_kv(Cluster *k, json_object *kv, bool deleted) {
        char name[WG_NAME_MAX + 1], *key = NULL, *value = NULL;
        const char *what;
        size_t key_len, len;
        int64_t mod;
        GroupFields f;
        Group *g;
        State st;

        if (etcd_json_get_bytes(kv, "key", (void **) &key, &key_len) < 0 ||
            key_split(key, key_len, name, &what) < 0)
                goto finish;
        g = server_find_group(k->server, name);

        if (deleted) {
                if (STREQ(what, "meta") && g && g->cluster)
                        group_gone(k, g);
                goto finish;
        }
        if (etcd_json_get_bytes(kv, "value", (void **) &value, &len) < 0 ||
            etcd_json_get_int64(kv, "mod_revision", &mod) < 0)
                goto finish;
        if (STREQ(what, "meta")) {
                if (meta_parse(value, len, name, &f) < 0)
                        log_warning(
                                "Ignoring cluster group %s, whose metadata in etcd makes no sense.", name);
                else if (!(g = mirror_group(k, &f)))
                        log_warning(
                                "Cluster group %s is hidden on this node by a local group of that name.",
                                name);
                else
                        g->cluster->seen = true;
        } else if (STREQ(what, "state") && g && g->cluster) {
                if (state_parse(value, len, &st) < 0)
                        log_warning("Ignoring a state of cluster group %s that makes no sense.", name);
                else
                        apply_state(g->cluster, &st, mod);
        }
finish:
        free(key);
        free(value);
}

static void on_watch(EtcdWatch *w, int error, json_object *result, void *userdata) {
        Cluster *k = userdata;
        json_object *events;

        if (error < 0) {
                k->watch = NULL;
                log_warning_errno(error, "The watch of etcd ended, resuming it: %m");
                /* Compacted away: what changed since is lost, read everything again. */
                resync_later(k, error == -ERANGE);
                if (error != -ERANGE)
                        k->watch_from = etcd_watch_next_revision(w);
                return;
        }
        if (!json_object_object_get_ex(result, "events", &events) ||
            !json_object_is_type(events, json_type_array))
                return;
        for (size_t i = 0; i < json_object_array_length(events); i++) {
                json_object *ev = json_object_array_get_idx(events, i), *type, *kv;
                bool deleted = json_object_object_get_ex(ev, "type", &type) &&
                        STREQ(json_object_get_string(type), "DELETE");

                if (json_object_object_get_ex(ev, "kv", &kv))
                        apply_kv(k, kv, deleted);
        }
        k->watch_from = etcd_watch_next_revision(w);
}

static void watch_start(Cluster *k) {
        void *end = NULL;
        size_t end_size;
        EtcdWatchOptions o;
        int r;

        r = etcd_prefix_range_end(KEY_PREFIX, strlen(KEY_PREFIX), &end, &end_size);
        if (r >= 0) {
                o = (EtcdWatchOptions) {
                        .key = KEY_PREFIX,
                        .key_size = strlen(KEY_PREFIX),
                        .range_end = end,
                        .range_end_size = end_size,
                        .start_revision = k->watch_from,
                };
                r = etcd_watch(k->etcd, &o, on_watch, k, &k->watch);
        }
        free(end);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch etcd, trying again: %m");
                resync_later(k, false);
        }
}

/* Everything under the prefix, once: the cluster groups as they are, then the watch from there. */
static void on_sync_reply(EtcdCall *call, int error, json_object *reply, void *userdata) {
        Cluster *k = userdata;
        json_object *kvs;
        int64_t revision;
        unsigned n = 0;

        k->sync_call = NULL;
        if (error < 0 || etcd_json_get_revision(reply, &revision) < 0) {
                log_warning_errno(
                        error < 0 ? error : -EBADMSG,
                        "Failed to read the cluster groups from etcd, trying again: %m");
                resync_later(k, true);
                return;
        }
        LIST_FOREACH (groups, cg, k->groups)
                cg->seen = false;
        /* Metadata sorts before state ("meta" < "state"), so each group is made before its state. */
        if (json_object_object_get_ex(reply, "kvs", &kvs) && json_object_is_type(kvs, json_type_array))
                for (size_t i = 0; i < json_object_array_length(kvs); i++)
                        apply_kv(k, json_object_array_get_idx(kvs, i), false);
        /* Groups this node mirrors that etcd no longer has went while it did not watch. */
        LIST_FOREACH (groups, cg, k->groups)
                if (!cg->seen)
                        group_gone(k, cg->group);
                else
                        n++;
        k->watch_from = revision + 1;
        log_info("Following %u cluster groups in etcd from revision %" PRId64 ".", n, revision);
        watch_start(k);
}

static void sync_start(Cluster *k) {
        json_object *body = json_object_new_object();
        void *end = NULL;
        size_t end_size;
        int r;

        r = etcd_prefix_range_end(KEY_PREFIX, strlen(KEY_PREFIX), &end, &end_size);
        if (r >= 0 &&
            (!body || etcd_json_add_bytes(body, "key", KEY_PREFIX, strlen(KEY_PREFIX)) < 0 ||
             etcd_json_add_bytes(body, "range_end", end, end_size) < 0))
                r = -ENOMEM;
        free(end);
        if (r >= 0)
                r = etcd_call(k->etcd, "kv/range", TAKE_PTR(body), on_sync_reply, k, &k->sync_call);
        json_object_put(body);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the cluster groups from etcd, trying again: %m");
                resync_later(k, true);
        }
}

/* ---- the node ----------------------------------------------------------------------------- */

int cluster_new(Server *s, const ClusterOptions *o, Cluster **ret) {
        _cleanup_(cluster_freep) Cluster *k = NULL;
        EtcdOptions eo = {
                .endpoints = o->endpoints,
                .timeout_usec = o->timeout_usec,
                .user = o->user,
                .password = o->password,
                .ca_file = o->ca_file,
                .cert_file = o->cert_file,
                .key_file = o->key_file,
        };
        char host[256];
        int r;

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->server = s;
        k->event = s->event;

        if (o->node)
                k->node = strdup(o->node);
        else {
                if (gethostname(host, sizeof(host)) < 0)
                        return negative_errno();
                host[sizeof(host) - 1] = 0;
                k->node = strdup(host);
        }
        if (!k->node)
                return -ENOMEM;

        r = etcd_new(s->event, &eo, &k->etcd);
        if (r < 0)
                return r;

        sync_start(k);
        *ret = TAKE_PTR(k);
        return 0;
}

Cluster *cluster_free(Cluster *k) {
        if (!k)
                return NULL;
        while (k->groups)
                cluster_group_free(k->groups, -ESHUTDOWN, "wgd is stopping");
        while (k->calls) {
                ClusterOp *op = k->calls;
                Client *c = call_unlink(k, op);

                /* The op is the first member of either kind of call. */
                if (op->kind == CLUSTER_OP_CREATE)
                        etcd_call_cancel(((CreateCall *) op)->call);
                else
                        etcd_call_cancel(((DeleteCall *) op)->call);
                if (c)
                        reply_error(c, op->id, -ESHUTDOWN, "wgd is stopping.");
                free(op);
        }
        etcd_call_cancel(k->sync_call);
        etcd_watch_cancel(k->watch);
        etcd_free(k->etcd);
        sd_event_source_disable_unref(k->resync);
        free(k->node);
        free(k);
        return NULL;
}

const char *cluster_node(const Cluster *k) {
        return k->node;
}
