/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the etcd client builds on, without etcd: base64 as the gateway's Go writes and reads it,
 * the splitting of a watch stream into objects wherever libcurl cuts it (every cut, one byte at a
 * time, and several objects in one piece), the gateway's integers, prefix ranges, and the table
 * of gRPC codes.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"
#include "etcd.h"
#include "json-stream.h"

static void expect_encoded(const char *in, size_t n, const char *out) {
        char *s = NULL;
        void *back = NULL;
        size_t back_size = 0;

        assert_int_equal(base64_encode(in, n, &s), 0);
        assert_string_equal(s, out);
        assert_int_equal(base64_decode(s, strlen(s), &back, &back_size), 0);
        assert_int_equal(back_size, n);
        assert_memory_equal(back, in, n);
        assert_int_equal(((char *) back)[n], 0);
        free(s);
        free(back);
}

static void test_base64_vectors(void **state) {
        /* RFC 4648, section 10. */
        expect_encoded("", 0, "");
        expect_encoded("f", 1, "Zg==");
        expect_encoded("fo", 2, "Zm8=");
        expect_encoded("foo", 3, "Zm9v");
        expect_encoded("foob", 4, "Zm9vYg==");
        expect_encoded("fooba", 5, "Zm9vYmE=");
        expect_encoded("foobar", 6, "Zm9vYmFy");
        /* Both letters beyond the alphanumerics, and bytes that are no text. */
        expect_encoded("\xfb\xff\xbf", 3, "+/+/");
        expect_encoded("\0\xff\n", 3, "AP8K");
}

static void test_base64_round_trip(void **state) {
        uint8_t buf[300];
        unsigned seed = 1;

        for (size_t n = 0; n < sizeof(buf); n++) {
                char *s;
                void *back;
                size_t back_size;

                for (size_t i = 0; i < n; i++)
                        buf[i] = (uint8_t) (rand_r(&seed) >> 7);
                assert_int_equal(base64_encode(buf, n, &s), 0);
                assert_int_equal(strlen(s), (n + 2) / 3 * 4);
                assert_int_equal(base64_decode(s, strlen(s), &back, &back_size), 0);
                assert_int_equal(back_size, n);
                assert_memory_equal(back, buf, n);
                free(s);
                free(back);
        }
}

static void test_base64_strict(void **state) {
        static const char *const bad[] = {
                "Zg",       /* no padding */
                "Zg=",      /* length not a multiple of 4 */
                "Zh==",     /* bits past the last byte are not zero */
                "Zm9=",     /* the same, with one byte of padding */
                "Z===",     /* too much padding */
                "=Zg=",     /* padding first */
                "Zg==Zg==", /* padding in the middle */
                "Zm 9v",    /* whitespace */
                "Zm9v\n",   /* a newline */
                "Zm-v",     /* the URL alphabet */
                "Zm_v",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                void *p = NULL;
                size_t n = 0;

                assert_int_equal(base64_decode(bad[i], strlen(bad[i]), &p, &n), -EBADMSG);
                assert_null(p);
        }
}

typedef struct Collected {
        char *texts[16];
        size_t n;
        int fail_at; /* return an error for the object with this index, if >= 0 */
} Collected;

static int collect(json_object *o, void *userdata) {
        Collected *c = userdata;

        if ((int) c->n == c->fail_at)
                return -ENOTRECOVERABLE;
        assert_true(c->n < 16);
        c->texts[c->n++] = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        return 0;
}

static void collected_free(Collected *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->texts[i]);
        c->n = 0;
}

/* What the gateway writes: objects with a newline after each, strings holding braces. */
static const char stream_text[] =
        "{\"result\":{\"header\":{\"revision\":\"2\"},\"created\":true}}\n"
        "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\",\"value\":\"e30=\"}}]}}\n"
        "  {\"s\":\"}{\\\"\\n\",\"n\":[1,2,{\"x\":null}]}\r\n"
        "{}\n";
static const char *const stream_objects[] = {
        "{\"result\":{\"header\":{\"revision\":\"2\"},\"created\":true}}",
        "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\",\"value\":\"e30=\"}}]}}",
        "{\"s\":\"}{\\\"\\n\",\"n\":[1,2,{\"x\":null}]}",
        "{}",
};

static void expect_stream_objects(Collected *c) {
        assert_int_equal(c->n, 4);
        for (size_t i = 0; i < 4; i++)
                assert_string_equal(c->texts[i], stream_objects[i]);
}

static void test_stream_every_cut(void **state) {
        size_t len = strlen(stream_text);

        /* Two pieces, cut at every place: inside a string, an escape, between objects ... */
        for (size_t cut = 0; cut <= len; cut++) {
                Collected c = { .fail_at = -1 };
                JsonStream s;

                assert_int_equal(json_stream_init(&s, 4096), 0);
                assert_int_equal(json_stream_feed(&s, stream_text, cut, collect, &c), 0);
                assert_int_equal(json_stream_feed(&s, stream_text + cut, len - cut, collect, &c), 0);
                assert_true(json_stream_at_boundary(&s));
                expect_stream_objects(&c);
                collected_free(&c);
                json_stream_done(&s);
        }
}

static void test_stream_byte_by_byte(void **state) {
        size_t len = strlen(stream_text);
        Collected c = { .fail_at = -1 };
        JsonStream s;

        assert_int_equal(json_stream_init(&s, 4096), 0);
        for (size_t i = 0; i < len; i++) {
                assert_int_equal(json_stream_feed(&s, stream_text + i, 1, collect, &c), 0);
                /* Between objects once the first is complete, not while it is half there. */
                if (i == strlen(stream_objects[0]) - 1)
                        assert_true(json_stream_at_boundary(&s));
                if (i == strlen(stream_objects[0]) / 2)
                        assert_false(json_stream_at_boundary(&s));
        }
        expect_stream_objects(&c);
        collected_free(&c);
        json_stream_done(&s);
}

static void test_stream_errors(void **state) {
        Collected c = { .fail_at = -1 };
        JsonStream s;

        /* Not JSON. */
        assert_int_equal(json_stream_init(&s, 4096), 0);
        assert_int_equal(json_stream_feed(&s, "{\"a\":1}\nNot Found", 17, collect, &c), -EBADMSG);
        assert_int_equal(c.n, 1);
        collected_free(&c);
        json_stream_done(&s);

        /* JSON, but not an object. */
        assert_int_equal(json_stream_init(&s, 4096), 0);
        assert_int_equal(json_stream_feed(&s, "[1]\n", 4, collect, &c), -EBADMSG);
        json_stream_done(&s);

        /* An object beyond the bound, whole or in pieces. */
        assert_int_equal(json_stream_init(&s, 16), 0);
        assert_int_equal(json_stream_feed(&s, "{\"a\":\"0123456789abcdef\"}", 24, collect, &c), -EMSGSIZE);
        json_stream_done(&s);
        assert_int_equal(json_stream_init(&s, 16), 0);
        assert_int_equal(json_stream_feed(&s, "{\"a\":\"01234567", 14, collect, &c), 0);
        assert_false(json_stream_at_boundary(&s));
        assert_int_equal(json_stream_feed(&s, "89abcdef\"}", 10, collect, &c), -EMSGSIZE);
        json_stream_done(&s);
        assert_int_equal(c.n, 0);

        /* The handler's error stops the feed, and is returned. */
        c.fail_at = 1;
        assert_int_equal(json_stream_init(&s, 4096), 0);
        assert_int_equal(
                json_stream_feed(&s, stream_text, strlen(stream_text), collect, &c), -ENOTRECOVERABLE);
        assert_int_equal(c.n, 1);
        collected_free(&c);
        json_stream_done(&s);

        /* Only whitespace: no object, and still between objects. */
        c.fail_at = -1;
        assert_int_equal(json_stream_init(&s, 4096), 0);
        assert_int_equal(json_stream_feed(&s, " \n\r\n\t", 5, collect, &c), 0);
        assert_true(json_stream_at_boundary(&s));
        assert_int_equal(c.n, 0);
        json_stream_done(&s);
}

static void test_parse_object(void **state) {
        json_object *o = NULL;

        assert_int_equal(json_parse_object("{\"a\":\"1\"}\n", 10, &o), 0);
        assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), "{\"a\":\"1\"}");
        json_object_put(o);

        assert_int_equal(json_parse_object("", 0, &o), -EBADMSG);
        assert_int_equal(json_parse_object("Not Found\n", 10, &o), -EBADMSG);
        assert_int_equal(json_parse_object("{\"a\":1", 6, &o), -EBADMSG);
        assert_int_equal(json_parse_object("{}{}", 4, &o), -EBADMSG);
        assert_int_equal(json_parse_object("\"x\"", 3, &o), -EBADMSG);
        /* Text after the object (an HTTP trailer taken for body would look like this). */
        assert_int_equal(
                json_parse_object("{}Grpc-Trailer-Content-Type: application/grpc", 45, &o), -EBADMSG);
}

static void test_int64(void **state) {
        json_object *o = json_tokener_parse(
                "{\"rev\":\"42\",\"neg\":\"-7\",\"max\":\"9223372036854775807\",\"min\":\"-"
                "9223372036854775808\","
                "\"over\":\"9223372036854775808\",\"num\":17,\"bignum\":18446744073709551615,\"plus\":\"+"
                "1\","
                "\"space\":\" 1\",\"hex\":\"0x10\",\"tail\":\"1x\",\"empty\":\"\",\"bool\":true}");
        int64_t v = -1;

        assert_non_null(o);
        assert_int_equal(etcd_json_get_int64(o, "rev", &v), 0);
        assert_int_equal(v, 42);
        assert_int_equal(etcd_json_get_int64(o, "neg", &v), 0);
        assert_int_equal(v, -7);
        assert_int_equal(etcd_json_get_int64(o, "max", &v), 0);
        assert_true(v == INT64_MAX);
        assert_int_equal(etcd_json_get_int64(o, "min", &v), 0);
        assert_true(v == INT64_MIN);
        assert_int_equal(etcd_json_get_int64(o, "num", &v), 0);
        assert_int_equal(v, 17);
        /* Absent: the default, which the gateway leaves out. */
        assert_int_equal(etcd_json_get_int64(o, "absent", &v), 0);
        assert_int_equal(v, 0);
        for (const char *const *f =
                     (const char *const[]) {
                             "over", "bignum", "plus", "space", "hex", "tail", "empty", "bool", NULL };
             *f;
             f++)
                assert_int_equal(etcd_json_get_int64(o, *f, &v), -EBADMSG);

        assert_int_equal(etcd_json_add_int64(o, "added", INT64_MIN), 0);
        assert_string_equal(
                json_object_get_string(json_object_object_get(o, "added")), "-9223372036854775808");
        assert_int_equal(etcd_json_get_int64(o, "added", &v), 0);
        assert_true(v == INT64_MIN);
        json_object_put(o);

        o = json_tokener_parse("{\"header\":{\"revision\":\"9\"}}");
        assert_int_equal(etcd_json_get_revision(o, &v), 0);
        assert_int_equal(v, 9);
        json_object_put(o);
        o = json_tokener_parse("{\"kvs\":[]}");
        assert_int_equal(etcd_json_get_revision(o, &v), -EBADMSG);
        json_object_put(o);
}

static void test_bytes(void **state) {
        json_object *o = json_object_new_object();
        void *p;
        size_t n;

        assert_int_equal(etcd_json_add_bytes(o, "key", "\0k\xff", 3), 0);
        assert_string_equal(json_object_get_string(json_object_object_get(o, "key")), "AGv/");
        assert_int_equal(etcd_json_get_bytes(o, "key", &p, &n), 0);
        assert_int_equal(n, 3);
        assert_memory_equal(p, "\0k\xff", 3);
        free(p);

        /* Absent is empty: the gateway leaves out an empty value. */
        assert_int_equal(etcd_json_get_bytes(o, "value", &p, &n), 0);
        assert_int_equal(n, 0);
        assert_string_equal(p, "");
        free(p);

        json_object_object_add(o, "bad", json_object_new_string("AGv"));
        assert_int_equal(etcd_json_get_bytes(o, "bad", &p, &n), -EBADMSG);
        json_object_object_add(o, "num", json_object_new_int(1));
        assert_int_equal(etcd_json_get_bytes(o, "num", &p, &n), -EBADMSG);
        json_object_put(o);
}

static void expect_range_end(const char *prefix, size_t n, const char *end, size_t end_size) {
        void *p;
        size_t size;

        assert_int_equal(etcd_prefix_range_end(prefix, n, &p, &size), 0);
        assert_int_equal(size, end_size);
        assert_memory_equal(p, end, end_size);
        free(p);
}

static void test_prefix_range_end(void **state) {
        expect_range_end("/wg/", 4, "/wg0", 4);
        expect_range_end("a", 1, "b", 1);
        expect_range_end("a\xff", 2, "b", 1);
        expect_range_end("a\xfe\xff\xff", 4, "a\xff", 2);
        /* Nothing above: every key from there on, as etcd spells it. */
        expect_range_end("\xff\xff", 2, "\0", 1);
        expect_range_end("", 0, "\0", 1);
}

static void test_error_table(void **state) {
        static const struct {
                int code;
                const char *message;
                int error;
        } table[] = {
                { 1, NULL, -ECANCELED },
                { 2, NULL, -EIO },
                { 3, "etcdserver: key is not provided", -EINVAL },
                { 3, "etcdserver: user name is empty", -EACCES },
                { 3, "etcdserver: authentication failed, invalid user ID or password", -EACCES },
                { 4, NULL, -ETIMEDOUT },
                { 5, "etcdserver: requested lease not found", -ENOENT },
                { 6, NULL, -EEXIST },
                { 7, "etcdserver: permission denied", -EACCES },
                { 8, "etcdserver: mvcc: database space exceeded", -ENOSPC },
                { 8, "etcdserver: too many requests", -EBUSY },
                { 9, "etcdserver: authentication is not enabled", -EPROTO },
                { 10, NULL, -EAGAIN },
                { 11, "etcdserver: mvcc: required revision has been compacted", -ERANGE },
                { 12, NULL, -EOPNOTSUPP },
                { 13, NULL, -EIO },
                { 14, "etcdserver: no leader", -EAGAIN },
                { 15, NULL, -EIO },
                { 16, "etcdserver: invalid auth token", -EACCES },
                { 0, NULL, -EIO },
                { 17, NULL, -EIO },
                { -1, NULL, -EIO },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                assert_int_equal(etcd_error_from_grpc(table[i].code, table[i].message), table[i].error);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64_vectors),
                cmocka_unit_test(test_base64_round_trip),
                cmocka_unit_test(test_base64_strict),
                cmocka_unit_test(test_stream_every_cut),
                cmocka_unit_test(test_stream_byte_by_byte),
                cmocka_unit_test(test_stream_errors),
                cmocka_unit_test(test_parse_object),
                cmocka_unit_test(test_int64),
                cmocka_unit_test(test_bytes),
                cmocka_unit_test(test_prefix_range_end),
                cmocka_unit_test(test_error_table),
        };

        return cmocka_run_group_tests_name("etcd-util", tests, NULL, NULL);
}
