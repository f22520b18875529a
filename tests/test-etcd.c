/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wgd's etcd client (wgd/etcd.h) against a real etcd (tests/etcd-harness.h), on a real sd-event
 * loop. Each test starts an etcd of its own (about a tenth of a second), so none can disturb
 * another. Nothing waits for time to pass to let something happen: the loop runs until a
 * condition holds, bounded by a deadline. The only waits for time are the ones time is the
 * subject of: a lease that must outlive its TTL while kept alive, and a timeout.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etcd-harness.h"
#include "etcd.h"
#include "macro.h"
#include "test-util.h"

/* Nothing here takes this long unless something is wrong. */
#define PATIENCE_USEC (30 * 1000 * 1000ULL)

#define MSEC 1000ULL
#define SEC (1000 * MSEC)

typedef struct Fixture {
        EtcdCluster cluster;
        sd_event *event;
        Etcd *etcd;
} Fixture;

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;

        f->etcd = etcd_free(f->etcd);
        sd_event_unref(f->event);
        etcd_cluster_done(&f->cluster);
        free(f);
        return 0;
}

#define REQUIRE_ETCD()                                                                                      \
        do {                                                                                                \
                if (!etcd_binary())                                                                         \
                        skip_test("etcd is not installed (Debian: etcd-server), or $WG_ETCD is wrong");     \
        } while (0)

/* A client of @endpoints on the fixture's loop, with @o's other options (may be NULL). */
static Etcd *client_new(Fixture *f, const char *const *endpoints, const EtcdOptions *o) {
        EtcdOptions options = o ? *o : (EtcdOptions) {};
        Etcd *e = NULL;

        options.endpoints = endpoints;
        assert_int_equal(etcd_new(f->event, &options, &e), 0);
        return e;
}

/* Start @n members and a client of all of them, with @o's options. */
static void start(Fixture *f, size_t n, const EtcdOptions *o) {
        etcd_cluster_start(&f->cluster, n);
        f->etcd = client_new(f, f->cluster.endpoints, o);
}

/* Run @event until *@done, or fail after the patience. */
static void run_event_until(sd_event *event, const bool *done) {
        uint64_t deadline = monotonic_usec() + PATIENCE_USEC;

        while (!*done) {
                uint64_t now = monotonic_usec();

                if (now >= deadline)
                        fail_msg("nothing happened in time");
                assert_true(sd_event_run(event, deadline - now) >= 0);
        }
}

static void run_until(Fixture *f, const bool *done) {
        run_event_until(f->event, done);
}

/* Run the loop for what is ready now and soon: one round trip's worth, to see nothing comes. */
static void run_idle(Fixture *f, uint64_t usec) {
        uint64_t deadline = monotonic_usec() + usec;

        for (uint64_t now; (now = monotonic_usec()) < deadline;)
                assert_true(sd_event_run(f->event, deadline - now) >= 0);
}

/* Calls. */

typedef struct Reply {
        bool done;
        int error;
        json_object *reply;
        uint64_t at;
} Reply;

static void reply_clear(Reply *r) {
        if (r->reply)
                json_object_put(r->reply);
        *r = (Reply) {};
}

static void on_reply(EtcdCall *call, int error, json_object *reply, void *userdata) {
        Reply *r = userdata;

        assert_false(r->done); /* exactly once */
        r->done = true;
        r->error = error;
        r->reply = reply ? json_object_get(reply) : NULL;
        r->at = monotonic_usec();
}

/*
 * Call @method on @e, whose loop is @event, and wait for the answer: the error; *@ret the
 * answer, if not NULL.
 */
static int call_event(sd_event *event, Etcd *e, const char *method, json_object *body, json_object **ret) {
        Reply r = {};
        int error;

        assert_int_equal(etcd_call(e, method, body, on_reply, &r, NULL), 0);
        run_event_until(event, &r.done);
        error = r.error;
        if (ret)
                *ret = TAKE_PTR(r.reply);
        reply_clear(&r);
        return error;
}

static int call_on(Fixture *f, Etcd *e, const char *method, json_object *body, json_object **ret) {
        return call_event(f->event, e, method, body, ret);
}

static int call(Fixture *f, const char *method, json_object *body, json_object **ret) {
        return call_on(f, f->etcd, method, body, ret);
}

/* The same, asserting success. */
static json_object *call_ok(Fixture *f, const char *method, json_object *body) {
        json_object *reply = NULL;
        int r = call(f, method, body, &reply);

        if (r < 0)
                fail_msg(
                        "%s: %s (%s)",
                        method,
                        strerror(-r),
                        reply ? json_object_to_json_string(reply) : "-");
        assert_non_null(reply);
        return reply;
}

static json_object *object(void) {
        json_object *o = json_object_new_object();

        assert_non_null(o);
        return o;
}

static void add_bytes(json_object *o, const char *field, const void *p, size_t n) {
        assert_int_equal(etcd_json_add_bytes(o, field, p, n), 0);
}

static void add_int64(json_object *o, const char *field, int64_t v) {
        assert_int_equal(etcd_json_add_int64(o, field, v), 0);
}

static json_object *field(json_object *o, const char *name) {
        json_object *v = NULL;

        if (!json_object_object_get_ex(o, name, &v))
                fail_msg("no %s in %s", name, json_object_to_json_string(o));
        return v;
}

static int64_t int64_of(json_object *o, const char *name) {
        int64_t v;

        assert_int_equal(etcd_json_get_int64(o, name, &v), 0);
        return v;
}

static int64_t revision_of(json_object *reply) {
        int64_t v;

        assert_int_equal(etcd_json_get_revision(reply, &v), 0);
        return v;
}

/* Assert that field @name of @o holds the @n bytes at @p. */
static void expect_bytes(json_object *o, const char *name, const void *p, size_t n) {
        void *got;
        size_t size;

        assert_int_equal(etcd_json_get_bytes(o, name, &got, &size), 0);
        assert_int_equal(size, n);
        assert_memory_equal(got, p, n);
        free(got);
}

static json_object *kv_request(const void *key, size_t key_size, const void *value, size_t value_size) {
        json_object *o = object();

        add_bytes(o, "key", key, key_size);
        if (value)
                add_bytes(o, "value", value, value_size);
        return o;
}

/* Put with @e on @event and return the revision. */
static int64_t
put_event(sd_event *event, Etcd *e, const void *key, size_t key_size, const void *value, size_t value_size) {
        json_object *reply = NULL;
        int64_t rev;
        int r;

        r = call_event(event, e, "kv/put", kv_request(key, key_size, value, value_size), &reply);
        if (r < 0)
                fail_msg("put: %s", strerror(-r));
        rev = revision_of(reply);
        json_object_put(reply);
        return rev;
}

static int64_t put(Fixture *f, const void *key, size_t key_size, const void *value, size_t value_size) {
        return put_event(f->event, f->etcd, key, key_size, value, value_size);
}

static int64_t put_str(Fixture *f, const char *key, const char *value) {
        return put(f, key, strlen(key), value, strlen(value));
}

/* Watches. */

#define EVENTS_MAX 1024

typedef struct WatchLog {
        EtcdWatch *w;
        bool created;
        unsigned n_results;
        int error; /* the final one; 0 while open */
        bool ended;
        json_object *end_result;
        int64_t next_revision; /* etcd_watch_next_revision() as the end came */
        size_t n_events;
        struct {
                bool deleted;
                char *key;
                size_t key_size;
                char *value;
                size_t value_size;
                int64_t mod_revision;
        } events[EVENTS_MAX];
        bool cancel_on_event; /* cancel from within the handler, at the first event */
        /*
         * Open the watch again from within the handler when it ends, from where it stopped, as
         * a user of the client would; the events of all go to the same log.
         */
        bool reopen;
        unsigned n_reopened;
        int reopened_after[8];
        Etcd *etcd;
        const char *key;
        bool prefix;
} WatchLog;

static void watch_on(Etcd *e, WatchLog *l, const char *key, bool prefix, int64_t start_revision);

static void on_watch(EtcdWatch *w, int error, json_object *result, void *userdata) {
        WatchLog *l = userdata;
        json_object *events, *created;

        assert_ptr_equal(w, l->w);
        assert_false(l->ended); /* nothing after the end */
        if (error < 0 && l->reopen) {
                assert_true(l->n_reopened < ELEMENTSOF(l->reopened_after));
                l->reopened_after[l->n_reopened++] = error;
                l->created = false;
                watch_on(l->etcd, l, l->key, l->prefix, etcd_watch_next_revision(w));
                return;
        }
        if (error < 0) {
                l->ended = true;
                l->error = error;
                l->end_result = result ? json_object_get(result) : NULL;
                l->next_revision = etcd_watch_next_revision(w);
                return;
        }

        l->n_results++;
        if (json_object_object_get_ex(result, "created", &created) && json_object_get_boolean(created)) {
                assert_false(l->created);
                l->created = true;
        }
        if (!json_object_object_get_ex(result, "events", &events))
                return;
        for (size_t i = 0; i < json_object_array_length(events); i++) {
                json_object *ev = json_object_array_get_idx(events, i), *type, *kv = field(ev, "kv");

                assert_true(l->n_events < EVENTS_MAX);
                l->events[l->n_events].deleted = json_object_object_get_ex(ev, "type", &type) &&
                        strcmp(json_object_get_string(type), "DELETE") == 0;
                assert_int_equal(
                        etcd_json_get_bytes(
                                kv,
                                "key",
                                (void **) &l->events[l->n_events].key,
                                &l->events[l->n_events].key_size),
                        0);
                assert_int_equal(
                        etcd_json_get_bytes(
                                kv,
                                "value",
                                (void **) &l->events[l->n_events].value,
                                &l->events[l->n_events].value_size),
                        0);
                l->events[l->n_events].mod_revision = int64_of(kv, "mod_revision");
                l->n_events++;
        }
        if (l->cancel_on_event && l->n_events > 0) {
                etcd_watch_cancel(w);
                l->ended = true;
        }
}

static void watch_log_clear(WatchLog *l) {
        for (size_t i = 0; i < l->n_events; i++) {
                free(l->events[i].key);
                free(l->events[i].value);
        }
        if (l->end_result)
                json_object_put(l->end_result);
        *l = (WatchLog) {};
}

static void watch_on(Etcd *e, WatchLog *l, const char *key, bool prefix, int64_t start_revision) {
        EtcdWatchOptions o = {
                .key = key,
                .key_size = strlen(key),
                .start_revision = start_revision,
        };
        void *end = NULL;

        if (prefix)
                assert_int_equal(etcd_prefix_range_end(key, strlen(key), &end, &o.range_end_size), 0);
        o.range_end = end;
        assert_int_equal(etcd_watch(e, &o, on_watch, l, &l->w), 0);
        free(end);
        l->etcd = e;
        l->key = key;
        l->prefix = prefix;
}

/* Open a watch and wait until etcd says it is created. */
static void watch(Fixture *f, WatchLog *l, const char *key, bool prefix, int64_t start_revision) {
        watch_on(f->etcd, l, key, prefix, start_revision);
        run_until(f, &l->created);
        assert_false(l->ended);
}

static bool watch_has_events(WatchLog *l, size_t n) {
        return l->n_events >= n;
}

static bool watch_has_key(WatchLog *l, const char *key) {
        for (size_t i = 0; i < l->n_events; i++)
                if (l->events[i].key_size == strlen(key) && memcmp(l->events[i].key, key, strlen(key)) == 0)
                        return true;
        return false;
}

static void run_until_events(Fixture *f, WatchLog *l, size_t n) {
        uint64_t deadline = monotonic_usec() + PATIENCE_USEC;

        while (!watch_has_events(l, n)) {
                uint64_t now = monotonic_usec();

                if (l->ended)
                        fail_msg("the watch ended: %s", strerror(-l->error));
                if (now >= deadline)
                        fail_msg("%zu of %zu events came", l->n_events, n);
                assert_true(sd_event_run(f->event, deadline - now) >= 0);
        }
}

static void
expect_event(WatchLog *l, size_t i, bool deleted, const char *key, const char *value, int64_t rev) {
        assert_true(i < l->n_events);
        assert_int_equal(l->events[i].deleted, deleted);
        assert_int_equal(l->events[i].key_size, strlen(key));
        assert_memory_equal(l->events[i].key, key, strlen(key));
        if (value) {
                assert_int_equal(l->events[i].value_size, strlen(value));
                assert_memory_equal(l->events[i].value, value, strlen(value));
        }
        if (rev > 0)
                assert_int_equal(l->events[i].mod_revision, rev);
}

/* The tests. */

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

static void test_put_range_binary(void **state) {
        static const char key[] = "\0wg\xff\n/bin\x80";
        static const char prefix[] = "\0p\xff/", beyond[] = { 0, 'p', (char) 0xff, '0' };
        Fixture *f = *state;
        json_object *reply, *kvs, *kv;
        uint8_t value[256];
        uint64_t took[50];
        int64_t rev;

        REQUIRE_ETCD();
        start(f, 1, NULL);

        for (size_t i = 0; i < sizeof(value); i++)
                value[i] = (uint8_t) i;
        rev = put(f, key, sizeof(key) - 1, value, sizeof(value));
        assert_true(rev > 1);

        reply = call_ok(f, "kv/range", kv_request(key, sizeof(key) - 1, NULL, 0));
        assert_int_equal(int64_of(reply, "count"), 1);
        kvs = field(reply, "kvs");
        assert_int_equal(json_object_array_length(kvs), 1);
        kv = json_object_array_get_idx(kvs, 0);
        expect_bytes(kv, "key", key, sizeof(key) - 1);
        expect_bytes(kv, "value", value, sizeof(value));
        assert_int_equal(int64_of(kv, "mod_revision"), rev);
        assert_int_equal(int64_of(kv, "create_revision"), rev);
        assert_int_equal(int64_of(kv, "version"), 1);
        json_object_put(reply);

        /* A prefix with 0xff inside, and keys beyond it that must stay out. */
        for (char c = 'a'; c <= 'c'; c++) {
                char k[sizeof(prefix)];

                memcpy(k, prefix, sizeof(prefix) - 1);
                k[sizeof(prefix) - 1] = c;
                (void) put(f, k, sizeof(k), &c, 1);
        }
        (void) put(f, "\0p\xff", 3, "out", 3);
        (void) put(f, beyond, sizeof(beyond), "out", 3);
        {
                json_object *req = kv_request(prefix, sizeof(prefix) - 1, NULL, 0);
                void *end;
                size_t end_size;

                assert_int_equal(etcd_prefix_range_end(prefix, sizeof(prefix) - 1, &end, &end_size), 0);
                add_bytes(req, "range_end", end, end_size);
                free(end);
                reply = call_ok(f, "kv/range", req);
        }
        assert_int_equal(int64_of(reply, "count"), 3);
        kvs = field(reply, "kvs");
        for (size_t i = 0; i < 3; i++) {
                char k[sizeof(prefix)], c = (char) ('a' + i);

                memcpy(k, prefix, sizeof(prefix) - 1);
                k[sizeof(prefix) - 1] = c;
                kv = json_object_array_get_idx(kvs, i);
                expect_bytes(kv, "key", k, sizeof(k));
                expect_bytes(kv, "value", &c, 1);
        }
        json_object_put(reply);

        /* What a write costs here, one after the other: the floor of everything built on this. */
        for (size_t i = 0; i < ELEMENTSOF(took); i++) {
                uint64_t t0 = monotonic_usec();

                (void) put_str(f, "timing", "x");
                took[i] = monotonic_usec() - t0;
        }
        qsort(took, ELEMENTSOF(took), sizeof(took[0]), compare_u64);
        fprintf(stderr,
                "# etcd write round trip (kv/put, %zu in a row): median %.2f ms, max %.2f ms\n",
                ELEMENTSOF(took),
                (double) took[ELEMENTSOF(took) / 2] / 1000.0,
                (double) took[ELEMENTSOF(took) - 1] / 1000.0);
}

/* {"compare": [C], "success": [{"request_put": PUT}], "failure": [{"request_range": RANGE}]} */
static json_object *cas_txn(json_object *compare, const char *key, const char *value) {
        json_object *txn = object(), *a, *op;

        a = json_object_new_array();
        json_object_array_add(a, compare);
        json_object_object_add(txn, "compare", a);

        op = object();
        json_object_object_add(op, "request_put", kv_request(key, strlen(key), value, strlen(value)));
        a = json_object_new_array();
        json_object_array_add(a, op);
        json_object_object_add(txn, "success", a);

        op = object();
        json_object_object_add(op, "request_range", kv_request(key, strlen(key), NULL, 0));
        a = json_object_new_array();
        json_object_array_add(a, op);
        json_object_object_add(txn, "failure", a);
        return txn;
}

static json_object *compare_revision(const char *key, const char *target, int64_t rev) {
        json_object *c = kv_request(key, strlen(key), NULL, 0);
        char name[32];

        json_object_object_add(c, "target", json_object_new_string(target));
        snprintf(name, sizeof(name), "%s_revision", strcmp(target, "CREATE") == 0 ? "create" : "mod");
        add_int64(c, name, rev);
        return c;
}

static bool succeeded(json_object *reply) {
        json_object *s;

        /* Left out when false, like every default. */
        return json_object_object_get_ex(reply, "succeeded", &s) && json_object_get_boolean(s);
}

static void test_txn_compare_and_swap(void **state) {
        Fixture *f = *state;
        json_object *reply, *range;
        int64_t created, rev;

        REQUIRE_ETCD();
        start(f, 1, NULL);

        /* Create if absent: once. */
        reply = call_ok(f, "kv/txn", cas_txn(compare_revision("cas", "CREATE", 0), "cas", "v1"));
        assert_true(succeeded(reply));
        created = revision_of(reply);
        json_object_put(reply);

        reply = call_ok(f, "kv/txn", cas_txn(compare_revision("cas", "CREATE", 0), "cas", "v2"));
        assert_false(succeeded(reply));
        assert_int_equal(revision_of(reply), created);
        /* The failure branch ran: it read what is there. */
        range = field(json_object_array_get_idx(field(reply, "responses"), 0), "response_range");
        expect_bytes(json_object_array_get_idx(field(range, "kvs"), 0), "value", "v1", 2);
        json_object_put(reply);

        /* Swap if unchanged since a read at mod_revision: the first wins, the stale one fails. */
        reply = call_ok(f, "kv/txn", cas_txn(compare_revision("cas", "MOD", created), "cas", "v3"));
        assert_true(succeeded(reply));
        rev = revision_of(reply);
        assert_int_equal(rev, created + 1);
        json_object_put(reply);

        reply = call_ok(f, "kv/txn", cas_txn(compare_revision("cas", "MOD", created), "cas", "v4"));
        assert_false(succeeded(reply));
        range = field(json_object_array_get_idx(field(reply, "responses"), 0), "response_range");
        expect_bytes(json_object_array_get_idx(field(range, "kvs"), 0), "value", "v3", 2);
        assert_int_equal(int64_of(json_object_array_get_idx(field(range, "kvs"), 0), "mod_revision"), rev);
        json_object_put(reply);
}

typedef struct KeepAlive {
        Fixture *f;
        int64_t id;
        unsigned n_sent, n_ok, n_max;
        int error;
        uint64_t last_sent; /* when the last keep-alive left: the lease lives at least TTL from then */
        sd_event_source *timer;
} KeepAlive;

static void on_keepalive(EtcdCall *call, int error, json_object *reply, void *userdata) {
        KeepAlive *k = userdata;

        if (error < 0) {
                k->error = error;
                return;
        }
        assert_int_equal(int64_of(reply, "ID"), k->id);
        assert_true(int64_of(reply, "TTL") > 0);
        k->n_ok++;
}

/*
 * A lease's keep-alive on its own schedule, as a node would run it: a quarter of the TTL (of two
 * seconds: a stall of the test or of etcd of up to a second and a half, as a busy machine has,
 * changes nothing).
 */
static int on_keepalive_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        KeepAlive *k = userdata;
        json_object *body = object();

        add_int64(body, "ID", k->id);
        k->last_sent = monotonic_usec();
        assert_int_equal(etcd_call(k->f->etcd, "lease/keepalive", body, on_keepalive, k, NULL), 0);
        /* A time source fires once, then is off until enabled again. */
        if (++k->n_sent < k->n_max) {
                assert_int_equal(sd_event_source_set_time_relative(s, 500 * MSEC), 0);
                assert_int_equal(sd_event_source_set_enabled(s, SD_EVENT_ONESHOT), 0);
        }
        return 0;
}

static void test_lease_keepalive_expiry(void **state) {
        Fixture *f = *state;
        KeepAlive k = { .f = f, .n_max = 8 };
        WatchLog l = {};
        json_object *reply, *body;

        REQUIRE_ETCD();
        start(f, 1, NULL);

        body = object();
        add_int64(body, "TTL", 2);
        reply = call_ok(f, "lease/grant", body);
        k.id = int64_of(reply, "ID");
        assert_true(k.id != 0);
        assert_int_equal(int64_of(reply, "TTL"), 2);
        json_object_put(reply);

        body = kv_request("leased", 6, "member", 6);
        add_int64(body, "lease", k.id);
        json_object_put(call_ok(f, "kv/put", body));
        watch(f, &l, "leased", false, 0);

        /* Kept alive for twice its TTL: still there. */
        assert_int_equal(
                sd_event_add_time_relative(
                        f->event, &k.timer, CLOCK_MONOTONIC, 0, MSEC, on_keepalive_timer, &k),
                0);
        while (k.n_ok + (k.error < 0) < k.n_max) {
                assert_true(sd_event_run(f->event, 100 * MSEC) >= 0);
                assert_int_equal(l.n_events, 0);
        }
        assert_int_equal(k.error, 0);
        reply = call_ok(f, "kv/range", kv_request("leased", 6, NULL, 0));
        assert_int_equal(int64_of(reply, "count"), 1);
        json_object_put(reply);

        /* Left alone, it expires: the watch sees the key deleted, after about the TTL. */
        run_until_events(f, &l, 1);
        expect_event(&l, 0, true, "leased", NULL, 0);
        assert_true(monotonic_usec() - k.last_sent >= 2000 * MSEC);
        reply = call_ok(f, "kv/range", kv_request("leased", 6, NULL, 0));
        assert_int_equal(int64_of(reply, "count"), 0);
        json_object_put(reply);

        /* A keep-alive of the lease that is gone: -ENOENT, as for a revoke. */
        body = object();
        add_int64(body, "ID", k.id);
        assert_int_equal(call(f, "lease/keepalive", body, NULL), -ENOENT);
        body = object();
        add_int64(body, "ID", k.id);
        assert_int_equal(call(f, "lease/revoke", body, NULL), -ENOENT);

        sd_event_source_disable_unref(k.timer);
        etcd_watch_cancel(l.w);
        watch_log_clear(&l);
}

static void test_watch_replay(void **state) {
        static const char *const values[] = { "v0", "v1", "v2", "v3", "v4" };
        Fixture *f = *state;
        WatchLog l = {};
        int64_t revs[5], rev;

        REQUIRE_ETCD();
        start(f, 1, NULL);

        for (size_t i = 0; i < 5; i++)
                revs[i] = put_str(f, "replay", values[i]);
        (void) put_str(f, "replay-other", "not this key");

        /* From the second write on: what came before the watch, in order, then what comes. */
        watch(f, &l, "replay", false, revs[1]);
        run_until_events(f, &l, 4);
        for (size_t i = 1; i < 5; i++)
                expect_event(&l, i - 1, false, "replay", values[i], revs[i]);
        assert_int_equal(etcd_watch_next_revision(l.w), revs[4] + 1);

        rev = put_str(f, "replay", "v5");
        run_until_events(f, &l, 5);
        expect_event(&l, 4, false, "replay", "v5", rev);
        assert_int_equal(l.n_events, 5);
        assert_int_equal(etcd_watch_next_revision(l.w), rev + 1);

        /* From now on: nothing of the past, and the creation revision counts as seen. */
        {
                WatchLog now = {};

                watch(f, &now, "replay", false, 0);
                assert_int_equal(now.n_events, 0);
                assert_int_equal(etcd_watch_next_revision(now.w), rev + 1);
                etcd_watch_cancel(now.w);
                watch_log_clear(&now);
        }

        etcd_watch_cancel(l.w);
        watch_log_clear(&l);
}

/* @size bytes that start with "@i:" and differ from one @i to the next. */
static char *make_value(size_t i, size_t size) {
        char *v = malloc(size + 1), tag[24];
        int n;

        assert_non_null(v);
        for (size_t j = 0; j < size; j++)
                v[j] = (char) ('a' + (i * 7 + j) % 26);
        v[size] = 0;
        n = snprintf(tag, sizeof(tag), "%zu:", i);
        memcpy(v, tag, (size_t) n < size ? (size_t) n : size);
        return v;
}

static void test_watch_stream_chunks(void **state) {
        enum { N_TXN = 64, TXN_VALUE = 2048, N_SMALL = 200, BIG = 512 * 1024 };
        Fixture *f = *state;
        WatchLog live = {}, replay = {};
        json_object *txn, *ops, *reply;
        sd_event *event;
        Etcd *writer;
        char key[32];
        char *big;
        int64_t first, revs[N_TXN + N_SMALL + 1];
        size_t n = 0;

        REQUIRE_ETCD();
        start(f, 1, NULL);
        watch(f, &live, "chunks/", true, 0);
        first = etcd_watch_next_revision(live.w);

        /*
         * The writes go through a client on a loop of its own, while the watch's loop does not
         * run: what etcd sends on the stream meanwhile piles up in the socket, and is read in
         * one go. (Even so, etcd 3.4's gateway flushes each answer as an HTTP chunk of its own,
         * and libcurl hands over each chunk by itself: answers never share a piece here. That
         * they may, and a cut anywhere, test-etcd-util covers.)
         */
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(etcd_new(event, &(EtcdOptions) { .endpoints = f->cluster.endpoints }, &writer), 0);

        /*
         * One transaction of 64 puts of 2 KiB: one answer of some 180 KiB, which libcurl hands
         * over in pieces of 16 KiB at most.
         */
        txn = object();
        ops = json_object_new_array();
        for (size_t i = 0; i < N_TXN; i++) {
                json_object *op = object();
                char *v = make_value(i, TXN_VALUE);

                snprintf(key, sizeof(key), "chunks/txn/%03zu", i);
                json_object_object_add(op, "request_put", kv_request(key, strlen(key), v, TXN_VALUE));
                json_object_array_add(ops, op);
                free(v);
        }
        json_object_object_add(txn, "success", ops);
        assert_int_equal(call_event(event, writer, "kv/txn", txn, &reply), 0);
        assert_true(succeeded(reply));
        for (size_t i = 0; i < N_TXN; i++)
                revs[n++] = revision_of(reply);
        json_object_put(reply);

        /* Then many small answers, and one of half a MiB (some 700 KB as JSON). */
        for (size_t i = 0; i < N_SMALL; i++) {
                char v[16];

                snprintf(key, sizeof(key), "chunks/small/%03zu", i);
                snprintf(v, sizeof(v), "s%zu", i);
                revs[n++] = put_event(event, writer, key, strlen(key), v, strlen(v));
        }
        big = make_value(9999, BIG);
        revs[n++] = put_event(event, writer, "chunks/big", 10, big, BIG);
        etcd_free(writer);
        sd_event_unref(event);

        /* And all of it again, from a watch that replays it: one answer of about 1 MB. */
        watch(f, &replay, "chunks/", true, first);

        for (WatchLog *l = &live; l; l = l == &live ? &replay : NULL) {
                run_until_events(f, l, n);
                run_idle(f, 50 * MSEC);
                assert_int_equal(l->n_events, n);
                for (size_t i = 0; i < N_TXN; i++) {
                        char *v = make_value(i, TXN_VALUE);

                        snprintf(key, sizeof(key), "chunks/txn/%03zu", i);
                        expect_event(l, i, false, key, v, revs[i]);
                        free(v);
                }
                for (size_t i = 0; i < N_SMALL; i++) {
                        char v[16];

                        snprintf(key, sizeof(key), "chunks/small/%03zu", i);
                        snprintf(v, sizeof(v), "s%zu", i);
                        expect_event(l, N_TXN + i, false, key, v, revs[N_TXN + i]);
                }
                expect_event(l, n - 1, false, "chunks/big", big, revs[n - 1]);
                assert_int_equal(etcd_watch_next_revision(l->w), revs[n - 1] + 1);
                assert_false(l->ended);
        }

        free(big);
        etcd_watch_cancel(live.w);
        etcd_watch_cancel(replay.w);
        watch_log_clear(&live);
        watch_log_clear(&replay);
}

static void test_failover(void **state) {
        Fixture *f = *state;
        char dead[2][64];
        const char *endpoints[3];
        json_object *reply;
        Etcd *e;
        uint64_t t0;

        REQUIRE_ETCD();
        etcd_cluster_start(&f->cluster, 1);
        snprintf(dead[0], sizeof(dead[0]), "http://127.0.0.1:%u", etcd_harness_dead_port());
        snprintf(dead[1], sizeof(dead[1]), "http://127.0.0.1:%u", etcd_harness_dead_port());

        /* The first endpoint refuses: the call goes on to the next, within its deadline. */
        endpoints[0] = dead[0];
        endpoints[1] = f->cluster.endpoints[0];
        endpoints[2] = NULL;
        f->etcd = client_new(f, endpoints, NULL);
        json_object_put(call_ok(f, "kv/put", kv_request("failover", 8, "1", 1)));
        /* And the next calls go where the answer came from. */
        reply = call_ok(f, "kv/range", kv_request("failover", 8, NULL, 0));
        assert_int_equal(int64_of(reply, "count"), 1);
        json_object_put(reply);
        f->etcd = etcd_free(f->etcd);

        /* None answers: -EHOSTUNREACH, at once rather than at the deadline. */
        endpoints[1] = dead[1];
        e = client_new(f, endpoints, &(EtcdOptions) { .timeout_usec = 20 * SEC });
        t0 = monotonic_usec();
        assert_int_equal(call_on(f, e, "kv/range", kv_request("failover", 8, NULL, 0), NULL), -EHOSTUNREACH);
        assert_true(monotonic_usec() - t0 < 5 * SEC);
        etcd_free(e);
}

static void test_timeout_while_stopped(void **state) {
        const uint64_t timeout = 500 * MSEC;
        Fixture *f = *state;
        WatchLog l = { .reopen = true };
        Reply r = {};
        int64_t before, after;
        uint64_t t0;
        size_t n;
        Etcd *patient;

        REQUIRE_ETCD();
        start(f, 1, &(EtcdOptions) { .timeout_usec = timeout });
        /* The puts around the stop on a client of the usual patience: a busy etcd never tries it. */
        patient = client_new(f, f->cluster.endpoints, NULL);
        watch(f, &l, "stop/", true, 0);
        before = put_event(f->event, patient, "stop/a", 6, "before", 6);
        run_until_events(f, &l, 1);

        etcd_member_signal(&f->cluster, 0, SIGSTOP);
        t0 = monotonic_usec();
        assert_int_equal(
                etcd_call(f->etcd, "kv/put", kv_request("stop/b", 6, "during", 6), on_reply, &r, NULL), 0);
        run_until(f, &r.done);
        assert_int_equal(r.error, -ETIMEDOUT);
        assert_true(r.at - t0 >= timeout);
        assert_true(r.at - t0 < timeout + 2 * SEC);
        reply_clear(&r);

        /*
         * The member hangs, so its watch stream would stay silent: it ends too, at once, and its
         * handler opens it again, from the revision after the last event it had. On the only
         * endpoint there is: the new stream is not ended along with the old one.
         */
        assert_int_equal(l.n_reopened, 1);
        assert_int_equal(l.reopened_after[0], -ETIMEDOUT);
        assert_false(l.created);

        etcd_member_signal(&f->cluster, 0, SIGCONT);
        after = put_event(f->event, patient, "stop/c", 6, "after", 5);

        /*
         * Taken up where it stopped: whatever came since, nothing twice, nothing lost. (Should
         * etcd take longer than the timeout to answer the new watch, that one ends with
         * -ETIMEDOUT and is opened again.)
         */
        while (!watch_has_key(&l, "stop/c"))
                run_until_events(f, &l, l.n_events + 1);
        n = l.n_events;
        expect_event(&l, 0, false, "stop/a", "before", before);
        /*
         * The put that timed out may have taken effect after all: then it is here, once, before
         * or after stop/c (etcd serves its connections concurrently, and the timed-out one may
         * be served after the new one once it is continued).
         */
        assert_true(n == 2 || n == 3);
        for (size_t i = 1; i < n; i++)
                if (l.events[i].key_size == strlen("stop/c") && memcmp(l.events[i].key, "stop/c", 6) == 0)
                        expect_event(&l, i, false, "stop/c", "after", after);
                else
                        expect_event(&l, i, false, "stop/b", "during", 0);
        for (size_t i = 1; i < l.n_reopened; i++)
                assert_int_equal(l.reopened_after[i], -ETIMEDOUT);

        etcd_watch_cancel(l.w);
        watch_log_clear(&l);
        etcd_free(patient);
}

typedef struct CancelOther {
        EtcdCall *other;
        Reply *other_reply;
        bool done;
        bool cancelled;
} CancelOther;

static void on_reply_cancel_other(EtcdCall *call, int error, json_object *reply, void *userdata) {
        CancelOther *c = userdata;

        assert_int_equal(error, 0);
        c->done = true;
        if (!c->other_reply->done) {
                etcd_call_cancel(c->other);
                c->cancelled = true;
        }
        /* Cancelling oneself from one's callback is allowed, and does nothing. */
        etcd_call_cancel(call);
}

typedef struct FreeInCallback {
        Fixture *f;
        bool done;
} FreeInCallback;

static void on_reply_free(EtcdCall *call, int error, json_object *reply, void *userdata) {
        FreeInCallback *x = userdata;

        x->done = true;
        x->f->etcd = etcd_free(x->f->etcd);
}

/* Calls that may answer before the client is freed, never after. */
static void on_reply_before_free(EtcdCall *call, int error, json_object *reply, void *userdata) {
        FreeInCallback *x = userdata;

        assert_false(x->done);
}

static void test_cancel(void **state) {
        Fixture *f = *state;
        Reply a = {}, b = {}, other = {};
        WatchLog l = {}, never = {};
        CancelOther co = { .other_reply = &other };
        FreeInCallback fc = { .f = f };
        EtcdCall *call;

        REQUIRE_ETCD();
        start(f, 1, NULL);

        /* Cancelled before it went out: no callback, ever. */
        assert_int_equal(etcd_call(f->etcd, "kv/put", kv_request("c", 1, "a", 1), on_reply, &a, &call), 0);
        etcd_call_cancel(call);
        assert_int_equal(etcd_call(f->etcd, "kv/put", kv_request("c", 1, "b", 1), on_reply, &b, NULL), 0);
        run_until(f, &b.done);
        assert_int_equal(b.error, 0);
        reply_clear(&b);
        /*
         * Cancelled once it is on the wire. etcd is stopped meanwhile, or it could answer
         * before the cancel (libcurl may send and read the answer in one go).
         */
        etcd_member_signal(&f->cluster, 0, SIGSTOP);
        assert_int_equal(
                etcd_call(f->etcd, "kv/range", kv_request("c", 1, NULL, 0), on_reply, &a, &call), 0);
        run_idle(f, 20 * MSEC);
        assert_false(a.done);
        etcd_call_cancel(call);
        etcd_member_signal(&f->cluster, 0, SIGCONT);
        assert_int_equal(etcd_call(f->etcd, "kv/range", kv_request("c", 1, NULL, 0), on_reply, &b, NULL), 0);
        run_until(f, &b.done);
        assert_int_equal(b.error, 0);
        reply_clear(&b);
        run_idle(f, 20 * MSEC);
        assert_false(a.done);

        /* One callback cancels another call, or finds it answered already: either way, once. */
        assert_int_equal(
                etcd_call(
                        f->etcd, "kv/range", kv_request("c", 1, NULL, 0), on_reply_cancel_other, &co, NULL),
                0);
        assert_int_equal(
                etcd_call(f->etcd, "kv/range", kv_request("c", 1, NULL, 0), on_reply, &other, &co.other), 0);
        run_until(f, &co.done);
        if (!co.cancelled)
                run_until(f, &other.done);
        run_idle(f, 20 * MSEC);
        assert_true(co.cancelled != other.done);
        reply_clear(&other);

        /* A watch cancelled before it is created, and one from within its handler. */
        watch_on(f->etcd, &never, "c", false, 0);
        etcd_watch_cancel(never.w);
        l.cancel_on_event = true;
        watch(f, &l, "c", false, 0);
        (void) put_str(f, "c", "1");
        run_until(f, &l.ended);
        (void) put_str(f, "c", "2");
        run_idle(f, 20 * MSEC);
        assert_int_equal(l.n_events, 1);
        assert_int_equal(l.error, 0);
        assert_int_equal(never.n_results, 0);
        assert_false(never.ended);
        watch_log_clear(&l);

        /* Freeing the client from a callback: nothing else of it runs. */
        assert_int_equal(
                etcd_call(f->etcd, "kv/range", kv_request("c", 1, NULL, 0), on_reply_free, &fc, NULL), 0);
        for (size_t i = 0; i < 5; i++)
                assert_int_equal(
                        etcd_call(
                                f->etcd,
                                "kv/range",
                                kv_request("c", 1, NULL, 0),
                                on_reply_before_free,
                                &fc,
                                NULL),
                        0);
        watch_on(f->etcd, &never, "c", false, 0);
        run_until(f, &fc.done);
        assert_null(f->etcd);
        run_idle(f, 50 * MSEC);
        assert_false(never.ended);

        /*
         * And freeing it from outside with a watch open, another one on its way, and calls on
         * the wire and not yet (etcd stopped, so that none is answered first).
         */
        f->etcd = client_new(f, f->cluster.endpoints, NULL);
        watch(f, &l, "c", false, 0);
        etcd_member_signal(&f->cluster, 0, SIGSTOP);
        assert_int_equal(etcd_call(f->etcd, "kv/range", kv_request("c", 1, NULL, 0), on_reply, &a, NULL), 0);
        watch_on(f->etcd, &never, "c", false, 0);
        run_idle(f, 20 * MSEC);
        assert_int_equal(etcd_call(f->etcd, "kv/range", kv_request("c", 1, NULL, 0), on_reply, &a, NULL), 0);
        f->etcd = etcd_free(f->etcd);
        etcd_member_signal(&f->cluster, 0, SIGCONT);
        f->etcd = client_new(f, f->cluster.endpoints, NULL);
        (void) put_str(f, "c", "3");
        run_idle(f, 50 * MSEC);
        assert_false(a.done);
        assert_false(l.ended);
        assert_int_equal(l.n_events, 0);
        assert_false(never.ended);
        watch_log_clear(&l);
}

/* Put until it succeeds: a cluster that lost a member may need an election first. */
static int64_t put_retrying(Fixture *f, Etcd *e, const char *key, const char *value) {
        uint64_t deadline = monotonic_usec() + PATIENCE_USEC;

        for (;;) {
                json_object *reply = NULL;
                int64_t rev;
                int r;

                r = call_on(f, e, "kv/put", kv_request(key, strlen(key), value, strlen(value)), &reply);
                if (r >= 0) {
                        rev = revision_of(reply);
                        json_object_put(reply);
                        return rev;
                }
                if (reply)
                        json_object_put(reply);
                /* What a cluster in the middle of an election answers. */
                assert_true(r == -EAGAIN || r == -ETIMEDOUT || r == -ECONNRESET);
                if (monotonic_usec() > deadline)
                        fail_msg("no put succeeded: %s", strerror(-r));
        }
}

static void expect_value_on(Fixture *f, size_t member, const char *key, const char *value) {
        const char *endpoints[] = { f->cluster.endpoints[member], NULL };
        Etcd *e = client_new(f, endpoints, NULL);
        uint64_t deadline = monotonic_usec() + PATIENCE_USEC;
        json_object *reply = NULL;
        int r;

        /* A linearizable read needs a leader: on a busy machine the two left may elect one again. */
        while ((r = call_on(f, e, "kv/range", kv_request(key, strlen(key), NULL, 0), &reply)) < 0) {
                if (reply)
                        json_object_put(TAKE_PTR(reply));
                assert_true(r == -EAGAIN || r == -ETIMEDOUT || r == -ECONNRESET);
                if (monotonic_usec() > deadline)
                        fail_msg("no read of %s succeeded: %s", key, strerror(-r));
        }
        expect_bytes(json_object_array_get_idx(field(reply, "kvs"), 0), "value", value, strlen(value));
        json_object_put(reply);
        etcd_free(e);
}

static void test_cluster_member_killed(void **state) {
        Fixture *f = *state;
        const char *only1[] = { NULL, NULL };
        WatchLog l = {};
        Etcd *e1;
        int r;

        REQUIRE_ETCD();
        start(f, 3, NULL);
        (void) put_retrying(f, f->etcd, "cluster", "1");

        /* The endpoint the client uses dies: the others serve, once they agree on a leader. */
        etcd_member_signal(&f->cluster, 0, SIGKILL);
        (void) put_retrying(f, f->etcd, "cluster", "2");
        expect_value_on(f, 1, "cluster", "2");
        expect_value_on(f, 2, "cluster", "2");

        /*
         * A second one dies: the last has no leader any more. It says so (the client asks it to,
         * with "hasleader") rather than holding calls until the timeout, and ends its watches
         * rather than leaving them silent.
         */
        only1[0] = f->cluster.endpoints[1];
        e1 = client_new(f, only1, &(EtcdOptions) { .timeout_usec = 20 * SEC });
        watch_on(e1, &l, "cluster", false, 0);
        run_until(f, &l.created);
        etcd_member_signal(&f->cluster, 2, SIGKILL);
        run_until(f, &l.ended);
        assert_int_equal(l.error, -EAGAIN);
        assert_non_null(l.end_result); /* the gateway's error, with etcd's message */
        r = call_on(f, e1, "kv/range", kv_request("cluster", 7, NULL, 0), NULL);
        assert_int_equal(r, -EAGAIN);

        /* A member back, a majority again: served. */
        etcd_member_restart(&f->cluster, 0);
        (void) put_retrying(f, e1, "cluster", "3");
        etcd_free(e1);
        watch_log_clear(&l);
}

typedef struct Retry {
        Etcd *etcd;
        unsigned n;
        int errors[4];
} Retry;

/* A caller that tries again at once, from the callback, until it has four answers. */
static void on_reply_retry(EtcdCall *call, int error, json_object *reply, void *userdata) {
        Retry *x = userdata;

        assert_true(x->n < ELEMENTSOF(x->errors));
        x->errors[x->n++] = error;
        if (x->n < ELEMENTSOF(x->errors))
                assert_int_equal(
                        etcd_call(x->etcd, "kv/put", kv_request("auth", 4, "x", 1), on_reply_retry, x, NULL),
                        0);
}

static void test_auth(void **state) {
        Fixture *f = *state;
        WatchLog l = {};
        Etcd *e;

        REQUIRE_ETCD();
        etcd_cluster_start(&f->cluster, 1);
        etcd_cluster_enable_auth(&f->cluster, "s3cret");

        /* No credentials, wrong credentials: -EACCES, with etcd's words. */
        e = client_new(f, f->cluster.endpoints, NULL);
        assert_int_equal(call_on(f, e, "kv/put", kv_request("auth", 4, "x", 1), NULL), -EACCES);
        etcd_free(e);
        e = client_new(f, f->cluster.endpoints, &(EtcdOptions) { .user = "root", .password = "wrong" });
        assert_int_equal(call_on(f, e, "kv/put", kv_request("auth", 4, "x", 1), NULL), -EACCES);
        /* Each try again waits for an authentication of its own, rather than the failed one's. */
        {
                Retry x = { .etcd = e };

                assert_int_equal(
                        etcd_call(e, "kv/put", kv_request("auth", 4, "x", 1), on_reply_retry, &x, NULL), 0);
                while (x.n < ELEMENTSOF(x.errors))
                        assert_true(sd_event_run(f->event, PATIENCE_USEC) >= 0);
                for (size_t i = 0; i < ELEMENTSOF(x.errors); i++)
                        assert_int_equal(x.errors[i], -EACCES);
        }
        etcd_free(e);

        /* The right ones: calls and watches work, the first ones waiting for the token. */
        f->etcd =
                client_new(f, f->cluster.endpoints, &(EtcdOptions) { .user = "root", .password = "s3cret" });
        watch_on(f->etcd, &l, "auth", false, 0);
        (void) put_str(f, "auth", "1");
        run_until(f, &l.created);
        (void) put_str(f, "auth", "2");
        run_until_events(f, &l, 1);
        etcd_watch_cancel(l.w);
        watch_log_clear(&l);

        /*
         * etcd drops root's tokens when its password is set (to the same one here): a call with
         * the old token is refused, and the client authenticates again by itself, once, for a
         * call as for a watch.
         */
        etcd_cluster_change_root_password(&f->cluster, "s3cret", "s3cret");
        (void) put_str(f, "auth", "3");
        etcd_cluster_change_root_password(&f->cluster, "s3cret", "s3cret");
        watch(f, &l, "auth", false, 0);
        (void) put_str(f, "auth", "4");
        run_until_events(f, &l, 1);
        expect_event(&l, 0, false, "auth", "4", 0);
        etcd_watch_cancel(l.w);
        watch_log_clear(&l);

        /* A restarted etcd may or may not know the token again (it replays the log): served. */
        etcd_member_signal(&f->cluster, 0, SIGKILL);
        etcd_member_restart(&f->cluster, 0);
        (void) put_str(f, "auth", "5");

        /*
         * A user without a role may do nothing: a call is refused, and a watch is cancelled with a
         * reason in gRPC's words that says why.
         */
        etcd_cluster_add_user(&f->cluster, "s3cret", "nobody", "pw");
        e = client_new(f, f->cluster.endpoints, &(EtcdOptions) { .user = "nobody", .password = "pw" });
        assert_int_equal(call_on(f, e, "kv/put", kv_request("auth", 4, "x", 1), NULL), -EACCES);
        watch_on(e, &l, "auth", false, 0);
        run_until(f, &l.ended);
        assert_int_equal(l.error, -EACCES);
        assert_false(l.created); /* etcd says "created" and "canceled" at once: it was not */
        assert_non_null(l.end_result);
        assert_non_null(strstr(
                json_object_get_string(field(l.end_result, "cancel_reason")), "code = PermissionDenied"));
        watch_log_clear(&l);
        etcd_free(e);

        /* The password changed for good: the one new authentication fails, and says so. */
        etcd_cluster_change_root_password(&f->cluster, "s3cret", "n3w");
        assert_int_equal(call(f, "kv/put", kv_request("auth", 4, "6", 1), NULL), -EACCES);
}

static void test_tls(void **state) {
        Fixture *f = *state;
        EtcdOptions o = {};
        Etcd *e;
        int r;

        REQUIRE_ETCD();
        if (!etcd_harness_have_openssl())
                skip_test("openssl is not installed: no certificates for the TLS cluster");
        etcd_cluster_start_tls(&f->cluster, 1);

        o = (EtcdOptions) {
                .ca_file = f->cluster.ca_file,
                .cert_file = f->cluster.client_cert_file,
                .key_file = f->cluster.client_key_file,
        };
        f->etcd = client_new(f, f->cluster.endpoints, &o);
        (void) put_str(f, "tls", "1");

        /* Without our certificate, etcd refuses; without the CA, we refuse etcd. */
        o.cert_file = o.key_file = NULL;
        e = client_new(f, f->cluster.endpoints, &o);
        r = call_on(f, e, "kv/range", kv_request("tls", 3, NULL, 0), NULL);
        assert_true(r == -EHOSTUNREACH || r == -ECONNRESET);
        etcd_free(e);
        o = (EtcdOptions) { .cert_file = f->cluster.client_cert_file,
                            .key_file = f->cluster.client_key_file };
        e = client_new(f, f->cluster.endpoints, &o);
        assert_int_equal(call_on(f, e, "kv/range", kv_request("tls", 3, NULL, 0), NULL), -EHOSTUNREACH);
        etcd_free(e);
}

static void test_errors(void **state) {
        Fixture *f = *state;
        WatchLog l = {};
        json_object *reply = NULL, *body;
        int64_t r1, r2;

        REQUIRE_ETCD();
        start(f, 1, NULL);

        /* A method the gateway does not have. */
        assert_int_equal(call(f, "kv/nosuch", NULL, NULL), -EOPNOTSUPP);

        /* etcd's own refusals, each with its body. */
        assert_int_equal(call(f, "kv/put", object(), &reply), -EINVAL); /* no key */
        assert_non_null(reply);
        assert_string_equal(
                json_object_get_string(field(reply, "error")), "etcdserver: key is not provided");
        json_object_put(reply);

        body = object();
        add_int64(body, "ID", 12345);
        assert_int_equal(call(f, "lease/revoke", body, NULL), -ENOENT);

        r1 = put_str(f, "errors", "1");
        r2 = put_str(f, "errors", "2");
        body = kv_request("errors", 6, NULL, 0);
        add_int64(body, "revision", r2 + 100);
        assert_int_equal(call(f, "kv/range", body, NULL), -ERANGE); /* the future */

        /* Compacted: reading or watching from before it says where history starts now. */
        body = object();
        add_int64(body, "revision", r2);
        json_object_put(call_ok(f, "kv/compaction", body));
        body = kv_request("errors", 6, NULL, 0);
        add_int64(body, "revision", r1);
        assert_int_equal(call(f, "kv/range", body, NULL), -ERANGE);
        watch_on(f->etcd, &l, "errors", false, r1);
        run_until(f, &l.ended);
        assert_int_equal(l.error, -ERANGE);
        assert_non_null(l.end_result);
        assert_int_equal(int64_of(l.end_result, "compact_revision"), r2);
        /* Its handler had nothing: the place to continue from is where it was to start. */
        assert_int_equal(l.next_revision, r1);
        watch_log_clear(&l);

        /* Arguments. */
        assert_int_equal(etcd_call(f->etcd, "/v3/kv/range", NULL, on_reply, NULL, NULL), -EINVAL);
        assert_int_equal(etcd_call(f->etcd, "kv/range", NULL, NULL, NULL, NULL), -EINVAL);
        assert_int_equal(etcd_watch(f->etcd, &(EtcdWatchOptions) {}, on_watch, &l, NULL), -EINVAL);
        {
                Etcd *e = NULL;

                assert_int_equal(
                        etcd_new(
                                f->event,
                                &(EtcdOptions) { .endpoints = (const char *const[]) { NULL } },
                                &e),
                        -EINVAL);
                assert_int_equal(
                        etcd_new(
                                f->event,
                                &(EtcdOptions) { .endpoints =
                                                         (const char *const[]) { "127.0.0.1:2379", NULL } },
                                &e),
                        -EINVAL);
                assert_int_equal(
                        etcd_new(
                                f->event,
                                &(EtcdOptions) { .endpoints = f->cluster.endpoints, .user = "root" },
                                &e),
                        -EINVAL);
                assert_null(e);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_put_range_binary, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_txn_compare_and_swap, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_lease_keepalive_expiry, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_watch_replay, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_watch_stream_chunks, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_failover, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_timeout_while_stopped, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_cancel, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_cluster_member_killed, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_auth, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_tls, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_errors, fixture_setup, fixture_teardown),
        };

        return cmocka_run_group_tests_name("etcd", tests, NULL, NULL);
}
