/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <limits.h>

#include "json-stream.h"

/* JSON's whitespace: what the gateway puts between objects, and what may surround an answer. */
static bool all_whitespace(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
                        return false;
        return true;
}

int json_stream_init(JsonStream *s, size_t max) {
        assert(s);

        *s = (JsonStream) { .max = max };
        s->tok = json_tokener_new();
        if (!s->tok)
                return -ENOMEM;
        return 0;
}

void json_stream_done(JsonStream *s) {
        if (!s)
                return;
        if (s->tok)
                json_tokener_free(s->tok);
        *s = (JsonStream) {};
}

int json_stream_feed(JsonStream *s, const char *p, size_t n, json_stream_handler_t handler, void *userdata) {
        assert(s);
        assert(s->tok);
        assert(p || n == 0);
        assert(handler);

        while (n > 0) {
                /* The tokener takes an int length: feed a huge chunk in parts. */
                size_t len = n < INT_MAX ? n : INT_MAX;
                enum json_tokener_error err;
                json_object *o;
                size_t used;
                int r;

                o = json_tokener_parse_ex(s->tok, p, (int) len);
                err = json_tokener_get_error(s->tok);
                if (!o) {
                        if (err != json_tokener_continue)
                                return -EBADMSG;
                        /* All of it went into the object being built. */
                        s->started = s->started || !all_whitespace(p, len);
                        if (len > s->max - s->pending)
                                return -EMSGSIZE;
                        s->pending += len;
                        p += len;
                        n -= len;
                        continue;
                }

                /*
                 * A complete value, ending at the parse end (which includes the whitespace the
                 * tokener skipped after it). A bare number can only end at the byte after it,
                 * but only objects are allowed here, so nothing is lost to that.
                 */
                used = json_tokener_get_parse_end(s->tok);
                assert(used <= len);
                json_tokener_reset(s->tok);
                if (!json_object_is_type(o, json_type_object)) {
                        json_object_put(o);
                        return -EBADMSG;
                }
                if (used > s->max - s->pending) {
                        json_object_put(o);
                        return -EMSGSIZE;
                }
                s->pending = 0;
                s->started = false;
                p += used;
                n -= used;

                r = handler(o, userdata);
                json_object_put(o);
                if (r < 0)
                        return r;
        }
        return 0;
}

bool json_stream_at_boundary(const JsonStream *s) {
        assert(s);
        return !s->started;
}

int json_parse_object(const char *p, size_t n, json_object **ret) {
        json_tokener *tok;
        json_object *o;
        size_t used;

        assert(p || n == 0);
        assert(ret);

        if (n > INT_MAX)
                return -EBADMSG;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, p, (int) n);
        if (!o) {
                /* json-c 0.16 has no error code of its own for memory: all of it is -EBADMSG. */
                json_tokener_free(tok);
                return -EBADMSG;
        }
        used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!json_object_is_type(o, json_type_object) || !all_whitespace(p + used, n - used)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}
