/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * docs/segment.md is a specification: a program that follows it, and nothing else, must work
 * with libwg and wgd. This test is such a program. It knows the segment only from that page: it
 * includes no header of libwg's but wg.h (to compare with libwg's own view through its public
 * API), defines its constants from the page's tables, gets a segment fd from wgd over the
 * protocol, validates and maps it as §3 says, and adds, dones and waits by §5's steps, with its
 * own futex calls. libwg (in this process and in an unrelated one) and wgd must see the same.
 *
 * If this test needs a fact the page does not give, the page is incomplete: fix the page.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-util.h"
#include "wg.h"
#include "wgd-harness.h"

/* Nothing above may bring in libwg's own view of the segment (segment.h, wg-private.h). */
#if defined(WG_SEGMENT_MAGIC) || defined(WG_STATE_OFFSET) || defined(WG_STATE_WAITERS)
#error "test-segment-spec must know the segment from docs/segment.md alone"
#endif

/* §1 and §2: the file and its layout. */
#define SEG_SIZE 4096
#define SEG_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define SEG_MAGIC UINT64_C(0x0101006765736777)
#define SEG_MAJOR 1
#define SEG_HEADER_SIZE 64
#define SEG_STATE_OFFSET 64
#define SEG_FLAGS_KNOWN 0u
#define SEG_OUTCOME_OFFSET 128
#define SEG_OUTCOME_SLOTS 4
#define SEG_OUTCOME_SIZE 16

struct seg_header {
        uint64_t magic;
        uint16_t version_major;
        uint16_t version_minor;
        uint32_t header_size;
        uint32_t segment_size;
        uint32_t state_offset;
        uint32_t flags;
        uint32_t reserved0;
        uint8_t reserved[32];
};

/* The table's offsets, as this compiler lays the struct out. */
_Static_assert(offsetof(struct seg_header, version_major) == 8, "§2");
_Static_assert(offsetof(struct seg_header, version_minor) == 10, "§2");
_Static_assert(offsetof(struct seg_header, header_size) == 12, "§2");
_Static_assert(offsetof(struct seg_header, segment_size) == 16, "§2");
_Static_assert(offsetof(struct seg_header, state_offset) == 20, "§2");
_Static_assert(offsetof(struct seg_header, flags) == 24, "§2");
_Static_assert(offsetof(struct seg_header, reserved0) == 28, "§2");
_Static_assert(offsetof(struct seg_header, reserved) == 32, "§2");
_Static_assert(sizeof(struct seg_header) == SEG_HEADER_SIZE, "§2");

/* §4: the state word. */
#define COUNT_MASK UINT64_C(0x7fffffff)
#define BIT31 UINT64_C(0x80000000)
#define WAITERS (UINT64_C(1) << 32)
#define DELETED (UINT64_C(1) << 33)
#define BROKEN (UINT64_C(1) << 34)
#define GEN_ONE (UINT64_C(1) << 35)
#define GEN_MASK UINT64_C(0x1fffffff)

/* §4: the futex word is the upper half: at offset 68 on little-endian machines, 64 on big. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SEG_FUTEX_OFFSET 68
#else
#define SEG_FUTEX_OFFSET 64
#endif

static uint64_t count_of_word(uint64_t s) {
        return s & COUNT_MASK;
}

static uint64_t generation_of_word(uint64_t s) {
        return (s >> 35) & GEN_MASK;
}

/* §4: the error of a word that stops every operation, in the page's order; 0 if none. */
static int word_error(uint64_t s) {
        if (s & DELETED)
                return -EIDRM;
        if (s & BROKEN)
                return -EOWNERDEAD;
        if (s & BIT31)
                return -EUCLEAN;
        return 0;
}

typedef struct Segment {
        void *map;
        uint64_t *word;
        uint32_t *futex;
} Segment;

/* §3, step by step. 0 and a mapping, or -errno: the segment is refused. */
static int spec_map(int fd, Segment *ret) {
        struct seg_header h;
        struct stat st;
        void *map;
        int seals;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EMEDIUMTYPE;
        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return -EMEDIUMTYPE;
        if ((seals & SEG_SEALS) != SEG_SEALS)
                return -EMEDIUMTYPE;
        if (st.st_size != SEG_SIZE)
                return -EBADMSG;

        map = mmap(NULL, SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return -errno;

        /* The magic with acquire, then a private copy, and only the copy is checked. */
        h.magic = __atomic_load_n((const uint64_t *) map, __ATOMIC_ACQUIRE);
        memcpy((uint8_t *) &h + 8, (const uint8_t *) map + 8, sizeof(h) - 8);
        if (h.magic != SEG_MAGIC || h.header_size != SEG_HEADER_SIZE || h.segment_size != SEG_SIZE ||
            h.state_offset != SEG_STATE_OFFSET || (h.flags & ~SEG_FLAGS_KNOWN) || h.reserved0 != 0)
                goto refuse;
        if (h.version_major != SEG_MAJOR) {
                munmap(map, SEG_SIZE);
                return -EPROTONOSUPPORT;
        }
        for (size_t i = 0; i < sizeof(h.reserved); i++)
                if (h.reserved[i] != 0)
                        goto refuse;

        /* The constants from here on, never the header's values. */
        *ret = (Segment) {
                .map = map,
                .word = (uint64_t *) ((uint8_t *) map + SEG_STATE_OFFSET),
                .futex = (uint32_t *) ((uint8_t *) map + SEG_FUTEX_OFFSET),
        };
        return 0;

refuse:
        munmap(map, SEG_SIZE);
        return -EBADMSG;
}

static void spec_unmap(Segment *s) {
        assert_int_equal(munmap(s->map, SEG_SIZE), 0);
}

static uint64_t load(const Segment *s) {
        return __atomic_load_n(s->word, __ATOMIC_ACQUIRE);
}

static bool cas(const Segment *s, uint64_t *expected, uint64_t desired) {
        return __atomic_compare_exchange_n(
                s->word, expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Shared futexes: no FUTEX_PRIVATE_FLAG, ever (§5). */
static void futex_wake(uint32_t *futex) {
        (void) syscall(SYS_futex, futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static int futex_wait_until(uint32_t *futex, uint32_t expected, const struct timespec *deadline) {
        return syscall(SYS_futex,
                       futex,
                       FUTEX_WAIT_BITSET,
                       expected,
                       deadline,
                       NULL,
                       FUTEX_BITSET_MATCH_ANY) < 0 ?
                -errno :
                0;
}

/* §5, Add. */
static int spec_add(const Segment *seg, int64_t delta) {
        uint64_t s = load(seg), next;
        int r;

        for (;;) {
                uint64_t count = count_of_word(s);

                r = word_error(s);
                if (r < 0)
                        return r;
                if (delta >= 0) {
                        if ((uint64_t) delta > COUNT_MASK - count)
                                return -EOVERFLOW;
                        if (delta == 0)
                                return 0;
                        next = s + (uint64_t) delta;
                } else {
                        uint64_t n = (uint64_t) (-(delta + 1)) + 1;

                        if (n > count)
                                return -ERANGE;
                        next = n == count ? (s & ~(COUNT_MASK | WAITERS)) + GEN_ONE : s - n;
                }
                if (cas(seg, &s, next))
                        break;
        }
        if ((s & WAITERS) && !(next & WAITERS))
                futex_wake(seg->futex);
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* §5, Wait: 0 once the generation seen ends (or the counter is zero), or -errno. */
static int spec_wait(const Segment *seg, uint64_t timeout_usec) {
        uint64_t s = load(seg), gen, deadline;
        struct timespec ts;
        int r, k;

        r = word_error(s);
        if (r < 0)
                return r;
        if (count_of_word(s) == 0)
                return 0;
        gen = generation_of_word(s);
        if (timeout_usec == 0)
                return -ETIMEDOUT;
        deadline = now_usec() + timeout_usec;
        ts = (struct timespec) { .tv_sec = deadline / 1000000, .tv_nsec = (deadline % 1000000) * 1000 };

        for (;;) {
                /* Register. */
                for (;;) {
                        if (generation_of_word(s) != gen || count_of_word(s) == 0)
                                return 0;
                        r = word_error(s);
                        if (r < 0)
                                return r;
                        if (s & WAITERS)
                                break;
                        if (cas(seg, &s, s | WAITERS)) {
                                s |= WAITERS;
                                break;
                        }
                }

                k = futex_wait_until(seg->futex, (uint32_t) (s >> 32), &ts);

                s = load(seg);
                if (generation_of_word(s) != gen)
                        return 0;
                r = word_error(s);
                if (r < 0)
                        return r;
                if (k == -EAGAIN && now_usec() >= deadline)
                        return -ETIMEDOUT;
                if (k == -ETIMEDOUT || k == -EINTR)
                        return k;
        }
}

/*
 * §6: generation @gen's outcome, as wgd wrote it; false if its slot holds another generation,
 * or counts nobody.
 */
static bool spec_outcome(const Segment *seg, uint64_t gen, uint32_t ret[3]) {
        uint32_t *slot =
                (uint32_t
                         *) ((uint8_t *) seg->map + SEG_OUTCOME_OFFSET + (gen % SEG_OUTCOME_SLOTS) * SEG_OUTCOME_SIZE);

        for (unsigned i = 0; i < 3; i++)
                ret[i] = __atomic_load_n(&slot[1 + i], __ATOMIC_ACQUIRE);
        return __atomic_load_n(&slot[0], __ATOMIC_ACQUIRE) == (uint32_t) gen &&
                (uint64_t) ret[0] + ret[1] + ret[2] > 0;
}

/* A thread that waits by §5, so that the test can watch it sleep. */
typedef struct Waiter {
        const Segment *seg;
        pthread_t thread;
        pid_t tid;
        int result;
} Waiter;

static void *waiter_run(void *p) {
        Waiter *w = p;

        __atomic_store_n(&w->tid, gettid(), __ATOMIC_SEQ_CST);
        w->result = spec_wait(w->seg, 60 * UINT64_C(1000000));
        return NULL;
}

/* Start a waiter and return once it sleeps on the futex. */
static void waiter_start(Waiter *w, const Segment *seg) {
        *w = (Waiter) { .seg = seg };
        assert_int_equal(pthread_create(&w->thread, NULL, waiter_run, w), 0);
        while (__atomic_load_n(&w->tid, __ATOMIC_SEQ_CST) == 0)
                sched_yield();
        wait_until_thread_futex_sleep(w->tid);
}

static int waiter_join(Waiter *w) {
        assert_int_equal(pthread_join(w->thread, NULL), 0);
        return w->result;
}

/* A segment fd from wgd: the answer to an Open carries it. */
static int open_through_wgd(int c, const char *name) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Open m = WG__V1__OPEN__INIT;
        int fd = -EBADF;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_OPEN;
        req.open = &m;
        pc_free(pc_call(c, &req, &fd));
        assert_true(fd >= 0);
        return fd;
}

static Wg__V1__GroupInfo *info_of(Wg__V1__Response *r) {
        assert_int_equal(r->result_case, WG__V1__RESPONSE__RESULT_GROUP);
        return r->group;
}

/* wgd's view: count and generation from a Stat. */
static void assert_wgd_sees(int c, const char *name, uint64_t count, uint64_t generation) {
        Wg__V1__Response *r = pc_stat(c, name);

        assert_int_equal(info_of(r)->count, count);
        assert_int_equal(info_of(r)->generation, generation);
        pc_free(r);
}

/* libwg's view, through its public API. */
static void assert_libwg_sees(wg *g, uint64_t count, uint64_t generation) {
        uint64_t v;

        assert_int_equal(wg_get_count(g, &v), 0);
        assert_int_equal(v, count);
        assert_int_equal(wg_get_generation(g, &v), 0);
        assert_int_equal(v, generation);
}

/* Add, done and wait by the page, against libwg and wgd on one group. */
static void test_spec_against_libwg_and_wgd(void **state) {
        Harness *h = *state;
        Wg__V1__Response *r;
        Segment seg;
        Waiter w;
        pid_t helper;
        uint64_t s;
        wg *g;
        int c, fd;

        harness_start(h, (const char *[]) { "--idle-timeout=0", "--log-level=warning", NULL });
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "spec", 0, 0), 0);
        fd = open_through_wgd(c, "spec");
        assert_int_equal(spec_map(fd, &seg), 0);
        close(fd);
        assert_int_equal(wg_open("spec", 0, &g), 0);

        s = load(&seg);
        assert_int_equal(count_of_word(s), 0);
        assert_int_equal(generation_of_word(s), 0);
        assert_int_equal(word_error(s), 0);

        /* An add by the page: wgd and libwg see it. The bounds are libwg's too. */
        assert_int_equal(spec_add(&seg, 2), 0);
        assert_wgd_sees(c, "spec", 2, 0);
        assert_libwg_sees(g, 2, 0);
        assert_int_equal(spec_add(&seg, -3), -ERANGE);
        assert_int_equal(wg_add(g, -3), -ERANGE);
        assert_int_equal(spec_add(&seg, (int64_t) COUNT_MASK), -EOVERFLOW);
        assert_int_equal(wg_add(g, (int64_t) COUNT_MASK), -EOVERFLOW);
        assert_int_equal(count_of_word(load(&seg)), 2);

        /*
         * Three waiters of generation 0: libwg in an unrelated process, the page's algorithm in a
         * thread of ours, and a Wait through wgd. All of them register WAITERS.
         */
        helper = spawn_helper(
                NULL, 0, (const char *[]) { "named", "spec", "0", "count:2", "wait:60000000", NULL });
        wait_until_futex_sleep(helper);
        waiter_start(&w, &seg);
        pc_wait_send(c, 7, "spec", UINT64_MAX);
        r = pc_stat(c, "spec");
        assert_true(info_of(r)->futex_waiters);
        pc_free(r);
        assert_true(load(&seg) & WAITERS);

        /* Two dones by the page: the second completes, bumps the generation, clears WAITERS. */
        assert_int_equal(spec_add(&seg, -1), 0);
        assert_int_equal(count_of_word(load(&seg)), 1);
        assert_int_equal(spec_add(&seg, -1), 0);
        s = load(&seg);
        assert_int_equal(count_of_word(s), 0);
        assert_int_equal(generation_of_word(s), 1);
        assert_false(s & WAITERS);

        /* Its FUTEX_WAKE on the page's futex word released everybody. */
        assert_int_equal(reap(helper), 0);
        assert_int_equal(waiter_join(&w), 0);
        r = pc_recv(c, NULL);
        assert_int_equal(r->id, 7);
        pc_expect(r, 0);
        assert_wgd_sees(c, "spec", 0, 1);
        assert_libwg_sees(g, 0, 1);

        /* The other way: libwg's add and done, and the page's waiter, released by libwg's wake. */
        assert_int_equal(wg_add(g, 1), 0);
        assert_int_equal(count_of_word(load(&seg)), 1);
        waiter_start(&w, &seg);
        assert_true(load(&seg) & WAITERS);
        assert_int_equal(wg_done(g), 0);
        assert_int_equal(waiter_join(&w), 0);
        assert_int_equal(generation_of_word(load(&seg)), 2);
        assert_wgd_sees(c, "spec", 0, 2);

        /* A try-wait by the page on a non-zero counter, and on zero. */
        assert_int_equal(spec_add(&seg, 1), 0);
        assert_int_equal(spec_wait(&seg, 0), -ETIMEDOUT);
        assert_int_equal(wg_wait(g, 0), -ETIMEDOUT);
        assert_int_equal(spec_add(&seg, -1), 0);
        assert_int_equal(spec_wait(&seg, 0), 0);
        assert_int_equal(generation_of_word(load(&seg)), 3);

        /* Deleted through wgd: the page's operations fail as libwg's do. */
        pc_expect(pc_delete(c, "spec"), 0);
        assert_true(load(&seg) & DELETED);
        assert_int_equal(spec_add(&seg, 1), -EIDRM);
        assert_int_equal(spec_wait(&seg, 0), -EIDRM);
        assert_int_equal(wg_add(g, 1), -EIDRM);

        wg_unref(g);
        spec_unmap(&seg);
        close(c);
}

/* §6: the outcome slot of a generation with a member, read by the page, as libwg reads it. */
static void test_spec_outcome(void **state) {
        Harness *h = *state;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Join join = WG__V1__JOIN__INIT;
        Wg__V1__Leave leave = WG__V1__LEAVE__INIT;
        uint64_t succeeded, failed, abandoned;
        uint32_t o[3];
        Segment seg;
        wg *g;
        int c, member, fd;

        harness_start(h, (const char *[]) { "--idle-timeout=0", "--log-level=warning", NULL });
        c = pc_connect(h->socket_path);
        pc_expect(pc_create(c, "members", 0, 0), 0);
        /* Generations 0 to 5 end with no member, so that the next one's slot (6 % 4) is reused. */
        for (unsigned i = 0; i < 6; i++) {
                pc_expect(pc_add(c, "members", 1), 0);
                pc_expect(pc_add(c, "members", -1), 0);
        }
        fd = open_through_wgd(c, "members");
        assert_int_equal(spec_map(fd, &seg), 0);
        assert_int_equal(wg_from_fd(fd, &g), 0);
        close(fd);

        /* A member that joins generation 6 and leaves failing (status 3): the generation ends. */
        member = pc_connect(h->socket_path);
        join.name = (char *) "members";
        req.op_case = WG__V1__REQUEST__OP_JOIN;
        req.join = &join;
        fd = -EBADF;
        pc_free(pc_call(member, &req, &fd));
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(count_of_word(load(&seg)), 1);
        leave.name = (char *) "members";
        leave.has_status = true;
        leave.status = 3;
        req = (Wg__V1__Request) WG__V1__REQUEST__INIT;
        req.op_case = WG__V1__REQUEST__OP_LEAVE;
        req.leave = &leave;
        pc_expect(pc_call(member, &req, NULL), 0);
        close(member);
        assert_int_equal(generation_of_word(load(&seg)), 7);

        assert_true(spec_outcome(&seg, 6, o));
        assert_int_equal(o[0], 0);
        assert_int_equal(o[1], 1);
        assert_int_equal(o[2], 0);
        assert_int_equal(wg_get_outcome(g, 6, &succeeded, &failed, &abandoned), 0);
        assert_int_equal(succeeded, o[0]);
        assert_int_equal(failed, o[1]);
        assert_int_equal(abandoned, o[2]);
        /* Generation 2 shared the slot and had no member: nothing for it, on either side. */
        assert_false(spec_outcome(&seg, 2, o));
        assert_int_equal(wg_get_outcome(g, 2, NULL, NULL, NULL), -ENODATA);

        wg_unref(g);
        spec_unmap(&seg);
        close(c);
}

/* A copy of a real segment's header, for the files below. */
static void real_header(uint8_t ret[SEG_SIZE]) {
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        memset(ret, 0, SEG_SIZE);
        assert_int_equal(pread(wg_fd(g), ret, SEG_SIZE, 0), SEG_SIZE);
        wg_unref(g);
}

/* Refused (or accepted) by the page's §3 and by libwg's wg_from_fd() alike. */
static void assert_both(int fd, bool accept) {
        Segment seg;
        wg *g;
        int a = spec_map(fd, &seg), b = wg_from_fd(fd, &g);

        if ((a == 0) != accept || (b == 0) != accept)
                fail_msg(
                        "expected %s; the page's check says %d, wg_from_fd() %d",
                        accept ? "accept" : "refuse",
                        a,
                        b);
        if (a == 0)
                spec_unmap(&seg);
        if (b == 0)
                wg_unref(g);
        close(fd);
}

/* A 4096-byte segment with one change to a real one, sealed as the page says. */
static int changed_segment(const uint8_t good[SEG_SIZE], size_t offset, const void *bytes, size_t n) {
        uint8_t seg[SEG_SIZE];

        memcpy(seg, good, SEG_SIZE);
        memcpy(seg + offset, bytes, n);
        return memfd_with(seg, SEG_SIZE, SEG_SEALS);
}

static void test_spec_validation(void **state) {
        static const uint64_t bad_magic = SEG_MAGIC ^ 1;
        static const uint16_t major2 = 2, minor9 = 9;
        static const uint32_t one = 1, sixty_three = 63, twice = 2 * SEG_SIZE, far = 128;
        static const uint8_t nonzero = 0xaa;
        uint8_t good[SEG_SIZE];
        int p[2];

        real_header(good);

        /* The file. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        close(p[1]);
        assert_both(p[0], false);
        assert_both(memfd_with(good, SEG_SIZE, 0), false);                           /* not sealed */
        assert_both(memfd_with(good, SEG_SIZE, F_SEAL_SHRINK | F_SEAL_GROW), false); /* can be resealed */
        assert_both(memfd_with(good, SEG_SIZE, SEG_SEALS | F_SEAL_WRITE), false);    /* cannot be written */
        {
                uint8_t big[2 * SEG_SIZE] = {};

                memcpy(big, good, SEG_SIZE);
                assert_both(memfd_with(big, sizeof(big), SEG_SEALS), false);
        }

        /* The header, field by field. */
        assert_both(changed_segment(good, 0, &bad_magic, 8), false);
        assert_both(changed_segment(good, 8, &major2, 2), false);
        assert_both(changed_segment(good, 12, &sixty_three, 4), false);
        assert_both(changed_segment(good, 16, &twice, 4), false);
        assert_both(changed_segment(good, 20, &far, 4), false);
        assert_both(changed_segment(good, 24, &one, 4), false);
        assert_both(changed_segment(good, 28, &one, 4), false);
        for (size_t i = 32; i < SEG_HEADER_SIZE; i++)
                assert_both(changed_segment(good, i, &nonzero, 1), false);

        /* What a later minor version may do: another minor, bytes from offset 192 on. */
        assert_both(memfd_with(good, SEG_SIZE, SEG_SEALS), true);
        assert_both(changed_segment(good, 10, &minor9, 2), true);
        assert_both(changed_segment(good, 192, &nonzero, 1), true);
        assert_both(changed_segment(good, SEG_SIZE - 1, &nonzero, 1), true);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_spec_against_libwg_and_wgd, harness_setup, harness_teardown),
                cmocka_unit_test_setup_teardown(test_spec_outcome, harness_setup, harness_teardown),
                cmocka_unit_test(test_spec_validation),
        };

        return cmocka_run_group_tests_name("segment-spec", tests, NULL, NULL);
}
