/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * DOC: etcd's v3 API for wgd's event loop
 *
 * An asynchronous client of etcd's v3 JSON gateway (etcd's grpc-gateway: every call is
 * POST <endpoint>/v3/<service>/<method> with a JSON body, and answers JSON; keys and values are
 * base64, 64-bit integers are JSON strings). The groundwork for cluster groups (issue #14). It
 * runs on wgd's single-threaded sd-event loop and never blocks: libcurl's multi interface does
 * the HTTP, its sockets and its timer are sd-event io and time sources, json-c does the JSON.
 *
 * Objects and ownership:
 * - An Etcd is the connection to one cluster: endpoints, options, the authentication token, and
 *   every call and watch in flight. etcd_free() cancels all of them, running no callback.
 * - etcd_call() sends one request; its callback runs exactly once, later, from the event loop,
 *   unless the call is cancelled first (etcd_call_cancel()), and then never. When etcd_call()
 *   itself fails, no callback runs either.
 * - etcd_watch() opens a watch stream; its handler runs for each answer on the stream, then once
 *   with an error when the stream is over. No handler runs after etcd_watch_cancel().
 * - The Etcd owns its calls and watches. An EtcdCall or EtcdWatch pointer handed out stays valid
 *   until its last callback has returned, or until it is cancelled; keep it only to cancel.
 * - Callbacks may do anything with this API, including cancelling the call or watch they run
 *   for (a no-op for a call, whose callback is its last) and freeing the Etcd. A JSON object a
 *   callback gets is borrowed: json_object_get() it to keep it.
 * - Like wgd's own event handlers (server.h), nothing here hands an error back to sd-event: each
 *   failure ends the call or watch it belongs to, with an errno its callback sees.
 *
 * Endpoints: the calls go to one endpoint while it answers. A call that cannot connect (refused,
 * unresolvable, TLS handshake failed, or no connection within its share of the time) tries the
 * next endpoint, round robin, each once, within the call's one deadline; a request that went out
 * is never sent again, since it may have taken effect. A call that fails on an endpoint after it
 * connected (timeout, broken connection, etcd without a leader) moves the next calls on to the
 * next endpoint. Every request carries gRPC metadata "hasleader" (Grpc-Metadata-hasleader: true,
 * what etcd's Go client sends as WithRequireLeader): a member cut off from its cluster's leader
 * then fails calls at once with -EAGAIN, instead of holding them until the timeout, and ends its
 * watch streams (after about three election timeouts), instead of leaving them silent forever.
 *
 * Errors, as negative errno values, in callbacks and from etcd_call()/etcd_watch():
 *   -EHOSTUNREACH  no endpoint could be connected to (each was tried once): refused,
 *                  unresolvable, no connection in time, TLS handshake failed or etcd's
 *                  certificate not trusted
 *   -ETIMEDOUT     no answer within the timeout (EtcdOptions.timeout_usec); a write may still take
 *                  effect. For a watch: no "created" answer within the timeout, or another call
 *                  to the same endpoint timed out (the member hangs; its stream would stay silent)
 *   -ECONNRESET    the connection broke after the request went out (a write may have taken
 *                  effect); for a watch: the stream ended or broke. Also what an https
 *                  endpoint that wants a client certificate we lack looks like: with TLS 1.3 it
 *                  says so only after the handshake, by closing the connection
 *   -EACCES        etcd's authentication or authorization refused it: wrong user or password,
 *                  no credentials where etcd wants them, a token etcd still refused after one new
 *                  authentication, gRPC PermissionDenied or Unauthenticated
 *   -EBADMSG       an answer that is not what the gateway sends (not JSON, not an object, an
 *                  HTTP error without the gateway's error body, a malformed field)
 *   -EMSGSIZE      an answer, or one object on a watch stream, larger than ETCD_REPLY_MAX
 *   -ENOMEM        out of memory, in our code, libcurl or json-c
 *   -EIO           anything else libcurl reports
 * and for an error answer of the gateway ({"error": MESSAGE, "code": GRPC_CODE} for a call,
 * {"error": {"grpc_code": ..., "message": ...}} on a stream), by gRPC code
 * (etcd_error_from_grpc()):
 *   Canceled -ECANCELED, Unknown -EIO, InvalidArgument -EINVAL, DeadlineExceeded -ETIMEDOUT,
 *   NotFound -ENOENT (a lease), AlreadyExists -EEXIST, PermissionDenied -EACCES,
 *   ResourceExhausted -ENOSPC (etcd's quota; "too many requests" is -EBUSY), FailedPrecondition
 *   -EPROTO (etcd's state forbids it: auth not enabled, cluster not capable ...), Aborted -EAGAIN,
 *   OutOfRange -ERANGE (a revision compacted away, or in the future), Unimplemented
 *   -EOPNOTSUPP (and an unknown method, which the gateway answers 404), Internal -EIO,
 *   Unavailable -EAGAIN (no leader, leader changed, etcd's own timeout: a write may still take
 *   effect), DataLoss -EIO, Unauthenticated -EACCES.
 * A callback that gets a gateway error also gets its body, for the message.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

typedef struct Etcd Etcd;
typedef struct EtcdCall EtcdCall;
typedef struct EtcdWatch EtcdWatch;

/* The timeout of a call when EtcdOptions.timeout_usec is 0. */
#define ETCD_TIMEOUT_USEC_DEFAULT (5 * 1000 * 1000ULL)

/*
 * The largest answer of a call, and the largest object on a watch stream, taken in. A watch from
 * an old revision gets everything since in one answer (etcd 3.4 sends up to 1000 revisions in
 * one): the bound is on that, too.
 */
#define ETCD_REPLY_MAX (64U * 1024 * 1024)

typedef struct EtcdOptions {
        /* "http://HOST:PORT" or "https://HOST:PORT", NULL-terminated, at least one. */
        const char *const *endpoints;
        /*
         * How long a call may take, from etcd_call() to its answer, every endpoint it tries
         * included; how long a watch may take to be created. 0: ETCD_TIMEOUT_USEC_DEFAULT.
         */
        uint64_t timeout_usec;
        /*
         * etcd's authentication, both or neither: the token from auth/authenticate goes with
         * every request; when etcd refuses it (expired, or etcd restarted), one new
         * authentication and one more try.
         */
        const char *user;
        const char *password;
        /* TLS, for https endpoints: the CA to check etcd with, our certificate and key. */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
} EtcdOptions;

/**
 * etcd_new() - A client of one etcd cluster on @event
 * @event: the event loop it runs on (referenced)
 * @o: endpoints and options; copied, nothing of it is kept
 * @ret: the new client, which the caller frees with etcd_free()
 *
 * Nothing is sent yet; the first call connects (and authenticates first, with a user).
 *
 * Return: 0; -EINVAL if @o has no endpoint, one that is not an http or https URL, or a user
 * without a password (or the reverse); -ENOMEM.
 */
int etcd_new(sd_event *event, const EtcdOptions *o, Etcd **ret);

/**
 * etcd_free() - Cancel every call and watch of @e, running no callback, and free it
 * @e: the client, or NULL
 *
 * May be called from a callback of @e.
 *
 * Return: NULL.
 */
Etcd *etcd_free(Etcd *e);
static inline void etcd_freep(Etcd **e) {
        etcd_free(*e);
}

/*
 * The callback of a call: @error is 0 and @reply the answer, or @error is negative and @reply is
 * the gateway's error body if etcd answered one, else NULL. @reply is borrowed.
 */
typedef void (*etcd_reply_t)(EtcdCall *call, int error, json_object *reply, void *userdata);

/**
 * etcd_call() - Send one request
 * @e: the client
 * @method: the gateway's path below /v3/: "kv/range", "kv/put", "kv/deleterange", "kv/txn",
 *          "kv/compaction", "lease/grant", "lease/revoke", "lease/keepalive",
 *          "lease/timetolive", "maintenance/status", "auth/..." ...
 * @body: the request; taken, even when this fails; NULL for {}
 * @callback: runs once with the answer, unless the call is cancelled
 * @userdata: for @callback
 * @ret_call: the call, to cancel it; may be NULL
 *
 * lease/keepalive answers in the stream format, {"result": ANSWER}: @callback gets ANSWER, and
 * -ENOENT if it has no TTL, which is how etcd says that the lease is gone (as lease/revoke
 * answers NotFound). (etcd 3.4 asks for no authentication there.)
 *
 * Calls are independent: each has a connection of its own while it runs, and two calls made one
 * after the other may reach etcd in either order. Wait for the answer of one before making the
 * next when order matters.
 *
 * Return: 0; -EINVAL for a bad argument; -ENOMEM. Then @callback never runs.
 */
int etcd_call(
        Etcd *e,
        const char *method,
        json_object *body,
        etcd_reply_t callback,
        void *userdata,
        EtcdCall **ret_call);

/**
 * etcd_call_cancel() - Forget a call: its callback will not run
 * @call: a call whose callback has not run yet, or NULL
 *
 * What was sent may still take effect in etcd.
 */
void etcd_call_cancel(EtcdCall *call);

typedef struct EtcdWatchOptions {
        const void *key; /* bytes; at least one */
        size_t key_size;
        /*
         * With range_end_size > 0, every key in [key, range_end): etcd_prefix_range_end() for
         * a prefix, "\0" (size 1) for every key >= key. Else the one key.
         */
        const void *range_end;
        size_t range_end_size;
        /* From this revision on, replaying what etcd still has; 0: from now on. */
        int64_t start_revision;
        bool prev_kv; /* events carry the key-value before the event */
} EtcdWatchOptions;

/*
 * The handler of a watch. With @error 0, @result is the "result" of one answer on the stream:
 * first {"header": ..., "created": true}, whose header.revision is etcd's current revision,
 * then answers with "events" (a PUT event has no "type", a deletion, lease expiry included, has
 * "type": "DELETE"). With @error < 0, the watch is over and gone when the handler returns;
 * @result is then the answer that ended it if one did, else NULL:
 *   -ERANGE      start_revision was compacted away: the answer's compact_revision is the oldest
 *                revision etcd still has. Read the state again, watch from that read's
 *                revision + 1.
 *   -ECANCELED   etcd cancelled the watch for another reason, the answer's cancel_reason; when
 *                that is a gRPC error as text ("rpc error: code = PermissionDenied desc = ..."),
 *                its code maps as in the table above (-EACCES for that one). A token refused
 *                before the handler had anything is not an end: the watch authenticates again
 *                and starts over, once
 *   anything else in the table above (-ECONNRESET: the stream ended or broke; -EAGAIN: the
 *   member lost its leader; -ETIMEDOUT ...).
 * A watch is never re-created behind its handler's back: the handler re-creates it, from
 * etcd_watch_next_revision(), which misses nothing and repeats nothing.
 */
typedef void (*etcd_watch_handler_t)(EtcdWatch *w, int error, json_object *result, void *userdata);

/**
 * etcd_watch() - Open a watch stream
 * @e: the client
 * @o: what to watch; copied
 * @handler: runs for each answer, then once with an error, unless the watch is cancelled
 * @userdata: for @handler
 * @ret: the watch, to cancel it; may be NULL
 *
 * Return: 0; -EINVAL for a bad argument; -ENOMEM. Then @handler never runs.
 */
int etcd_watch(
        Etcd *e, const EtcdWatchOptions *o, etcd_watch_handler_t handler, void *userdata, EtcdWatch **ret);

/**
 * etcd_watch_cancel() - Close a watch stream: its handler will not run again
 * @w: a watch whose handler has not had its error yet, or NULL
 */
void etcd_watch_cancel(EtcdWatch *w);

/**
 * etcd_watch_next_revision() - Where a new watch continues this one
 * @w: the watch, from its handler or while it is open
 *
 * The start_revision for a watch that takes over from @w, missing nothing and repeating
 * nothing of what @w's handler had: one past the last event handed out (etcd hands out all the
 * events of one revision in one answer), one past the creation revision for a watch from now on
 * that saw no event yet, or @w's own start_revision if it was not even created.
 *
 * Return: the revision.
 */
int64_t etcd_watch_next_revision(EtcdWatch *w);

/**
 * etcd_error_from_grpc() - The errno for an error answer of etcd
 * @code: its gRPC status code
 * @message: its message, or NULL
 *
 * The table in the comment at the top. The message matters for three of etcd's errors that
 * share a code with others: InvalidArgument "etcdserver: user name is empty" and "etcdserver:
 * authentication failed, invalid user ID or password" are -EACCES, ResourceExhausted
 * "etcdserver: too many requests" is -EBUSY. (etcd's Go client tells its errors apart by message,
 * too.)
 *
 * Return: a negative errno; -EIO for a code out of the table, and for 0, which is no error.
 */
int etcd_error_from_grpc(int code, const char *message);

/* Helpers for what the gateway's JSON carries. */

/**
 * etcd_json_add() - Add a field to a JSON object, taking the value's reference
 * @o: a JSON object
 * @field: its name
 * @v: the value, or NULL when making it failed (json-c's constructors return NULL when out of
 *     memory, and json_object_object_add() would add that as a JSON null)
 *
 * The reference to @v is @o's on success, dropped on failure: either way, no longer the caller's.
 *
 * Return: 0, or -ENOMEM.
 */
int etcd_json_add(json_object *o, const char *field, json_object *v);

/**
 * etcd_json_add_bytes() - Add a field of bytes (a key, a value) to a request
 * @o: a JSON object
 * @field: its name
 * @data: the bytes, base64 encoded into the field
 * @size: their number
 *
 * Return: 0, or -ENOMEM.
 */
int etcd_json_add_bytes(json_object *o, const char *field, const void *data, size_t size);

/**
 * etcd_json_add_int64() - Add a 64-bit integer field (a revision, a lease ID) to a request
 * @o: a JSON object
 * @field: its name
 * @v: the value, written as the gateway writes them: a JSON string of decimal digits
 *
 * Return: 0, or -ENOMEM.
 */
int etcd_json_add_int64(json_object *o, const char *field, int64_t v);

/**
 * etcd_json_get_bytes() - Read a field of bytes from an answer
 * @o: a JSON object of the answer
 * @field: the field's name
 * @ret: the bytes, with a NUL after them, to free
 * @ret_size: their number
 *
 * An absent field is empty: the gateway leaves out every field at its default value.
 *
 * Return: 0; -EBADMSG if the field is not a base64 string; -ENOMEM.
 */
int etcd_json_get_bytes(json_object *o, const char *field, void **ret, size_t *ret_size);

/**
 * etcd_json_get_int64() - Read a 64-bit integer field from an answer
 * @o: a JSON object of the answer
 * @field: the field's name
 * @ret: the value
 *
 * The gateway writes 64-bit integers as JSON strings ("revision": "42"); a JSON number is taken
 * too. An absent field is 0, as for bytes.
 *
 * Return: 0; -EBADMSG if the field is neither a decimal string in range nor an integer.
 */
int etcd_json_get_int64(json_object *o, const char *field, int64_t *ret);

/**
 * etcd_json_get_revision() - The revision in an answer's header
 * @reply: an answer (of a call, or a watch's result)
 * @ret: header.revision
 *
 * Return: 0; -EBADMSG if the answer has no header, or a malformed revision.
 */
int etcd_json_get_revision(json_object *reply, int64_t *ret);

/**
 * etcd_prefix_range_end() - The range_end for every key that starts with a prefix
 * @prefix: the prefix's bytes
 * @size: their number
 * @ret: the range end, to free
 * @ret_size: its size
 *
 * The prefix with its last byte below 0xff incremented and what follows dropped, as etcd's
 * clientv3.GetPrefixRangeEnd() does; "\0" (every key from the prefix on) for a prefix that is
 * empty or all 0xff.
 *
 * Return: 0, or -ENOMEM.
 */
int etcd_prefix_range_end(const void *prefix, size_t size, void **ret, size_t *ret_size);
