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
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cluster.h"
#include "etcd.h"
#include "fdstore.h"
#include "log.h"
#include "macro.h"
#include "member.h"
#include "reply.h"
#include "segment.h"
#include "time-util.h"
#include "wg-private.h"

#define KEY_PREFIX "/wg/v1/g/"
#define STREQ(a, b) (strcmp((a), (b)) == 0)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
/* Changes of one group batched into one transaction, at most. */
#define BATCH_MAX 256
/* How long a change may take to get through to etcd, retries included. */
#define CHANGE_DEADLINE_USEC (15 * USEC_PER_SEC)
#define RETRY_USEC (200 * UINT64_C(1000))
#define RESYNC_USEC (1 * USEC_PER_SEC)
/* After reads of etcd in a row that could not take everything: 1, 2, 4 ... 32 s (see resync_lost()). */
#define RESYNC_LOST_SHIFT_MAX 5

/* A group passed over: see Cluster.over. */
#define PASSED_OVER_MAX 32
typedef struct PassedOver {
        uid_t owner;     /* --max-groups-per-user */
        char *hidden_by; /* a local group's name; NULL if for the owner's limit */
} PassedOver;

typedef struct State {
        uint64_t count, generation;
        bool broken;
        /* How the members of the last generation in which one ended did, as the segment says. */
        bool has_outcome;
        struct wg_outcome outcome;
} State;

struct ClusterGroup {
        Cluster *cluster;
        Group *group;

        /* The state as last applied, and its key's mod_revision. */
        int64_t state_revision;
        State cur;

        ClusterOp *queue; /* waiting for the next transaction, oldest last */
        ClusterOp *batch; /* in the transaction in flight */
        EtcdCall *call;
        sd_event_source *retry;
        uint64_t seq;            /* op/NODE of the transaction in flight */
        State base;              /* the state it was worked out against: its answers' */
        State pending;           /* a member's transaction: the state it writes */
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
        /*
         * The groups of etcd that this node passed over since its last full read, by what would
         * make room for them (see on_room_made()): any group gone (--max-groups, or more to say
         * than there is room for), a group of an owner gone (--max-groups-per-user), a local
         * group of its name gone (hidden). And the timer that reads etcd again then, every
         * second at first, twice as long after each such read that mirrored nothing new.
         */
        bool over_any;
        PassedOver over[PASSED_OVER_MAX];
        size_t n_over;
        sd_event_source *room_timer;
        unsigned room_idle;  /* such reads in a row that mirrored nothing new */
        bool room_read;      /* the read under way is one */
        unsigned n_mirrored; /* groups the read under way mirrored anew */

        /*
         * The node's lease: its members' presence keys live as long as it does. Kept alive every
         * third of its TTL; a node that cannot renew it in time has lost its members, as etcd
         * will have deleted their keys (and another node abandoned them).
         */
        uint64_t lease_ttl_usec;
        int64_t lease; /* 0: none yet, or lost */
        EtcdCall *lease_call;
        sd_event_source *lease_timer;
        uint64_t lease_renewed; /* CLOCK_MONOTONIC */
        char *lease_fdname;     /* where it is parked for the next wgd: wl1.NODE.ID */
        bool lease_unparked;    /* parking it failed: said once, tried again at each renewal */
        bool restored;          /* the fdstore's members are back (after the first read of etcd) */

        /* Said once that following etcd (its read and watch), or the lease, fails: see trouble(). */
        bool follow_trouble, lease_trouble;
        /* Reads of etcd in a row (the watch's first) that could not take everything: resync_lost(). */
        unsigned n_lost;
};

/*
 * A failure that is tried again every second: a warning the first time, and until it works
 * again (trouble_over()) no more than debug messages, so that a node whose etcd is away, or
 * refuses its credentials, does not write to the journal every second.
 */
static void trouble(bool *said, int error, const char *what) {
        if (*said) {
                log_debug_errno(error, "%s, trying again: %m", what);
                return;
        }
        *said = true;
        log_warning_errno(error, "%s, trying again every second (quietly, until it works): %m", what);
}

static void trouble_over(bool *said, const char *what) {
        if (!*said)
                return;
        *said = false;
        log_notice("%s", what);
}

/* How loud the failure to take a key of etcd is: at debug level after the first (resync_lost()). */
static int lost_level(Cluster *k) {
        return k->n_lost > 0 ? LOG_DEBUG : LOG_WARNING;
}

/* How loud passing over a group is: at debug level in a read that room made (on_room_timer()). */
static int over_level(Cluster *k) {
        return k->room_read ? LOG_DEBUG : LOG_WARNING;
}

/*
 * Remember a group passed over for its @owner's limit, or hidden by a local group of its
 * @hidden_by name. More than PASSED_OVER_MAX, or no memory for the name: any group gone may
 * make room then.
 */
static void passed_over(Cluster *k, uid_t owner, const char *hidden_by) {
        PassedOver *p;

        for (size_t i = 0; i < k->n_over; i++)
                if (k->over[i].owner == owner &&
                    (hidden_by ? k->over[i].hidden_by && STREQ(k->over[i].hidden_by, hidden_by) :
                                 !k->over[i].hidden_by))
                        return;
        if (k->n_over == PASSED_OVER_MAX) {
                k->over_any = true;
                return;
        }
        p = &k->over[k->n_over];
        *p = (PassedOver) { .owner = owner };
        if (hidden_by && !(p->hidden_by = strdup(hidden_by))) {
                k->over_any = true;
                return;
        }
        k->n_over++;
}

static void passed_over_clear(Cluster *k) {
        for (size_t i = 0; i < k->n_over; i++)
                free(k->over[i].hidden_by);
        k->n_over = 0;
        k->over_any = false;
}

/* Whether room for @owner, or a local group's name @local_name freed, may fit a group passed over. */
static bool passed_over_helps(Cluster *k, uid_t owner, const char *local_name) {
        if (k->over_any)
                return true;
        for (size_t i = 0; i < k->n_over; i++)
                if (k->over[i].hidden_by ? local_name && STREQ(k->over[i].hidden_by, local_name) :
                                           k->over[i].owner == owner)
                        return true;
        return false;
}

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
        if (etcd_json_add(o, "owner", json_object_new_int64(f->owner)) < 0 ||
            etcd_json_add(o, "gid", json_object_new_int64(f->gid)) < 0 ||
            etcd_json_add(o, "mode", json_object_new_int64(f->mode)) < 0 ||
            etcd_json_add(o, "created_usec", json_object_new_uint64(f->created_usec)) < 0 ||
            etcd_json_add(o, "on_abandon", json_object_new_int64(f->on_abandon)) < 0) {
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
        if (etcd_json_add(o, "count", json_object_new_int64((int64_t) st->count)) < 0 ||
            etcd_json_add(o, "generation", json_object_new_int64((int64_t) st->generation)) < 0 ||
            etcd_json_add(o, "broken", json_object_new_boolean(st->broken)) < 0)
                goto fail;
        if (st->has_outcome) {
                json_object *out = json_object_new_object();

                if (etcd_json_add(o, "outcome", out) < 0)
                        goto fail;
                if (etcd_json_add(out, "generation", json_object_new_int64(st->outcome.generation)) < 0 ||
                    etcd_json_add(out, "succeeded", json_object_new_int64(st->outcome.succeeded)) < 0 ||
                    etcd_json_add(out, "failed", json_object_new_int64(st->outcome.failed)) < 0 ||
                    etcd_json_add(out, "abandoned", json_object_new_int64(st->outcome.abandoned)) < 0)
                        goto fail;
        }
        return o;
fail:
        json_object_put(o);
        return NULL;
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
        ret->has_outcome = json_object_object_get_ex(o, "outcome", &b);
        if (ret->has_outcome) {
                uint64_t gen, succeeded, failed, abandoned;

                if (json_u64(b, "generation", WG_STATE_GEN_MASK, &gen) < 0 ||
                    json_u64(b, "succeeded", UINT32_MAX, &succeeded) < 0 ||
                    json_u64(b, "failed", UINT32_MAX, &failed) < 0 ||
                    json_u64(b, "abandoned", UINT32_MAX, &abandoned) < 0)
                        goto finish;
                ret->outcome = (struct wg_outcome) {
                        .generation = (uint32_t) gen,
                        .succeeded = (uint32_t) succeeded,
                        .failed = (uint32_t) failed,
                        .abandoned = (uint32_t) abandoned,
                };
        }
        r = 0;
finish:
        json_object_put(o);
        return r;
}

/* {"key": K, "value": V} for a put of @key to @value (a JSON value, serialized). */
/* {"request_put": {"key": K, "value": V}}: a put of @key to the bytes of @text. */
static json_object *request_put_text(const char *key, const char *text) {
        json_object *put = json_object_new_object(), *req = json_object_new_object();

        if (!put || !req || !text || etcd_json_add_bytes(put, "key", key, strlen(key)) < 0 ||
            etcd_json_add_bytes(put, "value", text, strlen(text)) < 0 ||
            etcd_json_add(req, "request_put", TAKE_PTR(put)) < 0) {
                json_object_put(put);
                json_object_put(req);
                return NULL;
        }
        return req;
}

/* A put of @key to @value, a JSON value (serialized; still the caller's). */
static json_object *request_put(const char *key, json_object *value) {
        return request_put_text(
                key, value ? json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN) : NULL);
}

/* A put of @key tied to @lease (etcd deletes it when the lease expires). */
static json_object *request_put_leased(const char *key, json_object *value, int64_t lease) {
        json_object *req = request_put(key, value), *put;

        if (req && json_object_object_get_ex(req, "request_put", &put) &&
            etcd_json_add_int64(put, "lease", lease) == 0)
                return req;
        json_object_put(req);
        return NULL;
}

/* {@op: {"key": K}}: a range or a delete of the one key @key. */
static json_object *request_key(const char *op, const char *key) {
        json_object *inner = json_object_new_object(), *req = json_object_new_object();

        if (!inner || !req || etcd_json_add_bytes(inner, "key", key, strlen(key)) < 0 ||
            etcd_json_add(req, op, TAKE_PTR(inner)) < 0) {
                json_object_put(inner);
                json_object_put(req);
                return NULL;
        }
        return req;
}

static json_object *request_delete(const char *key) {
        return request_key("request_delete_range", key);
}

static json_object *request_range(const char *key) {
        return request_key("request_range", key);
}

/* A compare of @key's @target ("MOD", "CREATE", "VERSION") with @value, EQUAL or GREATER. */
static json_object *
compare(const char *key, const char *target, const char *field, int64_t value, bool greater) {
        json_object *c = json_object_new_object();

        if (!c || etcd_json_add_bytes(c, "key", key, strlen(key)) < 0 ||
            etcd_json_add(c, "target", json_object_new_string(target)) < 0 ||
            (greater && etcd_json_add(c, "result", json_object_new_string("GREATER")) < 0) ||
            etcd_json_add_int64(c, field, value) < 0) {
                json_object_put(c);
                return NULL;
        }
        return c;
}

/* A transaction: @cmp is one compare, or an array of them (all must hold). */
static json_object *txn_new(json_object *cmp, json_object *success, json_object *failure) {
        json_object *t = json_object_new_object(), *a = NULL;

        if (cmp && json_object_is_type(cmp, json_type_array))
                a = TAKE_PTR(cmp);
        else if (cmp) {
                a = json_object_new_array();
                if (!a || json_object_array_add(a, cmp) < 0)
                        goto fail;
                cmp = NULL;
        }
        if (!t || !a || !success || !failure)
                goto fail;
        if (etcd_json_add(t, "compare", TAKE_PTR(a)) < 0 ||
            etcd_json_add(t, "success", TAKE_PTR(success)) < 0 ||
            etcd_json_add(t, "failure", TAKE_PTR(failure)) < 0)
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

#define array_of(...)                                                                                       \
        array_of_n(                                                                                         \
                (json_object *[]) { __VA_ARGS__ },                                                          \
                sizeof((json_object *[]) { __VA_ARGS__ }) / sizeof(json_object *))

/*
 * An array of the items, whose references it takes; NULL if one of them is NULL (it could not be
 * made): a transaction must not go out with one of its operations missing.
 */
static json_object *array_of_n(json_object **items, size_t n) {
        json_object *arr = json_object_new_array();
        bool ok = arr != NULL;

        for (size_t i = 0; i < n; i++) {
                if (ok && items[i] && json_object_array_add(arr, items[i]) == 0)
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

static void member_end_hook(Member *m, Wg__V1__MemberState state, int32_t status, Client *c, uint64_t id);
static void remote_remove(Group *g, RemoteMember *rm);

/* ---- the mirror ----------------------------------------------------------------------- */

/* Apply @st at @revision to the mirror, unless the mirror has a newer state already. */
static void apply_state(ClusterGroup *cg, const State *st, int64_t revision) {
        if (revision <= cg->state_revision)
                return;
        cg->state_revision = revision;
        cg->cur = *st;
        /* Waiters on the segment, and wgd's own watcher for protocol Waits, are woken by it. */
        wg__mirror_store(
                cg->group->handle,
                st->count,
                st->generation,
                st->broken,
                false,
                st->has_outcome ? &st->outcome : NULL);
}

static ClusterGroup *cluster_group_new(Cluster *k, Group *g) {
        ClusterGroup *cg = calloc(1, sizeof(*cg));

        if (!cg)
                return NULL;
        cg->cluster = k;
        cg->group = g;
        g->cluster = cg;
        g->cluster_member_end = member_end_hook;
        g->node = k->node;
        LIST_PREPEND(groups, k->groups, cg);
        return cg;
}

static void op_free(ClusterOp *op) {
        if (op->kind == CLUSTER_OP_JOIN)
                member_free(op->member); /* never linked anywhere */
        else if (op->kind == CLUSTER_OP_END)
                op->member->ending = false; /* its group's still, and freed with it */
        free(op->key);
        free(op->remote);
        free(op);
}

static void op_answer(ClusterOp *op, Group *g, int error, const char *message) {
        Client *c = cluster_op_unlink(op);
        uint64_t id = op->id;

        op_free(op);
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
        while (cg->group->remote)
                remote_remove(cg->group, cg->group->remote);
        cg->group->cluster = NULL;
        cg->group->cluster_member_end = NULL;
        free(cg);
}

/* The group is gone from the cluster: its waiters here learn it, as those of a local Delete. */
static void group_gone(Cluster *k, Group *g) {
        cluster_group_free(g->cluster, -EIDRM, "deleted in the cluster");
        log_info("Cluster group %s was deleted.", g->name);
        server_delete_group(k->server, g);
        server_update_status(k->server);
}

/*
 * Make the local mirror of cluster group @f->name, if it is not there yet, and say why not
 * (logged here): -EEXIST, a local group of that name hides it; -ENOSPC or -EDQUOT, this node's
 * --max-groups or the owner's --max-groups-per-user here, which a group made by another node
 * (not @ours, whose Create this node checked before it asked etcd) must fit in, so that one
 * node's limits bound what it holds however many nodes there are. For these three the group is
 * passed over until room is made (on_room_made()).
 */
static bool take_own_create(Cluster *k, const GroupFields *f);

static int mirror_group(Cluster *k, const GroupFields *f, bool ours, Group **ret) {
        Group *g = server_find_group(k->server, f->name);
        int r;

        if (g) {
                if (!g->cluster) {
                        log_full(
                                over_level(k),
                                "Cluster group %s is hidden on this node by a local group of that name.",
                                f->name);
                        passed_over(k, f->owner, f->name);
                        return -EEXIST;
                }
                *ret = g;
                return 0;
        }
        if (!ours)
                ours = take_own_create(k, f);
        r = server_add_group(k->server, f, /* within_limits= */ !ours, &g);
        if (r == -ENOSPC || r == -EDQUOT) {
                log_full(
                        over_level(k),
                        "Not mirroring cluster group %s: %s as many groups as it may here (%s).",
                        f->name,
                        r == -ENOSPC ? "this node holds" : "its owner has",
                        r == -ENOSPC ? "--max-groups" : "--max-groups-per-user");
                /* Until room is made: on_room_made(). */
                if (r == -ENOSPC)
                        k->over_any = true;
                else
                        passed_over(k, f->owner, NULL);
                return r;
        }
        if (r < 0)
                return log_full_errno(lost_level(k), r, "Failed to mirror cluster group %s: %m", f->name);
        if (!cluster_group_new(k, g)) {
                server_delete_group(k->server, g);
                return log_full_errno(
                        lost_level(k), -ENOMEM, "Failed to mirror cluster group %s: %m", f->name);
        }
        log_info("Mirroring cluster group %s (owner %u, mode %04o).", g->name, (unsigned) g->owner, g->mode);
        k->n_mirrored++;
        server_update_status(k->server);
        *ret = g;
        return 0;
}

/* ---- changes: add, done, reset ---------------------------------------------------------- */

static void batch_send(ClusterGroup *cg, bool again);
static void member_send(ClusterGroup *cg, bool again);
static void on_member_reply(ClusterGroup *cg, int error, json_object *reply);
static int refused_read(ClusterGroup *cg, json_object *reply, bool *ret_ours);

static bool op_is_member(const ClusterOp *op) {
        return op->kind == CLUSTER_OP_JOIN || op->kind == CLUSTER_OP_END || op->kind == CLUSTER_OP_ABANDON;
}

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
        /*
         * The oldest BATCH_MAX requests, oldest first: the queue is newest first. A member's join
         * or end goes alone, in order with the adds around it.
         */
        while (cg->queue && n < BATCH_MAX) {
                ClusterOp *op = cg->queue;

                while (op->by_owner_next)
                        op = op->by_owner_next;
                if (n > 0 && (op_is_member(op) || op_is_member(cg->batch)))
                        break;
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

/*
 * A transaction of @cg's that etcd refused (its compare failed) read the state and op/NODE: the
 * state now (applied to the mirror), and whether our change is in all the same (*ret_ours: an
 * earlier try of this very transaction took effect, and its answer got lost). 0; -ENOENT if the
 * group has no state any more (deleted meanwhile); -EBADMSG for an answer that makes no sense.
 */
static int refused_read(ClusterGroup *cg, json_object *reply, bool *ret_ours) {
        _cleanup_free_ char *value = NULL, *marker = NULL;
        json_object *kv = txn_range_kv(reply, 0);
        char seq[32];
        int64_t mod;
        size_t len;
        State st;

        if (!kv)
                return -ENOENT;
        if (etcd_json_get_bytes(kv, "value", (void **) &value, &len) < 0 ||
            etcd_json_get_int64(kv, "mod_revision", &mod) < 0 || state_parse(value, len, &st) < 0)
                return -EBADMSG;
        apply_state(cg, &st, mod);

        /* The number this try wrote to op/NODE, as written: the bare digits. */
        snprintf(seq, sizeof(seq), "%" PRIu64, cg->seq);
        kv = txn_range_kv(reply, 1);
        *ret_ours =
                kv && etcd_json_get_bytes(kv, "value", (void **) &marker, &len) == 0 && STREQ(marker, seq);
        return 0;
}

static void on_batch_reply(EtcdCall *call, int error, json_object *reply, void *userdata) {
        ClusterGroup *cg = userdata;
        int64_t revision;
        bool ours;
        State st;
        int r;

        cg->call = NULL;
        if (op_is_member(cg->batch)) {
                on_member_reply(cg, error, reply);
                return;
        }
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
        r = refused_read(cg, reply, &ours);
        if (r == -ENOENT) {
                group_gone(cg->cluster, cg->group);
                return;
        }
        if (r < 0)
                goto bad;
        if (ours) {
                /* Its answer got lost: answer with what the batch did to the state it was sent against. */
                st = cg->base;
                (void) batch_apply(cg, &st);
                batch_done(cg);
                return;
        }
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
                cg->base = cg->cur;
                cg->base_revision = cg->state_revision;
        }
        if (op_is_member(cg->batch)) {
                member_send(cg, again);
                return;
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
                        array_of(request_put(state_key, value), request_put_text(op_key, seq)),
                        array_of(request_range(state_key), request_range(op_key)));
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

/* ---- members ------------------------------------------------------------------------------- */

/*
 * A member of a cluster group has three keys, under /wg/v1/g/NAME/: r/NODE.ID, its record, for as
 * long as it counts in the group; m/NODE.ID, its presence, tied to its node's lease; and, once it
 * ended, e/GENERATION/NODE.ID, how (for every node's reports). Its join puts r and m and adds one
 * to the count; its end (a Leave, its death) deletes both, writes e and does the done; a
 * presence that goes while its record is there means that its node's lease expired, and any node
 * that sees it abandons the member, the first one winning: the end's transaction compares that
 * the record is still there, so a member ends once, whoever ends it.
 */

static int member_key(const char *group, const char *kind, const char *key, char *buf, size_t size) {
        int n = snprintf(buf, size, KEY_PREFIX "%s/%s/%s", group, kind, key);

        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* What etcd keeps of a member: in r/ and m/, and with how it ended in e/. */
static json_object *member_json(const RemoteMember *rm, int state, int32_t status) {
        json_object *o = json_object_new_object();
        char id[32];

        snprintf(id, sizeof(id), "%016" PRIx64, rm->id);
        if (!o || etcd_json_add(o, "node", json_object_new_string(rm->node)) < 0 ||
            etcd_json_add(o, "id", json_object_new_string(id)) < 0 ||
            etcd_json_add(o, "pid", json_object_new_int64(rm->pid)) < 0 ||
            etcd_json_add(o, "description", json_object_new_string(rm->description)) < 0 ||
            etcd_json_add(o, "joined_usec", json_object_new_uint64(rm->joined_usec)) < 0 ||
            etcd_json_add(o, "generation", json_object_new_int64((int64_t) rm->generation)) < 0 ||
            (state != 0 &&
             (etcd_json_add(o, "state", json_object_new_int64(state)) < 0 ||
              etcd_json_add(o, "status", json_object_new_int64(status)) < 0 ||
              etcd_json_add(o, "ended_usec", json_object_new_uint64(now_realtime_usec())) < 0))) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static const char *json_str(json_object *o, const char *field) {
        json_object *v;

        return json_object_object_get_ex(o, field, &v) && json_object_is_type(v, json_type_string) ?
                json_object_get_string(v) :
                NULL;
}

/* A member's value from etcd (anybody who may write etcd's keys wrote it): checked, then kept. */
static int
member_parse(const char *value, const char *key, RemoteMember *rm, int *ret_state, int32_t *ret_status) {
        json_object *o = json_tokener_parse(value);
        const char *node, *id, *description;
        uint64_t pid, joined, generation, state = 0, status = 0;
        int r = -EBADMSG;

        if (!o)
                return r;
        node = json_str(o, "node");
        id = json_str(o, "id");
        description = json_str(o, "description");
        if (!node || !group_name_valid(node) || !id || strlen(id) != 16 || !description ||
            json_u64(o, "pid", INT32_MAX, &pid) < 0 || json_u64(o, "joined_usec", UINT64_MAX, &joined) < 0 ||
            json_u64(o, "generation", WG_STATE_GEN_MASK, &generation) < 0 || strlen(key) >= sizeof(rm->key))
                goto finish;
        if (ret_state &&
            (json_u64(o, "state", WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED, &state) < 0 ||
             json_u64(o, "status", UINT32_MAX, &status) < 0))
                goto finish;
        *rm = (RemoteMember) {
                .id = strtoull(id, NULL, 16),
                .pid = (pid_t) pid,
                .joined_usec = joined,
                .generation = generation,
        };
        strcpy(rm->key, key);
        strcpy(rm->node, node);
        snprintf(rm->description, sizeof(rm->description), "%s", description);
        if (ret_state) {
                *ret_state = (int) state;
                *ret_status = (int32_t) status;
        }
        r = 0;
finish:
        json_object_put(o);
        return r;
}

static RemoteMember *remote_find(Group *g, const char *key) {
        for (RemoteMember *rm = g->remote; rm; rm = rm->remote_next)
                if (STREQ(rm->key, key))
                        return rm;
        return NULL;
}

static void remote_remove(Group *g, RemoteMember *rm) {
        LIST_REMOVE(remote, g->remote, rm);
        g->n_remote--;
        free(rm);
}

static RemoteMember *local_as_remote(Cluster *k, const Member *m) {
        RemoteMember *rm = calloc(1, sizeof(*rm));

        if (!rm)
                return NULL;
        *rm = (RemoteMember) {
                .id = m->id,
                .pid = m->pid,
                .joined_usec = m->joined_usec,
                .generation = m->generation,
        };
        snprintf(rm->key, sizeof(rm->key), "%s.%016" PRIx64, k->node, m->id);
        snprintf(rm->node, sizeof(rm->node), "%s", k->node);
        snprintf(rm->description, sizeof(rm->description), "%s", m->description);
        return rm;
}

/* How @rm ended, in @g's records (once, however often it is told). */
static void record_end(Group *g, const RemoteMember *rm, int state, int32_t status) {
        MemberRecord r = {
                .id = rm->id,
                .pid = rm->pid,
                .state = (Wg__V1__MemberState) state,
                .status = status,
                .joined_usec = rm->joined_usec,
                .generation = rm->generation,
        };

        snprintf(r.description, sizeof(r.description), "%s", rm->description);
        snprintf(r.node, sizeof(r.node), "%s", rm->node);
        group_add_record(g, &r);
}

static void queue_member_op(ClusterGroup *cg, ClusterOp *op) {
        LIST_PREPEND(by_owner, cg->queue, op);
        batch_next(cg);
}

/* End @rm (a copy is the op's) in etcd as @state, for its node. 0 or -ENOMEM. */
static int queue_remote_end(ClusterGroup *cg, const RemoteMember *rm, Wg__V1__MemberState state) {
        ClusterOp *op = calloc(1, sizeof(*op));

        if (!op || !(op->remote = malloc(sizeof(*rm))) || !(op->key = strdup(rm->key))) {
                if (op)
                        free(op->remote);
                free(op);
                log_error("Out of memory: cannot end member %s of %s in etcd.", rm->key, cg->group->name);
                return -ENOMEM;
        }
        *op->remote = *rm;
        op->kind = CLUSTER_OP_ABANDON;
        op->state = state;
        queue_member_op(cg, op);
        return 0;
}

/* Abandon @rm: its presence went, with its node's lease. 0 or -ENOMEM. */
static int queue_abandon(ClusterGroup *cg, const RemoteMember *rm) {
        log_info(
                "Member %s of cluster group %s is gone with its node's lease: abandoning it.",
                rm->key,
                cg->group->name);
        return queue_remote_end(cg, rm, WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED);
}

/* member_end() of a cluster group's member, or its Leave (@c, @id to answer). */
static void member_end_hook(Member *m, Wg__V1__MemberState state, int32_t status, Client *c, uint64_t id) {
        ClusterGroup *cg = m->group->cluster;
        ClusterOp *op = calloc(1, sizeof(*op));

        if (!op || asprintf(&op->key, "%s.%016" PRIx64, cg->cluster->node, m->id) < 0) {
                free(op);
                if (c)
                        reply_error(c, id, -ENOMEM, "Out of memory.");
                else
                        log_error(
                                "Out of memory: member %d of %s ends, but etcd is not told.",
                                (int) m->pid,
                                m->group->name);
                return;
        }
        /* Off its connection, which may go now, and its death is no news any more: etcd's turn. */
        m->ending = true;
        member_detach(m);
        member_unwatch(m);
        *op = (ClusterOp) {
                .kind = CLUSTER_OP_END,
                .member = m,
                .key = op->key,
                .state = state,
                .status = status,
                .id = id,
        };
        if (c)
                cluster_op_link(op, c);
        queue_member_op(cg, op);
}

void cluster_join(Cluster *k, Client *c, uint64_t id, Group *g, const char *description) {
        ClusterOp *op;
        Member *m;
        int r;

        if (c->n_cluster_ops + c->n_waits >= k->server->limits.waits_per_connection) {
                reply_error(c, id, -EBUSY, "This connection has as many requests in flight as it may.");
                return;
        }
        r = member_new(c, description, &m);
        if (r < 0) {
                reply_error(c, id, r, "Cannot join '%s': %s.", g->name, strerror(-r));
                return;
        }
        op = calloc(1, sizeof(*op));
        if (!op || asprintf(&op->key, "%s.%016" PRIx64, k->node, m->id) < 0) {
                free(op);
                member_free(m);
                reply_error(c, id, -ENOMEM, "Out of memory.");
                return;
        }
        op->kind = CLUSTER_OP_JOIN;
        op->member = m;
        op->id = id;
        cluster_op_link(op, c);
        queue_member_op(g->cluster, op);
}

/* The member op of @cg's batch took effect: finish it here. */
static void member_done(ClusterGroup *cg) {
        ClusterOp *op = cg->batch;
        Group *g = cg->group;
        Client *c;
        int r;

        LIST_REMOVE(by_owner, cg->batch, op);
        c = cluster_op_unlink(op);
        switch (op->kind) {
        case CLUSTER_OP_JOIN: {
                Member *m = TAKE_PTR(op->member);

                if (!c) {
                        /* Its connection went while etcd counted it: a member gone, abandon it. */
                        RemoteMember *rm = local_as_remote(cg->cluster, m);

                        member_free(m);
                        if (rm) {
                                queue_abandon(cg, rm);
                                free(rm);
                        }
                        break;
                }
                member_attach(m, g, c);
                r = member_park(m);
                if (r < 0) {
                        /*
                         * A membership that a restart would lose is not kept (it would hold its
                         * group's count for good): etcd counted it, so it ends there at once, and
                         * the Join is answered with the error. As succeeded: abandoned would break
                         * a group whose policy is BREAK, and failed fail its waiters, for a member
                         * that was never told it joined. (Its outcome counts one success more.)
                         */
                        RemoteMember *rm = local_as_remote(cg->cluster, m);

                        log_warning_errno(
                                r,
                                "Cannot park member %d of %s in the fdstore, ending it: %m",
                                (int) m->pid,
                                g->name);
                        member_free(m);
                        if (!rm)
                                log_error("Out of memory: cannot end a member of %s in etcd.", g->name);
                        else
                                (void) queue_remote_end(
                                        cg, rm, WG__V1__MEMBER_STATE__MEMBER_STATE_SUCCEEDED);
                        free(rm);
                        reply_error(c, op->id, r, "The membership could not be kept in the fdstore.");
                        break;
                }
                if (member_watch(m, cg->cluster->event) < 0)
                        log_warning(
                                "Cannot watch member %d of %s: its death is seen when its connection "
                                "closes.",
                                (int) m->pid,
                                g->name);
                reply_joined(c, op->id, g, m->id);
                break;
        }
        case CLUSTER_OP_END: {
                /*
                 * Recorded now, not when the watch brings it: whoever learns of the end from us
                 * (the answer, a waiter woken by the state) and asks finds it.
                 */
                RemoteMember *rm = local_as_remote(cg->cluster, op->member);

                if (rm)
                        record_end(g, rm, op->state, op->status);
                free(rm);
                member_forget(TAKE_PTR(op->member));
                if (c)
                        reply_group(c, op->id, g, false);
                break;
        }
        case CLUSTER_OP_ABANDON:
                if (op->remote)
                        record_end(g, op->remote, op->state, op->status);
                break;
        default:
                break;
        }
        op->kind = CLUSTER_OP_ABANDON; /* nothing of it left to free but the key and copy */
        op_free(op);
        if (c)
                client_pending_done(c);
        batch_next(cg);
}

/* The member op of @cg's batch cannot be: its member ended elsewhere (END), or @error. */
static void member_failed(ClusterGroup *cg, int error, const char *message) {
        ClusterOp *op = cg->batch;

        LIST_REMOVE(by_owner, cg->batch, op);
        if (op->kind == CLUSTER_OP_END) {
                member_forget(TAKE_PTR(op->member));
                op->kind = CLUSTER_OP_ABANDON;
        }
        op_answer(op, cg->group, error, message);
        batch_next(cg);
}

/*
 * The member op of @cg's batch did not get to etcd (@error: memory, mostly, or no answer). A join
 * fails with it; an end is sent again in a moment, until it gets through: a member whose end is
 * lost holds its group's count for as long as this node lives.
 */
static void member_unsent(ClusterGroup *cg, int error) {
        ClusterOp *op = cg->batch;

        if (op->kind == CLUSTER_OP_JOIN) {
                member_failed(cg, error, NULL);
                return;
        }
        if (sd_event_add_time_relative(
                    cg->cluster->event, &cg->retry, CLOCK_MONOTONIC, RETRY_USEC, 0, on_batch_retry, cg) < 0) {
                log_error("Out of memory: the end of member %s of %s is lost.", op->key, cg->group->name);
                member_failed(cg, -ENOMEM, NULL);
        }
}

static void member_send(ClusterGroup *cg, bool again) {
        Cluster *k = cg->cluster;
        ClusterOp *op = cg->batch;
        Group *g = cg->group;
        char state_key[128], op_key[256], r_key[256], m_key[256], e_key[300], seq[32];
        json_object *txn = NULL, *value = NULL, *member = NULL;
        RemoteMember self = {}, *rm = &self;
        State st = cg->base;
        int r;

        snprintf(seq, sizeof(seq), "%" PRIu64, cg->seq);
        if (group_key(g->name, "state", state_key, sizeof(state_key)) < 0 ||
            snprintf(op_key, sizeof(op_key), KEY_PREFIX "%s/op/%s", g->name, k->node) >=
                    (int) sizeof(op_key) ||
            member_key(g->name, "r", op->key, r_key, sizeof(r_key)) < 0 ||
            member_key(g->name, "m", op->key, m_key, sizeof(m_key)) < 0) {
                member_failed(cg, -ENAMETOOLONG, NULL);
                return;
        }

        if (op->kind == CLUSTER_OP_JOIN) {
                if (k->lease == 0) {
                        member_failed(cg, -EAGAIN, "this node holds no lease in etcd yet; try again");
                        return;
                }
                if (st.broken) {
                        member_failed(cg, -EOWNERDEAD, "the group is broken; reset it first");
                        return;
                }
                if (st.count >= WG_STATE_COUNT_MASK) {
                        member_failed(cg, -EOVERFLOW, "the counter is at its maximum");
                        return;
                }
                op->member->generation = st.generation;
                st.count++;
                rm = local_as_remote(k, op->member);
                member = rm ? member_json(rm, 0, 0) : NULL;
                value = state_json(&st);
                if (member && value)
                        txn =
                                txn_new(compare(state_key, "MOD", "mod_revision", cg->base_revision, false),
                                        array_of(
                                                request_put(state_key, value),
                                                request_put(r_key, member),
                                                request_put_leased(m_key, member, k->lease),
                                                request_put_text(op_key, seq)),
                                        array_of(request_range(state_key), request_range(op_key)));
                free(rm);
        } else {
                uint64_t gen;

                if (op->kind == CLUSTER_OP_END) {
                        rm = local_as_remote(k, op->member);
                        if (!rm) {
                                member_unsent(cg, -ENOMEM);
                                return;
                        }
                } else
                        rm = op->remote;
                gen = rm->generation;
                /* As member_end() does on a segment: only within its own generation. */
                if (gen == st.generation && !st.broken) {
                        if (!st.has_outcome || st.outcome.generation != gen)
                                st.outcome = (struct wg_outcome) { .generation = (uint32_t) gen };
                        st.has_outcome = true;
                        if (op->state == WG__V1__MEMBER_STATE__MEMBER_STATE_SUCCEEDED)
                                st.outcome.succeeded++;
                        else if (op->state == WG__V1__MEMBER_STATE__MEMBER_STATE_FAILED)
                                st.outcome.failed++;
                        else
                                st.outcome.abandoned++;
                        if (op->state == WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED &&
                            g->on_abandon == WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK)
                                st.broken = true;
                        else if (st.count > 0 && --st.count == 0)
                                st.generation = (st.generation + 1) & WG_STATE_GEN_MASK;
                }
                snprintf(e_key, sizeof(e_key), KEY_PREFIX "%s/e/%010" PRIu64 "/%s", g->name, gen, op->key);
                member = member_json(rm, op->state, op->status);
                value = state_json(&st);
                if (member && value)
                        txn = txn_new(
                                array_of(
                                        compare(state_key, "MOD", "mod_revision", cg->base_revision, false),
                                        compare(r_key, "VERSION", "version", 0, true)),
                                array_of(
                                        request_put(state_key, value),
                                        request_delete(r_key),
                                        request_delete(m_key),
                                        request_put(e_key, member),
                                        request_put_text(op_key, seq)),
                                array_of(
                                        request_range(state_key),
                                        request_range(op_key),
                                        request_range(r_key)));
                if (rm != op->remote)
                        free(rm);
        }
        json_object_put(member);
        json_object_put(value);
        if (!txn) {
                member_unsent(cg, -ENOMEM);
                return;
        }
        cg->pending = st;
        r = etcd_call(k->etcd, "kv/txn", txn, on_batch_reply, cg, &cg->call);
        if (r < 0)
                member_unsent(cg, r);
}

static void on_member_reply(ClusterGroup *cg, int error, json_object *reply) {
        ClusterOp *op = cg->batch;
        int64_t revision;
        bool ours;
        int r;

        if (error < 0) {
                /* The same again: a join until its deadline; an end until it gets through. */
                if (op->kind == CLUSTER_OP_JOIN)
                        batch_again(cg, error);
                else
                        member_unsent(cg, error);
                return;
        }
        if (etcd_json_get_revision(reply, &revision) < 0)
                goto bad;
        if (txn_succeeded(reply)) {
                apply_state(cg, &cg->pending, revision);
                member_done(cg);
                return;
        }

        r = refused_read(cg, reply, &ours);
        if (r == -ENOENT) {
                group_gone(cg->cluster, cg->group);
                return;
        }
        if (r < 0)
                goto bad;
        if (ours) {
                /* An earlier try took effect: done, as worked out against its state. */
                member_done(cg);
                return;
        }
        if (op->kind != CLUSTER_OP_JOIN && !txn_range_kv(reply, 2)) {
                /* Its record is gone: ended already, by another node when its lease expired. */
                member_failed(cg, -ENOTCONN, "the membership ended already: its node's lease expired");
                return;
        }
        cg->seq = ++cg->cluster->seq;
        batch_send(cg, false);
        return;

bad:
        log_warning("Unexpected answer of etcd to a member of cluster group %s.", cg->group->name);
        member_failed(cg, -EBADMSG, "etcd's answer made no sense");
}

/* ---- the lease -------------------------------------------------------------------------- */

static void lease_call(Cluster *k);

static int on_lease_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Cluster *k = userdata;

        k->lease_timer = sd_event_source_disable_unref(k->lease_timer);
        lease_call(k);
        return 0;
}

static void lease_later(Cluster *k, uint64_t usec) {
        if (sd_event_add_time_relative(
                    k->event, &k->lease_timer, CLOCK_MONOTONIC, usec, 0, on_lease_timer, k) < 0)
                log_error("Cannot schedule the lease's keep-alive: members of cluster groups will be lost.");
}

/*
 * Park the lease's ID for the next wgd (in the name of an fd that holds nothing): a wgd that
 * restarts within the lease keeps it, and with it its members' presence in etcd.
 */
static void lease_park(Cluster *k) {
        int level = k->lease_unparked ? LOG_DEBUG : LOG_WARNING; /* warned once already */
        char fdname[256], *name = NULL;
        int fd = -EBADF, r = 0;

        if (k->lease_fdname) {
                fdstore_remove(k->lease_fdname);
                k->lease_fdname = mfree(k->lease_fdname);
        }
        if (k->lease == 0) {
                k->lease_unparked = false;
                return;
        }
        snprintf(fdname, sizeof(fdname), LEASE_FDNAME_PREFIX "%s.%" PRIx64, k->node, (uint64_t) k->lease);
        /* The name first: an entry parked under a name we lost could never be taken out again. */
        name = strdup(fdname);
        if (!name)
                r = -ENOMEM;
        else if ((fd = memfd_create("wg-lease", MFD_CLOEXEC)) < 0)
                r = negative_errno();
        else
                r = fdstore_push(fdname, fd, /* poll= */ false, level);
        safe_close(fd);
        if (r < 0) {
                free(name);
                log_full_errno(
                        level,
                        r,
                        "Cannot park the lease in the fdstore, trying again at its next renewal "
                        "(until then a restart abandons this node's members): %m");
                k->lease_unparked = true;
                return;
        }
        k->lease_fdname = name;
        if (k->lease_unparked)
                log_notice("Parked the lease in the fdstore: a restart keeps this node's members again.");
        k->lease_unparked = false;
}

/* A lease the fdstore kept for us, from the wgd before: taken back, if it is ours. */
static void lease_restore(Cluster *k) {
        char *name = NULL, prefix[128];
        int fd = server_unstash(k->server, NULL, LEASE_FDNAME_PREFIX, &name);
        unsigned long long id;
        char *end;

        if (fd < 0)
                return;
        safe_close(fd);
        snprintf(prefix, sizeof(prefix), LEASE_FDNAME_PREFIX "%s.", k->node);
        errno = 0;
        if (strncmp(name, prefix, strlen(prefix)) == 0 &&
            (id = strtoull(name + strlen(prefix), &end, 16), errno == 0 && *end == 0 && id != 0)) {
                k->lease = (int64_t) id;
                k->lease_renewed = now_usec();
                k->lease_fdname = name;
                log_info("Took back lease %llx of etcd: keeping it alive, if it still is.", id);
                return;
        }
        fdstore_remove(name);
        free(name);
}

static void on_lease_reply(EtcdCall *call, int error, json_object *reply, void *userdata) {
        Cluster *k = userdata;
        int64_t id;

        k->lease_call = NULL;
        if (k->lease == 0) {
                if (error < 0 || etcd_json_get_int64(reply, "ID", &id) < 0 || id == 0) {
                        trouble(&k->lease_trouble,
                                error < 0 ? error : -EBADMSG,
                                "Failed to get a lease from etcd");
                        lease_later(k, RESYNC_USEC);
                        return;
                }
                trouble_over(&k->lease_trouble, "Got a lease from etcd again.");
                k->lease = id;
                k->lease_renewed = now_usec();
                lease_park(k);
                log_info("Holding lease %" PRIx64 " of etcd for this node's members.", (uint64_t) id);
        } else if (error == -ENOENT || (error < 0 && now_usec() - k->lease_renewed > k->lease_ttl_usec)) {
                /* etcd has let it go, or will have: our members' presence went with it. */
                log_warning(
                        "Lost the lease of this node in etcd: its members in cluster groups are abandoned.");
                k->lease = 0;
                lease_park(k);
                lease_later(k, 0);
                return;
        } else if (error < 0) {
                lease_later(k, MIN(k->lease_ttl_usec / 3, RESYNC_USEC));
                return;
        } else {
                k->lease_renewed = now_usec();
                if (k->lease_unparked)
                        lease_park(k);
        }
        lease_later(k, k->lease_ttl_usec / 3);
}

static void lease_call(Cluster *k) {
        json_object *body = json_object_new_object();
        int r;

        if (!body)
                r = -ENOMEM;
        else if (k->lease == 0)
                r = etcd_json_add(
                        body,
                        "TTL",
                        json_object_new_int64(
                                (int64_t) ((k->lease_ttl_usec + USEC_PER_SEC - 1) / USEC_PER_SEC)));
        else
                r = etcd_json_add_int64(body, "ID", k->lease);
        if (r >= 0)
                r = etcd_call(
                        k->etcd,
                        k->lease ? "lease/keepalive" : "lease/grant",
                        TAKE_PTR(body),
                        on_lease_reply,
                        k,
                        &k->lease_call);
        json_object_put(body);
        if (r < 0)
                lease_later(k, RESYNC_USEC);
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
        Account *reserved; /* the group counts against its owner's limits meanwhile */
} CreateCall;

/*
 * The group @f that the watch brings is one this node's Create made, still waiting for etcd's
 * answer: it was checked against the limits with its reservation, which ends here, as the group
 * is charged from now on (checked again, the reservation would count it twice).
 */
static bool take_own_create(Cluster *k, const GroupFields *f) {
        for (ClusterOp *op = k->calls; op; op = op->by_owner_next) {
                CreateCall *cc = (CreateCall *) op;

                if (op->kind == CLUSTER_OP_CREATE && cc->reserved && STREQ(cc->name, f->name) &&
                    cc->fields.owner == f->owner && cc->fields.created_usec == f->created_usec) {
                        server_unreserve_group(k->server, TAKE_PTR(cc->reserved));
                        return true;
                }
        }
        return false;
}

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

        /* From here on the group is made (and charged as a group) or not at all. */
        server_unreserve_group(k->server, TAKE_PTR(cc->reserved));
        char *value = NULL;
        size_t len;
        int64_t revision, mod;
        json_object *kv;
        GroupFields existing;
        State st;
        Group *g;
        int r;

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
                r = mirror_group(k, &cc->fields, /* ours= */ true, &g);
                if (r == -EEXIST) {
                        /* Made meanwhile: it hides the cluster group here, which is made all the same. */
                        if (c)
                                reply_error(
                                        c,
                                        cc->op.id,
                                        r,
                                        "A local group '%s' exists on this node.",
                                        cc->name);
                        goto finish;
                }
                if (r < 0) {
                        /*
                         * etcd has made it: an error would say it had not (wg.proto), and a Create
                         * asked again would meet EEXIST. Create is answered with the group as etcd
                         * has it; Open, which cannot hand out a segment, with EAGAIN, since asked
                         * again it opens the group. The node mirrors it when it can: the watch
                         * brings the group again (and a failure then reads etcd again).
                         */
                        log_warning_errno(
                                r,
                                "Created cluster group %s, which this node cannot mirror yet: %m",
                                cc->name);
                        if (c && cc->open)
                                reply_error(
                                        c,
                                        cc->op.id,
                                        -EAGAIN,
                                        "Created cluster group '%s', but cannot open it here yet (%s): try "
                                        "again.",
                                        cc->name,
                                        strerror(-r));
                        else if (c)
                                reply_group_unmirrored(c, cc->op.id, &cc->fields, cc->state.count);
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
        r = mirror_group(k, &existing, /* ours= */ false, &g);
        if (r < 0)
                g = NULL;
        kv = txn_range_kv(reply, 1);
        if (g && kv && etcd_json_get_bytes(kv, "value", (void **) &value, &len) == 0 &&
            etcd_json_get_int64(kv, "mod_revision", &mod) == 0 && state_parse(value, len, &st) == 0)
                apply_state(g->cluster, &st, mod);
        if (!c)
                goto finish;
        /* As Create and Open answer for a local group that exists. */
        if (cc->exist_ok && (r == -ENOSPC || r == -EDQUOT))
                reply_error(
                        c,
                        cc->op.id,
                        r,
                        "Group '%s' exists in the cluster, but this node holds as many groups as it may.",
                        cc->name);
        else if (cc->exist_ok && r < 0 && r != -EEXIST)
                /* Not EEXIST, which says the name is taken: asked again, it is the group. */
                reply_error(
                        c,
                        cc->op.id,
                        -EAGAIN,
                        "Group '%s' exists in the cluster, but this node cannot mirror it yet (%s): try "
                        "again.",
                        cc->name,
                        strerror(-r));
        else if (!g || !cc->exist_ok)
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
        /* Counted from now on: the Creates in flight are checked against the limits too. */
        cc->reserved = server_reserve_group(k->server, f->owner);
        if (!cc->reserved) {
                free(cc);
                reply_error(c, id, -ENOMEM, "Out of memory.");
                return;
        }
        meta = meta_json(&cc->fields);
        state = state_json(&cc->state);
        txn =
                txn_new(compare(meta_key, "CREATE", "create_revision", 0, false),
                        array_of(request_put(meta_key, meta), request_put(state_key, state)),
                        array_of(request_range(meta_key), request_range(state_key)));
        json_object_put(meta);
        json_object_put(state);
        r = txn ? etcd_call(k->etcd, "kv/txn", txn, on_create_reply, cc, &cc->call) : -ENOMEM;
        if (r < 0) {
                server_unreserve_group(k->server, cc->reserved);
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
                    etcd_json_add(req, "request_delete_range", TAKE_PTR(del)) < 0) {
                        json_object_put(del);
                        json_object_put(req);
                        req = NULL;
                }
        }
        free(end);
        txn = txn_new(
                compare(meta_key, "VERSION", "version", 0, true), array_of(req), json_object_new_array());
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

/* Try again in @usec: the watch from where it stopped, or everything, after @forget. */
static void resync_after(Cluster *k, bool forget, uint64_t usec) {
        int r;

        if (forget)
                k->watch_from = 0;
        if (k->resync)
                return;
        r = sd_event_add_time_relative(k->event, &k->resync, CLOCK_MONOTONIC, usec, 0, on_resync, k);
        if (r < 0)
                log_error_errno(
                        r, "Failed to schedule a new watch of etcd, cluster groups stay as they are: %m");
}

/* The same in a second: etcd could not be reached, or its answer read. */
static void resync_later(Cluster *k, bool forget) {
        resync_after(k, forget, RESYNC_USEC);
}

/* One key-value of etcd, as the range of the sync or a PUT event gives it. */
/* Which keys a pass of apply_kv() takes: all (the watch), or one kind (the full read). */
typedef enum KvPass {
        KV_ALL,
        KV_META,    /* the groups first */
        KV_MOST,    /* then states and records of members */
        KV_PRESENT, /* then the members' presence */
} KvPass;

/* A member's key below r/, m/ or e/GENERATION/: checked as "NODE.ID". */
static const char *member_key_of(const char *what) {
        const char *p = strrchr(what, '/');

        return p && p[1] && strlen(p + 1) < sizeof(((RemoteMember *) NULL)->key) ? p + 1 : NULL;
}

/*
 * One key-value of etcd, as the range of the sync or an event of the watch gives it. 0, also for
 * one that it ignores (it makes no sense, or a limit keeps its group from this node); -ENOMEM
 * for one that it could not take for want of memory (or descriptors): the node's view is no
 * longer what etcd holds, and it must read everything again.
 */
static int apply_kv(Cluster *k, json_object *kv, bool deleted, KvPass pass) {
        char name[WG_NAME_MAX + 1], *key = NULL, *value = NULL;
        const char *what, *mkey;
        size_t key_len, len;
        int64_t mod;
        GroupFields f;
        RemoteMember rm, *found;
        Group *g;
        State st;
        int r = 0;

        r = etcd_json_get_bytes(kv, "key", (void **) &key, &key_len);
        if (r < 0 || key_split(key, key_len, name, &what) < 0)
                goto finish;
        g = server_find_group(k->server, name);
        if (pass == KV_META && !STREQ(what, "meta"))
                goto finish;
        if (pass == KV_MOST && (STREQ(what, "meta") || strncmp(what, "m/", 2) == 0))
                goto finish;
        if (pass == KV_PRESENT && strncmp(what, "m/", 2) != 0)
                goto finish;
        mkey = member_key_of(what);

        if (deleted) {
                if (STREQ(what, "meta") && g && g->cluster)
                        group_gone(k, g);
                else if (
                        strncmp(what, "r/", 2) == 0 && g && g->cluster && mkey &&
                        (found = remote_find(g, mkey)))
                        remote_remove(g, found);
                else if (
                        strncmp(what, "m/", 2) == 0 && g && g->cluster && mkey &&
                        (found = remote_find(g, mkey))) {
                        /* Its record is still there without its presence: its node's lease expired. */
                        found->present = false;
                        if (!found->abandoning) {
                                found->abandoning = true;
                                r = queue_abandon(g->cluster, found);
                        }
                }
                goto finish;
        }
        r = etcd_json_get_bytes(kv, "value", (void **) &value, &len);
        if (r < 0 || etcd_json_get_int64(kv, "mod_revision", &mod) < 0)
                goto finish;
        if (STREQ(what, "meta")) {
                if (meta_parse(value, len, name, &f) < 0)
                        log_warning(
                                "Ignoring cluster group %s, whose metadata in etcd makes no sense.", name);
                else {
                        r = mirror_group(k, &f, /* ours= */ false, &g);
                        if (r >= 0)
                                g->cluster->seen = true;
                        else if (r == -ENOSPC || r == -EDQUOT || r == -EEXIST)
                                r = 0; /* not here, as the limits or a local group of its name say */
                }
        } else if (!g || !g->cluster)
                goto finish;
        else if (STREQ(what, "state")) {
                if (state_parse(value, len, &st) < 0)
                        log_warning("Ignoring a state of cluster group %s that makes no sense.", name);
                else
                        apply_state(g->cluster, &st, mod);
        } else if (strncmp(what, "r/", 2) == 0 && mkey) {
                if (member_parse(value, mkey, &rm, NULL, NULL) < 0)
                        log_warning("Ignoring a member of cluster group %s that makes no sense.", name);
                else if (!(found = remote_find(g, mkey))) {
                        found = malloc(sizeof(*found));
                        if (!found) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        *found = rm;
                        LIST_PREPEND(remote, g->remote, found);
                        g->n_remote++;
                }
        } else if (strncmp(what, "m/", 2) == 0 && mkey && (found = remote_find(g, mkey)))
                found->present = true;
        else if (strncmp(what, "e/", 2) == 0 && mkey && pass == KV_ALL) {
                int state;
                int32_t status;

                if (member_parse(value, mkey, &rm, &state, &status) < 0 || state == 0)
                        goto finish;
                record_end(g, &rm, state, status);
        }
finish:
        free(key);
        free(value);
        return r == -EBADMSG ? 0 : r;
}

/*
 * The node could not take a change that etcd holds (@error: memory, descriptors, a mirror that
 * could not be sealed or parked): it drops the watch and reads everything again, as after a watch
 * compacted away. Most such errors pass within a second; one that does not would have the node
 * read all of etcd every second and say so each time. So the wait doubles with each read in a row
 * that could not take everything either, from a second up to 32, and only the first says so as a
 * warning (the rest, and what failed in them, at debug level) until a read takes everything
 * (on_sync_reply()). Meanwhile the node's cluster groups stay as they are, as when etcd is away.
 * (Inside the watch's handler: the watch stops handing out, and goes once the handler returns.)
 */
static void resync_lost(Cluster *k, int error) {
        uint64_t usec = RESYNC_USEC << MIN(k->n_lost, RESYNC_LOST_SHIFT_MAX);

        log_full_errno(
                lost_level(k),
                error,
                "Could not take a change of the cluster groups in etcd (%m), reading them all again in "
                "%" PRIu64 " s%s.",
                usec / USEC_PER_SEC,
                k->n_lost == 0 ? " (quietly, until it works)" : "");
        k->n_lost++;
        etcd_watch_cancel(TAKE_PTR(k->watch));
        resync_after(k, /* forget= */ true, usec);
}

static void on_watch(EtcdWatch *w, int error, json_object *result, void *userdata) {
        Cluster *k = userdata;
        json_object *events;
        int r;

        if (error < 0) {
                k->watch = NULL;
                trouble(&k->follow_trouble, error, "The watch of etcd ended");
                /* Compacted away: what changed since is lost, read everything again. */
                resync_later(k, error == -ERANGE);
                if (error != -ERANGE)
                        k->watch_from = etcd_watch_next_revision(w);
                return;
        }
        trouble_over(&k->follow_trouble, "Following etcd again.");
        if (!json_object_object_get_ex(result, "events", &events) ||
            !json_object_is_type(events, json_type_array))
                return;
        for (size_t i = 0; i < json_object_array_length(events); i++) {
                json_object *ev = json_object_array_get_idx(events, i), *type, *kv;
                bool deleted = json_object_object_get_ex(ev, "type", &type) &&
                        STREQ(json_object_get_string(type), "DELETE");

                if (json_object_object_get_ex(ev, "kv", &kv) && (r = apply_kv(k, kv, deleted, KV_ALL)) < 0) {
                        resync_lost(k, r);
                        return;
                }
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
                trouble(&k->follow_trouble, r, "Failed to watch etcd");
                resync_later(k, false);
        }
}

/* Everything under the prefix, once: the cluster groups as they are, then the watch from there. */
/*
 * The members the fdstore kept, of this node's cluster groups: back, if etcd still has them
 * (else they were abandoned while wgd was away). Then whatever of the store nothing claimed goes.
 * 0; or -ENOMEM if one could not come back for want of memory: it stays in the stash (and the
 * fdstore) for the next read of etcd, since dropping it would lose its end, and hold its group's
 * count for good.
 */
static int restore_members(Cluster *k) {
        struct {
                char *name;
                int fd;
        } *kept = NULL;
        size_t n_kept = 0;
        int ret = 0;
        char *name;
        int fd;

        while ((fd = server_unstash(k->server, NULL, MEMBER_FDNAME_PREFIX, &name)) >= 0) {
                char key[sizeof(((RemoteMember *) NULL)->key)];
                MemberFields f;
                Account *a;
                Group *g;
                int r = -ENOENT;

                if (member_fdname_parse(name, &f) >= 0 && (g = server_find_group(k->server, f.group)) &&
                    g->cluster) {
                        snprintf(key, sizeof(key), "%s.%016" PRIx64, k->node, f.id);
                        if (remote_find(g, key)) {
                                a = account_get(&k->server->accounts, f.uid);
                                r = a ? member_restore(k->event, g, a, &f, fd) : -ENOMEM;
                                if (r < 0)
                                        account_release(a);
                        }
                }
                if (r == -ENOENT) {
                        log_info("Dropping stored member '%s': etcd no longer has it.", name);
                        fdstore_remove(name);
                        safe_close(fd);
                } else if (r < 0) {
                        void *more = reallocarray(kept, n_kept + 1, sizeof(*kept));

                        log_full_errno(
                                lost_level(k),
                                r,
                                "Failed to restore member '%s', trying again later: %m",
                                name);
                        ret = -ENOMEM;
                        if (more) {
                                kept = more;
                                kept[n_kept].name = TAKE_PTR(name);
                                kept[n_kept++].fd = fd;
                        } else {
                                log_error("Out of memory: member '%s' is lost.", name);
                                fdstore_remove(name);
                                safe_close(fd);
                        }
                }
                free(name);
        }
        if (ret < 0) {
                /* Back in the stash for the next read (after the loop, which would find them again). */
                for (size_t i = 0; i < n_kept; i++) {
                        if (server_stash(k->server, kept[i].name, kept[i].fd) < 0) {
                                log_error("Out of memory: member '%s' is lost.", kept[i].name);
                                fdstore_remove(kept[i].name);
                                safe_close(kept[i].fd);
                        }
                        free(kept[i].name);
                }
                free(kept);
                return ret;
        }
        server_stash_drop(k->server);
        return 0;
}

/* The answer to the full read (sync_start()): the node's cluster groups as etcd has them. */
static void sync_apply(Cluster *k, int error, json_object *reply) {
        json_object *kvs;
        int64_t revision;
        unsigned n = 0;
        int r, lost = 0;

        if (error < 0 || etcd_json_get_revision(reply, &revision) < 0) {
                trouble(&k->follow_trouble,
                        error < 0 ? error : -EBADMSG,
                        "Failed to read the cluster groups from etcd");
                resync_later(k, true);
                return;
        }
        /* Members are read anew: what etcd has now is what they are. */
        passed_over_clear(k);
        k->n_mirrored = 0;
        LIST_FOREACH (groups, cg, k->groups) {
                cg->seen = false;
                while (cg->group->remote)
                        remote_remove(cg->group, cg->group->remote);
        }
        if (json_object_object_get_ex(reply, "kvs", &kvs) && json_object_is_type(kvs, json_type_array))
                for (KvPass pass = KV_META; pass <= KV_PRESENT; pass++)
                        for (size_t i = 0; i < json_object_array_length(kvs); i++)
                                if ((r = apply_kv(k, json_object_array_get_idx(kvs, i), false, pass)) < 0) {
                                        /*
                                         * Not all of it taken: neither the groups nor the members
                                         * that it did not see are gone. All of it again later.
                                         */
                                        resync_lost(k, r);
                                        return;
                                }
        /* A member whose presence went while we did not watch: its node's lease expired. */
        LIST_FOREACH (groups, cg, k->groups)
                for (RemoteMember *rm = cg->group->remote; rm; rm = rm->remote_next)
                        if (!rm->present && !rm->abandoning) {
                                rm->abandoning = true;
                                if ((r = queue_abandon(cg, rm)) < 0)
                                        lost = r;
                        }
        if (lost < 0) {
                resync_lost(k, lost);
                return;
        }
        /*
         * Groups this node mirrors that etcd no longer has went while it did not watch; but not
         * one that this node created after the read (its state is newer than what was read).
         */
        LIST_FOREACH (groups, cg, k->groups)
                if (!cg->seen && cg->state_revision <= revision)
                        group_gone(k, cg->group);
                else
                        n++;
        if (!k->restored) {
                r = restore_members(k);
                if (r < 0) {
                        resync_lost(k, r);
                        return;
                }
                k->restored = true;
        }
        if (k->n_lost > 0) {
                k->n_lost = 0;
                log_notice("Took every change of the cluster groups in etcd again.");
        }
        k->watch_from = revision + 1;
        log_full(
                k->room_read ? LOG_DEBUG : LOG_INFO,
                "Following %u cluster groups in etcd from revision %" PRId64 ".",
                n,
                revision);
        if (!k->over_any && k->n_over == 0)
                k->room_idle = 0; /* nothing passed over: the next room read is a second away again */
        else if (k->room_read)
                /* Room made for nothing (the room was taken again, or was not room for them). */
                k->room_idle = k->n_mirrored > 0 ? 0 : k->room_idle + 1;
        watch_start(k);
}

static void on_sync_reply(EtcdCall *call, int error, json_object *reply, void *userdata) {
        Cluster *k = userdata;

        k->sync_call = NULL;
        sync_apply(k, error, reply);
        /* Whatever came of it: a read after this one is a room read only if room starts it. */
        k->room_read = false;
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
                trouble(&k->follow_trouble, r, "Failed to read the cluster groups from etcd");
                resync_later(k, true);
        }
}

/* ---- room made: the groups a node passed over ------------------------------------------- */

static int on_room_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Cluster *k = userdata;

        if (!k->over_any && k->n_over == 0)
                return 0;
        /* The next read of etcd is a full one, whichever is on its way. */
        k->watch_from = 0;
        if (!k->watch)
                return 0; /* a read is under way, or one is due: it reads everything now */
        k->room_read = true;
        log_debug("Room for the cluster groups this node passed over: reading them again from etcd.");
        etcd_watch_cancel(TAKE_PTR(k->watch));
        sync_start(k);
        return 0;
}

/*
 * Room was made on this node for @owner's groups (server.c says so: a group went, or a Create's
 * reservation), or a local group's name @local_name was freed, which may have hid a cluster
 * group. If that may make room for a group of etcd that the node passed over since its last full
 * read, the node reads everything again, a second later (a burst of deletes costs one read), and
 * mirrors what fits then. Each such read in a row that mirrors nothing new (the room was taken
 * again) doubles the wait, up to 64 s: a uid that makes and deletes groups in a loop on a node at
 * its limits costs it a full read of etcd a minute (a second, while each read mirrors a group new
 * here: someone makes cluster groups elsewhere as fast), and the reads log what they pass over at
 * debug level only.
 */
static void on_room_made(uid_t owner, const char *local_name, void *userdata) {
        Cluster *k = userdata;
        int r;

        if (!passed_over_helps(k, owner, local_name) || sd_event_source_get_enabled(k->room_timer, NULL) > 0)
                return;
        r = sd_event_source_set_time_relative(k->room_timer, RESYNC_USEC << MIN(k->room_idle, 6));
        if (r >= 0)
                r = sd_event_source_set_enabled(k->room_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(
                        r,
                        "Failed to schedule a read of etcd for the cluster groups this node passed over, "
                        "which it sees at its next full read: %m");
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
        s->room_made = on_room_made;
        s->room_made_userdata = k;
        k->event = s->event;
        k->lease_ttl_usec = o->lease_ttl_usec > 0 ? o->lease_ttl_usec : 10 * USEC_PER_SEC;
        /*
         * Where the numbers of this wgd's transactions (op/NODE) start: at random, so that a
         * restarted wgd does not take a number of the one before, left in etcd, for its own.
         */
        if (getrandom(&k->seq, sizeof(k->seq), GRND_NONBLOCK) != sizeof(k->seq))
                k->seq = now_realtime_usec() << 20;

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

        /* Made now, and armed when room is made: on_room_made(). */
        r = sd_event_add_time_relative(
                k->event, &k->room_timer, CLOCK_MONOTONIC, RESYNC_USEC, 0, on_room_timer, k);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(k->room_timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(k->room_timer, "cluster-room");

        r = etcd_new(s->event, &eo, &k->etcd);
        if (r < 0)
                return r;

        lease_restore(k);
        sync_start(k);
        lease_call(k);
        *ret = TAKE_PTR(k);
        return 0;
}

Cluster *cluster_free(Cluster *k) {
        if (!k)
                return NULL;
        k->server->room_made = NULL;
        passed_over_clear(k);
        while (k->groups)
                cluster_group_free(k->groups, -ESHUTDOWN, "wgd is stopping");
        while (k->calls) {
                ClusterOp *op = k->calls;
                Client *c = call_unlink(k, op);

                /* The op is the first member of either kind of call. */
                if (op->kind == CLUSTER_OP_CREATE) {
                        etcd_call_cancel(((CreateCall *) op)->call);
                        server_unreserve_group(k->server, ((CreateCall *) op)->reserved);
                } else
                        etcd_call_cancel(((DeleteCall *) op)->call);
                if (c)
                        reply_error(c, op->id, -ESHUTDOWN, "wgd is stopping.");
                free(op);
        }
        etcd_call_cancel(k->sync_call);
        etcd_call_cancel(k->lease_call);
        sd_event_source_disable_unref(k->lease_timer);
        free(k->lease_fdname); /* still parked: the next wgd takes the lease back */
        etcd_watch_cancel(k->watch);
        etcd_free(k->etcd);
        sd_event_source_disable_unref(k->resync);
        sd_event_source_disable_unref(k->room_timer);
        free(k->node);
        free(k);
        return NULL;
}

const char *cluster_node(const Cluster *k) {
        return k->node;
}
