/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * JSON objects out of a byte stream that arrives in pieces: etcd's gateway answers a watch (and
 * any other server-streaming call) with one JSON object after another, each followed by a
 * newline, over a response that stays open. libcurl hands the body over in chunks that have
 * nothing to do with those objects: one chunk may end in the middle of an object, or hold the
 * end of one and several more. json-c's tokener keeps its state across calls; this feeds it and
 * hands out each object once it is complete.
 */

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

typedef struct JsonStream {
        json_tokener *tok;
        size_t max;     /* bound on the bytes of one object, whitespace before it included */
        size_t pending; /* bytes fed since the last complete object */
        bool started;   /* something other than whitespace came since the last complete object */
} JsonStream;

/*
 * An empty stream whose objects may be up to @max bytes long. Returns 0, or -ENOMEM.
 */
int json_stream_init(JsonStream *s, size_t max);
void json_stream_done(JsonStream *s);

/*
 * Called once for each complete object, which it borrows (json_object_get() to keep it). A
 * negative return stops json_stream_feed(), which returns it.
 */
typedef int (*json_stream_handler_t)(json_object *o, void *userdata);

/*
 * Feed @n bytes at @p. Returns 0, a negative return of @handler, -EBADMSG if the bytes are not
 * a sequence of JSON objects (any other value at the top is refused too; json-c 0.16 reports
 * running out of memory inside the tokener this way too), or -EMSGSIZE if an object grows
 * beyond the bound. After an error the stream is in an undefined state: only
 * json_stream_done() is allowed.
 */
int json_stream_feed(JsonStream *s, const char *p, size_t n, json_stream_handler_t handler, void *userdata);

/* Whether the stream is between objects: whatever came after the last object is whitespace. */
bool json_stream_at_boundary(const JsonStream *s);

/*
 * Parse the @n bytes at @p as exactly one JSON object, with nothing but whitespace around it.
 * On success *@ret is the object (the caller owns a reference). Returns 0, -EBADMSG, or -ENOMEM.
 */
int json_parse_object(const char *p, size_t n, json_object **ret);
