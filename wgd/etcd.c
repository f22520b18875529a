/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * How it hangs together (the contract is in etcd.h):
 *
 * libcurl's multi handle does all the HTTP. It tells us which sockets to watch for what
 * (CURLMOPT_SOCKETFUNCTION) and when to call it back anyway (CURLMOPT_TIMERFUNCTION); those
 * become sd-event io sources and one time source, whose handlers call
 * curl_multi_socket_action(), the way systemd's src/import/curl-util.c does it.
 *
 * A call and a watch are both a request (EtcdCall; a watch's first member is one): an easy
 * handle that tries the endpoints in turn, a deadline timer of our own (for a watch: until
 * etcd said "created"), and a place in the queue of requests that wait for an authentication
 * token. libcurl forbids touching the multi handle from within its callbacks, and callbacks of
 * ours may do anything, so nothing of the user's ever runs inside libcurl: the write function
 * only collects (the answer of a call; the objects of a watch stream, queued on the watch), and
 * dispatch() hands things out once curl_multi_socket_action() has returned: first the queued
 * watch answers, then the finished transfers. The deadline timers run user callbacks too; they
 * are sd-event handlers of their own, never inside libcurl either.
 *
 * Lifetimes: a request holds a reference on its Etcd, and the Etcd one on each request in
 * flight; whatever runs a user callback holds one more on both, so that a callback can cancel
 * its own request, any other, or free the Etcd, and the code around it still finds its objects.
 * "Detached" is the state after the last callback or a cancel: out of curl, out of every list,
 * timer off, no callback ever again.
 */

#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <curl/curl.h>

#include "base64.h"
#include "etcd.h"
#include "json-stream.h"
#include "list.h"
#include "macro.h"

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC (1000 * USEC_PER_MSEC)

/* How precisely the calls' deadlines fire: they are in milliseconds. */
#define TIMER_ACCURACY_USEC USEC_PER_MSEC

/*
 * How precisely curl's own timer fires: as asked. curl asks for 0 ms to start each transfer, and
 * sd-event fires a timer at the end of its accuracy window: with a millisecond there, every call
 * to etcd started a millisecond late, most of what a cluster group's done took beyond etcd's own
 * round trip (docs/benchmarks.md, cluster groups).
 */
#define CURL_TIMER_ACCURACY_USEC 1

/* TCP keep-alive on every connection, for a peer that vanished from a stream that is quiet. */
#define KEEPALIVE_IDLE_SEC 30L
#define KEEPALIVE_INTERVAL_SEC 10L

typedef struct IoWatch IoWatch;

struct IoWatch {
        Etcd *etcd;
        sd_event_source *source;
        LIST_FIELDS(IoWatch, ios);
};

typedef enum AuthState {
        AUTH_NONE,    /* no user configured: no token, ever */
        AUTH_NEEDED,  /* a user, but no token (yet, or any more) */
        AUTH_RUNNING, /* auth/authenticate under way; requests wait for it */
        AUTH_READY,   /* a token; or etcd has authentication off, then none */
} AuthState;

struct Etcd {
        unsigned n_ref; /* the owner's (until etcd_free()), each request's, each dispatch's */
        bool freed;     /* etcd_free() was called: no callback may run any more */

        sd_event *event;
        CURLM *multi;
        sd_event_source *timer; /* curl's */
        IoWatch *ios;

        char **endpoints;
        size_t n_endpoints;
        size_t current; /* where requests go first: the last endpoint that answered */
        uint64_t timeout_usec;

        char *user, *password;
        char *ca_file, *cert_file, *key_file;

        AuthState auth;
        char *auth_header;     /* "Authorization: TOKEN" in AUTH_READY with a token, else NULL */
        unsigned token_serial; /* counts the outcomes of authentication */
        uint64_t n_auth;       /* authentications started, ever */
        EtcdCall *auth_waiting;

        EtcdCall *requests; /* every request in flight */
        size_t n_unwatched; /* of them, those to end for a socket not watched (at most) */
        EtcdWatch *pending; /* watches with answers queued */
        uint64_t n_tries;   /* tries started, ever: each try's serial */
};

struct EtcdCall {
        Etcd *etcd;
        unsigned n_ref; /* the Etcd's while in flight, one per callback running */
        bool in_flight;
        bool attached;       /* in curl's multi handle */
        bool authenticating; /* the auth/authenticate request: no token, no re-authentication */
        bool keepalive;      /* lease/keepalive: its answer comes in the stream format */
        EtcdWatch *watch;    /* the watch this is the request of, if one */
        LIST_FIELDS(EtcdCall, requests);
        LIST_FIELDS(EtcdCall, waiting);

        char *path; /* "/v3/kv/range" */
        char *body;
        size_t body_size;

        uint64_t deadline; /* CLOCK_MONOTONIC */
        sd_event_source *deadline_timer;

        CURL *easy;
        struct curl_slist *headers;
        size_t start;          /* the endpoint of the first try */
        size_t n_tried;        /* endpoints that could not be connected to */
        size_t endpoint;       /* of the try under way */
        uint64_t try_serial;   /* which try, of all the Etcd's */
        unsigned token_serial; /* the authentication outcome the try carries */
        uint64_t auth_serial;  /* the authentication it waits for, while it does */
        bool reauthenticated;
        int write_error; /* why our write function stopped the transfer, if it did */
        bool unwatched;  /* a socket of its try could not be watched: to end at the next dispatch */

        char *reply;
        size_t reply_size, reply_alloc;

        etcd_reply_t callback;
        void *userdata;
};

struct EtcdWatch {
        EtcdCall request;
        JsonStream stream;

        json_object **queue; /* results collected by the write function, not handed out yet */
        size_t n_queue, queue_alloc;
        LIST_FIELDS(EtcdWatch, pending);

        int end_error;           /* the stream said it is over: the handler's error after the queue */
        json_object *end_result; /* and the answer that said so */
        int end_code;            /* etcd's gRPC code for it, if it gave one, and its message */
        const char *end_message; /* (in end_result) */

        bool created;
        bool delivered; /* the handler had an answer */
        int64_t start_revision;
        int64_t next_revision;

        etcd_watch_handler_t handler;
        void *userdata;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for this clock */
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void json_object_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}

static Etcd *etcd_ref(Etcd *e) {
        assert(e->n_ref > 0);
        e->n_ref++;
        return e;
}

static void etcd_unref(Etcd *e);

/* Requests: lifetime. */

static void request_free(EtcdCall *c) {
        EtcdWatch *w = c->watch;
        Etcd *e = c->etcd;

        assert(!c->in_flight);
        assert(!c->attached);

        if (w) {
                json_stream_done(&w->stream);
                for (size_t i = 0; i < w->n_queue; i++)
                        json_object_put(w->queue[i]);
                free(w->queue);
                if (w->end_result)
                        json_object_put(w->end_result);
        }
        sd_event_source_disable_unref(c->deadline_timer);
        if (c->easy)
                curl_easy_cleanup(c->easy);
        curl_slist_free_all(c->headers);
        free(c->path);
        if (c->authenticating && c->body) /* it holds the password */
                explicit_bzero(c->body, c->body_size);
        free(c->body);
        free(c->reply);
        free(w ? (void *) w : (void *) c);
        etcd_unref(e);
}

static EtcdCall *request_ref(EtcdCall *c) {
        c->n_ref++;
        return c;
}

static void request_unref(EtcdCall *c) {
        assert(c->n_ref > 0);
        if (--c->n_ref == 0)
                request_free(c);
}

static void request_detach_curl(EtcdCall *c) {
        if (!c->attached)
                return;
        /* Never fails for a handle that is in the multi handle (and we are not in a callback). */
        (void) curl_multi_remove_handle(c->etcd->multi, c->easy);
        c->attached = false;
}

/* Out of everything: no callback will run. The Etcd's reference is the caller's to drop. */
static void request_detach(EtcdCall *c) {
        Etcd *e = c->etcd;

        assert(c->in_flight);
        request_detach_curl(c);
        LIST_REMOVE(requests, e->requests, c);
        LIST_REMOVE(waiting, e->auth_waiting, c);
        if (c->watch)
                LIST_REMOVE(pending, e->pending, c->watch);
        if (c->deadline_timer)
                (void) sd_event_source_set_enabled(c->deadline_timer, SD_EVENT_OFF);
        c->in_flight = false;
}

/* Out of everything, without a callback, and the Etcd's reference dropped: cancelled. */
static void request_drop(EtcdCall *c) {
        request_detach(c);
        request_unref(c);
}

/* The last callback of @c: with @error, and the answer @reply (may be NULL), which it borrows. */
static void request_finish(EtcdCall *c, int error, json_object *reply) {
        Etcd *e = c->etcd;

        request_detach(c);
        if (!e->freed) {
                if (c->watch)
                        c->watch->handler(c->watch, error, reply, c->watch->userdata);
                else
                        c->callback(c, error, reply, c->userdata);
        }
        request_unref(c); /* the Etcd's */
}

/* Requests: one try at one endpoint. */

static size_t on_write(char *p, size_t size, size_t n, void *userdata);

static bool request_sent(EtcdCall *c) {
        long sent = 0;

        return c->easy && curl_easy_getinfo(c->easy, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent > 0;
}

static int request_set_headers(EtcdCall *c) {
        static const char *const fixed[] = {
                "Content-Type: application/json",
                /* No "100 Continue" round trip before a body of more than 1 KiB. */
                "Expect:",
                /*
                 * gRPC metadata through the gateway: the member must have a leader. Without it,
                 * a member cut off from the others holds calls until its own timeout and keeps
                 * watch streams open that will never see an event.
                 */
                "Grpc-Metadata-hasleader: true",
        };
        struct curl_slist *l = NULL;

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
                struct curl_slist *n = curl_slist_append(l, fixed[i]);

                if (!n)
                        goto out_free;
                l = n;
        }
        if (!c->authenticating && c->etcd->auth_header) {
                struct curl_slist *n = curl_slist_append(l, c->etcd->auth_header);

                if (!n)
                        goto out_free;
                l = n;
        }
        if (curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, l) != CURLE_OK)
                goto out_free;
        curl_slist_free_all(c->headers);
        c->headers = l;
        return 0;

out_free:
        curl_slist_free_all(l);
        return -ENOMEM;
}

/* What stays the same from one try to the next. */
static int request_make_easy(EtcdCall *c) {
        Etcd *e = c->etcd;
        CURL *easy;

        easy = curl_easy_init();
        if (!easy)
                return -ENOMEM;
        c->easy = easy;

        /*
         * Every option here is valid for this libcurl (7.61 and later have them all), so the
         * only failure left is memory, for those that copy a string.
         */
        if (curl_easy_setopt(easy, CURLOPT_PRIVATE, c) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            /* The one version the tests cover, for http and https alike. */
            curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1) != CURLE_OK ||
            /* etcd is reached directly: a proxy from the environment has no business here. */
            curl_easy_setopt(easy, CURLOPT_PROXY, "") != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, KEEPALIVE_IDLE_SEC) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, KEEPALIVE_INTERVAL_SEC) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_POST, 1L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, c->body) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) c->body_size) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEDATA, c) != CURLE_OK)
                return -ENOMEM;
        if (e->ca_file && curl_easy_setopt(easy, CURLOPT_CAINFO, e->ca_file) != CURLE_OK)
                return -ENOMEM;
        if (e->cert_file && curl_easy_setopt(easy, CURLOPT_SSLCERT, e->cert_file) != CURLE_OK)
                return -ENOMEM;
        if (e->key_file && curl_easy_setopt(easy, CURLOPT_SSLKEY, e->key_file) != CURLE_OK)
                return -ENOMEM;
        return 0;
}

/* Try the next endpoint: (start + n_tried) mod n. */
static int request_try(EtcdCall *c) {
        Etcd *e = c->etcd;
        _cleanup_free_ char *url = NULL;
        uint64_t now, left, share; /* share: in ms */
        int r;

        assert(c->in_flight);
        assert(!c->attached);
        assert(c->n_tried < e->n_endpoints);

        if (!c->easy) {
                r = request_make_easy(c);
                if (r < 0)
                        return r;
        }

        if (c->n_tried == 0)
                c->start = e->current;
        c->endpoint = (c->start + c->n_tried) % e->n_endpoints;
        c->try_serial = ++e->n_tries;
        c->token_serial = e->token_serial;
        c->reply_size = 0;
        c->write_error = 0;

        if (asprintf(&url, "%s%s", e->endpoints[c->endpoint], c->path) < 0)
                return -ENOMEM;
        if (curl_easy_setopt(c->easy, CURLOPT_URL, url) != CURLE_OK)
                return -ENOMEM;
        r = request_set_headers(c);
        if (r < 0)
                return r;

        /*
         * Each endpoint left gets an equal share of the time left to connect, so that one that
         * swallows SYNs cannot eat all of it; the last gets all that is left. The whole request
         * is bounded by our deadline timer, not by curl.
         */
        now = now_usec();
        left = c->deadline > now ? c->deadline - now : 0;
        share = left / (e->n_endpoints - c->n_tried) / USEC_PER_MSEC + 1;
        if (curl_easy_setopt(
                    c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) (share < INT32_MAX ? share : INT32_MAX)) !=
            CURLE_OK)
                return -EIO;

        if (curl_multi_add_handle(e->multi, c->easy) != CURLM_OK)
                return -ENOMEM;
        c->attached = true;
        return 0;
}

static int auth_start(Etcd *e);

/* Start @c: at once, or after the authentication it needs. */
static int request_begin(EtcdCall *c) {
        Etcd *e = c->etcd;

        if (c->authenticating || e->auth == AUTH_NONE || e->auth == AUTH_READY)
                return request_try(c);

        if (e->auth == AUTH_NEEDED) {
                int r = auth_start(e);

                if (r < 0)
                        return r;
        }
        c->auth_serial = e->n_auth;
        LIST_PREPEND(waiting, e->auth_waiting, c);
        return 0;
}

/* Endpoints. */

static void request_fail_endpoint(Etcd *e, size_t endpoint);

/*
 * A request failed at @endpoint after it got there: send the next ones elsewhere. If it got no
 * answer in time (@hung), the member hangs: the watch streams on it would stay silent forever,
 * so they end too, and their handlers open them again elsewhere.
 */
static void endpoint_failed(Etcd *e, size_t endpoint, bool hung) {
        if (e->current == endpoint)
                e->current = (endpoint + 1) % e->n_endpoints;
        if (hung)
                request_fail_endpoint(e, endpoint);
}

static void request_fail_endpoint(Etcd *e, size_t endpoint) {
        /*
         * Only the watches there now: a handler that opens its watch again, with the one
         * endpoint there is, must not see the new one ended too, and open it again, and so on.
         */
        uint64_t last = e->n_tries;

        /* From the head each time: a handler may cancel any other request. */
        for (;;) {
                EtcdCall *found = NULL;

                if (e->freed)
                        return;
                LIST_FOREACH (requests, i, e->requests)
                        if (i->watch && i->attached && i->endpoint == endpoint && i->try_serial <= last) {
                                found = i;
                                break;
                        }
                if (!found)
                        return;
                request_finish(found, -ETIMEDOUT, NULL);
        }
}

/* Authentication. */

/*
 * The authentication that requests wait for is over: start them (@error 0), or fail them. Only
 * those that waited for this one, oldest first: a callback may queue new requests, which wait
 * for the next, or cancel others.
 */
static void auth_waiting_done(Etcd *e, int error) {
        uint64_t serial = e->n_auth;

        while (!e->freed) {
                EtcdCall *c = NULL;
                int r;

                /* The list has the newest first. */
                LIST_FOREACH (waiting, i, e->auth_waiting)
                        if (i->auth_serial == serial)
                                c = i;
                if (!c)
                        return;

                LIST_REMOVE(waiting, e->auth_waiting, c);
                r = error < 0 ? error : request_try(c);
                if (r < 0)
                        request_finish(c, r, NULL);
        }
}

static void on_authenticated(EtcdCall *call, int error, json_object *reply, void *userdata) {
        Etcd *e = userdata;
        json_object *token = NULL, *message = NULL;

        assert(e->auth == AUTH_RUNNING);

        if (error == -EPROTO && reply && json_object_object_get_ex(reply, "error", &message) &&
            json_object_is_type(message, json_type_string) &&
            strcmp(json_object_get_string(message), "etcdserver: authentication is not enabled") == 0) {
                /* As etcd's Go client does: no authentication, no token. */
                e->auth = AUTH_READY;
                e->auth_header = mfree(e->auth_header);
        } else if (error < 0) {
                /* The next request tries again. */
                e->auth = AUTH_NEEDED;
                auth_waiting_done(e, error);
                return;
        } else {
                char *h;

                if (!json_object_object_get_ex(reply, "token", &token) ||
                    !json_object_is_type(token, json_type_string) ||
                    json_object_get_string_len(token) == 0) {
                        e->auth = AUTH_NEEDED;
                        auth_waiting_done(e, -EBADMSG);
                        return;
                }
                if (asprintf(&h, "Authorization: %s", json_object_get_string(token)) < 0) {
                        e->auth = AUTH_NEEDED;
                        auth_waiting_done(e, -ENOMEM);
                        return;
                }
                free(e->auth_header);
                e->auth_header = h;
                e->auth = AUTH_READY;
        }
        e->token_serial++;
        auth_waiting_done(e, 0);
}

static int request_new(
        Etcd *e,
        const char *method,
        json_object *body,
        size_t size,
        etcd_reply_t callback,
        void *userdata,
        EtcdCall **ret);

static int auth_start(Etcd *e) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        EtcdCall *c;
        int r;

        assert(e->auth == AUTH_NEEDED);

        body = json_object_new_object();
        if (!body)
                return -ENOMEM;
        if (etcd_json_add(body, "name", json_object_new_string(e->user)) < 0 ||
            etcd_json_add(body, "password", json_object_new_string(e->password)) < 0)
                return -ENOMEM;

        r = request_new(e, "auth/authenticate", TAKE_PTR(body), 0, on_authenticated, e, &c);
        if (r < 0)
                return r;
        c->authenticating = true;
        e->auth = AUTH_RUNNING;
        e->n_auth++;
        r = request_begin(c);
        if (r < 0) {
                e->auth = AUTH_NEEDED;
                request_drop(c);
                return r;
        }
        return 0;
}

/* Answers. */

int etcd_error_from_grpc(int code, const char *message) {
        static const int table[] = {
                [1] = -ECANCELED, [2] = -EIO,     [3] = -EINVAL,  [4] = -ETIMEDOUT,
                [5] = -ENOENT,    [6] = -EEXIST,  [7] = -EACCES,  [8] = -ENOSPC,
                [9] = -EPROTO,    [10] = -EAGAIN, [11] = -ERANGE, [12] = -EOPNOTSUPP,
                [13] = -EIO,      [14] = -EAGAIN, [15] = -EIO,    [16] = -EACCES,
        };

        if (message) {
                /* Refusals of authentication that gRPC files under InvalidArgument. */
                if (code == 3 &&
                    (strcmp(message, "etcdserver: user name is empty") == 0 ||
                     strcmp(message, "etcdserver: authentication failed, invalid user ID or password") == 0))
                        return -EACCES;
                if (code == 8 && strcmp(message, "etcdserver: too many requests") == 0)
                        return -EBUSY;
        }
        if (code <= 0 || (size_t) code >= ELEMENTSOF(table))
                return -EIO;
        return table[code];
}

/*
 * The gateway's error in @o, in either of its shapes: {"error": MESSAGE, "code": N} (a unary
 * call) or {"error": {"grpc_code": N, "message": MESSAGE}} (a stream). Returns 0 if @o has none,
 * the mapped errno (*@ret_code and *@ret_message say what etcd said), or -EBADMSG.
 */
static int answer_error(json_object *o, int *ret_code, const char **ret_message) {
        json_object *error, *code = NULL, *message = NULL;

        if (!json_object_object_get_ex(o, "error", &error))
                return 0;
        if (json_object_is_type(error, json_type_string)) {
                message = error;
                (void) json_object_object_get_ex(o, "code", &code);
        } else if (json_object_is_type(error, json_type_object)) {
                (void) json_object_object_get_ex(error, "grpc_code", &code);
                (void) json_object_object_get_ex(error, "message", &message);
        } else
                return -EBADMSG;
        if (!code || !json_object_is_type(code, json_type_int) || json_object_get_int(code) <= 0)
                return -EBADMSG;
        if (message && !json_object_is_type(message, json_type_string))
                return -EBADMSG;

        *ret_code = json_object_get_int(code);
        *ret_message = message ? json_object_get_string(message) : NULL;
        return etcd_error_from_grpc(*ret_code, *ret_message);
}

/* Whether etcd refused the token (or its absence) in a way a new authentication cures. */
static bool token_refused(int code, const char *message) {
        if (code == 16) /* Unauthenticated: "invalid auth token", an expired one, etcd restarted */
                return true;
        return code == 3 && message &&
                (strcmp(message, "etcdserver: user name is empty") == 0 ||
                 strcmp(message, "etcdserver: revision of auth store is old") == 0);
}

static bool request_may_reauthenticate(EtcdCall *c, int code, const char *message) {
        Etcd *e = c->etcd;

        return e->auth != AUTH_NONE && !c->authenticating && !c->reauthenticated &&
                token_refused(code, message);
}

/* Once per request: a new token, unless somebody got one since this try began. */
static int request_reauthenticate(EtcdCall *c) {
        Etcd *e = c->etcd;

        c->reauthenticated = true;
        if (c->token_serial == e->token_serial && e->auth == AUTH_READY) {
                e->auth = AUTH_NEEDED;
                e->auth_header = mfree(e->auth_header);
        }
        c->n_tried = 0;
        return request_begin(c);
}

static bool is_connect_failure(CURLcode result) {
        switch (result) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT: /* we set no timeout but the connect timeout */
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
                return true;
        default:
                return false;
        }
}

/*
 * The transfer of @c is over, with @result: try it again elsewhere, or make it wait for a new
 * token (then return 1), or say how it ends: 0 or an errno, and in *@ret_reply the answer to
 * hand to the callback (a part of *@ret_owner, the caller's to put), if any.
 */
static int request_outcome(EtcdCall *c, CURLcode result, json_object **ret_owner, json_object **ret_reply) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        Etcd *e = c->etcd;
        EtcdWatch *w = c->watch;
        json_object *reply;
        const char *message = NULL;
        long status = 0;
        bool sent;
        int r, code = 0;

        (void) curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        sent = request_sent(c);
        request_detach_curl(c);

        if (w && w->end_error != 0) {
                /* The stream said it is over, and we stopped the transfer. */
                if (!w->delivered && w->n_queue == 0 &&
                    request_may_reauthenticate(c, w->end_code, w->end_message)) {
                        /* Refused before the handler had anything: nobody sees it start over. */
                        json_object_put(TAKE_PTR(w->end_result));
                        w->end_error = w->end_code = 0;
                        w->end_message = NULL;
                        json_stream_done(&w->stream);
                        r = json_stream_init(&w->stream, ETCD_REPLY_MAX);
                        if (r >= 0)
                                r = request_reauthenticate(c);
                        return r < 0 ? r : 1;
                }
                if (w->end_code == 14)
                        endpoint_failed(e, c->endpoint, /* hung= */ false);
                *ret_owner = *ret_reply = TAKE_PTR(w->end_result);
                return w->end_error;
        }
        if (c->write_error != 0)
                return c->write_error;

        if (result != CURLE_OK) {
                if (!sent && is_connect_failure(result)) {
                        c->n_tried++;
                        if (c->n_tried >= e->n_endpoints)
                                return -EHOSTUNREACH;
                        r = request_try(c);
                        return r < 0 ? r : 1;
                }
                if (result == CURLE_OUT_OF_MEMORY)
                        return -ENOMEM;
                /* It got there, and the connection broke (a write may have taken effect). */
                endpoint_failed(e, c->endpoint, /* hung= */ false);
                return -ECONNRESET;
        }

        if (w && status == 200)
                /* The stream of a watch ended without a word. */
                return -ECONNRESET;

        r = json_parse_object(c->reply ? c->reply : "", c->reply_size, &o);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                /* A plain 404 is the gateway's answer to a method it does not know. */
                return status == 404 ? -EOPNOTSUPP : -EBADMSG;

        r = answer_error(o, &code, &message);
        if (r == 0 && status != 200)
                r = -EBADMSG;
        if (r < 0 && request_may_reauthenticate(c, code, message)) {
                r = request_reauthenticate(c);
                return r < 0 ? r : 1;
        }
        if (code == 14) /* Unavailable: no leader, leader changed ... */
                endpoint_failed(e, c->endpoint, /* hung= */ false);
        else
                e->current = c->endpoint;
        if (r < 0) {
                *ret_owner = *ret_reply = TAKE_PTR(o);
                return r;
        }

        reply = o;
        if (c->keepalive) {
                /* {"result": ANSWER}; an ANSWER without TTL says the lease is gone. */
                int64_t ttl;

                if (!json_object_object_get_ex(o, "result", &reply) ||
                    !json_object_is_type(reply, json_type_object))
                        return -EBADMSG;
                r = etcd_json_get_int64(reply, "TTL", &ttl);
                if (r < 0)
                        return r;
                if (ttl <= 0)
                        r = -ENOENT;
        }
        *ret_reply = reply;
        *ret_owner = TAKE_PTR(o);
        return r;
}

static void request_done(EtcdCall *c, CURLcode result) {
        json_object *owner = NULL, *reply = NULL;
        int r;

        r = request_outcome(c, result, &owner, &reply);
        if (r > 0)
                return; /* on its way again */
        request_finish(c, r, reply);
        if (owner)
                json_object_put(owner);
}

/* The deadline of a call, or of a watch that was not created yet. */
static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        EtcdCall *c = userdata;
        Etcd *e = etcd_ref(c->etcd);
        bool hung = c->attached && request_sent(c);
        size_t endpoint = c->endpoint;

        request_finish(c, -ETIMEDOUT, NULL);
        if (!e->freed && hung)
                endpoint_failed(e, endpoint, /* hung= */ true);
        etcd_unref(e);
        return 0;
}

/* Watches: collecting. */

/*
 * etcd cancels a watch it refused with a cancel_reason that is a Go gRPC error as text:
 * "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token". Returns the code
 * and points *@ret_desc at the description, or returns 0 for any other text.
 */
static int cancel_reason_parse(const char *reason, const char **ret_desc) {
        static const char *const names[] = {
                [1] = "Canceled",         [2] = "Unknown",           [3] = "InvalidArgument",
                [4] = "DeadlineExceeded", [5] = "NotFound",          [6] = "AlreadyExists",
                [7] = "PermissionDenied", [8] = "ResourceExhausted", [9] = "FailedPrecondition",
                [10] = "Aborted",         [11] = "OutOfRange",       [12] = "Unimplemented",
                [13] = "Internal",        [14] = "Unavailable",      [15] = "DataLoss",
                [16] = "Unauthenticated",
        };
        static const char prefix[] = "rpc error: code = ";
        const char *p;

        if (strncmp(reason, prefix, strlen(prefix)) != 0)
                return 0;
        p = reason + strlen(prefix);
        for (int code = 1; code < (int) ELEMENTSOF(names); code++) {
                size_t len = strlen(names[code]);

                if (strncmp(p, names[code], len) == 0 && strncmp(p + len, " desc = ", 8) == 0) {
                        *ret_desc = p + len + 8;
                        return code;
                }
        }
        return 0;
}

static int watch_collect(json_object *o, void *userdata) {
        EtcdWatch *w = userdata;
        json_object *result, *canceled;
        int r;

        r = answer_error(o, &w->end_code, &w->end_message);
        if (r < 0) {
                w->end_error = r;
                w->end_result = json_object_get(o);
                return -ECANCELED; /* stop reading: nothing comes after */
        }
        if (!json_object_object_get_ex(o, "result", &result) ||
            !json_object_is_type(result, json_type_object)) {
                w->end_error = -EBADMSG;
                return -ECANCELED;
        }

        if (json_object_object_get_ex(result, "canceled", &canceled) && json_object_get_boolean(canceled)) {
                json_object *reason = NULL;
                int64_t compact = 0;

                w->end_result = json_object_get(result);
                if (json_object_object_get_ex(result, "cancel_reason", &reason) &&
                    json_object_is_type(reason, json_type_string))
                        w->end_code = cancel_reason_parse(json_object_get_string(reason), &w->end_message);

                if (etcd_json_get_int64(result, "compact_revision", &compact) < 0)
                        w->end_error = -EBADMSG;
                else if (compact > 0)
                        w->end_error = -ERANGE;
                else if (w->end_code > 0)
                        w->end_error = etcd_error_from_grpc(w->end_code, w->end_message);
                else
                        w->end_error = -ECANCELED;
                /* The stream stays open after a cancellation: it is up to us to end it. */
                return -ECANCELED;
        }

        if (w->n_queue == w->queue_alloc) {
                size_t n = w->queue_alloc ? w->queue_alloc * 2 : 8;
                json_object **q = reallocarray(w->queue, n, sizeof(*q));

                if (!q)
                        return -ENOMEM;
                w->queue = q;
                w->queue_alloc = n;
        }
        w->queue[w->n_queue++] = json_object_get(result);
        return 0;
}

/*
 * libcurl's write function: the answer of a call, an error answer of a watch (collected as a
 * call's), or a watch stream's bytes. Runs inside libcurl: it must not call back the user.
 */
static size_t on_write(char *p, size_t size, size_t n, void *userdata) {
        EtcdCall *c = userdata;
        EtcdWatch *w = c->watch;
        long status = 0;
        int r;

        assert(size == 1); /* as libcurl documents */

        (void) curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        if (w && status == 200) {
                r = json_stream_feed(&w->stream, p, n, watch_collect, w);
                if (w->n_queue > 0 && !w->pending_prev && c->etcd->pending != w)
                        LIST_PREPEND(pending, c->etcd->pending, w);
                if (r < 0) {
                        if (w->end_error == 0)
                                w->end_error = r == -ECANCELED ? -EBADMSG : r;
                        return 0; /* stop the transfer */
                }
                return n;
        }

        if (n > ETCD_REPLY_MAX - c->reply_size) {
                c->write_error = -EMSGSIZE;
                return 0;
        }
        if (c->reply_size + n + 1 > c->reply_alloc) {
                size_t a = (c->reply_size + n + 1) * 2;
                char *b = realloc(c->reply, a);

                if (!b) {
                        c->write_error = -ENOMEM;
                        return 0;
                }
                c->reply = b;
                c->reply_alloc = a;
        }
        memcpy(c->reply + c->reply_size, p, n);
        c->reply_size += n;
        c->reply[c->reply_size] = 0;
        return n;
}

/* Watches: handing out. */

/* Keep etcd_watch_next_revision() right for what the handler is about to get. */
static int watch_account(EtcdWatch *w, json_object *result) {
        json_object *events = NULL, *created = NULL;
        int64_t revision;
        int r;

        if (json_object_object_get_ex(result, "events", &events) &&
            json_object_is_type(events, json_type_array) && json_object_array_length(events) > 0) {
                json_object *last = json_object_array_get_idx(events, json_object_array_length(events) - 1);
                json_object *kv;

                if (!json_object_is_type(last, json_type_object) ||
                    !json_object_object_get_ex(last, "kv", &kv))
                        return -EBADMSG;
                r = etcd_json_get_int64(kv, "mod_revision", &revision);
                if (r < 0)
                        return r;
                if (revision >= w->next_revision)
                        w->next_revision = revision + 1;
                return 0;
        }

        r = etcd_json_get_revision(result, &revision);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(result, "created", &created) && json_object_get_boolean(created)) {
                if (!w->created) {
                        w->created = true;
                        (void) sd_event_source_set_enabled(w->request.deadline_timer, SD_EVENT_OFF);
                }
                /* From now on means after the revision the watch was created at. */
                if (w->start_revision == 0 && revision >= w->next_revision)
                        w->next_revision = revision + 1;
                return 0;
        }
        /* A progress notification: everything up to its revision has come. */
        if (w->created && revision >= w->next_revision)
                w->next_revision = revision + 1;
        return 0;
}

static void watch_dispatch(EtcdWatch *w) {
        EtcdCall *c = request_ref(&w->request);
        Etcd *e = c->etcd;
        size_t i;

        for (i = 0; i < w->n_queue && c->in_flight && !e->freed; i++) {
                json_object *result = w->queue[i];
                int r;

                w->queue[i] = NULL;
                r = watch_account(w, result);
                if (r < 0)
                        request_finish(c, r, result);
                else {
                        w->delivered = true;
                        w->handler(w, 0, result, w->userdata);
                }
                json_object_put(result);
        }
        for (; i < w->n_queue; i++)
                json_object_put(w->queue[i]);
        w->n_queue = 0;
        request_unref(c);
}

/* Hand out what libcurl did: queued watch answers first, then the transfers that finished. */
static void dispatch(Etcd *e) {
        etcd_ref(e);
        while (!e->freed) {
                EtcdCall *c = NULL;
                CURLMsg *msg;
                int left;

                if (e->n_unwatched > 0) {
                        LIST_FOREACH (requests, u, e->requests)
                                if (u->unwatched) {
                                        c = u;
                                        break;
                                }
                        e->n_unwatched--;
                        if (c) {
                                c->unwatched = false;
                                request_finish(c, -ENOMEM, NULL);
                        }
                        continue;
                }

                if (e->pending) {
                        EtcdWatch *w = e->pending;

                        LIST_REMOVE(pending, e->pending, w);
                        watch_dispatch(w);
                        continue;
                }

                msg = curl_multi_info_read(e->multi, &left);
                if (!msg)
                        break;
                if (msg->msg != CURLMSG_DONE)
                        continue;
                if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c) != CURLE_OK || !c ||
                    !c->in_flight)
                        continue;
                request_ref(c);
                request_done(c, msg->data.result);
                request_unref(c);
        }
        etcd_unref(e);
}

/* libcurl on sd-event. */

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Etcd *e = userdata;
        int flags = 0, running;

        if (revents & EPOLLIN)
                flags |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;

        /*
         * A failure here (memory) leaves the socket as it is: the source is level-triggered,
         * so libcurl gets it again at once, and every request has its deadline regardless.
         */
        etcd_ref(e);
        (void) curl_multi_socket_action(e->multi, fd, flags, &running);
        dispatch(e);
        etcd_unref(e);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Etcd *e = userdata;
        int running;

        etcd_ref(e);
        (void) curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        dispatch(e);
        etcd_unref(e);
        return 0;
}

static void io_watch_free(IoWatch *io) {
        if (!io)
                return;
        LIST_REMOVE(ios, io->etcd->ios, io);
        sd_event_source_disable_unref(io->source);
        free(io);
}

/*
 * A socket of @easy's transfer could not be watched (memory): its call ends with -ENOMEM at the
 * next dispatch(), which removes the transfer and with it the socket. Not -1 to libcurl: libcurl
 * 7.88 then drops the transfer's socket from its hash and goes on to use it all the same (seen as
 * a crash in curl_multi_socket_action()).
 */
static int socket_unwatched(Etcd *e, CURL *easy) {
        EtcdCall *c = NULL;

        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &c) == CURLE_OK && c && !c->unwatched) {
                c->unwatched = true;
                e->n_unwatched++; /* every callback of libcurl is followed by a dispatch() */
        }
        return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch @fd for @what, or no more. Returns 0. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userdata, void *socketp) {
        Etcd *e = userdata;
        IoWatch *io = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                io_watch_free(io);
                return 0;
        }

        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (!io) {
                io = calloc(1, sizeof(*io));
                if (!io)
                        return socket_unwatched(e, easy);
                io->etcd = e;
                LIST_PREPEND(ios, e->ios, io);
                if (sd_event_add_io(e->event, &io->source, fd, events, on_io, e) < 0 ||
                    curl_multi_assign(e->multi, fd, io) != CURLM_OK) {
                        io_watch_free(io);
                        return socket_unwatched(e, easy);
                }
                (void) sd_event_source_set_description(io->source, "etcd-io");
        } else if (sd_event_source_set_io_events(io->source, events) < 0)
                return socket_unwatched(e, easy);

        if (sd_event_source_set_enabled(io->source, events ? SD_EVENT_ON : SD_EVENT_OFF) < 0)
                return socket_unwatched(e, easy);
        return 0;
}

/*
 * CURLMOPT_TIMERFUNCTION: call back in @timeout_ms, or never (-1). Returns 0, always: on a -1,
 * libcurl 7.88 fails that call and every later one on the multi handle (seen: a node that could
 * not set this timer once could never ask etcd again). A timer that could not be set (memory)
 * leaves libcurl's timeouts to the next call that sets it, and each call's own deadline ends it
 * regardless.
 */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userdata) {
        Etcd *e = userdata;

        if (timeout_ms < 0)
                (void) sd_event_source_set_enabled(e->timer, SD_EVENT_OFF);
        else if (sd_event_source_set_time(e->timer, now_usec() + (uint64_t) timeout_ms * USEC_PER_MSEC) >= 0)
                (void) sd_event_source_set_enabled(e->timer, SD_EVENT_ONESHOT);
        return 0;
}

/* The client. */

static void etcd_unref(Etcd *e) {
        assert(e->n_ref > 0);
        if (--e->n_ref > 0)
                return;

        assert(!e->requests);
        if (e->multi)
                (void) curl_multi_cleanup(e->multi); /* closes the cached connections */
        while (e->ios)
                io_watch_free(e->ios);
        sd_event_source_disable_unref(e->timer);
        sd_event_unref(e->event);
        for (size_t i = 0; i < e->n_endpoints; i++)
                free(e->endpoints[i]);
        free(e->endpoints);
        free(e->user);
        if (e->password)
                explicit_bzero(e->password, strlen(e->password));
        free(e->password);
        free(e->ca_file);
        free(e->cert_file);
        free(e->key_file);
        free(e->auth_header);
        free(e);
}

Etcd *etcd_free(Etcd *e) {
        if (!e)
                return NULL;
        assert(!e->freed);

        e->freed = true;
        while (e->requests) {
                EtcdCall *c = e->requests;

                request_drop(c);
        }
        etcd_unref(e);
        return NULL;
}

static int strdup_optional(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static bool endpoint_valid(const char *s) {
        return (strncmp(s, "http://", 7) == 0 && s[7]) || (strncmp(s, "https://", 8) == 0 && s[8]);
}

int etcd_new(sd_event *event, const EtcdOptions *o, Etcd **ret) {
        static bool curl_initialized = false;
        _cleanup_(etcd_freep) Etcd *e = NULL;
        size_t n = 0;
        int r;

        assert_return(event, -EINVAL);
        assert_return(o, -EINVAL);
        assert_return(ret, -EINVAL);
        assert_return(o->endpoints && o->endpoints[0], -EINVAL);
        assert_return(!o->user == !o->password, -EINVAL);
        while (o->endpoints[n]) {
                assert_return(endpoint_valid(o->endpoints[n]), -EINVAL);
                n++;
        }

        /* Once per process; the event loop is single-threaded, as is wgd's start. */
        if (!curl_initialized) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return -ENOMEM;
                curl_initialized = true;
        }

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        *e = (Etcd) {
                .n_ref = 1,
                .event = sd_event_ref(event),
                .timeout_usec = o->timeout_usec > 0 ? o->timeout_usec : ETCD_TIMEOUT_USEC_DEFAULT,
                .auth = o->user ? AUTH_NEEDED : AUTH_NONE,
        };

        e->endpoints = calloc(n, sizeof(char *));
        if (!e->endpoints)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                /* Without a trailing slash: the path that follows starts with one. */
                size_t len = strlen(o->endpoints[i]);

                while (len > 0 && o->endpoints[i][len - 1] == '/')
                        len--;
                e->endpoints[i] = strndup(o->endpoints[i], len);
                if (!e->endpoints[i])
                        return -ENOMEM;
                e->n_endpoints++;
        }

        if (strdup_optional(o->user, &e->user) < 0 || strdup_optional(o->password, &e->password) < 0 ||
            strdup_optional(o->ca_file, &e->ca_file) < 0 ||
            strdup_optional(o->cert_file, &e->cert_file) < 0 ||
            strdup_optional(o->key_file, &e->key_file) < 0)
                return -ENOMEM;

        r = sd_event_add_time(e->event, &e->timer, CLOCK_MONOTONIC, 0, CURL_TIMER_ACCURACY_USEC, on_timer, e);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(e->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(e->timer, "etcd-curl-timer");

        e->multi = curl_multi_init();
        if (!e->multi)
                return -ENOMEM;
        if (curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e) != CURLM_OK ||
            curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e) != CURLM_OK)
                return -ENOMEM;

        *ret = TAKE_PTR(e);
        return 0;
}

/*
 * A request in flight, not started, with its deadline timer running; @body is taken. @size:
 * of the object to allocate, when it is more than an EtcdCall (a watch's); else 0.
 */
static int request_new(
        Etcd *e,
        const char *method,
        json_object *body_in,
        size_t size,
        etcd_reply_t callback,
        void *userdata,
        EtcdCall **ret) {

        _cleanup_(json_object_putp) json_object *body = body_in;
        EtcdCall *c;
        const char *s;
        size_t len;
        int r;

        c = calloc(1, size > sizeof(EtcdCall) ? size : sizeof(EtcdCall));
        if (!c)
                return -ENOMEM;
        *c = (EtcdCall) {
                .etcd = etcd_ref(e),
                .n_ref = 1,
                .in_flight = true,
                .deadline = now_usec(),
                .keepalive = strcmp(method, "lease/keepalive") == 0,
                .callback = callback,
                .userdata = userdata,
        };
        /* A timeout of "forever" (UINT64_MAX) must not wrap around. */
        c->deadline +=
                e->timeout_usec < UINT64_MAX - c->deadline ? e->timeout_usec : UINT64_MAX - c->deadline;
        LIST_PREPEND(requests, e->requests, c);
        if (size > sizeof(EtcdCall))
                c->watch = (EtcdWatch *) c;

        if (asprintf(&c->path, "/v3/%s", method) < 0) {
                c->path = NULL;
                r = -ENOMEM;
                goto out_free;
        }
        /* Without json-c's "\/" for every "/", which base64 is full of. */
        s = body ? json_object_to_json_string_length(
                           body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len) :
                   "{}";
        if (!body)
                len = 2;
        if (!s) {
                r = -ENOMEM;
                goto out_free;
        }
        c->body = strndup(s, len);
        if (!c->body) {
                r = -ENOMEM;
                goto out_free;
        }
        c->body_size = len;

        r = sd_event_add_time(
                e->event,
                &c->deadline_timer,
                CLOCK_MONOTONIC,
                c->deadline,
                TIMER_ACCURACY_USEC,
                on_deadline,
                c);
        if (r < 0)
                goto out_free;
        (void) sd_event_source_set_description(c->deadline_timer, "etcd-deadline");

        *ret = c;
        return 0;

out_free:
        request_drop(c);
        return r;
}

int etcd_call(
        Etcd *e,
        const char *method,
        json_object *body_in,
        etcd_reply_t callback,
        void *userdata,
        EtcdCall **ret_call) {

        _cleanup_(json_object_putp) json_object *body = body_in;
        EtcdCall *c;
        int r;

        assert_return(e, -EINVAL);
        assert_return(!e->freed, -EINVAL);
        assert_return(method && method[0] && method[0] != '/', -EINVAL);
        assert_return(strcmp(method, "watch") != 0, -EINVAL); /* etcd_watch() */
        assert_return(callback, -EINVAL);

        r = request_new(e, method, TAKE_PTR(body), 0, callback, userdata, &c);
        if (r < 0)
                return r;
        r = request_begin(c);
        if (r < 0) {
                request_drop(c);
                return r;
        }
        if (ret_call)
                *ret_call = c;
        return 0;
}

void etcd_call_cancel(EtcdCall *c) {
        if (!c || !c->in_flight)
                return;
        request_drop(c);
}

/* A watch's request body: {"create_request": {...}}. */
static int watch_body(const EtcdWatchOptions *o, json_object **ret) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        json_object *create;
        int r;

        body = json_object_new_object();
        create = json_object_new_object();
        if (!body || !create || json_object_object_add(body, "create_request", create) < 0) {
                json_object_put(create);
                return -ENOMEM;
        }
        r = etcd_json_add_bytes(create, "key", o->key, o->key_size);
        if (r < 0)
                return r;
        if (o->range_end_size > 0) {
                r = etcd_json_add_bytes(create, "range_end", o->range_end, o->range_end_size);
                if (r < 0)
                        return r;
        }
        if (o->start_revision > 0) {
                r = etcd_json_add_int64(create, "start_revision", o->start_revision);
                if (r < 0)
                        return r;
        }
        if (o->prev_kv && etcd_json_add(create, "prev_kv", json_object_new_boolean(1)) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(body);
        return 0;
}

static void watch_no_callback(EtcdCall *call, int error, json_object *reply, void *userdata) {
        /* A watch's request finishes through its handler; this is never called. */
        assert(false);
}

int etcd_watch(
        Etcd *e, const EtcdWatchOptions *o, etcd_watch_handler_t handler, void *userdata, EtcdWatch **ret) {

        json_object *body = NULL;
        EtcdCall *c;
        EtcdWatch *w;
        int r;

        assert_return(e, -EINVAL);
        assert_return(!e->freed, -EINVAL);
        assert_return(o, -EINVAL);
        assert_return(o->key && o->key_size > 0, -EINVAL);
        assert_return(o->range_end || o->range_end_size == 0, -EINVAL);
        assert_return(o->start_revision >= 0, -EINVAL);
        assert_return(handler, -EINVAL);

        r = watch_body(o, &body);
        if (r < 0)
                return r;
        r = request_new(e, "watch", body, sizeof(EtcdWatch), watch_no_callback, NULL, &c);
        if (r < 0)
                return r;

        w = c->watch;
        w->handler = handler;
        w->userdata = userdata;
        w->start_revision = o->start_revision;
        w->next_revision = o->start_revision;
        r = json_stream_init(&w->stream, ETCD_REPLY_MAX);
        if (r >= 0)
                r = request_begin(c);
        if (r < 0) {
                request_drop(c);
                return r;
        }
        if (ret)
                *ret = w;
        return 0;
}

void etcd_watch_cancel(EtcdWatch *w) {
        if (w)
                etcd_call_cancel(&w->request);
}

int64_t etcd_watch_next_revision(EtcdWatch *w) {
        assert(w);
        return w->next_revision;
}

/* Helpers. */

int etcd_json_add(json_object *o, const char *field, json_object *v) {
        assert(o);
        assert(field);

        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, field, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int etcd_json_add_bytes(json_object *o, const char *field, const void *data, size_t size) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = base64_encode(data, size, &s);
        if (r < 0)
                return r;
        return etcd_json_add(o, field, json_object_new_string(s));
}

int etcd_json_add_int64(json_object *o, const char *field, int64_t value) {
        char s[32];

        (void) snprintf(s, sizeof(s), "%" PRIi64, value);
        return etcd_json_add(o, field, json_object_new_string(s));
}

int etcd_json_get_bytes(json_object *o, const char *field, void **ret, size_t *ret_size) {
        json_object *v;

        assert(o);
        assert(field);
        assert(ret);
        assert(ret_size);

        if (!json_object_object_get_ex(o, field, &v))
                return base64_decode("", 0, ret, ret_size);
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        return base64_decode(
                json_object_get_string(v), (size_t) json_object_get_string_len(v), ret, ret_size);
}

int etcd_json_get_int64(json_object *o, const char *field, int64_t *ret) {
        json_object *v;
        const char *s;
        char *end;
        long long n;

        assert(o);
        assert(field);
        assert(ret);

        if (!json_object_object_get_ex(o, field, &v)) {
                *ret = 0;
                return 0;
        }
        if (json_object_is_type(v, json_type_int)) {
                /* json-c keeps integers as int64 or uint64: one beyond int64 is out of range. */
                errno = 0;
                *ret = json_object_get_int64(v);
                if (errno != 0 || (*ret == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX))
                        return -EBADMSG;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;

        s = json_object_get_string(v);
        /* Decimal digits with an optional minus, nothing else: strtoll() takes more. */
        if (!((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
                return -EBADMSG;
        errno = 0;
        n = strtoll(s, &end, 10);
        if (errno != 0 || *end != 0)
                return -EBADMSG;
        *ret = n;
        return 0;
}

int etcd_json_get_revision(json_object *reply, int64_t *ret) {
        json_object *header;

        assert(reply);
        assert(ret);

        if (!json_object_object_get_ex(reply, "header", &header) ||
            !json_object_is_type(header, json_type_object))
                return -EBADMSG;
        return etcd_json_get_int64(header, "revision", ret);
}

int etcd_prefix_range_end(const void *prefix, size_t size, void **ret, size_t *ret_size) {
        const uint8_t *p = prefix;
        uint8_t *end;

        assert(prefix || size == 0);
        assert(ret);
        assert(ret_size);

        while (size > 0 && p[size - 1] == 0xff)
                size--;
        if (size == 0) {
                end = calloc(1, 2);
                if (!end)
                        return -ENOMEM;
                *ret = end;
                *ret_size = 1;
                return 0;
        }

        end = malloc(size + 1);
        if (!end)
                return -ENOMEM;
        memcpy(end, p, size);
        end[size - 1]++;
        end[size] = 0;
        *ret = end;
        *ret_size = size;
        return 0;
}
