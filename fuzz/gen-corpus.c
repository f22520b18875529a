/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Write the seed corpus of fuzz-dispatch: inputs in the format of fuzz-dispatch.h, made of
 * Requests packed by protobuf-c (so that they stay real Requests when wg.proto changes) and of
 * hand-made wire format for what a correct packer never produces.
 *
 *   gen-corpus DIR           write the seeds into DIR (overwriting those of the same name)
 *   gen-corpus --check DIR   fail unless DIR holds every seed, byte for byte
 *
 * Other files in DIR (crashers kept as regression inputs) are left alone by both.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-dispatch.h"
#include "group-name.h"
#include "segment.h"
#include "wg.pb-c.h"

#define ROOT FUZZ_ROOT
#define ALICE FUZZ_ALICE
#define BOB FUZZ_BOB
#define ALICE2 FUZZ_ALICE2
#define STRANGER FUZZ_STRANGER
#define EVENTS FUZZ_RUN_EVENTS

/* A state word's generation field, for the peers' writes. */
#define STATE_GEN(n) (((uint64_t) (n) & WG_STATE_GEN_MASK) << WG_STATE_GEN_SHIFT)

/* protobuf-c's messages take char *, and string literals are const here (-Wwrite-strings). */
#define STR(s) ((char *) (s))

#define MSG(type, descriptor, ...) (&(type) { .base = PROTOBUF_C_MESSAGE_INIT(&(descriptor)), __VA_ARGS__ })
#define CREATE(...) MSG(Wg__V1__Create, wg__v1__create__descriptor, __VA_ARGS__)
#define OPEN(...) MSG(Wg__V1__Open, wg__v1__open__descriptor, __VA_ARGS__)
#define DELETE(...) MSG(Wg__V1__Delete, wg__v1__delete__descriptor, __VA_ARGS__)
#define LIST(...) MSG(Wg__V1__List, wg__v1__list__descriptor, __VA_ARGS__)
#define STAT(...) MSG(Wg__V1__Stat, wg__v1__stat__descriptor, __VA_ARGS__)
#define ADD(...) MSG(Wg__V1__Add, wg__v1__add__descriptor, __VA_ARGS__)
#define DONE(...) MSG(Wg__V1__Done, wg__v1__done__descriptor, __VA_ARGS__)
#define WAIT(...) MSG(Wg__V1__Wait, wg__v1__wait__descriptor, __VA_ARGS__)
#define JOIN(...) MSG(Wg__V1__Join, wg__v1__join__descriptor, __VA_ARGS__)
#define LEAVE(...) MSG(Wg__V1__Leave, wg__v1__leave__descriptor, __VA_ARGS__)
#define RESET(...) MSG(Wg__V1__Reset, wg__v1__reset__descriptor, __VA_ARGS__)

#define OP_CREATE WG__V1__REQUEST__OP_CREATE
#define OP_OPEN WG__V1__REQUEST__OP_OPEN
#define OP_DELETE WG__V1__REQUEST__OP_DELETE
#define OP_LIST WG__V1__REQUEST__OP_LIST
#define OP_STAT WG__V1__REQUEST__OP_STAT
#define OP_ADD WG__V1__REQUEST__OP_ADD
#define OP_DONE WG__V1__REQUEST__OP_DONE
#define OP_WAIT WG__V1__REQUEST__OP_WAIT
#define OP_JOIN WG__V1__REQUEST__OP_JOIN
#define OP_LEAVE WG__V1__REQUEST__OP_LEAVE
#define OP_RESET WG__V1__REQUEST__OP_RESET

#define POLICY_COUNT_AS_DONE WG__V1__ABANDON_POLICY__ABANDON_POLICY_COUNT_AS_DONE
#define POLICY_BREAK WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK

/* Field numbers and wire types, for the hand-made records. */
enum {
        WIRE_VARINT = 0,
        WIRE_64BIT = 1,
        WIRE_LEN = 2,
        WIRE_START_GROUP = 3,
        WIRE_END_GROUP = 4,
        WIRE_32BIT = 5,
};
enum {
        F_VERSION = 1,
        F_ID = 2,
        F_CREATE = 10,
        F_OPEN = 11,
        F_DELETE = 12,
        F_LIST = 13,
        F_STAT = 14,
        F_ADD = 15,
        F_DONE = 16,
        F_WAIT = 17,
        F_JOIN = 18,
        F_LEAVE = 19,
        F_RESET = 20,
        F_FUTURE = 21, /* the first field number no operation has yet */
};

typedef struct Buf {
        uint8_t *data;
        size_t len, allocated;
} Buf;

typedef struct Seed {
        Buf buf;
        uint64_t next_id;
} Seed;

static void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *format, ...) {
        va_list ap;

        fputs("gen-corpus: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(EXIT_FAILURE);
}

static void buf_put(Buf *b, const void *p, size_t n) {
        if (b->len + n > b->allocated) {
                size_t a = (b->len + n) * 2;
                uint8_t *d = realloc(b->data, a);

                if (!d)
                        die("Out of memory.");
                b->data = d;
                b->allocated = a;
        }
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
}

static void buf_byte(Buf *b, uint8_t c) {
        buf_put(b, &c, 1);
}

/* The hand-made wire format: base-128 varints, keys, length-delimited fields. */
static void pb_varint(Buf *b, uint64_t v) {
        while (v >= 0x80) {
                buf_byte(b, (uint8_t) (v | 0x80));
                v >>= 7;
        }
        buf_byte(b, (uint8_t) v);
}

static void pb_key(Buf *b, uint64_t field, unsigned wire) {
        pb_varint(b, field << 3 | wire);
}

static void pb_uint(Buf *b, uint64_t field, uint64_t v) {
        pb_key(b, field, WIRE_VARINT);
        pb_varint(b, v);
}

static void pb_bytes(Buf *b, uint64_t field, const void *p, size_t n) {
        pb_key(b, field, WIRE_LEN);
        pb_varint(b, n);
        buf_put(b, p, n);
}

static void pb_str(Buf *b, uint64_t field, const char *s) {
        pb_bytes(b, field, s, strlen(s));
}

/* One record of the input: the header of fuzz-dispatch.h, then the payload. */
static void raw(Seed *s, unsigned control, const void *p, size_t n) {
        if (n > UINT16_MAX)
                die("A record of %zu bytes does not fit the input format.", n);
        buf_byte(&s->buf, (uint8_t) control);
        buf_byte(&s->buf, (uint8_t) (n & 0xff));
        buf_byte(&s->buf, (uint8_t) (n >> 8));
        buf_put(&s->buf, p, n);
}

static void raw_buf(Seed *s, unsigned control, Buf *b) {
        raw(s, control, b->data, b->len);
        free(b->data);
        *b = (Buf) {};
}

static void hang_up(Seed *s, unsigned who) {
        raw(s, who, NULL, 0);
}

/* Another process that holds the @index-th group's segment writes to it: see fuzz-dispatch.h. */
static void peer(Seed *s, unsigned what, unsigned index, uint64_t value) {
        uint8_t p[FUZZ_PEER_SIZE] = { (uint8_t) what, (uint8_t) index };

        for (unsigned i = 0; i < 8; i++)
                p[2 + i] = (uint8_t) (value >> (8 * i));
        raw(s, FUZZ_PEER, p, sizeof(p));
}

static void request(Seed *s, unsigned control, const Wg__V1__Request *req) {
        size_t n = wg__v1__request__get_packed_size(req);
        uint8_t *p = malloc(n > 0 ? n : 1);

        if (!p)
                die("Out of memory.");
        if (wg__v1__request__pack(req, p) != n)
                die("protobuf-c packed a different size than it said.");
        raw(s, control, p, n);
        free(p);
}

static void set_op(Wg__V1__Request *req, Wg__V1__Request__OpCase op_case, void *m) {
        req->op_case = op_case;
        switch (op_case) {
        case OP_CREATE:
                req->create = m;
                break;
        case OP_OPEN:
                req->open = m;
                break;
        case OP_DELETE:
                req->delete_ = m;
                break;
        case OP_LIST:
                req->list = m;
                break;
        case OP_STAT:
                req->stat = m;
                break;
        case OP_ADD:
                req->add = m;
                break;
        case OP_DONE:
                req->done = m;
                break;
        case OP_WAIT:
                req->wait = m;
                break;
        case OP_JOIN:
                req->join = m;
                break;
        case OP_LEAVE:
                req->leave = m;
                break;
        case OP_RESET:
                req->reset = m;
                break;
        default:
                die("Unknown operation %d.", (int) op_case);
        }
}

/* A correct Request: version 1, the next id of this seed, one operation. */
static void op(Seed *s, unsigned control, Wg__V1__Request__OpCase op_case, void *m) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;

        req.has_version = true;
        req.version = 1;
        req.has_id = true;
        req.id = ++s->next_id;
        set_op(&req, op_case, m);
        request(s, control, &req);
}

static void create(Seed *s, unsigned who, const char *name) {
        op(s, who, OP_CREATE, CREATE(.name = STR(name)));
}

static void create_mode(Seed *s, unsigned who, const char *name, uint32_t mode, uint64_t count) {
        op(s, who, OP_CREATE,
           CREATE(.name = STR(name), .has_mode = true, .mode = mode, .has_count = true, .count = count));
}

static void open_(Seed *s, unsigned who, const char *name) {
        op(s, who, OP_OPEN, OPEN(.name = STR(name)));
}

static void delete_(Seed *s, unsigned who, const char *name) {
        op(s, who, OP_DELETE, DELETE(.name = STR(name)));
}

static void list(Seed *s, unsigned who, const char *after) {
        op(s, who, OP_LIST, LIST(.after = STR(after)));
}

static void stat_(Seed *s, unsigned who, const char *name) {
        op(s, who, OP_STAT, STAT(.name = STR(name)));
}

static void add(Seed *s, unsigned who, const char *name, int64_t delta) {
        op(s, who, OP_ADD, ADD(.name = STR(name), .has_delta = true, .delta = delta));
}

static void done(Seed *s, unsigned who, const char *name) {
        op(s, who, OP_DONE, DONE(.name = STR(name)));
}

static void wait_forever(Seed *s, unsigned who, const char *name) {
        op(s, who, OP_WAIT, WAIT(.name = STR(name)));
}

static void wait_for(Seed *s, unsigned who, const char *name, uint64_t usec) {
        op(s, who, OP_WAIT, WAIT(.name = STR(name), .has_timeout_usec = true, .timeout_usec = usec));
}

static void join(Seed *s, unsigned who, const char *name) {
        op(s, who, OP_JOIN, JOIN(.name = STR(name)));
}

static void leave(Seed *s, unsigned who, const char *name, int32_t status) {
        op(s, who, OP_LEAVE, LEAVE(.name = STR(name), .has_status = true, .status = status));
}

static void reset(Seed *s, unsigned who, const char *name) {
        op(s, who, OP_RESET, RESET(.name = STR(name)));
}

/* A name of @n bytes, all 'n': 64 is the longest valid one. */
static const char *long_name(size_t n) {
        static char buf[WG_NAME_MAX * 4 + 1];

        if (n >= sizeof(buf))
                die("Name too long for the buffer.");
        memset(buf, 'n', n);
        buf[n] = 0;
        return buf;
}

/* Deterministic noise (xorshift), so that the garbage seeds are the same on every run. */
static uint32_t noise(uint32_t *state) {
        uint32_t x = *state;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return *state = x;
}

static void seed_create_one(Seed *s) {
        create(s, ALICE, "work");
}

static void seed_create_all_fields(Seed *s) {
        op(s, ALICE, OP_CREATE,
           CREATE(.name = STR("build.1"), .has_mode = true, .mode = 0660, .has_gid = true, .gid = 1000,
                  .has_count = true, .count = 3, .has_exist_ok = true, .exist_ok = true));
        stat_(s, BOB, "build.1");
        stat_(s, STRANGER, "build.1");
}

static void seed_create_exists(Seed *s) {
        create(s, ALICE, "x");
        create(s, ALICE, "x");
        op(s, ALICE, OP_CREATE, CREATE(.name = STR("x"), .has_exist_ok = true, .exist_ok = true));
        op(s, ALICE2, OP_CREATE, CREATE(.name = STR("x"), .has_exist_ok = true, .exist_ok = false));
        op(s, STRANGER, OP_CREATE, CREATE(.name = STR("x"), .has_exist_ok = true, .exist_ok = true));
        op(s, BOB, OP_CREATE,
           CREATE(.name = STR("x"), .has_exist_ok = true, .exist_ok = true, .has_count = true, .count = 5));
}

static void seed_create_mode_bits(Seed *s) {
        static const uint32_t modes[] = {
                0777, 01666, 04600, 02000, 0xffffffffu, 0, 0666, 0604, 0060, 0100000,
        };
        char name[16];

        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                snprintf(name, sizeof(name), "m%zu", i);
                create_mode(s, ALICE, name, modes[i], 0);
                stat_(s, STRANGER, name);
        }
}

static void seed_create_gid(Seed *s) {
        op(s, BOB, OP_CREATE, CREATE(.name = STR("g-member"), .has_gid = true, .gid = 1000));
        op(s, BOB, OP_CREATE, CREATE(.name = STR("g-own"), .has_gid = true, .gid = 1001));
        op(s, BOB, OP_CREATE, CREATE(.name = STR("g-other"), .has_gid = true, .gid = 5));
        op(s, ALICE, OP_CREATE, CREATE(.name = STR("g-minus-one"), .has_gid = true, .gid = 0xffffffffu));
        op(s, ROOT, OP_CREATE, CREATE(.name = STR("g-root"), .has_gid = true, .gid = 4242, .has_mode = true,
                                      .mode = 0660));
        op(s, STRANGER, OP_CREATE, CREATE(.name = STR("g-supp"), .has_gid = true, .gid = 3001));
        op(s, ROOT, OP_CREATE, CREATE(.name = STR("g-root-minus-one"), .has_gid = true, .gid = 0xffffffffu));
        op(s, ALICE, OP_OPEN,
           OPEN(.name = STR("g-open"), .has_create = true, .create = true, .has_gid = true, .gid = 0));
        list(s, ROOT, NULL);
}

static void seed_create_count(Seed *s) {
        create_mode(s, ALICE, "c-max", 0600, 2147483647);
        create_mode(s, ALICE, "c-over", 0600, 2147483648u);
        create_mode(s, ALICE, "c-huge", 0600, UINT64_MAX);
        create_mode(s, ALICE, "c-zero", 0600, 0);
        add(s, ALICE, "c-max", 1);
        add(s, ALICE, "c-max", -2147483647);
}

static void seed_create_quota(Seed *s) {
        char name[16];

        for (unsigned i = 0; i <= FUZZ_GROUPS_PER_UID; i++) {
                snprintf(name, sizeof(name), "q%u", i);
                create(s, i % 2 ? ALICE2 : ALICE, name);
        }
        delete_(s, ALICE2, "q0");
        create(s, ALICE, "q8");
        op(s, ALICE, OP_OPEN, OPEN(.name = STR("q9"), .has_create = true, .create = true));
        /* Another uid has its own quota. */
        create(s, BOB, "q9");
}

static void seed_names_valid(Seed *s) {
        static const char *const names[] = { "a", "A-Z_a-z.0-9", "-dash", "x..y", "_", "trailing." };

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                create(s, ALICE, names[i]);
                stat_(s, ALICE, names[i]);
        }
        create(s, ALICE, long_name(WG_NAME_MAX));
        stat_(s, ALICE, long_name(WG_NAME_MAX));
        list(s, ALICE, long_name(WG_NAME_MAX));
}

static void seed_names_invalid(Seed *s) {
        /* The UTF-8 one is "grüße", in octal escapes, which end after three digits. */
        static const char *const names[] = {
                "", ".hidden", ".", "..", "a/b", "a b", "tab\t", "gr\303\274\303\237e", "a:b", "new\nline",
                "*",
        };

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                create(s, ALICE, names[i]);
                open_(s, ALICE, names[i]);
                stat_(s, ROOT, names[i]);
                add(s, ROOT, names[i], 1);
                done(s, ROOT, names[i]);
                wait_for(s, ROOT, names[i], 10);
                delete_(s, ROOT, names[i]);
                list(s, ROOT, names[i]);
        }
        create(s, ALICE, long_name(WG_NAME_MAX + 1));
        stat_(s, ALICE, long_name(WG_NAME_MAX * 4));
        list(s, ALICE, long_name(WG_NAME_MAX + 1));
}

/* Bytes that a string field may carry on the wire, but a C string cannot. */
static void seed_names_raw_bytes(Seed *s) {
        static const char nul[] = { 'a', 'b', 0, 'c', 'd' };
        static const uint8_t bad_utf8[] = { 0xff, 0xfe, 0x80, 'x' };
        Buf create_msg = {}, b = {};

        pb_bytes(&create_msg, 1, nul, sizeof(nul));
        pb_uint(&b, F_VERSION, 1);
        pb_uint(&b, F_ID, 1);
        pb_bytes(&b, F_CREATE, create_msg.data, create_msg.len);
        raw_buf(s, ALICE, &b);
        stat_(s, ALICE, "ab");

        free(create_msg.data);
        create_msg = (Buf) {};
        pb_bytes(&create_msg, 1, bad_utf8, sizeof(bad_utf8));
        pb_uint(&b, F_VERSION, 1);
        pb_uint(&b, F_ID, 2);
        pb_bytes(&b, F_STAT, create_msg.data, create_msg.len);
        raw_buf(s, ALICE, &b);
        free(create_msg.data);

        /* A name with a NUL first: an empty C string, a non-empty field. */
        pb_uint(&b, F_VERSION, 1);
        pb_bytes(&b, F_LIST, (const uint8_t[]) { 0x0a, 0x02, 0, 'z' }, 4);
        raw_buf(s, ALICE, &b);
}

/*
 * NULs in strings that are not names (wgd refuses any string with one), and encodings protobuf
 * allows that wgd once refused: an over-long varint, a string field twice (the last counts).
 */
static void seed_strings_and_encodings(Seed *s) {
        Buf m = {}, b = {};

        create(s, ALICE, "enc");
        pb_str(&m, 1, "enc");
        pb_bytes(&m, 2, "make\0all", 8);
        pb_uint(&b, F_VERSION, 1);
        pb_uint(&b, F_ID, 1);
        pb_bytes(&b, F_JOIN, m.data, m.len);
        raw_buf(s, ALICE, &b);
        free(m.data);
        m = (Buf) {};

        /* Create "second" with count 2, from a name given twice and a count in three bytes. */
        pb_str(&m, 1, "first");
        pb_str(&m, 1, "second");
        pb_key(&m, 4, WIRE_VARINT);
        buf_put(&m, "\x82\x80\x00", 3);
        pb_uint(&b, F_VERSION, 1);
        pb_uint(&b, F_ID, 2);
        pb_bytes(&b, F_CREATE, m.data, m.len);
        raw_buf(s, ALICE, &b);
        free(m.data);
        stat_(s, ALICE, "second");
        done(s, ALICE, "second");
        join(s, ALICE, "enc");
        leave(s, ALICE, "enc", 0);
}

static void seed_name_missing(Seed *s) {
        op(s, ALICE, OP_CREATE, CREATE(.has_count = true, .count = 1));
        op(s, ALICE, OP_OPEN, OPEN(.has_create = true, .create = true));
        op(s, ALICE, OP_DELETE, DELETE());
        op(s, ALICE, OP_STAT, STAT());
        op(s, ALICE, OP_ADD, ADD(.has_delta = true, .delta = 1));
        op(s, ALICE, OP_DONE, DONE());
        op(s, ALICE, OP_WAIT, WAIT(.has_timeout_usec = true, .timeout_usec = 0));
        op(s, ALICE, OP_LIST, LIST());
}

static void seed_version_missing(Seed *s) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;

        req.has_id = true;
        req.id = 7;
        set_op(&req, OP_CREATE, CREATE(.name = STR("v")));
        request(s, ALICE, &req);
        stat_(s, ALICE, "v");
}

static void seed_version_bad(Seed *s) {
        static const uint32_t versions[] = { 0, 2, 0xffffffffu, 0x80000001u };

        for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
                Wg__V1__Request req = WG__V1__REQUEST__INIT;

                req.has_version = true;
                req.version = versions[i];
                req.has_id = i % 2;
                req.id = i;
                set_op(&req, OP_CREATE, CREATE(.name = STR("v")));
                request(s, ALICE, &req);
        }
        stat_(s, ALICE, "v");
}

/* A uint32 field from a varint wider than 32 bits: protobuf-c keeps the low half. */
static void seed_version_wide_varint(Seed *s) {
        static const uint64_t versions[] = { UINT64_MAX, (UINT64_C(1) << 32) | 1, UINT64_C(1) << 32 };
        Buf stat_msg = {}, b = {};

        pb_str(&stat_msg, 1, "wide");
        for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
                pb_uint(&b, F_VERSION, versions[i]);
                pb_bytes(&b, F_CREATE, stat_msg.data, stat_msg.len);
                raw_buf(s, ALICE, &b);
        }
        free(stat_msg.data);

        /* The same field twice: the last one counts. */
        pb_uint(&b, F_VERSION, 2);
        pb_uint(&b, F_VERSION, 1);
        pb_bytes(&b, F_STAT, "\x0a\x04wide", 6);
        raw_buf(s, ALICE, &b);
}

static void seed_no_op(Seed *s) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;

        req.has_version = true;
        req.version = 1;
        req.has_id = true;
        req.id = 1;
        request(s, ALICE, &req);
        req.has_id = false;
        request(s, ROOT, &req);
}

/* Operations from the future and reserved envelope fields (3 to 9) are unknown fields. */
static void seed_op_unknown(Seed *s) {
        Buf b = {};

        pb_uint(&b, F_VERSION, 1);
        pb_uint(&b, F_ID, 1);
        pb_bytes(&b, F_FUTURE, "\x0a\x01u", 3);
        raw_buf(s, ALICE, &b);

        pb_uint(&b, F_VERSION, 1);
        pb_uint(&b, 3, 42);
        pb_bytes(&b, 9, "junk", 4);
        pb_key(&b, 4, WIRE_64BIT);
        buf_put(&b, "\1\2\3\4\5\6\7\10", 8);
        pb_key(&b, 5, WIRE_32BIT);
        buf_put(&b, "\1\2\3\4", 4);
        pb_bytes(&b, F_CREATE, "\x0a\x01u\xa0\x06\x01", 6); /* field 100 inside Create */
        raw_buf(s, ALICE, &b);

        pb_uint(&b, F_VERSION, 1);
        pb_bytes(&b, (UINT64_C(1) << 29) - 1, "max", 3); /* the largest field number */
        raw_buf(s, ALICE, &b);
        stat_(s, ALICE, "u");
}

/* Two members of the oneof in one record, or one twice: the last wins, the rest is freed. */
static void seed_op_twice(Seed *s) {
        Buf b = {};

        pb_uint(&b, F_VERSION, 1);
        pb_uint(&b, F_ID, 1);
        pb_bytes(&b, F_CREATE, "\x0a\x01t", 3);
        pb_bytes(&b, F_OPEN, "\x0a\x01t\x10\x01", 5);
        raw_buf(s, ALICE, &b);

        /*
         * Create twice: protobuf's rules merge the two (name from the second, mode from the
         * first); protobuf-c 1.4.1 keeps parts of them, and wg.proto asks for each message once.
         */
        pb_uint(&b, F_VERSION, 1);
        pb_uint(&b, F_ID, 2);
        pb_bytes(&b, F_CREATE, "\x0a\x01u\x10\xa0\x03", 6);
        pb_bytes(&b, F_CREATE, "\x0a\x02uu", 4);
        raw_buf(s, ALICE, &b);

        /* And back: Open, Create, Open. */
        pb_uint(&b, F_VERSION, 1);
        pb_bytes(&b, F_OPEN, "\x0a\x01v", 3);
        pb_bytes(&b, F_CREATE, "\x0a\x01v", 3);
        pb_bytes(&b, F_WAIT, "\x0a\x01v\x10\x00", 5);
        pb_bytes(&b, F_OPEN, "\x0a\x01v\x10\x01\x18\x01", 7);
        raw_buf(s, ALICE, &b);
        list(s, ALICE, NULL);
}

static void seed_id_extremes(Seed *s) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;

        req.has_version = true;
        req.version = 1;
        req.has_id = true;
        req.id = 0;
        set_op(&req, OP_CREATE, CREATE(.name = STR("id")));
        request(s, ALICE, &req);
        req.id = UINT64_MAX;
        set_op(&req, OP_STAT, STAT(.name = STR("id")));
        request(s, ALICE, &req);
        req.has_id = false;
        set_op(&req, OP_WAIT, WAIT(.name = STR("id")));
        request(s, ALICE, &req);
}

static void seed_open(Seed *s) {
        open_(s, ALICE, "o");
        op(s, ALICE, OP_OPEN, OPEN(.name = STR("o"), .has_create = true, .create = true));
        open_(s, ALICE, "o");
        op(s, ALICE, OP_OPEN,
           OPEN(.name = STR("o"), .has_create = true, .create = true, .has_exclusive = true,
                .exclusive = true));
        op(s, ALICE, OP_OPEN, OPEN(.name = STR("o"), .has_exclusive = true, .exclusive = true));
        op(s, ALICE, OP_OPEN,
           OPEN(.name = STR("o"), .has_create = true, .create = false, .has_exclusive = true,
                .exclusive = false));
        open_(s, STRANGER, "o");
        open_(s, BOB, "o");
        open_(s, ROOT, "o");
        op(s, BOB, OP_OPEN,
           OPEN(.name = STR("p"), .has_create = true, .create = true, .has_exclusive = true,
                .exclusive = true, .has_mode = true, .mode = 0666, .has_gid = true, .gid = 1000));
        open_(s, ALICE, "p");
        open_(s, STRANGER, "p");
        op(s, ALICE, OP_OPEN, OPEN(.name = STR("p"), .has_create = true, .create = true, .has_mode = true,
                                   .mode = 0777));
}

static void seed_open_create_bad(Seed *s) {
        op(s, ALICE, OP_OPEN, OPEN(.name = STR("ob"), .has_create = true, .create = true, .has_mode = true,
                                   .mode = 0777));
        op(s, ALICE, OP_OPEN, OPEN(.name = STR("ob"), .has_create = true, .create = true, .has_gid = true,
                                   .gid = 1001));
        op(s, ALICE, OP_OPEN, OPEN(.name = STR("ob"), .has_create = true, .create = true, .has_gid = true,
                                   .gid = 0xffffffffu));
        op(s, ALICE, OP_OPEN, OPEN(.name = STR(".ob"), .has_create = true, .create = true));
        stat_(s, ALICE, "ob");
}

static void seed_delete(Seed *s) {
        create(s, ALICE, "d");
        delete_(s, BOB, "d");
        delete_(s, STRANGER, "d");
        create_mode(s, ALICE, "d2", 0644, 0);
        delete_(s, BOB, "d2");
        delete_(s, STRANGER, "d2");
        delete_(s, ALICE2, "d2");
        delete_(s, ALICE, "d2");
        delete_(s, ROOT, "d");
        delete_(s, ROOT, "d");
        create(s, ALICE, "d");
        stat_(s, ALICE, "d");
}

static void seed_list(Seed *s) {
        list(s, ALICE, NULL);
        create(s, ALICE, "a1");
        create_mode(s, ALICE, "a2", 0640, 0);
        create_mode(s, BOB, "b1", 0644, 1);
        create(s, ROOT, "r1");
        create_mode(s, STRANGER, "s1", 0666, 2);
        for (unsigned who = 0; who < FUZZ_N_CLIENTS; who++)
                list(s, who, NULL);
        list(s, ALICE, "");
        list(s, ALICE, "a1");
        list(s, ROOT, "b");
        list(s, ROOT, "zzz");
        list(s, ROOT, ".bad");
        list(s, ROOT, "a b");
}

/* Every uid at its quota, and wgd at its limit, with the longest names: the largest List answers. */
static void seed_list_full(Seed *s) {
        static const unsigned who[] = { ROOT, ALICE, BOB, STRANGER };
        char name[WG_NAME_MAX + 1];

        memcpy(name, long_name(WG_NAME_MAX), sizeof(name));
        for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++)
                for (unsigned j = 0; j < FUZZ_GROUPS_PER_UID; j++) {
                        name[0] = (char) ('0' + i);
                        name[1] = (char) ('0' + j);
                        create_mode(s, who[i], name, 0666, j);
                }
        list(s, STRANGER, NULL);
        list(s, ROOT, NULL);
        list(s, ROOT, "2");
}

static void seed_stat_permissions(Seed *s) {
        op(s, ALICE, OP_CREATE, CREATE(.name = STR("sp"), .has_mode = true, .mode = 0640, .has_gid = true,
                                       .gid = 1000));
        stat_(s, BOB, "sp");
        stat_(s, STRANGER, "sp");
        stat_(s, ALICE2, "sp");
        /* Group bits decide for members, even when the other bits allow more. */
        create_mode(s, ALICE, "sp2", 0604, 0);
        stat_(s, BOB, "sp2");
        stat_(s, STRANGER, "sp2");
        stat_(s, ROOT, "sp2");
        stat_(s, ROOT, "none");
}

static void seed_add(Seed *s) {
        create(s, ALICE, "a");
        add(s, ALICE, "a", 5);
        add(s, ALICE, "a", -2);
        add(s, ALICE, "a", -3);
        add(s, ALICE, "a", -1);
        add(s, ALICE, "a", 2147483647);
        add(s, ALICE, "a", 1);
        add(s, ALICE, "a", INT64_MAX);
        add(s, ALICE, "a", INT64_MIN);
        add(s, ALICE, "a", -2147483647);
        add(s, ALICE, "a", 0);
        op(s, ALICE, OP_ADD, ADD(.name = STR("a")));
        add(s, ALICE, "missing", 1);
        stat_(s, ALICE, "a");
}

static void seed_add_permissions(Seed *s) {
        op(s, ALICE, OP_CREATE, CREATE(.name = STR("ap"), .has_mode = true, .mode = 0640, .has_gid = true,
                                       .gid = 1000));
        add(s, BOB, "ap", 1);
        add(s, STRANGER, "ap", 1);
        add(s, ROOT, "ap", 1);
        create_mode(s, ALICE, "ap2", 0662, 0);
        add(s, BOB, "ap2", 1);
        add(s, STRANGER, "ap2", 1);
        done(s, STRANGER, "ap2");
        done(s, BOB, "ap2");
}

static void seed_done(Seed *s) {
        create(s, ALICE, "dn");
        done(s, ALICE, "dn");
        add(s, ALICE, "dn", 2);
        done(s, ALICE, "dn");
        done(s, ALICE2, "dn");
        done(s, ALICE, "dn");
        done(s, ALICE, "none");
}

static void seed_wait_now(Seed *s) {
        create(s, ALICE, "w");
        wait_forever(s, ALICE, "w");
        wait_for(s, ALICE, "w", 0);
}

static void seed_wait_check(Seed *s) {
        create_mode(s, ALICE, "w", 0600, 1);
        wait_for(s, ALICE, "w", 0);
        stat_(s, ALICE, "w");
}

static void seed_wait_done(Seed *s) {
        op(s, ALICE, OP_CREATE, CREATE(.name = STR("w"), .has_mode = true, .mode = 0640, .has_gid = true,
                                       .gid = 1000, .has_count = true, .count = 1));
        wait_forever(s, BOB, "w");
        wait_forever(s, ALICE, "w");
        stat_(s, ALICE, "w");
        done(s, ALICE, "w");
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("w")));
}

static void seed_wait_timeout(Seed *s) {
        create_mode(s, ALICE, "w", 0600, 1);
        wait_for(s, ALICE, "w", 1);
        wait_for(s, ALICE, "w", 2);
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("w")));
        wait_for(s, ALICE, "w", 1);
        raw(s, EVENTS | ALICE, NULL, 0);
}

static void seed_wait_timeout_extremes(Seed *s) {
        static const uint64_t timeouts[] = {
                UINT64_MAX, UINT64_MAX - 1, UINT64_C(1) << 63, UINT64_C(1) << 62, UINT64_C(3153600000000000),
        };

        create_mode(s, ALICE, "w", 0600, 1);
        for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++)
                wait_for(s, i < 4 ? ALICE : ALICE2, "w", timeouts[i]);
        op(s, EVENTS | ROOT, OP_LIST, LIST());
}

static void seed_wait_limit(Seed *s) {
        create_mode(s, ALICE, "w", 0600, 1);
        for (unsigned i = 0; i <= FUZZ_WAITS_PER_CONNECTION; i++)
                wait_forever(s, ALICE, "w");
        wait_forever(s, ALICE2, "w");
        done(s, ALICE2, "w");
        wait_for(s, ALICE, "w", 1000);
}

static void seed_wait_delete(Seed *s) {
        op(s, ALICE, OP_CREATE, CREATE(.name = STR("w"), .has_mode = true, .mode = 0644, .has_count = true,
                                       .count = 2));
        wait_forever(s, ALICE, "w");
        wait_forever(s, BOB, "w");
        wait_for(s, STRANGER, "w", 1000000);
        delete_(s, ROOT, "w");
        create(s, ALICE, "w");
        wait_forever(s, ALICE, "w");
}

static void seed_wait_hang_up(Seed *s) {
        create_mode(s, ALICE, "w", 0600, 1);
        create_mode(s, ALICE, "w2", 0600, 1);
        wait_forever(s, ALICE, "w");
        wait_for(s, ALICE, "w", 1000000);
        wait_forever(s, ALICE, "w2");
        hang_up(s, ALICE);
        wait_forever(s, ALICE2, "w");
        done(s, ALICE, "w");
        hang_up(s, ALICE2);
        op(s, EVENTS | ALICE, OP_LIST, LIST());
}

static void seed_wait_generation(Seed *s) {
        create_mode(s, ALICE, "w", 0600, 2);
        wait_forever(s, ALICE, "w");
        add(s, ALICE, "w", -2);
        add(s, ALICE, "w", 1);
        wait_forever(s, ALICE, "w");
        add(s, ALICE, "w", 1);
        add(s, ALICE, "w", -2);
        stat_(s, ALICE, "w");
}

static void seed_wait_many(Seed *s) {
        static const unsigned who[] = { ROOT, ALICE, BOB, ALICE2 };
        char name[16];

        for (unsigned i = 0; i < 6; i++) {
                snprintf(name, sizeof(name), "wm%u", i);
                op(s, i % 2 ? ALICE : ROOT, OP_CREATE,
                   CREATE(.name = STR(name), .has_mode = true, .mode = 0666, .has_count = true,
                          .count = i + 1));
        }
        for (unsigned i = 0; i < 16; i++) {
                snprintf(name, sizeof(name), "wm%u", i % 6);
                if (i % 3 == 0)
                        wait_for(s, who[i % 4], name, 1 + i);
                else
                        wait_forever(s, who[i % 4], name);
        }
        delete_(s, ROOT, "wm0");
        done(s, BOB, "wm1");
        add(s, ROOT, "wm2", -3);
        hang_up(s, BOB);
        op(s, EVENTS | STRANGER, OP_LIST, LIST());
        add(s, ALICE, "wm3", -4);
        delete_(s, ALICE, "wm5");
}

static void seed_wait_stranger(Seed *s) {
        create_mode(s, ALICE, "w", 0600, 1);
        create_mode(s, ALICE, "w2", 0604, 1);
        wait_forever(s, STRANGER, "w");
        wait_forever(s, STRANGER, "w2");
        wait_forever(s, BOB, "w2");
        done(s, ALICE, "w2");
}

/* The life of a group as the README tells it, from several processes. */
static void seed_scenario(Seed *s) {
        op(s, ALICE, OP_CREATE, CREATE(.name = STR("job"), .has_mode = true, .mode = 0660, .has_gid = true,
                                       .gid = 1000, .has_count = true, .count = 3));
        open_(s, BOB, "job");
        open_(s, ALICE2, "job");
        wait_forever(s, ALICE, "job");
        wait_for(s, BOB, "job", 5000000);
        done(s, BOB, "job");
        done(s, ALICE2, "job");
        stat_(s, ALICE, "job");
        list(s, BOB, NULL);
        done(s, BOB, "job");
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("job")));
        delete_(s, BOB, "job");
        delete_(s, ALICE, "job");
        list(s, ALICE, NULL);
}

static void seed_root(Seed *s) {
        create(s, ALICE, "private");
        open_(s, ROOT, "private");
        add(s, ROOT, "private", 3);
        wait_forever(s, ROOT, "private");
        done(s, ROOT, "private");
        delete_(s, ROOT, "private");
        stat_(s, ALICE, "private");
}

static void seed_hang_ups(Seed *s) {
        for (unsigned who = 0; who < FUZZ_N_CLIENTS; who++)
                hang_up(s, who);
        hang_up(s, ALICE);
        create(s, ALICE, "after");
        hang_up(s, ALICE);
        stat_(s, ALICE2, "after");
}

/* Request.last: answered, then the connection closes; on a Wait or a Join, EINVAL. */
static void last(Seed *s, unsigned who, Wg__V1__Request__OpCase op_case, void *m) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;

        req.has_version = req.has_id = req.has_last = req.last = true;
        req.version = 1;
        req.id = ++s->next_id;
        set_op(&req, op_case, m);
        request(s, who, &req);
}

static void seed_last_request(Seed *s) {
        create_mode(s, ALICE, "l", 0600, 1);
        wait_forever(s, ALICE, "l");
        last(s, ALICE, OP_STAT, STAT(.name = STR("l")));
        last(s, ALICE, OP_WAIT, WAIT(.name = STR("l")));
        last(s, ALICE, OP_JOIN, JOIN(.name = STR("l")));
        join(s, ALICE2, "l");
        last(s, ALICE2, OP_DONE, DONE(.name = STR("l")));
        last(s, BOB, OP_STAT, STAT(.name = STR("nope")));
        stat_(s, ALICE, "l");
}

static void seed_events_only(Seed *s) {
        for (unsigned who = 0; who < 8; who++)
                op(s, EVENTS | who | 0xf0u, OP_LIST, LIST());
}

/* Members: wgd adds at Join and does the done at Leave, with the status for the outcome. */
static void seed_join_leave(Seed *s) {
        op(s, ALICE, OP_CREATE,
           CREATE(.name = STR("j"), .has_mode = true, .mode = 0660, .has_gid = true, .gid = 1000));
        join(s, ALICE, "j");
        op(s, BOB, OP_JOIN, JOIN(.name = STR("j"), .description = STR("make -j8 all")));
        join(s, STRANGER, "j");
        stat_(s, ALICE, "j");
        wait_forever(s, ROOT, "j");
        leave(s, ALICE, "j", 0);
        op(s, BOB, OP_LEAVE, LEAVE(.name = STR("j"), .has_status = true, .status = 128 + 9));
        leave(s, BOB, "j", 0);
        op(s, ALICE, OP_LEAVE, LEAVE(.name = STR("j")));
        op(s, ALICE, OP_STAT, STAT(.name = STR("j"), .has_generation = true, .generation = 0));
        op(s, ALICE, OP_STAT, STAT(.name = STR("j"), .has_generation = true, .generation = 1));
        op(s, ALICE, OP_STAT, STAT(.name = STR("j"), .has_generation = true, .generation = UINT64_MAX));
}

/* A member whose connection goes without a Leave: its done is done for it, as abandoned. */
static void seed_join_abandon(Seed *s) {
        op(s, ALICE, OP_CREATE,
           CREATE(.name = STR("j"), .has_mode = true, .mode = 0666, .has_on_abandon = true,
                  .on_abandon = POLICY_COUNT_AS_DONE));
        join(s, ALICE, "j");
        join(s, ALICE2, "j");
        wait_forever(s, BOB, "j");
        hang_up(s, ALICE);
        stat_(s, BOB, "j");
        hang_up(s, ALICE2);
        op(s, EVENTS | BOB, OP_STAT, STAT(.name = STR("j"), .has_generation = true, .generation = 0));
}

/* With ABANDON_POLICY_BREAK, an abandoned member breaks the group until a Reset. */
static void seed_join_break(Seed *s) {
        op(s, ALICE, OP_CREATE, CREATE(.name = STR("j"), .has_mode = true, .mode = 0666, .has_count = true,
                                       .count = 1, .has_on_abandon = true, .on_abandon = POLICY_BREAK));
        join(s, ALICE, "j");
        wait_forever(s, BOB, "j");
        wait_for(s, ROOT, "j", 1000000);
        hang_up(s, ALICE);
        add(s, BOB, "j", 1);
        done(s, BOB, "j");
        join(s, ALICE2, "j");
        wait_forever(s, BOB, "j");
        open_(s, STRANGER, "j");
        reset(s, STRANGER, "j");
        stat_(s, ROOT, "j");
        wait_forever(s, BOB, "j");
        add(s, BOB, "j", 2);
        done(s, BOB, "j");
}

static void seed_join_limits(Seed *s) {
        char name[16];

        for (unsigned i = 0; i <= FUZZ_MEMBERS_PER_UID; i++) {
                snprintf(name, sizeof(name), "j%u", i);
                create_mode(s, ALICE, name, 0666, 0);
                join(s, i % 2 ? ALICE2 : ALICE, name);
        }
        join(s, ALICE, "j0");
        join(s, BOB, "j4");
        leave(s, ALICE2, "j0", 0);
        leave(s, ALICE, "j0", 0);
        join(s, ALICE2, "j4");
        delete_(s, ALICE, "j1");
        leave(s, ALICE2, "j1", 0);
        op(s, ALICE, OP_JOIN, JOIN(.name = STR("j2"), .description = STR(long_name(WG_NAME_MAX * 4))));
        join(s, ALICE, "none");
        join(s, ALICE, ".bad");
        op(s, ALICE, OP_JOIN, JOIN());
}

/* Leave by member id, as after a restart of wgd: ids are random, so these name no member. */
static void seed_leave_member_id(Seed *s) {
        create_mode(s, ALICE, "j", 0666, 0);
        join(s, ALICE, "j");
        op(s, ALICE2, OP_LEAVE, LEAVE(.name = STR("j"), .has_member_id = true, .member_id = 1));
        op(s, ALICE, OP_LEAVE, LEAVE(.name = STR("j"), .has_member_id = true, .member_id = 0));
        op(s, BOB, OP_LEAVE, LEAVE(.name = STR("j"), .has_member_id = true, .member_id = UINT64_MAX,
                                   .has_status = true, .status = -1));
        op(s, ALICE, OP_LEAVE, LEAVE(.name = STR("j"), .has_status = true, .status = INT32_MIN));
}

static void seed_reset(Seed *s) {
        create_mode(s, ALICE, "r", 0644, 5);
        wait_forever(s, ALICE, "r");
        wait_forever(s, BOB, "r");
        reset(s, BOB, "r");
        reset(s, ALICE, "r");
        reset(s, ALICE, "r");
        reset(s, ALICE, "none");
        op(s, ALICE, OP_RESET, RESET());
        add(s, ALICE, "r", 2);
        reset(s, ROOT, "r");
        stat_(s, ALICE, "r");
}

/* AbandonPolicy as protobuf-c leaves it: any int32, named or not. */
static void seed_on_abandon(Seed *s) {
        static const int32_t policies[] = { 0, 1, 2, 3, 7, -1, INT32_MIN };
        char name[16];
        Buf b = {};

        for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
                snprintf(name, sizeof(name), "p%zu", i);
                op(s, i % 2 ? ALICE : BOB, OP_CREATE,
                   CREATE(.name = STR(name), .has_on_abandon = true,
                          .on_abandon = (Wg__V1__AbandonPolicy) policies[i]));
        }
        op(s, ALICE, OP_OPEN,
           OPEN(.name = STR("po"), .has_create = true, .create = true, .has_on_abandon = true,
                .on_abandon = POLICY_BREAK));
        op(s, ALICE, OP_OPEN,
           OPEN(.name = STR("po"), .has_on_abandon = true, .on_abandon = (Wg__V1__AbandonPolicy) 9));

        /* An enum from a 10-byte varint, as a negative int32 is on the wire, and a huge one. */
        pb_uint(&b, F_VERSION, 1);
        pb_bytes(&b, F_CREATE, "\x0a\x02pn\x30\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", 15);
        raw_buf(s, ALICE, &b);
        pb_uint(&b, F_VERSION, 1);
        pb_bytes(&b, F_CREATE, "\x0a\x02ph\x30\x80\x80\x80\x80\x10", 10);
        raw_buf(s, ALICE, &b);
        list(s, ROOT, NULL);
}

/* Wait for a given generation: the current one, one that ended, one that has not begun. */
static void seed_wait_generation_field(Seed *s) {
        create_mode(s, ALICE, "w", 0600, 1);
        op(s, ALICE, OP_WAIT, WAIT(.name = STR("w"), .has_generation = true, .generation = 0));
        done(s, ALICE, "w");
        add(s, ALICE, "w", 1);
        op(s, ALICE, OP_WAIT, WAIT(.name = STR("w"), .has_generation = true, .generation = 0));
        op(s, ALICE, OP_WAIT, WAIT(.name = STR("w"), .has_generation = true, .generation = 5));
        op(s, ALICE, OP_WAIT, WAIT(.name = STR("w"), .has_generation = true, .generation = UINT64_MAX,
                                   .has_timeout_usec = true, .timeout_usec = 0));
        op(s, ALICE2, OP_WAIT,
           WAIT(.name = STR("w"), .has_generation = true, .generation = WG_STATE_GEN_MASK,
                .has_timeout_usec = true, .timeout_usec = 1));
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("w")));
        done(s, ALICE, "w");
}

/* A holder's done ends the generation behind wgd's back: the watcher must tell the event loop. */
static void seed_peer_done(Seed *s) {
        create_mode(s, ALICE, "w", 0600, 2);
        wait_forever(s, ALICE, "w");
        wait_for(s, ALICE2, "w", 10000000);
        peer(s, FUZZ_PEER_ADD, 0, (uint64_t) -1);
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("w")));
        peer(s, FUZZ_PEER_ADD, 0, (uint64_t) -1);
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("w")));
        peer(s, FUZZ_PEER_ADD, 0, 3);
        wait_forever(s, ALICE, "w");
        peer(s, FUZZ_PEER_ADD, 0, (uint64_t) -3);
        op(s, EVENTS | ALICE, OP_LIST, LIST());
}

/* A holder writes a word no correct writer makes: every operation says EUCLEAN, nothing breaks. */
static void seed_peer_corrupt(Seed *s) {
        create_mode(s, ALICE, "a", 0666, 1);
        create_mode(s, ALICE, "b", 0666, 1);
        wait_forever(s, ALICE, "b");
        wait_forever(s, BOB, "b");
        peer(s, FUZZ_PEER_STORE_WAKE, 1, WG_STATE_COUNT_BAD | WG_STATE_WAITERS | 5);
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("b")));
        add(s, ALICE, "b", 1);
        done(s, BOB, "b");
        wait_forever(s, STRANGER, "b");
        wait_for(s, STRANGER, "b", 0);
        list(s, ROOT, NULL);
        peer(s, FUZZ_PEER_STORE, 0, UINT64_MAX);
        wait_forever(s, ALICE, "a");
        delete_(s, ALICE, "b");
        delete_(s, ALICE, "a");
}

/* A holder sets DELETED, which only wgd should: Waits end with EIDRM, the name stays taken. */
static void seed_peer_deleted(Seed *s) {
        create_mode(s, ALICE, "w", 0644, 1);
        wait_forever(s, ALICE, "w");
        wait_for(s, BOB, "w", 1000000);
        peer(s, FUZZ_PEER_STORE_WAKE, 0, WG_STATE_DELETED | STATE_GEN(7) | 1);
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("w")));
        wait_forever(s, ALICE, "w");
        open_(s, ALICE, "w");
        create(s, ALICE, "w");
        delete_(s, ALICE, "w");
        create(s, ALICE, "w");
}

/* The generation moves, or WAITERS goes, without a wake: wgd learns at its next look. */
static void seed_peer_generation(Seed *s) {
        create_mode(s, ALICE, "w", 0600, 1);
        wait_forever(s, ALICE, "w");
        peer(s, FUZZ_PEER_STORE, 0, STATE_GEN(1) | 1);
        add(s, ALICE, "w", 0);
        wait_forever(s, ALICE, "w");
        peer(s, FUZZ_PEER_STORE, 0, STATE_GEN(1) | 1);
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("w")));
        peer(s, FUZZ_PEER_STORE_WAKE, 0, STATE_GEN(WG_STATE_GEN_MASK) | WG_STATE_COUNT_MASK);
        wait_forever(s, ALICE, "w");
        add(s, ALICE, "w", 1);
        peer(s, FUZZ_PEER_ADD, 0, (uint64_t) -0x7fffffff);
        op(s, EVENTS | ALICE, OP_STAT, STAT(.name = STR("w")));
}

static void seed_garbage_noise(Seed *s) {
        uint32_t state = 0x2545f491;

        for (unsigned i = 0; i < 6; i++) {
                uint8_t junk[64];
                size_t n = 1 + noise(&state) % sizeof(junk);

                for (size_t j = 0; j < n; j++)
                        junk[j] = (uint8_t) noise(&state);
                raw(s, i % FUZZ_N_CLIENTS, junk, n);
        }
}

/* A correct Request cut at every length: every way a read can stop early. */
static void seed_garbage_truncated(Seed *s) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        uint8_t p[128];
        size_t n;

        req.has_version = true;
        req.version = 1;
        req.has_id = true;
        req.id = 300;
        set_op(&req, OP_CREATE,
               CREATE(.name = STR("cut"), .has_mode = true, .mode = 0640, .has_count = true,
                      .count = 70000));
        n = wg__v1__request__get_packed_size(&req);
        if (n > sizeof(p) || wg__v1__request__pack(&req, p) != n)
                die("Unexpected packed size %zu.", n);
        for (size_t i = 1; i <= n; i++)
                raw(s, ALICE, p, i);
        stat_(s, ALICE, "cut");
}

static void seed_garbage_varint(Seed *s) {
        static const uint8_t overlong[] = {
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        };
        static const uint8_t unterminated[] = { 0x08, 0x81, 0x80, 0x80 };
        static const uint8_t key_overlong[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
        static const uint8_t padded[] = { 0x08, 0x81, 0x80, 0x80, 0x80, 0x00, 0x10, 0x01, 0x72, 0x00 };

        raw(s, ALICE, overlong, sizeof(overlong));
        raw(s, ALICE, unterminated, sizeof(unterminated));
        raw(s, ALICE, key_overlong, sizeof(key_overlong));
        raw(s, ALICE, padded, sizeof(padded));
}

static void seed_garbage_lengths(Seed *s) {
        Buf b = {};

        /* Longer than the record, by a little and by a lot. */
        pb_uint(&b, F_VERSION, 1);
        pb_key(&b, F_CREATE, WIRE_LEN);
        pb_varint(&b, 5);
        buf_put(&b, "\x0a\x02", 2);
        raw_buf(s, ALICE, &b);

        pb_uint(&b, F_VERSION, 1);
        pb_key(&b, F_STAT, WIRE_LEN);
        pb_varint(&b, UINT64_C(1) << 31);
        buf_put(&b, "\x0a\x01x", 3);
        raw_buf(s, ALICE, &b);

        pb_uint(&b, F_VERSION, 1);
        pb_key(&b, F_LIST, WIRE_LEN);
        pb_varint(&b, UINT64_MAX);
        raw_buf(s, ALICE, &b);

        /* A name whose length runs past the end of its message, but not of the record. */
        pb_uint(&b, F_VERSION, 1);
        pb_bytes(&b, F_CREATE, "\x0a\x09x", 3);
        pb_uint(&b, F_ID, 1);
        pb_uint(&b, F_ID, 2);
        raw_buf(s, ALICE, &b);
}

static void seed_garbage_wire_types(Seed *s) {
        Buf b = {};

        /* A message field sent as a varint, and as fixed-width. */
        pb_uint(&b, F_VERSION, 1);
        pb_uint(&b, F_CREATE, 1);
        raw_buf(s, ALICE, &b);

        pb_uint(&b, F_VERSION, 1);
        pb_key(&b, F_WAIT, WIRE_64BIT);
        buf_put(&b, "\0\0\0\0\0\0\0\0", 8);
        raw_buf(s, ALICE, &b);

        /* A string field sent as a varint, a varint field sent length-delimited. */
        pb_uint(&b, F_VERSION, 1);
        pb_bytes(&b, F_CREATE, "\x08\x01\x12\x01x", 5);
        raw_buf(s, ALICE, &b);

        /* The deprecated groups, and the wire types no one defined. */
        pb_uint(&b, F_VERSION, 1);
        pb_key(&b, 20, WIRE_START_GROUP);
        pb_uint(&b, 1, 1);
        pb_key(&b, 20, WIRE_END_GROUP);
        raw_buf(s, ALICE, &b);

        pb_uint(&b, F_VERSION, 1);
        pb_key(&b, 21, 6);
        pb_key(&b, 22, 7);
        raw_buf(s, ALICE, &b);

        /* Field number 0, which no message may use. */
        pb_uint(&b, 0, 1);
        pb_uint(&b, F_VERSION, 1);
        raw_buf(s, ALICE, &b);

        /* A bool that is not 0 or 1. */
        pb_uint(&b, F_VERSION, 1);
        pb_bytes(&b, F_OPEN, "\x0a\x01" "b\x10\xff\xff\x03\x18\x02", 9);
        raw_buf(s, ALICE, &b);
}

static void seed_input_cut(Seed *s) {
        create(s, ALICE, "cut");
        /* A header that promises more than the input holds, then a header cut short. */
        buf_byte(&s->buf, ALICE);
        buf_byte(&s->buf, 0xff);
        buf_byte(&s->buf, 0xff);
        pb_uint(&s->buf, F_VERSION, 1);
        pb_bytes(&s->buf, F_STAT, "\x0a\x03" "cut", 5);
        buf_byte(&s->buf, ALICE);
}

/*
 * Names far longer than a group name's buffer, rejected before any copy into one. Not near
 * the record cap: libFuzzer takes its largest input size from the corpus.
 */
static void seed_big_record(Seed *s) {
        size_t n = 4096;
        char *name = malloc(n + 1);

        if (!name)
                die("Out of memory.");
        memset(name, 'b', n);
        name[n] = 0;
        create(s, ALICE, name);
        list(s, ALICE, name);
        free(name);
}

static const struct {
        const char *name;
        void (*make)(Seed *s);
} seeds[] = {
        { "create-one", seed_create_one },
        { "create-all-fields", seed_create_all_fields },
        { "create-exists", seed_create_exists },
        { "create-mode-bits", seed_create_mode_bits },
        { "create-gid", seed_create_gid },
        { "create-count", seed_create_count },
        { "create-quota", seed_create_quota },
        { "names-valid", seed_names_valid },
        { "names-invalid", seed_names_invalid },
        { "names-raw-bytes", seed_names_raw_bytes },
        { "strings-and-encodings", seed_strings_and_encodings },
        { "name-missing", seed_name_missing },
        { "version-missing", seed_version_missing },
        { "version-bad", seed_version_bad },
        { "version-wide-varint", seed_version_wide_varint },
        { "no-op", seed_no_op },
        { "op-unknown", seed_op_unknown },
        { "op-twice", seed_op_twice },
        { "id-extremes", seed_id_extremes },
        { "open", seed_open },
        { "open-create-bad", seed_open_create_bad },
        { "delete", seed_delete },
        { "list", seed_list },
        { "list-full", seed_list_full },
        { "stat-permissions", seed_stat_permissions },
        { "add", seed_add },
        { "add-permissions", seed_add_permissions },
        { "done", seed_done },
        { "wait-now", seed_wait_now },
        { "wait-check", seed_wait_check },
        { "wait-done", seed_wait_done },
        { "wait-timeout", seed_wait_timeout },
        { "wait-timeout-extremes", seed_wait_timeout_extremes },
        { "wait-limit", seed_wait_limit },
        { "wait-delete", seed_wait_delete },
        { "wait-hang-up", seed_wait_hang_up },
        { "wait-generation", seed_wait_generation },
        { "wait-many", seed_wait_many },
        { "wait-stranger", seed_wait_stranger },
        { "scenario", seed_scenario },
        { "root", seed_root },
        { "hang-ups", seed_hang_ups },
        { "last-request", seed_last_request },
        { "events-only", seed_events_only },
        { "join-leave", seed_join_leave },
        { "join-abandon", seed_join_abandon },
        { "join-break", seed_join_break },
        { "join-limits", seed_join_limits },
        { "leave-member-id", seed_leave_member_id },
        { "reset", seed_reset },
        { "on-abandon", seed_on_abandon },
        { "wait-generation-field", seed_wait_generation_field },
        { "peer-done", seed_peer_done },
        { "peer-corrupt", seed_peer_corrupt },
        { "peer-deleted", seed_peer_deleted },
        { "peer-generation", seed_peer_generation },
        { "garbage-noise", seed_garbage_noise },
        { "garbage-truncated", seed_garbage_truncated },
        { "garbage-varint", seed_garbage_varint },
        { "garbage-lengths", seed_garbage_lengths },
        { "garbage-wire-types", seed_garbage_wire_types },
        { "input-cut", seed_input_cut },
        { "big-record", seed_big_record },
};

static int write_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int write_seed(int dir_fd, const char *name, const Buf *b) {
        int fd, r;

        fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        r = write_all(fd, b->data, b->len);
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r;
}

/* 0 if the file holds exactly @b, 1 if it differs, or -errno. */
static int compare_seed(int dir_fd, const char *name, const Buf *b) {
        uint8_t chunk[4096];
        size_t at = 0;
        int fd, r = 0;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (n == 0) {
                        r = at == b->len ? 0 : 1;
                        break;
                }
                if (at + (size_t) n > b->len || memcmp(b->data + at, chunk, (size_t) n) != 0) {
                        r = 1;
                        break;
                }
                at += (size_t) n;
        }
        (void) close(fd);
        return r;
}

int main(int argc, char *argv[]) {
        bool check = argc == 3 && strcmp(argv[1], "--check") == 0;
        const char *dir = argv[argc - 1];
        unsigned n_bad = 0;
        int dir_fd;

        if (!(argc == 2 && argv[1][0] != '-') && !check) {
                fprintf(stderr,
                        "Usage: %s [--check] DIRECTORY\n"
                        "Write the seeds of fuzz-dispatch into DIRECTORY, or check that it holds them.\n",
                        argv[0]);
                return EXIT_FAILURE;
        }

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                die("%s: %s", dir, strerror(errno));

        for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
                Seed s = {};
                int r;

                seeds[i].make(&s);
                if (check) {
                        r = compare_seed(dir_fd, seeds[i].name, &s.buf);
                        if (r != 0) {
                                fprintf(stderr, "gen-corpus: %s/%s: %s\n", dir, seeds[i].name,
                                        r > 0 ? "differs from what gen-corpus makes" : strerror(-r));
                                n_bad++;
                        }
                } else {
                        r = write_seed(dir_fd, seeds[i].name, &s.buf);
                        if (r < 0)
                                die("%s/%s: %s", dir, seeds[i].name, strerror(-r));
                }
                free(s.buf.data);
        }
        (void) close(dir_fd);

        if (n_bad > 0) {
                fprintf(stderr,
                        "gen-corpus: %u seeds are missing or stale: "
                        "run `ninja fuzz-corpus` and commit them.\n",
                        n_bad);
                return EXIT_FAILURE;
        }
        printf("gen-corpus: %zu seeds %s %s\n", sizeof(seeds) / sizeof(seeds[0]),
               check ? "checked in" : "written to", dir);
        return EXIT_SUCCESS;
}
