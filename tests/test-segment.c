/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Attaching to segments: what wg_new() makes is accepted, and everything else any peer could
 * hand over (other kinds of fds, unsealed or resized memfds, every header field corrupted, a
 * corrupt state word) is refused with its error, never a crash or SIGBUS.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "segment.h"
#include "test-util.h"
#include "wg-private.h"
#include "wg.h"

/* The bytes of a freshly made, valid segment. */
static void valid_image(uint8_t image[WG_SEGMENT_SIZE]) {
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(pread(wg_fd(g), image, WG_SEGMENT_SIZE, 0), WG_SEGMENT_SIZE);
        wg_unref(g);
}

static int attach_image(const uint8_t *image, size_t size, unsigned seals) {
        int fd = memfd_with(image, size, seals);
        wg *g = (wg *) 0x1;
        int r;

        r = wg_from_fd(fd, &g);
        if (r < 0)
                assert_ptr_equal(g, (wg *) 0x1); /* ret is written only on success */
        else
                wg_unref(g);
        close(fd);
        return r;
}

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static void test_new_is_valid(void **state) {
        uint8_t image[WG_SEGMENT_SIZE];
        struct wg_header h;
        uint64_t v;
        wg *g, *h2;
        int seals;

        assert_int_equal(wg_new(&g), 0);
        assert_true(wg_fd(g) >= 0);
        assert_true(fcntl(wg_fd(g), F_GETFD) & FD_CLOEXEC);
        seals = fcntl(wg_fd(g), F_GET_SEALS);
        assert_int_equal(seals & SEALS, SEALS);
        assert_int_equal(wg_get_count(g, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(wg_get_generation(g, &v), 0);
        assert_int_equal(v, 0);

        valid_image(image);
        memcpy(&h, image, sizeof(h));
        assert_true(h.magic == WG_SEGMENT_MAGIC);
        assert_int_equal(h.version_major, WG_VERSION_MAJOR);
        assert_int_equal(h.segment_size, WG_SEGMENT_SIZE);
        for (size_t i = sizeof(h); i < WG_SEGMENT_SIZE; i++)
                assert_int_equal(image[i], 0);

        /* A second handle on the same segment sees the same counter, and owns its own fd. */
        assert_int_equal(wg_from_fd(wg_fd(g), &h2), 0);
        assert_int_not_equal(wg_fd(h2), wg_fd(g));
        assert_int_equal(wg_add(g, 5), 0);
        assert_int_equal(wg_get_count(h2, &v), 0);
        assert_int_equal(v, 5);
        wg_unref(h2);
        wg_unref(g);

        /* The image of a valid segment, copied into a new sealed memfd, is a valid segment. */
        assert_int_equal(attach_image(image, sizeof(image), SEALS), 0);
}

static void test_bad_arguments(void **state) {
        wg *g = NULL;

        assert_int_equal(wg_new(NULL), -EINVAL);
        assert_int_equal(wg_from_fd(-1, &g), -EBADF);
        assert_int_equal(wg_from_fd(12345, &g), -EBADF);
        assert_null(g);
        assert_int_equal(wg_fd(NULL), -EINVAL);
        assert_null(wg_ref(NULL));
        assert_null(wg_unref(NULL));

        assert_int_equal(wg_new(&g), 0);
        assert_int_equal(wg_from_fd(wg_fd(g), NULL), -EINVAL);
        wg_unref(g);
}

static void test_wrong_kind_of_fd(void **state) {
        uint8_t image[WG_SEGMENT_SIZE];
        char path[] = "/tmp/wg-test-XXXXXX";
        int p[2], s[2], fd;
        wg *g;

        valid_image(image);

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(wg_from_fd(p[0], &g), -EMEDIUMTYPE);
        assert_int_equal(wg_from_fd(p[1], &g), -EMEDIUMTYPE);
        close(p[0]);
        close(p[1]);

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s), 0);
        assert_int_equal(wg_from_fd(s[0], &g), -EMEDIUMTYPE);
        close(s[0]);
        close(s[1]);

        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(wg_from_fd(fd, &g), -EMEDIUMTYPE);
        close(fd);

        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(wg_from_fd(fd, &g), -EMEDIUMTYPE);
        close(fd);

        /* A regular file with a perfect segment in it: still not sealed, so not trusted. */
        fd = mkostemp(path, O_CLOEXEC);
        assert_true(fd >= 0);
        unlink(path);
        assert_int_equal(pwrite(fd, image, sizeof(image), 0), (ssize_t) sizeof(image));
        assert_int_equal(wg_from_fd(fd, &g), -EMEDIUMTYPE);
        close(fd);
}

static void test_seals_and_size(void **state) {
        uint8_t image[2 * WG_SEGMENT_SIZE] = {};

        valid_image(image);

        /* Unsealed, or missing any one of the three seals: a peer could still resize it. */
        assert_int_equal(attach_image(image, WG_SEGMENT_SIZE, 0), -EMEDIUMTYPE);
        assert_int_equal(attach_image(image, WG_SEGMENT_SIZE, F_SEAL_SHRINK | F_SEAL_GROW), -EMEDIUMTYPE);
        assert_int_equal(attach_image(image, WG_SEGMENT_SIZE, F_SEAL_SHRINK | F_SEAL_SEAL), -EMEDIUMTYPE);
        assert_int_equal(attach_image(image, WG_SEGMENT_SIZE, F_SEAL_GROW | F_SEAL_SEAL), -EMEDIUMTYPE);

        /* Sealed, at the wrong size. */
        assert_int_equal(attach_image(image, 0, SEALS), -EBADMSG);
        assert_int_equal(attach_image(image, 64, SEALS), -EBADMSG);
        assert_int_equal(attach_image(image, WG_SEGMENT_SIZE - 1, SEALS), -EBADMSG);
        assert_int_equal(attach_image(image, WG_SEGMENT_SIZE + 1, SEALS), -EBADMSG);
        assert_int_equal(attach_image(image, 2 * WG_SEGMENT_SIZE, SEALS), -EBADMSG);

        /* Sealed against writing: it cannot be mapped for the atomics. */
        assert_int_equal(attach_image(image, WG_SEGMENT_SIZE, SEALS | F_SEAL_WRITE), -EPERM);
}

static void test_read_only_fd(void **state) {
        char path[64];
        wg *g, *g2;
        int fd;

        assert_int_equal(wg_new(&g), 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", wg_fd(g));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(wg_from_fd(fd, &g2), -EACCES);
        close(fd);
        wg_unref(g);
}

static void test_garbage(void **state) {
        uint8_t image[WG_SEGMENT_SIZE];

        memset(image, 0, sizeof(image));
        assert_int_equal(attach_image(image, sizeof(image), SEALS), -EBADMSG);

        memset(image, 0xff, sizeof(image));
        assert_int_equal(attach_image(image, sizeof(image), SEALS), -EBADMSG);

        srand(4242);
        for (unsigned i = 0; i < 64; i++) {
                for (size_t j = 0; j < sizeof(image); j++)
                        image[j] = (uint8_t) rand();
                assert_int_equal(attach_image(image, sizeof(image), SEALS), -EBADMSG);
        }
}

/* Every header field, corrupted in place in a live segment, makes a new attach fail. */
static void test_every_header_field(void **state) {
        static const struct {
                const char *field;
                size_t offset, size;
                uint64_t value;
                int expect;
        } cases[] = {
                { "magic", offsetof(struct wg_header, magic), 8, 0x0101006765736778, -EBADMSG },
                { "magic", offsetof(struct wg_header, magic), 8, 0, -EBADMSG },
                { "version_major", offsetof(struct wg_header, version_major), 2, 0, -EPROTONOSUPPORT },
                { "version_major", offsetof(struct wg_header, version_major), 2, 2, -EPROTONOSUPPORT },
                { "version_major", offsetof(struct wg_header, version_major), 2, 0xffff, -EPROTONOSUPPORT },
                { "header_size", offsetof(struct wg_header, header_size), 4, 63, -EBADMSG },
                { "header_size", offsetof(struct wg_header, header_size), 4, 128, -EBADMSG },
                { "header_size", offsetof(struct wg_header, header_size), 4, 0xffffffff, -EBADMSG },
                { "segment_size", offsetof(struct wg_header, segment_size), 4, 8192, -EBADMSG },
                { "segment_size", offsetof(struct wg_header, segment_size), 4, 0, -EBADMSG },
                { "state_offset", offsetof(struct wg_header, state_offset), 4, 0, -EBADMSG },
                { "state_offset", offsetof(struct wg_header, state_offset), 4, 4096, -EBADMSG },
                { "state_offset", offsetof(struct wg_header, state_offset), 4, 4092, -EBADMSG },
                { "flags", offsetof(struct wg_header, flags), 4, 1, -EBADMSG },
                { "flags", offsetof(struct wg_header, flags), 4, 0x80000000, -EBADMSG },
                { "reserved0", offsetof(struct wg_header, reserved0), 4, 1, -EBADMSG },
        };
        wg *g, *g2;
        void *map;

        assert_int_equal(wg_new(&g), 0);
        map = mmap(NULL, WG_SEGMENT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, wg_fd(g), 0);
        assert_true(map != MAP_FAILED);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t saved[8];

                memcpy(saved, (uint8_t *) map + cases[i].offset, cases[i].size);
                memcpy((uint8_t *) map + cases[i].offset, &cases[i].value, cases[i].size);
                if (wg_from_fd(wg_fd(g), &g2) != cases[i].expect)
                        fail_msg("corrupt %s = %#llx was not refused with %d", cases[i].field,
                                 (unsigned long long) cases[i].value, cases[i].expect);
                memcpy((uint8_t *) map + cases[i].offset, saved, cases[i].size);
        }

        /* Each reserved byte, one at a time. */
        for (size_t i = 0; i < sizeof(((struct wg_header *) 0)->reserved); i++) {
                uint8_t *b = (uint8_t *) map + offsetof(struct wg_header, reserved) + i;

                *b = 0x01;
                assert_int_equal(wg_from_fd(wg_fd(g), &g2), -EBADMSG);
                *b = 0;
        }

        /* A newer minor version only adds what we may ignore: accepted. */
        ((struct wg_header *) map)->version_minor = 7;
        assert_int_equal(wg_from_fd(wg_fd(g), &g2), 0);
        wg_unref(g2);

        /* Restored, the segment is fine again: the checks had no side effects. */
        assert_int_equal(wg_from_fd(wg_fd(g), &g2), 0);
        assert_int_equal(wg_add(g2, 1), 0);
        assert_int_equal(wg_done(g2), 0);
        wg_unref(g2);

        munmap(map, WG_SEGMENT_SIZE);
        wg_unref(g);
}

/* A state word that no correct writer makes: every operation says so and writes nothing. */
static void test_corrupt_state_word(void **state) {
        static const uint64_t corrupt[] = {
                UINT64_C(0x80000000),             /* counter bit 31 */
                UINT64_C(0xffffffff),             /* counter all ones */
                UINT64_C(0xfffffff9ffffffff),     /* everything but DELETED and BROKEN */
                (UINT64_C(5) << 35) | 0x80000003, /* plausible generation, bad counter */
        };
        wg *g;

        assert_int_equal(wg_new(&g), 0);
        for (size_t i = 0; i < ELEMENTSOF(corrupt); i++) {
                uint64_t v = 42;

                raw_state_set(g, corrupt[i]);
                assert_int_equal(wg_add(g, 1), -EUCLEAN);
                assert_int_equal(wg_add(g, 0), -EUCLEAN);
                assert_int_equal(wg_done(g), -EUCLEAN);
                assert_int_equal(wg_add(g, -1), -EUCLEAN);
                assert_int_equal(wg_wait(g, 0), -EUCLEAN);
                assert_int_equal(wg_wait(g, 1000), -EUCLEAN);
                assert_int_equal(wg_wait(g, WG_USEC_INFINITY), -EUCLEAN);
                assert_int_equal(wg_get_count(g, &v), -EUCLEAN);
                assert_int_equal(wg_get_generation(g, &v), -EUCLEAN);
                assert_int_equal(v, 42);
                assert_true(raw_state(g) == corrupt[i]);
        }

        /* The header is still fine, so a new attach works; the word is what is refused. */
        raw_state_set(g, 0);
        assert_int_equal(wg_add(g, 1), 0);
        assert_int_equal(wg_done(g), 0);
        wg_unref(g);
}

typedef struct MirrorWaiter {
        wg *g;
        pid_t tid;
        int result;
} MirrorWaiter;

static void *mirror_wait(void *userdata) {
        MirrorWaiter *w = userdata;

        __atomic_store_n(&w->tid, gettid(), __ATOMIC_SEQ_CST);
        w->result = wg_wait(w->g, WG_USEC_INFINITY);
        return NULL;
}

/*
 * A mirror (format 1.1): wgd's read-write handle and a client's read-only one on the same
 * segment. The client maps it read-only and never writes: its waits sleep without registering
 * and wake on wgd's store; its adds go to wgd (none runs here: they fail, the page untouched);
 * a name that is not one is refused.
 */
static void test_mirror(void **state) {
        MirrorWaiter w = {};
        pthread_t thread;
        wg *m, *r, *bad;
        uint64_t v;
        int ro;

        assert_int_equal(wg__new_mirror("bad name", &m), -EINVAL);
        assert_int_equal(wg__new_mirror("build.1", &m), 0);
        ro = wg__mirror_fd_read_only(m);
        assert_true(ro >= 0);
        assert_int_equal(fcntl(ro, F_GETFL) & O_ACCMODE, O_RDONLY);
        assert_int_equal(wg_from_fd(ro, &r), 0);
        assert_int_equal(wg_get_count(r, &v), 0);
        assert_int_equal(v, 0);

        wg__mirror_store(m, 3, 5, false, false, NULL);
        assert_int_equal(wg_get_count(r, &v), 0);
        assert_int_equal(v, 3);
        assert_int_equal(wg_get_generation(r, &v), 0);
        assert_int_equal(v, 5);
        assert_int_equal(wg_wait(r, 0), -ETIMEDOUT);

        /* Adds are wgd's: with none to ask, they fail, and nothing is written here. */
        assert_int_equal(setenv("WGD_SOCKET", "/nonexistent/wgd.sock", 1), 0);
        assert_int_equal(wg_add(r, 0), 0);
        assert_int_equal(wg_add(r, 1), -ECONNREFUSED);
        assert_int_equal(wg_done(r), -ECONNREFUSED);
        assert_int_equal(wg_get_count(r, &v), 0);
        assert_int_equal(v, 3);

        /* A waiter sleeps on the read-only page, and wakes on wgd's store. */
        w.g = r;
        assert_int_equal(pthread_create(&thread, NULL, mirror_wait, &w), 0);
        while (__atomic_load_n(&w.tid, __ATOMIC_SEQ_CST) == 0)
                sched_yield();
        wait_until_thread_futex_sleep(w.tid);
        wg__mirror_store(m, 0, 6, false, false, NULL);
        assert_int_equal(pthread_join(thread, NULL), 0);
        assert_int_equal(w.result, 0);

        /* Deleted: every operation says so, before asking anybody. */
        wg__mirror_store(m, 0, 6, false, true, NULL);
        assert_int_equal(wg_add(r, 1), -EIDRM);
        assert_int_equal(wg_wait(r, 0), -EIDRM);

        /* A name field with no NUL, or not a name: refused. */
        {
                char name[WG_NAME_SIZE];

                memset(name, 'a', sizeof(name));
                assert_int_equal(
                        pwrite(wg_fd(m), name, sizeof(name), WG_NAME_OFFSET), (ssize_t) sizeof(name));
                assert_int_equal(wg_from_fd(ro, &bad), -EBADMSG);
                assert_int_equal(pwrite(wg_fd(m), "a/b", 4, WG_NAME_OFFSET), 4);
                assert_int_equal(wg_from_fd(ro, &bad), -EBADMSG);
        }

        close(ro);
        wg_unref(r);
        wg_unref(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                fd_checked_test(test_new_is_valid),
                fd_checked_test(test_bad_arguments),
                fd_checked_test(test_wrong_kind_of_fd),
                fd_checked_test(test_seals_and_size),
                fd_checked_test(test_read_only_fd),
                fd_checked_test(test_garbage),
                fd_checked_test(test_every_header_field),
                fd_checked_test(test_corrupt_state_word),
                fd_checked_test(test_mirror),
        };

        return cmocka_run_group_tests_name("segment", tests, NULL, NULL);
}
