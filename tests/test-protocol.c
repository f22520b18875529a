/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wg.proto is the contract: this is wgd held to it. Each row of the error table at the top of
 * wg.proto, with a request that provokes it, and the malformed records the "Transport" section
 * speaks of, against a real wgd on a real socket, in real protobuf bytes (some made by hand,
 * where protobuf-c would not write them). Every check asserts the errno and the id of the
 * answer: the request's own whenever the record can be read as a Request, 0 only when it cannot.
 *
 * Not provoked here, because nothing makes them happen on demand: ENOMEM, EMFILE, ENFILE (wgd
 * short of memory or fds), EIO (credentials of a connection that cannot be read), EMSGSIZE (an
 * answer too large for a record, which wgd's sizing rules out).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "seqpacket.h"
#include "test-util.h"
#include "wg.h"
#include "wgd-harness.h"

#define NOBODY 65534
#define COUNT_MAX UINT64_C(2147483647)

static const char *const quiet[] = { "--idle-timeout=0", "--log-level=warning", NULL };

/* Ids of requests: each different, so that an answer to the wrong one shows. */
static uint64_t next_id = 1;

/*
 * A Request of version 1 with a fresh id, for the operation @op with message @m, whose fields
 * are set but not its descriptor (REQ() below makes it with designated initializers, which the
 * generated *__INIT macros do not allow): set here. wg.proto has no default values, so zero is
 * every other field's initial value.
 */
static Wg__V1__Request request(Wg__V1__Request__OpCase op, void *m) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        const ProtobufCMessageDescriptor *d = NULL;

        req.has_version = true;
        req.version = 1;
        req.has_id = true;
        req.id = next_id++;
        req.op_case = op;
        switch (op) {
        case WG__V1__REQUEST__OP_CREATE:
                req.create = m;
                d = &wg__v1__create__descriptor;
                break;
        case WG__V1__REQUEST__OP_OPEN:
                req.open = m;
                d = &wg__v1__open__descriptor;
                break;
        case WG__V1__REQUEST__OP_DELETE:
                req.delete_ = m;
                d = &wg__v1__delete__descriptor;
                break;
        case WG__V1__REQUEST__OP_LIST:
                req.list = m;
                d = &wg__v1__list__descriptor;
                break;
        case WG__V1__REQUEST__OP_STAT:
                req.stat = m;
                d = &wg__v1__stat__descriptor;
                break;
        case WG__V1__REQUEST__OP_ADD:
                req.add = m;
                d = &wg__v1__add__descriptor;
                break;
        case WG__V1__REQUEST__OP_DONE:
                req.done = m;
                d = &wg__v1__done__descriptor;
                break;
        case WG__V1__REQUEST__OP_WAIT:
                req.wait = m;
                d = &wg__v1__wait__descriptor;
                break;
        case WG__V1__REQUEST__OP_JOIN:
                req.join = m;
                d = &wg__v1__join__descriptor;
                break;
        case WG__V1__REQUEST__OP_LEAVE:
                req.leave = m;
                d = &wg__v1__leave__descriptor;
                break;
        case WG__V1__REQUEST__OP_RESET:
                req.reset = m;
                d = &wg__v1__reset__descriptor;
                break;
        default:
                break;
        }
        if (d)
                *(ProtobufCMessage *) m = (ProtobufCMessage) PROTOBUF_C_MESSAGE_INIT(d);
        return req;
}

/* REQ(STAT, Stat, .name = S("x")): a Request of that operation with those fields. */
#define REQ(OP, Type, ...) request(WG__V1__REQUEST__OP_##OP, &(Wg__V1__##Type) { __VA_ARGS__ })
#define S(s) ((char *) (s))

/* Assert that @r answers @id with @errnum (0: a result, not an Error). */
static void check(const Wg__V1__Response *r, uint64_t id, int errnum) {
        int e = pc_errnum(r);

        if (!r->has_id || r->id != id)
                fail_msg(
                        "expected an answer to id %llu, got %s%llu (errno %d)",
                        (unsigned long long) id,
                        r->has_id ? "" : "no id, ",
                        (unsigned long long) r->id,
                        e);
        if (e != errnum)
                fail_msg(
                        "id %llu: expected errno %d (%s), got %d (%s): %s",
                        (unsigned long long) id,
                        errnum,
                        strerror(errnum),
                        e,
                        strerror(e),
                        e ? r->error->message : "success");
}

/*
 * Send @req as it is and return the answer, asserting its id and errno. A descriptor that comes
 * with it goes to *ret_fd (@ret_fd NULL: none may come).
 */
static Wg__V1__Response *call_fd(int c, Wg__V1__Request req, int errnum, int *ret_fd) {
        Wg__V1__Response *r;

        pc_send(c, &req);
        r = pc_recv(c, ret_fd);
        check(r, req.has_id ? req.id : 0, errnum);
        return r;
}

static Wg__V1__Response *call(int c, Wg__V1__Request req, int errnum) {
        return call_fd(c, req, errnum, NULL);
}

/* The same, for a request whose answer is not needed. */
static void expect(int c, Wg__V1__Request req, int errnum) {
        pc_free(call(c, req, errnum));
}

/* Open or Join, whose answer carries the segment: closed here. */
static void expect_fd(int c, Wg__V1__Request req, int errnum) {
        int fd = -EBADF;

        pc_free(call_fd(c, req, errnum, &fd));
        assert_true(errnum == 0 ? fd >= 0 : fd < 0);
        if (fd >= 0)
                close(fd);
}

static Wg__V1__GroupInfo *group_of(Wg__V1__Response *r) {
        assert_int_equal(r->result_case, WG__V1__RESPONSE__RESULT_GROUP);
        assert_non_null(r->group);
        return r->group;
}

static uint64_t count_of_group(int c, const char *name) {
        Wg__V1__Response *r = call(c, REQ(STAT, Stat, .name = S(name)), 0);
        uint64_t n = group_of(r)->count;

        pc_free(r);
        return n;
}

static uint64_t generation_of_group(int c, const char *name) {
        Wg__V1__Response *r = call(c, REQ(STAT, Stat, .name = S(name)), 0);
        uint64_t n = group_of(r)->generation;

        pc_free(r);
        return n;
}

static void create(int c, const char *name, uint32_t mode, uint64_t count) {
        expect(c,
               REQ(CREATE,
                   Create,
                   .name = S(name),
                   .has_mode = mode != 0,
                   .mode = mode,
                   .has_count = true,
                   .count = count),
               0);
}

/* Send a Wait and make sure wgd has taken it in (a Stat after it is answered after it). */
static void wait_pending(int c, uint64_t id, const char *name) {
        Wg__V1__Request req = REQ(WAIT, Wait, .name = S(name));

        req.id = id;
        pc_send(c, &req);
        expect(c, REQ(STAT, Stat, .name = S(name)), 0);
}

/* Protobuf's wire format by hand, for what protobuf-c would never write. */
typedef struct Wire {
        uint8_t data[WG_RECORD_MAX + 16];
        size_t len;
} Wire;

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* A varint in at least @min_bytes bytes: longer than it needs to be, if asked. */
static void put_varint_wide(Wire *w, uint64_t v, size_t min_bytes) {
        size_t n = 0;

        do {
                uint8_t b = v & 0x7f;

                v >>= 7;
                n++;
                if (v || n < min_bytes)
                        b |= 0x80;
                assert_true(w->len < sizeof(w->data));
                w->data[w->len++] = b;
        } while (v || n < min_bytes);
}

static void put_varint(Wire *w, uint64_t v) {
        put_varint_wide(w, v, 1);
}

static void put_key(Wire *w, uint32_t field, unsigned type) {
        put_varint(w, ((uint64_t) field << 3) | type);
}

static void put_uint(Wire *w, uint32_t field, uint64_t v) {
        put_key(w, field, WIRE_VARINT);
        put_varint(w, v);
}

static void put_bytes(Wire *w, uint32_t field, const void *p, size_t len) {
        put_key(w, field, WIRE_LEN);
        put_varint(w, len);
        assert_true(w->len + len <= sizeof(w->data));
        memcpy(w->data + w->len, p, len);
        w->len += len;
}

static void put_wire(Wire *w, uint32_t field, const Wire *m) {
        put_bytes(w, field, m->data, m->len);
}

/* Field numbers of wg.proto. */
enum {
        F_VERSION = 1,
        F_ID = 2,
        F_CREATE = 10,
        F_LIST = 13,
        F_STAT = 14,
        F_JOIN = 18,
        F_LEAVE = 19,
        F_DELETE = 12,
        F_FUTURE = 21,
};

/* A Request of version 1 with a fresh id (returned) and operation @op holding @m. */
static uint64_t wire_request(Wire *w, uint32_t op, const Wire *m) {
        uint64_t id = next_id++;

        *w = (Wire) {};
        put_uint(w, F_VERSION, 1);
        put_uint(w, F_ID, id);
        put_wire(w, op, m);
        return id;
}

/* The next answer on @c: it must answer @id with @errnum. */
static Wg__V1__Response *answer(int c, uint64_t id, int errnum) {
        Wg__V1__Response *r = pc_recv(c, NULL);

        check(r, id, errnum);
        return r;
}

static void expect_answer(int c, uint64_t id, int errnum) {
        pc_free(answer(c, id, errnum));
}

/* Send raw bytes (with @fd attached if >= 0) and assert the answer's id and errno. */
static Wg__V1__Response *call_raw(int c, const void *buf, size_t len, int fd, uint64_t id, int errnum) {
        assert_int_equal(seqpacket_send(c, buf, len, fd, 0), 0);
        return answer(c, id, errnum);
}

static void expect_raw(int c, const void *buf, size_t len, int fd, uint64_t id, int errnum) {
        pc_free(call_raw(c, buf, len, fd, id, errnum));
}

/* A message with one string field (1, the name of every operation) holding @len bytes of @s. */
static Wire name_message(const char *s, size_t len) {
        Wire m = {};

        put_bytes(&m, 1, s, len);
        return m;
}

/* The connection was closed without an answer. */
static void assert_hung_up(int c) {
        struct pollfd p = { .fd = c, .events = POLLIN };
        char byte;

        assert_int_equal(poll(&p, 1, 20000), 1);
        assert_int_equal(recv(c, &byte, 1, MSG_DONTWAIT), 0);
}

/* EBADMSG: records that are not Requests, too long, or with descriptors; and the empty record. */
static void test_bad_records(void **state) {
        static uint8_t big[WG_RECORD_MAX + 1];
        Harness *h = *state;
        Wire w = {}, m;
        uint64_t id;
        int c, pipefd[2], pipe2fd[2];
        char byte;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        create(c, "there", 0, 1);

        /* Not protobuf: a varint that never ends. Nothing to take an id from. */
        expect_raw(c, "\xff\xff\xff\xff\xff", 5, -1, 0, EBADMSG);
        /* Cut short: version, then the key of the id and no value. */
        expect_raw(c, "\x08\x01\x10", 3, -1, 0, EBADMSG);
        /* A length that runs past the end of the record. */
        expect_raw(c, "\x08\x01\x52\x05\x0a\x02", 6, -1, 0, EBADMSG);
        /* Well-formed wire format, but `version` (a uint32) as a length-delimited field. */
        put_bytes(&w, F_VERSION, "1", 1);
        put_uint(&w, F_ID, 5);
        expect_raw(c, w.data, w.len, -1, 0, EBADMSG);

        /* Longer than the cap: discarded by the kernel unread, so id 0. */
        memset(big, 0x08, sizeof(big));
        expect_raw(c, big, sizeof(big), -1, 0, EBADMSG);

        /* A readable request with a descriptor: refused with its own id, the descriptor closed. */
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        m = name_message("there", 5);
        id = wire_request(&w, F_STAT, &m);
        expect_raw(c, w.data, w.len, pipefd[1], id, EBADMSG);
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], &byte, 1), 0); /* wgd's copy is gone: EOF */
        close(pipefd[0]);

        /* Garbage with a descriptor: no id to give. */
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        expect_raw(c, "\xff\xff", 2, pipefd[1], 0, EBADMSG);
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], &byte, 1), 0);
        close(pipefd[0]);

        /* Two descriptors: both closed, and the request, which can be read, answered by its id. */
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        assert_int_equal(pipe2(pipe2fd, O_CLOEXEC), 0);
        {
                int fds[2] = { pipefd[1], pipe2fd[1] };
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(fds))];
                } control = {};
                struct iovec iov = { .iov_base = w.data, .iov_len = w.len };
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control),
                };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(fds));
                memcpy(CMSG_DATA(cm), fds, sizeof(fds));
                assert_int_equal(sendmsg(c, &mh, 0), (ssize_t) w.len);
                expect_answer(c, id, EBADMSG);
        }
        close(pipefd[1]);
        close(pipe2fd[1]);
        assert_int_equal(read(pipefd[0], &byte, 1), 0);
        assert_int_equal(read(pipe2fd[0], &byte, 1), 0);
        close(pipefd[0]);
        close(pipe2fd[0]);

        /* After all that, served as before, and nothing changed. */
        assert_int_equal(count_of_group(c, "there"), 1);

        /* An empty record reads like end of file: wgd hangs up without a word. */
        assert_int_equal(seqpacket_send(c, "", 0, -1, 0), 0);
        assert_hung_up(c);
        close(c);
}

/* EPROTO and EOPNOTSUPP: the envelope. Both answered with the request's id. */
static void test_envelope(void **state) {
        Harness *h = *state;
        Wg__V1__Request req;
        Wire w = {}, m;
        uint64_t id;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);

        /* No version at all: the Request is read, so its id comes back. */
        req = REQ(CREATE, Create, .name = S("v"));
        req.has_version = false;
        expect(c, req, EPROTO);
        req = REQ(CREATE, Create, .name = S("v"));
        req.version = 2;
        expect(c, req, EPROTO);
        req = REQ(CREATE, Create, .name = S("v"));
        req.version = 0;
        expect(c, req, EPROTO);
        /* Without an id either: answered with id 0, the id it has. */
        req = REQ(CREATE, Create, .name = S("v"));
        req.has_version = req.has_id = false;
        expect(c, req, EPROTO);
        expect(c, REQ(STAT, Stat, .name = S("v")), ENOENT);

        /* No operation. */
        req = request(WG__V1__REQUEST__OP__NOT_SET, NULL);
        expect(c, req, EOPNOTSUPP);

        /* An operation from the future: an unknown field, so no operation that wgd knows. */
        m = name_message("v", 1);
        id = wire_request(&w, F_FUTURE, &m);
        expect_raw(c, w.data, w.len, -1, id, EOPNOTSUPP);
        close(c);
}

/* EINVAL: every way a field can be invalid, NUL bytes in strings among them. */
static void test_invalid(void **state) {
        static const char *const bad_names[] = {
                "",
                ".hidden",
                "a/b",
                "a b",
                "naïve",
                "x\n",
                "0123456789012345678901234567890123456789012345678901234567890123456789",
        };
        static const struct {
                const char *bytes;
                size_t len;
        } nul_names[] = {
                { "ab\0cd", 5 }, /* protobuf-c alone would see "ab" */
                { "\0z", 2 },    /* ... or "" */
                { "ab\0", 3 },
                { "\0", 1 },
        };
        Harness *h = *state;
        Wire w, m, join;
        uint64_t id;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        create(c, "ab", 0, 1);

        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                expect(c, REQ(CREATE, Create, .name = S(bad_names[i])), EINVAL);
                expect(c, REQ(STAT, Stat, .name = S(bad_names[i])), EINVAL);
                expect_fd(
                        c,
                        REQ(OPEN, Open, .name = S(bad_names[i]), .has_create = true, .create = true),
                        EINVAL);
        }
        expect(c, REQ(CREATE, Create), EINVAL); /* no name at all */
        expect(c, REQ(LIST, List, .after = S("a/b")), EINVAL);

        /* Fields out of range. */
        expect(c, REQ(ADD, Add, .name = S("ab")), EINVAL); /* no delta */
        expect(c, REQ(CREATE, Create, .name = S("m"), .has_mode = true, .mode = 0777), EINVAL);
        expect(c, REQ(CREATE, Create, .name = S("m"), .has_mode = true, .mode = 01666), EINVAL);
        expect(c, REQ(CREATE, Create, .name = S("m"), .has_gid = true, .gid = UINT32_MAX), EINVAL);
        expect(c, REQ(CREATE, Create, .name = S("m"), .has_on_abandon = true, .on_abandon = 3), EINVAL);
        expect_fd(
                c,
                REQ(OPEN,
                    Open,
                    .name = S("m"),
                    .has_create = true,
                    .create = true,
                    .has_on_abandon = true,
                    .on_abandon = 7),
                EINVAL);
        /* Open with `exclusive` but not `create`: EINVAL, for a group that exists or not. */
        expect_fd(c, REQ(OPEN, Open, .name = S("ab"), .has_exclusive = true, .exclusive = true), EINVAL);
        expect_fd(c, REQ(OPEN, Open, .name = S("m"), .has_exclusive = true, .exclusive = true), EINVAL);
        expect(c, REQ(STAT, Stat, .name = S("m")), ENOENT); /* nothing refused was created */

        /* A NUL in a name, wherever a name goes: an invalid name, with the request's id. */
        for (size_t i = 0; i < ELEMENTSOF(nul_names); i++) {
                static const uint32_t ops[] = { F_CREATE, F_STAT, F_DELETE, F_LEAVE };

                m = name_message(nul_names[i].bytes, nul_names[i].len);
                for (size_t j = 0; j < ELEMENTSOF(ops); j++) {
                        id = wire_request(&w, ops[j], &m);
                        expect_raw(c, w.data, w.len, -1, id, EINVAL);
                }
                /* List's `after` is a name too. */
                id = wire_request(&w, F_LIST, &m);
                expect_raw(c, w.data, w.len, -1, id, EINVAL);
        }
        /* Not "ab" deleted, not "cd" created. */
        assert_int_equal(count_of_group(c, "ab"), 1);
        expect(c, REQ(STAT, Stat, .name = S("cd")), ENOENT);

        /* A NUL in Join's description, a string that is not a name: EINVAL, and no member. */
        join = name_message("ab", 2);
        put_bytes(&join, 2, "make\0 all", 9);
        id = wire_request(&w, F_JOIN, &join);
        expect_raw(c, w.data, w.len, -1, id, EINVAL);
        assert_int_equal(count_of_group(c, "ab"), 1);
        close(c);
}

/* What protobuf's rules allow, a conforming encoder may write, and wgd accepts. */
static void test_any_encoding(void **state) {
        Harness *h = *state;
        Wg__V1__Response *r;
        Wire w, m;
        uint64_t id;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);

        /* Over-long varints: version 1 in five bytes, the id in ten, the count in three. */
        id = next_id++;
        w = (Wire) {};
        put_key(&w, F_VERSION, WIRE_VARINT);
        put_varint_wide(&w, 1, 5);
        put_key(&w, F_ID, WIRE_VARINT);
        put_varint_wide(&w, id, 10);
        m = name_message("wide", 4);
        put_key(&m, 4, WIRE_VARINT);
        put_varint_wide(&m, 3, 3);
        put_wire(&w, F_CREATE, &m);
        r = call_raw(c, w.data, w.len, -1, id, 0);
        assert_string_equal(group_of(r)->name, "wide");
        assert_int_equal(group_of(r)->count, 3);
        pc_free(r);

        /* A field twice: the last one counts. Here the name, and the version (2, then 1). */
        m = name_message("first", 5);
        put_bytes(&m, 1, "second", 6);
        id = next_id++;
        w = (Wire) {};
        put_uint(&w, F_VERSION, 2);
        put_uint(&w, F_ID, id);
        put_uint(&w, F_VERSION, 1);
        put_wire(&w, F_CREATE, &m);
        r = call_raw(c, w.data, w.len, -1, id, 0);
        assert_string_equal(group_of(r)->name, "second");
        pc_free(r);
        expect(c, REQ(STAT, Stat, .name = S("first")), ENOENT);

        /* Fields in any order: the operation first, the id last. */
        id = next_id++;
        w = (Wire) {};
        m = name_message("second", 6);
        put_wire(&w, F_STAT, &m);
        put_uint(&w, F_VERSION, 1);
        put_uint(&w, F_ID, id);
        expect_raw(c, w.data, w.len, -1, id, 0);

        /* Two members of the oneof: the last one is the operation. */
        id = next_id++;
        w = (Wire) {};
        put_uint(&w, F_VERSION, 1);
        put_uint(&w, F_ID, id);
        m = name_message("never", 5);
        put_wire(&w, F_CREATE, &m);
        m = name_message("wide", 4);
        put_wire(&w, F_STAT, &m);
        r = call_raw(c, w.data, w.len, -1, id, 0);
        assert_string_equal(group_of(r)->name, "wide");
        pc_free(r);
        expect(c, REQ(STAT, Stat, .name = S("never")), ENOENT);

        /* Unknown fields, in the envelope (4 to 9 are reserved) and in the operation: skipped. */
        id = next_id++;
        w = (Wire) {};
        put_uint(&w, F_VERSION, 1);
        put_uint(&w, 4, 42);
        put_bytes(&w, 9, "later", 5);
        put_uint(&w, F_ID, id);
        m = name_message("wide", 4);
        put_uint(&m, 100, 1);
        put_wire(&w, F_STAT, &m);
        expect_raw(c, w.data, w.len, -1, id, 0);

        /* A string field that is empty but present is no NUL: an empty `after` lists from the start. */
        id = next_id++;
        w = (Wire) {};
        put_uint(&w, F_VERSION, 1);
        put_uint(&w, F_ID, id);
        m = name_message("", 0);
        put_wire(&w, F_LIST, &m);
        r = call_raw(c, w.data, w.len, -1, id, 0);
        assert_int_equal(r->result_case, WG__V1__RESPONSE__RESULT_LIST);
        assert_int_equal(r->list->n_groups, 2);
        pc_free(r);
        close(c);
}

/* ENOENT and EEXIST. */
static void test_names(void **state) {
        Harness *h = *state;
        Wg__V1__Response *r;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);

        expect(c, REQ(STAT, Stat, .name = S("missing")), ENOENT);
        expect(c, REQ(ADD, Add, .name = S("missing"), .has_delta = true, .delta = 1), ENOENT);
        expect(c, REQ(DONE, Done, .name = S("missing")), ENOENT);
        expect(c, REQ(WAIT, Wait, .name = S("missing")), ENOENT);
        expect(c, REQ(DELETE, Delete, .name = S("missing")), ENOENT);
        expect(c, REQ(RESET, Reset, .name = S("missing")), ENOENT);
        expect(c, REQ(LEAVE, Leave, .name = S("missing")), ENOENT);
        expect_fd(c, REQ(OPEN, Open, .name = S("missing")), ENOENT);
        expect_fd(c, REQ(JOIN, Join, .name = S("missing")), ENOENT);

        create(c, "here", 0, 2);
        expect(c, REQ(CREATE, Create, .name = S("here")), EEXIST);
        expect_fd(
                c,
                REQ(OPEN,
                    Open,
                    .name = S("here"),
                    .has_create = true,
                    .create = true,
                    .has_exclusive = true,
                    .exclusive = true),
                EEXIST);
        /* Not with exist_ok: the group as it is, unchanged. */
        r =
                call(c,
                     REQ(CREATE,
                         Create,
                         .name = S("here"),
                         .has_exist_ok = true,
                         .exist_ok = true,
                         .has_count = true,
                         .count = 9),
                     0);
        assert_int_equal(group_of(r)->count, 2);
        pc_free(r);
        /* Open with create of one that exists opens it. */
        expect_fd(c, REQ(OPEN, Open, .name = S("here"), .has_create = true, .create = true), 0);
        close(c);
}

/* ERANGE and EOVERFLOW: the counter's bounds, through Create, Add, Done and Join. */
static void test_counter_bounds(void **state) {
        Harness *h = *state;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);

        /* Create above the maximum: EOVERFLOW, and no group. */
        expect(c,
               REQ(CREATE, Create, .name = S("big"), .has_count = true, .count = COUNT_MAX + 1),
               EOVERFLOW);
        expect(c, REQ(CREATE, Create, .name = S("big"), .has_count = true, .count = UINT64_MAX), EOVERFLOW);
        expect(c, REQ(STAT, Stat, .name = S("big")), ENOENT);

        create(c, "g", 0, 1);
        expect(c, REQ(ADD, Add, .name = S("g"), .has_delta = true, .delta = -2), ERANGE);
        expect(c, REQ(ADD, Add, .name = S("g"), .has_delta = true, .delta = INT64_MIN), ERANGE);
        expect(c, REQ(ADD, Add, .name = S("g"), .has_delta = true, .delta = (int64_t) COUNT_MAX), EOVERFLOW);
        expect(c, REQ(ADD, Add, .name = S("g"), .has_delta = true, .delta = INT64_MAX), EOVERFLOW);
        assert_int_equal(count_of_group(c, "g"), 1);
        expect(c, REQ(DONE, Done, .name = S("g")), 0);
        expect(c, REQ(DONE, Done, .name = S("g")), ERANGE);
        assert_int_equal(count_of_group(c, "g"), 0);

        /* At the maximum, a Join's add overflows too. */
        create(c, "full", 0, COUNT_MAX);
        expect_fd(c, REQ(JOIN, Join, .name = S("full")), EOVERFLOW);
        assert_int_equal(count_of_group(c, "full"), COUNT_MAX);
        close(c);
}

/* ETIMEDOUT, EBUSY, EIDRM, and which generation a Wait waits for. */
static void test_waits(void **state) {
        Harness *h = *state;
        Wg__V1__Response *r;
        uint64_t g1;
        int c;

        harness_start(
                h,
                (const char *[]) {
                        "--idle-timeout=0", "--log-level=warning", "--max-waits-per-connection=1", NULL });
        c = pc_connect(h->socket_path);
        create(c, "w", 0, 1);

        /* A try, and a timeout that passes (nobody completes the group). */
        expect(c, REQ(WAIT, Wait, .name = S("w"), .has_timeout_usec = true, .timeout_usec = 0), ETIMEDOUT);
        expect(c,
               REQ(WAIT, Wait, .name = S("w"), .has_timeout_usec = true, .timeout_usec = 1000),
               ETIMEDOUT);

        /* One Wait pending is the limit here: the next is EBUSY, answered first, with its own id. */
        wait_pending(c, 500, "w");
        expect(c, REQ(WAIT, Wait, .name = S("w")), EBUSY);

        /* Deleted while it waits: EIDRM to the Wait, by its id, before the Delete's own answer. */
        {
                Wg__V1__Request del = REQ(DELETE, Delete, .name = S("w"));

                pc_send(c, &del);
                expect_answer(c, 500, EIDRM);
                expect_answer(c, del.id, 0);
        }

        /*
         * The generation field: only the current generation is waited for. Any other one is
         * answered at once as one that ended: a past one, a future one, one that cannot exist.
         */
        create(c, "gen", 0, 1);
        expect(c, REQ(DONE, Done, .name = S("gen")), 0);
        expect(c, REQ(ADD, Add, .name = S("gen"), .has_delta = true, .delta = 1), 0);
        g1 = generation_of_group(c, "gen");
        assert_int_equal(g1, 1);
        for (size_t i = 0; i < 4; i++) {
                static const uint64_t others[] = { 0, 2, 1000, UINT64_C(1) << 40 };

                r = call(
                        c,
                        REQ(WAIT, Wait, .name = S("gen"), .has_generation = true, .generation = others[i]),
                        0);
                assert_int_equal(group_of(r)->count, 1); /* answered, though the counter is not zero */
                pc_free(r);
        }
        /* The current one is waited for: a try times out. */
        expect(c,
               REQ(WAIT,
                   Wait,
                   .name = S("gen"),
                   .has_generation = true,
                   .generation = g1,
                   .has_timeout_usec = true,
                   .timeout_usec = 0),
               ETIMEDOUT);
        close(c);
}

/* EOWNERDEAD: a member of a group that breaks dies (its connection closes) without leaving. */
static void test_broken(void **state) {
        Harness *h = *state;
        int c, member, fd = -EBADF;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        expect(c,
               REQ(CREATE,
                   Create,
                   .name = S("strict"),
                   .has_on_abandon = true,
                   .on_abandon = WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK),
               0);

        member = pc_connect(h->socket_path);
        pc_free(call_fd(member, REQ(JOIN, Join, .name = S("strict")), 0, &fd));
        close(fd);
        wait_pending(c, 600, "strict");
        close(member);
        /* The pending Wait learns it, by its id. */
        expect_answer(c, 600, EOWNERDEAD);

        /* And so does every operation but Stat and Reset, until a Reset. */
        expect(c, REQ(ADD, Add, .name = S("strict"), .has_delta = true, .delta = 1), EOWNERDEAD);
        expect(c, REQ(DONE, Done, .name = S("strict")), EOWNERDEAD);
        expect(c, REQ(WAIT, Wait, .name = S("strict")), EOWNERDEAD);
        expect_fd(c, REQ(JOIN, Join, .name = S("strict")), EOWNERDEAD);
        expect(c, REQ(STAT, Stat, .name = S("strict")), 0);
        expect(c, REQ(RESET, Reset, .name = S("strict")), 0);
        expect(c, REQ(ADD, Add, .name = S("strict"), .has_delta = true, .delta = 1), 0);
        close(c);
}

/* EUCLEAN: a peer that holds the segment wrote a word no correct writer makes (bit 31). */
static void test_corrupt(void **state) {
        Harness *h = *state;
        uint64_t good;
        int c, fd = -EBADF;
        wg *g;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        create(c, "scribbled", 0, 1);
        pc_free(call_fd(c, REQ(OPEN, Open, .name = S("scribbled")), 0, &fd));
        assert_int_equal(wg_from_fd(fd, &g), 0);
        close(fd);

        good = raw_state(g);
        raw_state_set(g, good | UINT64_C(0x80000000));
        expect(c, REQ(ADD, Add, .name = S("scribbled"), .has_delta = true, .delta = 1), EUCLEAN);
        expect(c, REQ(DONE, Done, .name = S("scribbled")), EUCLEAN);
        expect(c, REQ(WAIT, Wait, .name = S("scribbled")), EUCLEAN);
        expect(c, REQ(RESET, Reset, .name = S("scribbled")), EUCLEAN);
        expect_fd(c, REQ(JOIN, Join, .name = S("scribbled")), EUCLEAN);
        raw_state_set(g, good);
        expect(c, REQ(DONE, Done, .name = S("scribbled")), 0);
        wg_unref(g);
        close(c);
}

/* ENOTCONN: a Leave of a membership this connection and process do not hold. */
static void test_leave(void **state) {
        Harness *h = *state;
        int c, other, fd = -EBADF;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        create(c, "team", 0, 0);
        expect(c, REQ(LEAVE, Leave, .name = S("team")), ENOTCONN);
        expect(c, REQ(LEAVE, Leave, .name = S("team"), .has_member_id = true, .member_id = 12345), ENOTCONN);

        /* A member on another connection: not this one's to leave without its id. */
        other = pc_connect(h->socket_path);
        pc_free(call_fd(other, REQ(JOIN, Join, .name = S("team")), 0, &fd));
        close(fd);
        expect(c, REQ(LEAVE, Leave, .name = S("team")), ENOTCONN);
        expect(other, REQ(LEAVE, Leave, .name = S("team")), 0);
        expect(other, REQ(LEAVE, Leave, .name = S("team")), ENOTCONN); /* left already */
        close(other);
        close(c);
}

/* ENOSPC: groups in all. */
static void test_limit_groups(void **state) {
        Harness *h = *state;
        int c;

        harness_start(
                h, (const char *[]) { "--idle-timeout=0", "--log-level=warning", "--max-groups=1", NULL });
        c = pc_connect(h->socket_path);
        create(c, "one", 0, 0);
        expect(c, REQ(CREATE, Create, .name = S("two")), ENOSPC);
        expect_fd(c, REQ(OPEN, Open, .name = S("two"), .has_create = true, .create = true), ENOSPC);
        expect(c, REQ(DELETE, Delete, .name = S("one")), 0);
        create(c, "two", 0, 0);
        close(c);
}

/* EDQUOT: groups per uid, and memberships per uid. */
static void test_limit_quota(void **state) {
        Harness *h = *state;
        int c, m1, m2, fd = -EBADF;

        harness_start(
                h,
                (const char *[]) { "--idle-timeout=0",
                                   "--log-level=warning",
                                   "--max-groups-per-user=1",
                                   "--max-members-per-user=1",
                                   NULL });
        c = pc_connect(h->socket_path);
        create(c, "mine", 0, 0);
        expect(c, REQ(CREATE, Create, .name = S("more")), EDQUOT);
        expect_fd(c, REQ(OPEN, Open, .name = S("more"), .has_create = true, .create = true), EDQUOT);

        m1 = pc_connect(h->socket_path);
        m2 = pc_connect(h->socket_path);
        pc_free(call_fd(m1, REQ(JOIN, Join, .name = S("mine")), 0, &fd));
        close(fd);
        expect_fd(m2, REQ(JOIN, Join, .name = S("mine")), EDQUOT);
        assert_int_equal(count_of_group(c, "mine"), 1);
        close(m2);
        close(m1);
        close(c);
}

/* EUSERS: connections per uid, and in all; a notice with id 0, then the connection closes. */
static void test_limit_connections(void **state) {
        static const char *const per_user[] = {
                "--idle-timeout=0", "--log-level=err", "--max-connections-per-user=1", NULL
        };
        static const char *const in_all[] = {
                "--idle-timeout=0", "--log-level=err", "--max-connections=1", NULL
        };
        static const char *const *const args[] = { per_user, in_all };
        Harness *h = *state;

        for (size_t i = 0; i < ELEMENTSOF(args); i++) {
                int c, extra;

                harness_start(h, args[i]);
                c = pc_connect(h->socket_path);
                expect(c, REQ(STAT, Stat, .name = S("none")), ENOENT); /* wgd holds it */
                extra = pc_connect(h->socket_path);
                expect_answer(extra, 0, EUSERS);
                assert_hung_up(extra);
                close(extra);
                expect(c, REQ(STAT, Stat, .name = S("none")), ENOENT);
                close(c);
                assert_int_equal(harness_stop(h, SIGTERM), 0);
        }
}

/* ESHUTDOWN: wgd stops with a Wait pending, which is answered first, by its id. */
static void test_shutdown(void **state) {
        Harness *h = *state;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        create(c, "kept", 0, 1);
        wait_pending(c, 700, "kept");
        assert_int_equal(kill(h->pid, SIGTERM), 0);
        expect_answer(c, 700, ESHUTDOWN);
        assert_hung_up(c);
        close(c);
        assert_int_equal(harness_stop(h, 0), 0);
}

/*
 * EACCES and EPERM, as a second uid. In a child, which must not use cmocka's asserts (a failure
 * would unwind into the child's copy of the runner): each check says what failed and the child
 * exits non-zero.
 */
static int nobody_expect(int c, Wg__V1__Request req, int errnum, int line) {
        uint8_t buf[WG_RECORD_MAX];
        Wg__V1__Response *r;
        int fd = -EBADF, e;
        ssize_t n;
        size_t len = wg__v1__request__get_packed_size(&req);

        wg__v1__request__pack(&req, buf);
        if (seqpacket_send(c, buf, len, -1, 0) < 0)
                return fprintf(stderr, "line %d: send failed\n", line), -1;
        n = seqpacket_recv(c, buf, sizeof(buf), &fd, 0);
        if (fd >= 0)
                close(fd);
        r = n > 0 ? wg__v1__response__unpack(NULL, (size_t) n, buf) : NULL;
        if (!r)
                return fprintf(stderr, "line %d: no answer (%zd)\n", line, n), -1;
        e = r->result_case == WG__V1__RESPONSE__RESULT_ERROR && r->error->has_errnum ? r->error->errnum : 0;
        if (!r->has_id || r->id != req.id || e != errnum) {
                fprintf(stderr,
                        "line %d: expected id %llu errno %d, got id %llu errno %d\n",
                        line,
                        (unsigned long long) req.id,
                        errnum,
                        (unsigned long long) r->id,
                        e);
                e = -1;
        } else
                e = 0;
        wg__v1__response__free_unpacked(r, NULL);
        return e;
}

#define NOBODY_EXPECT(c, req, errnum)                                                                       \
        do {                                                                                                \
                if (nobody_expect(c, req, errnum, __LINE__) < 0)                                            \
                        return 1;                                                                           \
        } while (0)

static int nobody_checks(void *userdata) {
        const char *socket_path = userdata;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int c;

        c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        strcpy(sa.sun_path, socket_path);
        if (c < 0 || connect(c, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return 2;

        /* 0600, root's: nothing at all, not even a Delete (it may not see the group). */
        NOBODY_EXPECT(c, REQ(STAT, Stat, .name = S("private")), EACCES);
        NOBODY_EXPECT(c, REQ(WAIT, Wait, .name = S("private")), EACCES);
        NOBODY_EXPECT(c, REQ(ADD, Add, .name = S("private"), .has_delta = true, .delta = 1), EACCES);
        NOBODY_EXPECT(c, REQ(DONE, Done, .name = S("private")), EACCES);
        NOBODY_EXPECT(c, REQ(OPEN, Open, .name = S("private")), EACCES);
        NOBODY_EXPECT(c, REQ(JOIN, Join, .name = S("private")), EACCES);
        NOBODY_EXPECT(c, REQ(RESET, Reset, .name = S("private")), EACCES);
        NOBODY_EXPECT(c, REQ(LEAVE, Leave, .name = S("private")), EACCES);
        NOBODY_EXPECT(c, REQ(DELETE, Delete, .name = S("private")), EACCES);

        /* 0644: read, not write; a Delete is refused for not being the owner. */
        NOBODY_EXPECT(c, REQ(STAT, Stat, .name = S("readable")), 0);
        NOBODY_EXPECT(c, REQ(ADD, Add, .name = S("readable"), .has_delta = true, .delta = 1), EACCES);
        NOBODY_EXPECT(c, REQ(OPEN, Open, .name = S("readable")), EACCES);
        NOBODY_EXPECT(c, REQ(JOIN, Join, .name = S("readable")), EACCES);
        NOBODY_EXPECT(c, REQ(DELETE, Delete, .name = S("readable")), EPERM);

        /* 0666: everything but a Delete. */
        NOBODY_EXPECT(c, REQ(ADD, Add, .name = S("public"), .has_delta = true, .delta = 1), 0);
        NOBODY_EXPECT(c, REQ(DELETE, Delete, .name = S("public")), EPERM);

        /* A gid we are not a member of: EPERM, by Create and by Open with create. */
        NOBODY_EXPECT(c, REQ(CREATE, Create, .name = S("theirs"), .has_gid = true, .gid = 0), EPERM);
        NOBODY_EXPECT(
                c,
                REQ(OPEN,
                    Open,
                    .name = S("theirs"),
                    .has_create = true,
                    .create = true,
                    .has_gid = true,
                    .gid = 0),
                EPERM);
        NOBODY_EXPECT(c, REQ(STAT, Stat, .name = S("theirs")), ENOENT);

        close(c);
        return 0;
}

static void test_permissions(void **state) {
        Harness *h = *state;
        pid_t pid;
        int c;

        if (geteuid() != 0)
                skip_test("a second uid needs root");

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        create(c, "private", 0600, 0);
        create(c, "readable", 0644 & 0666, 0);
        create(c, "public", 0666, 0);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
                    setresuid(NOBODY, NOBODY, NOBODY) < 0)
                        _exit(99);
                _exit(nobody_checks(h->socket_path));
        }
        assert_int_equal(reap(pid), 0);

        /* What the second uid was refused did not happen. */
        assert_int_equal(count_of_group(c, "private"), 0);
        assert_int_equal(count_of_group(c, "readable"), 0);
        assert_int_equal(count_of_group(c, "public"), 1);
        close(c);
}

/*
 * Requests sent back to back, none of the answers read until the last request is out: wgd reads
 * them in batches and answers each batch together. The answers come in order, each with its id;
 * the List answers are large enough that wgd's socket fills in the middle of a batch, so that
 * the rest of the batch waits in the queue; an Open's answer carries its segment's fd although
 * the next request deleted the group.
 */
static void test_pipelined(void **state) {
        enum { GROUPS = 200, ROUNDS = 37 };
        Harness *h = *state;
        char name[64];
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        for (unsigned i = 0; i < GROUPS; i++) {
                snprintf(name, sizeof(name), "a-pipelined-group-with-a-long-name-%03u", i);
                pc_expect(pc_create(c, name, 0, 0), 0);
        }

        for (uint64_t id = 1; id <= 4 * ROUNDS; id++) {
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                Wg__V1__List list = WG__V1__LIST__INIT;
                Wg__V1__Open open = WG__V1__OPEN__INIT;
                Wg__V1__Delete del = WG__V1__DELETE__INIT;
                Wg__V1__Stat stat = WG__V1__STAT__INIT;

                snprintf(name, sizeof(name), "a-pipelined-group-with-a-long-name-%03u", (unsigned) ((id - 1) / 4));
                switch (id % 4) {
                case 1:
                        req.op_case = WG__V1__REQUEST__OP_LIST;
                        req.list = &list;
                        break;
                case 2:
                        open.name = name;
                        req.op_case = WG__V1__REQUEST__OP_OPEN;
                        req.open = &open;
                        break;
                case 3:
                        del.name = name;
                        req.op_case = WG__V1__REQUEST__OP_DELETE;
                        req.delete_ = &del;
                        break;
                case 0:
                        stat.name = name;
                        req.op_case = WG__V1__REQUEST__OP_STAT;
                        req.stat = &stat;
                        break;
                }
                pc_send_id(c, id, &req);
        }
        /* wgd has read every request, and answered what its socket took: the rest is queued. */
        wait_until_sent_all_read(c);

        for (uint64_t id = 1; id <= 4 * ROUNDS; id++) {
                int fd = -EBADF;
                Wg__V1__Response *r = pc_recv(c, &fd);

                if (r->id != id)
                        fail_msg("answer %" PRIu64 " came with id %" PRIu64, id, r->id);
                switch (id % 4) {
                case 1:
                        assert_int_equal(r->result_case, WG__V1__RESPONSE__RESULT_LIST);
                        assert_true(r->list->n_groups >= GROUPS - ROUNDS);
                        assert_true(fd < 0);
                        break;
                case 2: {
                        wg *g;

                        assert_int_equal(r->result_case, WG__V1__RESPONSE__RESULT_GROUP);
                        assert_true(fd >= 0);
                        assert_int_equal(wg_from_fd(fd, &g), 0); /* a segment, and a sound one */
                        wg_unref(g);
                        close(fd);
                        break;
                }
                case 3:
                        assert_int_equal(pc_errnum(r), 0);
                        assert_true(fd < 0);
                        break;
                case 0:
                        assert_int_equal(pc_errnum(r), ENOENT);
                        break;
                }
                pc_free(r);
        }
        close(c);
}

/*
 * A client that shuts down its writing side after its last request still gets every answer to
 * what it sent before; a Wait among them ends
 * with the end of file, unanswered, and the connection is closed after the answers.
 */
static void test_half_close(void **state) {
        Harness *h = *state;
        uint8_t buf[WG_RECORD_MAX];
        Wg__V1__Response *r;
        ssize_t n;
        int c;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "half", 0, 1), 0);

        for (uint64_t id = 10; id < 13; id++) {
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                Wg__V1__Stat stat = WG__V1__STAT__INIT;

                stat.name = (char *) "half";
                req.op_case = WG__V1__REQUEST__OP_STAT;
                req.stat = &stat;
                pc_send_id(c, id, &req);
        }
        pc_wait_send(c, 13, "half", UINT64_MAX); /* count 1: would wait for ever */
        assert_int_equal(shutdown(c, SHUT_WR), 0);

        for (uint64_t id = 10; id < 13; id++) {
                r = pc_recv(c, NULL);
                assert_int_equal(r->id, id);
                assert_int_equal(r->result_case, WG__V1__RESPONSE__RESULT_GROUP);
                assert_int_equal(r->group->count, 1);
                pc_free(r);
        }
        /* Then the end of file: no answer to the Wait. */
        n = seqpacket_recv(c, buf, sizeof(buf), NULL, 0);
        assert_int_equal(n, 0);
        close(c);

        /* The group is as it was, and wgd serves on. */
        c = pc_connect(h->socket_path);
        r = pc_stat(c, "half");
        assert_int_equal(r->group->count, 1);
        assert_int_equal(r->group->waiters, 0);
        pc_free(r);
        close(c);
}

/* @req, marked the connection's last request. */
static Wg__V1__Request last(Wg__V1__Request req) {
        req.has_last = req.last = true;
        return req;
}

/* Send @req; read its answer, with @errnum; then the close, which wgd made. */
static void expect_last(int c, Wg__V1__Request req, int errnum) {
        expect(c, req, errnum);
        assert_hung_up(c); /* our writing side is still open */
        close(c);
}

/*
 * Request.last: wgd answers the request so marked (and what came before it), reads nothing
 * after it, and closes the connection without waiting for an end of file. On a Wait or a Join,
 * which the close would end, it is EINVAL, and changes nothing.
 */
static void test_last_request(void **state) {
        Harness *h = *state;
        Wg__V1__Response *r;
        uint64_t stat_id;
        int c, status;

        harness_start(h, quiet);
        c = pc_connect(h->socket_path);
        expect(c, REQ(CREATE, Create, .name = S("last"), .has_count = true, .count = 1), 0);
        close(c);

        /* A Stat before it, then the Add marked last: both answered, then the close. */
        c = pc_connect(h->socket_path);
        r = call(c, REQ(STAT, Stat, .name = S("last")), 0);
        assert_int_equal(group_of(r)->count, 1);
        pc_free(r);
        expect_last(c, last(REQ(ADD, Add, .name = S("last"), .has_delta = true, .delta = 1)), 0);

        /* Refused, and still the last. */
        expect_last(pc_connect(h->socket_path), last(REQ(WAIT, Wait, .name = S("last"))), EINVAL);
        expect_last(pc_connect(h->socket_path), last(REQ(JOIN, Join, .name = S("last"))), EINVAL);
        expect_last(pc_connect(h->socket_path), last(REQ(STAT, Stat, .name = S("nope"))), ENOENT);
        /* Refused before it is carried out (a NUL in a string; descriptors attached): the last too. */
        for (unsigned with_fd = 0; with_fd <= 1; with_fd++) {
                uint64_t id = next_id++;
                Wire w = {}, m = name_message(with_fd ? "last" : "la\0st", with_fd ? 4 : 5);
                int pipefd[2] = { -1, -1 };

                put_uint(&w, F_VERSION, 1);
                put_uint(&w, F_ID, id);
                put_uint(&w, 3, 1); /* last */
                put_wire(&w, F_STAT, &m);
                if (with_fd)
                        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
                c = pc_connect(h->socket_path);
                expect_raw(c, w.data, w.len, pipefd[1], id, with_fd ? EBADMSG : EINVAL);
                assert_hung_up(c);
                close(c);
                if (with_fd) {
                        close(pipefd[0]);
                        close(pipefd[1]);
                }
        }

        /*
         * Nothing after it is read: an Add sent right behind it is never carried out. wgd is
         * stopped meanwhile, so that it finds both (it could otherwise close before the Add is
         * sent). If the Add was still in wgd's socket when wgd closed, the kernel says so: one
         * ECONNRESET, before the answers already there.
         */
        assert_int_equal(kill(h->pid, SIGSTOP), 0);
        assert_int_equal(waitpid(h->pid, &status, WUNTRACED), h->pid);
        assert_true(WIFSTOPPED(status));
        c = pc_connect(h->socket_path);
        {
                Wg__V1__Request stat = last(REQ(STAT, Stat, .name = S("last")));
                Wg__V1__Request add = REQ(ADD, Add, .name = S("last"), .has_delta = true, .delta = 1);

                stat_id = stat.id;
                pc_send(c, &stat);
                pc_send(c, &add);
        }
        assert_int_equal(kill(h->pid, SIGCONT), 0);
        {
                uint8_t buf[WG_RECORD_MAX];
                unsigned answers = 0, resets = 0;
                ssize_t n;

                for (;;) {
                        struct pollfd p = { .fd = c, .events = POLLIN };

                        assert_int_equal(poll(&p, 1, 20000), 1);
                        n = seqpacket_recv(c, buf, sizeof(buf), NULL, MSG_DONTWAIT);
                        if (n == -ECONNRESET) {
                                resets++;
                                continue;
                        }
                        if (n == 0)
                                break;
                        assert_true(n > 0);
                        r = wg__v1__response__unpack(NULL, (size_t) n, buf);
                        assert_non_null(r);
                        check(r, stat_id, 0);
                        pc_free(r);
                        answers++;
                }
                assert_int_equal(answers, 1);
                assert_true(resets <= 1);
        }
        close(c);

        /* The group is as the one Add left it: no member, no waiter; and wgd serves on. */
        c = pc_connect(h->socket_path);
        r = call(c, REQ(STAT, Stat, .name = S("last")), 0);
        assert_int_equal(group_of(r)->count, 2);
        assert_int_equal(group_of(r)->waiters, 0);
        assert_int_equal(group_of(r)->n_members, 0);
        pc_free(r);
        close(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_bad_records, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_envelope, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_invalid, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_any_encoding, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_pipelined, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_half_close, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_last_request, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_names, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_counter_bounds, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_waits, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_broken, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_corrupt, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_leave, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_limit_groups, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_limit_quota, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_limit_connections, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_shutdown, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_permissions, harness_setup, harness_teardown),
        };

        if (getenv("WG_TEST_FILTER"))
                cmocka_set_test_filter(getenv("WG_TEST_FILTER"));
        return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}
