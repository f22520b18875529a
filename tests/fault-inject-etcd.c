/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wgd-fault's wrappers for the calls of wgd's client of etcd (wgd/etcd.c, wgd/cluster.c,
 * wgd/json-stream.c) into json-c and libcurl, in a build with cluster groups. As in
 * fault-inject.c: each counts the call on the one counter, and fails it as the library fails it
 * when out of memory. These libraries allocate inside themselves, where no wrapper sees it: what
 * wgd sees of that is the failure of the entry point it called, which is what fails here.
 *
 * Not wrapped: json_tokener_parse() (NULL for out of memory as for text that is not JSON: wgd
 * cannot tell the two apart, and a value from etcd that it cannot read is one it ignores, as
 * docs/fault-injection.md says); curl_easy_setopt() (wgd gives it no string that libcurl copies
 * but the URL and the credentials, set once per call next to curl_easy_init()); the getters and
 * json_object_put(), which do not fail.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "fault-inject.h"

#define WRAP_NEW(type, name, params, args)                                                                  \
        extern type __real_##name params;                                                                   \
        type __wrap_##name params;                                                                          \
        type __wrap_##name params {                                                                         \
                int error = ENOMEM;                                                                         \
                                                                                                            \
                if (fault_hit(#name, NULL, &error))                                                         \
                        return NULL;                                                                        \
                return __real_##name args;                                                                  \
        }

/* json-c: the constructors answer NULL, the adders -1 (and leave the value to the caller). */
WRAP_NEW(json_object *, json_object_new_object, (void), ())
WRAP_NEW(json_object *, json_object_new_array, (void), ())
WRAP_NEW(json_object *, json_object_new_string, (const char *s), (s))
WRAP_NEW(json_object *, json_object_new_int64, (int64_t i), (i))
WRAP_NEW(json_object *, json_object_new_uint64, (uint64_t i), (i))
WRAP_NEW(json_object *, json_object_new_boolean, (json_bool b), (b))
WRAP_NEW(const char *, json_object_to_json_string_ext, (json_object * o, int flags), (o, flags))
WRAP_NEW(
        const char *,
        json_object_to_json_string_length,
        (json_object * o, int flags, size_t *len),
        (o, flags, len))
WRAP_NEW(json_tokener *, json_tokener_new, (void), ())

extern int __real_json_object_object_add(json_object *o, const char *key, json_object *v);
int __wrap_json_object_object_add(json_object *o, const char *key, json_object *v);
int __wrap_json_object_object_add(json_object *o, const char *key, json_object *v) {
        int error = ENOMEM;

        if (fault_hit("json_object_object_add", key, &error))
                return -1;
        return __real_json_object_object_add(o, key, v);
}

extern int __real_json_object_array_add(json_object *a, json_object *v);
int __wrap_json_object_array_add(json_object *a, json_object *v);
int __wrap_json_object_array_add(json_object *a, json_object *v) {
        int error = ENOMEM;

        if (fault_hit("json_object_array_add", NULL, &error))
                return -1;
        return __real_json_object_array_add(a, v);
}

/* libcurl. */
WRAP_NEW(CURLM *, curl_multi_init, (void), ())
WRAP_NEW(CURL *, curl_easy_init, (void), ())
WRAP_NEW(struct curl_slist *, curl_slist_append, (struct curl_slist * list, const char *s), (list, s))

extern CURLMcode __real_curl_multi_add_handle(CURLM *m, CURL *e);
CURLMcode __wrap_curl_multi_add_handle(CURLM *m, CURL *e);
CURLMcode __wrap_curl_multi_add_handle(CURLM *m, CURL *e) {
        int error = ENOMEM;

        if (fault_hit("curl_multi_add_handle", NULL, &error))
                return CURLM_OUT_OF_MEMORY;
        return __real_curl_multi_add_handle(m, e);
}
